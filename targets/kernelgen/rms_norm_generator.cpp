// rms_norm: y[t][i] = x[t][i] / sqrt(mean_i(x^2) + eps) * w[i], per token.
#include "Halide.h"

using namespace Halide;

namespace {

class RmsNormGenerator : public Generator<RmsNormGenerator> {
public:
  Input<Buffer<float>> x{"x", 2}; // (i, t)
  Input<Buffer<float>> w{"w", 1}; // (i)
  Input<float> eps{"eps"};
  Output<Buffer<float>> y{"y", 2};

  void generate() {
    Var i("i"), t("t");
    RDom r(0, x.dim(0).extent(), "r");
    Func ss("ss");
    ss(t) = sum(x(r, t) * x(r, t));
    Func scale("scale");
    scale(t) = 1.0f / sqrt(ss(t) / cast<float>(x.dim(0).extent()) + eps);
    y(i, t) = x(i, t) * scale(t) * w(i);

    y.vectorize(i, 16, TailStrategy::GuardWithIf);
    scale.compute_at(y, t);
    ss.compute_at(y, t);
    x.dim(0).set_min(0).set_stride(1);
  }
};

} // namespace

HALIDE_REGISTER_GENERATOR(RmsNormGenerator, rms_norm)
