// rope_neox: rotate-half RoPE on [t][head][d]: element j pairs with j + d/2,
// with the cos/sin of pos * theta^(-2j/d) read from a table the runtime fills
// in double precision. The runtime passes x and y as (j, half, head, t) views
// of the same memory (j < d/2, half 0 or 1), so each half is a dense vector
// loop with no per-lane index arithmetic.
#include "Halide.h"

using namespace Halide;

namespace {

class RopeGenerator : public Generator<RopeGenerator> {
public:
  Input<Buffer<float>> x{"x", 4};         // (j, half, head, t)
  Input<Buffer<int32_t>> pos{"pos", 1};   // (t)
  Input<Buffer<float>> cos_t{"cos_t", 2}; // (j, position)
  Input<Buffer<float>> sin_t{"sin_t", 2};
  Output<Buffer<float>> y{"y", 4};

  void generate() {
    Var j("j"), hf("hf"), h("h"), t("t");
    Expr p = clamp(pos(t), 0, cos_t.dim(1).extent() - 1);
    Expr c = cos_t(j, p), s = sin_t(j, p);
    Expr lo = x(j, 0, h, t), hi = x(j, 1, h, t);
    // (lo, hi) -> (lo c - hi s, hi c + lo s); `hf` is unrolled, so the select
    // is resolved at compile time in each copy.
    y(j, hf, h, t) = select(hf == 0, lo * c - hi * s, hi * c + lo * s);
    y.bound(hf, 0, 2)
        .reorder(j, hf, h, t)
        .unroll(hf)
        .vectorize(j, 16, TailStrategy::GuardWithIf);
    x.dim(0).set_min(0).set_stride(1);
    x.dim(1).set_bounds(0, 2);
    y.dim(0).set_min(0).set_stride(1);
    cos_t.dim(0).set_min(0).set_stride(1);
    sin_t.dim(0).set_min(0).set_stride(1);
  }
};

} // namespace

HALIDE_REGISTER_GENERATOR(RopeGenerator, rope_neox)
