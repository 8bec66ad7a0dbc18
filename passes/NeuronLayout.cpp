// st-neuron-layout: each sparse expert's neurons ordered hot-first by the
// calibrated firing frequency (see Passes.td).
#include "dialects/st/StDialect.h"
#include "passes/Passes.h"

#include "mlir/IR/BuiltinAttributes.h"

#include <algorithm>
#include <numeric>

namespace stc::st {
#define GEN_PASS_DEF_STNEURONLAYOUT
#include "passes/Passes.h.inc"
} // namespace stc::st

using namespace mlir;
using namespace stc::st;

namespace {

struct StNeuronLayout
    : public stc::st::impl::StNeuronLayoutBase<StNeuronLayout> {
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    bool failed = false;
    getOperation().walk([&](MoeOp moe) {
      auto firing = moe->getAttrOfType<DenseFPElementsAttr>("neuron_firing");
      if (!moe->hasAttr("sparse_reglu") || !firing) {
        ++numUnprofiled;
        return;
      }
      auto gate = cast<RankedTensorType>(moe.getGate().getType());
      const int64_t E = gate.getDimSize(0), F = gate.getDimSize(1);
      auto type = cast<RankedTensorType>(firing.getType());
      if (type.getRank() != 2 || type.getDimSize(0) != E ||
          type.getDimSize(1) != F) {
        moe.emitError("neuron_firing must be [experts, ffn] = [")
            << E << ", " << F << "], got " << type;
        failed = true;
        return;
      }
      std::vector<float> freq;
      for (const APFloat &v : firing.getValues<APFloat>())
        freq.push_back(v.convertToFloat());
      std::vector<int32_t> order(E * F);
      std::vector<float> sorted(E * F);
      // For the report: how many neurons fire for at least half the tokens
      // (the hot prefix) and what share of all firings they hold, averaged
      // over the experts the calibration routed to.
      double hot = 0, hotShare = 0;
      int profiled = 0;
      for (int64_t e = 0; e < E; ++e) {
        int32_t *o = &order[e * F];
        const float *f = &freq[e * F];
        std::iota(o, o + F, 0);
        std::stable_sort(o, o + F,
                         [&](int32_t a, int32_t b) { return f[a] > f[b]; });
        double all = 0, inHot = 0;
        int64_t n = 0;
        for (int64_t p = 0; p < F; ++p) {
          sorted[e * F + p] = f[o[p]];
          all += f[o[p]];
          if (f[o[p]] >= 0.5f) {
            inHot += f[o[p]];
            ++n;
          }
        }
        if (all > 0) {
          hot += static_cast<double>(n);
          hotShare += inHot / all;
          ++profiled;
        }
      }
      auto f64 = [&](double v) {
        return FloatAttr::get(Float64Type::get(ctx), v);
      };
      moe->setAttr("hot_prefix", f64(profiled ? hot / profiled : 0));
      moe->setAttr("hot_live_share", f64(profiled ? hotShare / profiled : 0));
      moe->setAttr("neuron_firing",
                   DenseElementsAttr::get(type, llvm::ArrayRef<float>(sorted)));
      moe->setAttr("neuron_order",
                   DenseElementsAttr::get(
                       RankedTensorType::get({E, F}, IntegerType::get(ctx, 32)),
                       llvm::ArrayRef<int32_t>(order)));
      ++numOrdered;
    });
    if (failed)
      signalPassFailure();
  }
};

} // namespace
