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

struct StKvPlan : public stc::st::impl::StKvPlanBase<StKvPlan> {
  using StKvPlanBase::StKvPlanBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (maxBatch < 1) {
      module.emitError() << "st-kv-plan: max-batch must be at least 1, got "
                         << static_cast<int64_t>(maxBatch);
      return signalPassFailure();
    }
    OpBuilder b(&getContext());
    module->setAttr("st.max_batch", b.getI64IntegerAttr(maxBatch));
    module.walk([&](AttentionOp a) {
      int64_t window = static_cast<int64_t>(a.getWindow());
      if (window <= 0) {
        a->removeAttr("kv_slots");
        return;
      }
      a->setAttr("kv_slots", b.getI64IntegerAttr(window + maxBatch - 1));
      ++numRings;
    });
  }
};

} // namespace
