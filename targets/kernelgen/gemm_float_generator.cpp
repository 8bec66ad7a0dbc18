// gemm_float (w.type=float32 or float16): y[t][n] = sum_k W[n][k] * x[t][k] for
// float weights stored row-major [n][k] as in the checkpoint (the router,
// norms-adjacent small matrices, and every matrix when compiling with --quant
// f32/f16).
#include "Halide.h"

using namespace Halide;
using namespace Halide::ConciseCasts;

namespace {

class GemmFloatGenerator : public Generator<GemmFloatGenerator> {
public:
  Input<Buffer<>> w{"w", 2};      // (k, n); element type w.type=float32|float16
  Input<Buffer<float>> x{"x", 2}; // (k, t)
  Output<Buffer<float>> y{"y", 2}; // (n, t)

  void generate() {
    Var n("n"), t("t"), v("v");
    const int kLanes = 8;
    // Partial sums over k in kLanes interleaved lanes, so the inner loop is a
    // vector multiply-add over contiguous k; the lanes are summed at the end.
    RDom rk(0, x.dim(0).extent() / kLanes, "rk");
    Func part("part");
    part(v, n, t) = 0.0f;
    part(v, n, t) += f32(w(rk * kLanes + v, n)) * x(rk * kLanes + v, t);
    RDom rv(0, kLanes, "rv");
    y(n, t) = sum(part(rv, n, t));

    Var no("no"), ni("ni");
    y.split(n, no, ni, 16, TailStrategy::GuardWithIf).parallel(no);
    y.reorder(ni, t, no);
    part.compute_at(y, ni).vectorize(v);
    part.update().vectorize(v);

    w.dim(0).set_min(0).set_stride(1);
    x.dim(0).set_min(0).set_stride(1);
    y.dim(0).set_min(0).set_stride(1);
  }
};

} // namespace

HALIDE_REGISTER_GENERATOR(GemmFloatGenerator, gemm_float)
