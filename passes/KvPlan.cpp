// st-kv-plan: ring-buffer KV caches for sliding-window layers (see Passes.td).
#include "dialects/st/StDialect.h"
#include "passes/Passes.h"

namespace stc::st {
#define GEN_PASS_DEF_STKVPLAN
#include "passes/Passes.h.inc"
} // namespace stc::st

using namespace mlir;
using namespace stc::st;

namespace {

// Whether every weight of the module is stored as f32 (after st-quantize's
// schemes): an exact compile, whose KV cache stays f32 under `auto`.
bool allWeightsF32(ModuleOp module) {
  bool all = true;
  module.walk([&](WeightOp w) {
    auto t = cast<RankedTensorType>(w.getType());
    Type stored = storageType(w.getContext(), t.getElementType(),
                              w->getAttrOfType<StringAttr>("quant"));
    all = all && stored.isF32();
  });
  return all;
}

struct StKvPlan : public stc::st::impl::StKvPlanBase<StKvPlan> {
  using StKvPlanBase::StKvPlanBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (maxBatch < 1) {
      module.emitError() << "st-kv-plan: max-batch must be at least 1, got "
                         << static_cast<int64_t>(maxBatch);
      return signalPassFailure();
    }
    std::string type = kvType;
    if (type == "auto")
      type = allWeightsF32(module) ? "f32" : "f16";
    if (type != "f32" && type != "f16" && type != "q8_0") {
      module.emitError() << "st-kv-plan: kv-type '" << kvType
                         << "' is not one of f16, q8_0, f32, auto";
      return signalPassFailure();
    }
    OpBuilder b(&getContext());
    module->setAttr("st.max_batch", b.getI64IntegerAttr(maxBatch));
    bool ok = true;
    module.walk([&](AttentionOp a) {
      // q8_0 blocks run along head_dim.
      if (type == "q8_0" && a.getHeadDim() % 32 != 0) {
        a.emitError() << "st-kv-plan: a q8_0 KV cache needs head_dim to be a "
                         "multiple of 32, got "
                      << a.getHeadDim();
        ok = false;
      }
      a->setAttr("kv_type", b.getStringAttr(type));
      int64_t window = static_cast<int64_t>(a.getWindow());
      if (window <= 0) {
        a->removeAttr("kv_slots");
        return;
      }
      a->setAttr("kv_slots", b.getI64IntegerAttr(window + maxBatch - 1));
      ++numRings;
    });
    if (!ok)
      signalPassFailure();
  }
};

} // namespace
