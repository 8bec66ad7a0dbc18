// st-expert-cache-plan: checks a memory budget against the dense weights plus
// one layer's active experts and records it (see Passes.td).
#include "dialects/st/StDialect.h"
#include "passes/Passes.h"

#include <cstdio>

namespace stc::st {
#define GEN_PASS_DEF_STEXPERTCACHEPLAN
#include "passes/Passes.h.inc"
} // namespace stc::st

using namespace mlir;
using namespace stc::st;

namespace {

uint64_t bytesOf(Type type) {
  auto t = cast<RankedTensorType>(type);
  uint64_t bytes = 0;
  storageBytes(t.getElementType(), t.getNumElements(), bytes);
  return bytes;
}

// As the model file stores them: each expert's matrix rounded up to whole
// pages.
uint64_t expertMatrixBytes(Type type) {
  auto t = cast<RankedTensorType>(type);
  uint64_t one = bytesOf(type) / t.getDimSize(0);
  return (one + 4095) / 4096 * 4096;
}

struct StExpertCachePlan
    : public stc::st::impl::StExpertCachePlanBase<StExpertCachePlan> {
  using StExpertCachePlanBase::StExpertCachePlanBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    int64_t limit = budget;
    if (limit < 0) {
      module.emitError() << "st-expert-cache-plan: budget must not be negative";
      return signalPassFailure();
    }
    if (limit == 0)
      return;
    llvm::DenseSet<StringRef> experts;
    uint64_t layerActive = 0;
    int64_t topK = 0;
    bool ok = true;
    module.walk([&](KernelOp k) {
      if (k.getOp() != "moe")
        return;
      topK = cast<RankedTensorType>(k.getInputs()[1].getType()).getDimSize(1);
      uint64_t triple = 0;
      for (int i = 3; i < 6; ++i) {
        auto load = k.getInputs()[i].getDefiningOp<LoadWeightOp>();
        if (!load) {
          ok = false;
          return;
        }
        experts.insert(load.getName());
        triple += expertMatrixBytes(load.getType());
      }
      layerActive = std::max<uint64_t>(layerActive, triple * topK);
    });
    if (!ok || experts.empty()) {
      module.emitError()
          << "st-expert-cache-plan: needs kernel-level IR with moe "
             "kernels (run st-lower-to-kernels first)";
      return signalPassFailure();
    }
    uint64_t dense = 0;
    module.walk([&](WeightOp w) {
      if (!experts.contains(w.getSymName()))
        dense += w.getStorageBytes();
    });
    uint64_t minimum = dense + layerActive;
    if (static_cast<uint64_t>(limit) < minimum) {
      auto mib = [](uint64_t b) {
        char buf[32];
        std::snprintf(buf, sizeof(buf), "%.1f MiB", b / 1048576.0);
        return std::string(buf);
      };
      module.emitError() << "memory budget " << mib(limit)
                         << " is below the minimum " << mib(minimum)
                         << ": dense weights " << mib(dense)
                         << " plus one layer's " << topK << " active experts "
                         << mib(layerActive);
      return signalPassFailure();
    }
    module->setAttr(
        "st.memory_budget",
        IntegerAttr::get(IntegerType::get(&getContext(), 64), limit));
  }
};

} // namespace
