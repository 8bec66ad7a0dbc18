// st-sparse-reglu: expert FFNs that read only the live neurons' up and down
// rows (see Passes.td).
#include "dialects/st/StDialect.h"
#include "passes/Passes.h"

#include "mlir/IR/SymbolTable.h"

namespace stc::st {
#define GEN_PASS_DEF_STSPARSEREGLU
#include "passes/Passes.h.inc"
} // namespace stc::st

using namespace mlir;
using namespace stc::st;

namespace {

// The scheme a weight will be stored in: st-quantize's decision, else what
// st-lower-to-kernels makes of its type.
std::string schemeOf(WeightOp w) {
  if (auto q = w->getAttrOfType<StringAttr>("quant"))
    return q.getValue().str();
  Type e = cast<RankedTensorType>(w.getType()).getElementType();
  if (isa<Q4_0Type>(e))
    return "q4_0";
  if (isa<Q8_0Type>(e))
    return "q8_0";
  return e.isF16() ? "f16" : "f32";
}

struct StSparseReglu : public stc::st::impl::StSparseRegluBase<StSparseReglu> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    MLIRContext *ctx = &getContext();
    module.walk([&](MoeOp moe) {
      auto weightOf = [&](Value v) -> WeightOp {
        auto load = v.getDefiningOp<LoadWeightOp>();
        return load ? symbols.lookup<WeightOp>(load.getName()) : WeightOp();
      };
      WeightOp up = weightOf(moe.getUp()), down = weightOf(moe.getDown());
      if (!up || !down) {
        ++numKeptDense;
        return;
      }
      const std::string su = schemeOf(up), sd = schemeOf(down);
      auto supported = [](const std::string &s) {
        return s == "q4_0" || s == "q8_0" || s == "f32";
      };
      // The down kernel reads rows in chunks of 64 outputs.
      int64_t hidden = cast<RankedTensorType>(down.getType()).getDimSize(1);
      bool quantized = su != "f32" || sd != "f32";
      if (!supported(su) || !supported(sd) || (quantized && hidden % 64)) {
        ++numKeptDense;
        return;
      }
      up->setAttr("layout",
                  StringAttr::get(ctx, su == "f32" ? "row_major" : "blocks16"));
      down->setAttr("layout", StringAttr::get(ctx, "transposed"));
      moe->setAttr("sparse_reglu", UnitAttr::get(ctx));
      ++numSparse;
    });
  }
};

} // namespace
