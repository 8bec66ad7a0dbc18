// rope_neox: rotate-half RoPE on [t][head][d]: element j pairs with j + d/2,
// with the cos/sin of pos * theta^(-2j/d) read from a table the runtime fills
// in double precision.
#include "Halide.h"

using namespace Halide;

namespace {

class RopeGenerator : public Generator<RopeGenerator> {
public:
  Input<Buffer<float>> x{"x", 3};         // (d, head, t)
  Input<Buffer<int32_t>> pos{"pos", 1};   // (t)
  Input<Buffer<float>> cos_t{"cos_t", 2}; // (j, position), j < d/2
  Input<Buffer<float>> sin_t{"sin_t", 2};
  Output<Buffer<float>> y{"y", 3};

  void generate() {
    Var d("d"), h("h"), t("t");
    Expr half = x.dim(0).extent() / 2;
    Expr p = clamp(pos(t), 0, cos_t.dim(1).extent() - 1);
    Expr j = d % half; // the pair index, in range for both halves
    Expr c = cos_t(j, p), s = sin_t(j, p);
    Expr lo = x(clamp(d, 0, half - 1), h, t);
    Expr hi = x(clamp(d + half, half, 2 * half - 1), h, t);
    Expr lo2 = x(clamp(d - half, 0, half - 1), h, t);
    y(d, h, t) = select(d < half, lo * c - hi * s, x(d, h, t) * c + lo2 * s);
    y.vectorize(d, 16, TailStrategy::GuardWithIf);
    x.dim(0).set_min(0).set_stride(1);
    cos_t.dim(0).set_min(0).set_stride(1);
    sin_t.dim(0).set_min(0).set_stride(1);
  }
};

} // namespace

HALIDE_REGISTER_GENERATOR(RopeGenerator, rope_neox)
