// gemm_quant_experts (bits=4 / 8): the selected experts of one MoE projection
// in one call. Slot s multiplies expert idx[s]'s rows16 matrix with its own
// Q8_0 activation row (slot stride 0 when every slot reads the same token, as
// gate and up do in decode): y[s][n] = sum_k W[idx[s]][n][k] * x[s][k]. One
// launch instead of one per expert keeps decode's per-call overhead off the hot
// path. A task streams each slot's rows in turn (slot-major, quant_dot.h).
#include "quant_dot.h"

using namespace Halide;

namespace {

class GemmQuantExpertsGenerator : public Generator<GemmQuantExpertsGenerator> {
public:
  GeneratorParam<int> bits{"bits", 4};
  // The scales converted by the CPU's instruction (quant_dot.h's halfToFloat):
  // set by KernelBuild on the LLVM IR route.
  GeneratorParam<bool> native_half{"native_half", false};

  Input<Buffer<uint8_t>> w{"w", 6};     // (r, l, j, b, g, expert)
  Input<Buffer<uint16_t>> sw{"sw", 4};  // (l, b, g, expert)
  Input<Buffer<int32_t>> idx{"idx", 1}; // (slot): expert of each slot
  Input<Buffer<int8_t>> qx{"qx", 2};    // (k, slot)
  Input<Buffer<float>> dx{"dx", 2};     // (b, slot)
  Input<Buffer<float>> sx{"sx", 2};     // (b, slot)
  Input<int32_t> groups_per_task{"groups_per_task"};
  Output<Buffer<float>> y{"y", 3}; // (l, g, slot)

  void generate() {
    const int quads = bits == 4 ? 4 : 8;
    Expr experts = w.dim(5).extent();
    auto expert = [&](Expr s) { return clamp(idx(s), 0, experts - 1); };
    stc::kernelgen::defineQuantDot(
        y, quads, qx.dim(0).extent() / 32,
        [&](Expr r, Expr l, Expr j, Expr b, Expr g, Expr s) {
          return w(r, l, j, b, g, expert(s));
        },
        [&](Expr l, Expr b, Expr g, Expr s) {
          return stc::kernelgen::halfToFloat(sw(l, b, g, expert(s)),
                                             native_half);
        },
        [&](Expr k, Expr s) { return qx(k, s); },
        [&](Expr b, Expr s) { return dx(b, s); },
        [&](Expr b, Expr s) { return sx(b, s); }, groups_per_task,
        /*slotMajor=*/true);

    stc::kernelgen::constrainRows16(w, sw, qx, dx, sx, y, quads);
    w.dim(5).set_min(0);
    sw.dim(3).set_min(0);
  }
};

} // namespace

HALIDE_REGISTER_GENERATOR(GemmQuantExpertsGenerator, gemm_quant_experts)
