// st-sparse-reglu: expert FFNs that read only the live neurons' up and down
// rows (see Passes.td).
#include "dialects/st/StDialect.h"
#include "passes/Passes.h"
#include "passes/SparseCostModel.h"

#include "mlir/IR/SymbolTable.h"

namespace stc::st {
#define GEN_PASS_DEF_STSPARSEREGLU
#include "passes/Passes.h.inc"
} // namespace stc::st

using namespace mlir;
using namespace stc::st;

namespace {

// The element type a weight will be stored in: st-quantize's decision, else
// what st-lower-to-kernels makes of its type (the same mapping it applies).
Type storedElementType(WeightOp w) {
  return storageType(w.getContext(),
                     cast<RankedTensorType>(w.getType()).getElementType(),
                     w->getAttrOfType<StringAttr>("quant"));
}

// That type as the sparse kernels' scheme name; "other" for the types they do
// not read (f16, the K-quants).
std::string schemeOf(WeightOp w) {
  Type stored = storedElementType(w);
  if (isa<Q4_0Type>(stored))
    return "q4_0";
  if (isa<Q8_0Type>(stored))
    return "q8_0";
  return stored.isF32() ? "f32" : "other";
}

// Bytes one expert matrix of `w` occupies in the type it will be stored in.
double expertBytes(WeightOp w) {
  auto type = cast<RankedTensorType>(w.getType());
  uint64_t bytes = 0;
  storageBytes(storedElementType(w), type.getNumElements() / type.getDimSize(0),
               bytes);
  return static_cast<double>(bytes);
}

struct StSparseReglu : public stc::st::impl::StSparseRegluBase<StSparseReglu> {
  using StSparseRegluBase::StSparseRegluBase;

  void runOnOperation() override {
    if (downLayout != "transposed" && downLayout != "neuron_rows") {
      getOperation().emitError()
          << "st-sparse-reglu: down-layout must be transposed or neuron_rows, "
             "got '"
          << downLayout << "'";
      return signalPassFailure();
    }
    if (mode != "auto" && mode != "on") {
      getOperation().emitError(
          "st-sparse-reglu: mode must be auto or on, got '")
          << mode << "'";
      return signalPassFailure();
    }
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    MLIRContext *ctx = &getContext();
    // The cost model's inputs, for the report.
    module->setAttr(
        "st.sparse_reglu",
        DictionaryAttr::get(
            ctx, {NamedAttribute(StringAttr::get(ctx, "mode"),
                                 StringAttr::get(ctx, mode)),
                  NamedAttribute(
                      StringAttr::get(ctx, "live_row_cost"),
                      FloatAttr::get(Float64Type::get(ctx), liveRowCost))}));
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
      // The transposed down kernel reads rows in chunks of 64 outputs; the
      // neuron_rows one (PowerInfer's down, kept in its blocks) in blocks of
      // 32.
      int64_t hidden = cast<RankedTensorType>(down.getType()).getDimSize(1);
      // The down's quantized blocks: kept along D for PowerInfer's files,
      // along F for llama.cpp's; a float down the compile quantizes takes
      // down-layout.
      const bool quantizedDown = sd == "q4_0" || sd == "q8_0";
      const bool floatSource =
          isa<FloatType>(down.getSourceTensorType().getElementType());
      const bool neuronRows =
          quantizedDown &&
          ((down->hasAttr("transposed_source") && !floatSource) ||
           (floatSource && downLayout == "neuron_rows"));
      bool quantized = su != "f32" || sd != "f32";
      if (!supported(su) || !supported(sd) ||
          (quantized && hidden % (neuronRows ? 32 : 64))) {
        ++numKeptDense;
        return;
      }
      // The cost model, where the calibration gave the layer's dead share;
      // its verdict stays on the op for the report.
      auto dead = moe->getAttrOfType<FloatAttr>("dead_share");
      if (dead) {
        WeightOp gate = weightOf(moe.getGate());
        SparseCost cost =
            sparseCost(dead.getValueAsDouble(), expertBytes(gate ? gate : up),
                       expertBytes(up), expertBytes(down), liveRowCost);
        moe->setAttr("sparse_cost",
                     FloatAttr::get(Float64Type::get(ctx), cost.ratio()));
        if (mode == "auto" && !sparsePays(cost)) {
          ++numKeptDense;
          return;
        }
      } else if (mode == "auto") { // no profile: nothing says it pays
        ++numKeptDense;
        return;
      }
      up->setAttr("layout",
                  StringAttr::get(ctx, su == "f32" ? "row_major" : "blocks16"));
      down->setAttr("layout", StringAttr::get(ctx, neuronRows ? "neuron_rows"
                                                              : "transposed"));
      moe->setAttr("sparse_reglu", UnitAttr::get(ctx));
      ++numSparse;
    });
  }
};

} // namespace
