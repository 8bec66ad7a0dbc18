// quantize_q8: activations x[t][k] to Q8_0 blocks once per token, reused by
// every quantized GEMM row: qx = round(x / d), d = max|x| / 127 per 32-element
// block, plus sx = d * sum(qx) for the weights' offset correction. Numerics
// follow ggml's quantize_row_q8_0, so results match llama.cpp's Q8_0
// activations.
#include "Halide.h"

using namespace Halide;
using namespace Halide::ConciseCasts;

namespace {

class QuantizeQ8Generator : public Generator<QuantizeQ8Generator> {
public:
  Input<Buffer<float>> x{"x", 2};     // (k, t)
  Output<Buffer<int8_t>> qx{"qx", 2}; // (k, t)
  Output<Buffer<float>> dx{"dx", 2};  // (b, t)
  Output<Buffer<float>> sx{"sx", 2};  // (b, t)

  void generate() {
    Var k("k"), b("b"), t("t"), r("r");
    RDom rr(0, 32, "rr");
    Func amax("amax");
    amax(b, t) = 0.0f;
    amax(b, t) = max(amax(b, t), abs(x(32 * b + rr, t)));
    // As ggml's quantize_row_q8_0: q uses the f32 scale, the stored scale is
    // fp16.
    Func d("d"), id("id"), d16("d16");
    d(b, t) = amax(b, t) / 127.0f;
    id(b, t) = select(d(b, t) == 0.0f, 0.0f, 1.0f / d(b, t));
    d16(b, t) = cast<float>(cast<float16_t>(d(b, t)));
    // roundf semantics (ties away from zero) as ggml, not Halide's round (ties
    // to even).
    Func q("q");
    Expr v = x(32 * b + r, t) * id(b, t);
    Expr tie = abs(v - trunc(v)) == 0.5f;
    q(r, b, t) =
        i8(select(tie, trunc(v) + select(v > 0.0f, 1.0f, -1.0f), round(v)));
    qx(k, t) = q(k % 32, k / 32, t);
    dx(b, t) = d16(b, t);
    Func qsum("qsum");
    qsum(b, t) = 0;
    qsum(b, t) += i32(q(rr, b, t));
    sx(b, t) = d16(b, t) * f32(qsum(b, t));

    // Three outputs share amax: compute it once (B x T floats), inline the
    // rest. The block reductions (max |x|, sum q) are 32-lane vector
    // reductions, and prefill's rows are split across threads: scalar, they
    // were a tenth of a long prefill.
    amax.compute_root().parallel(t);
    amax.update().atomic().vectorize(rr).parallel(t);
    Var ko("ko"), ki("ki");
    qx.split(k, ko, ki, 32).vectorize(ki, 16).parallel(t);
    qsum.compute_at(sx, b);
    qsum.update().atomic().vectorize(rr);
    sx.parallel(t);
    x.dim(0).set_min(0).set_stride(1);
  }
};

} // namespace

HALIDE_REGISTER_GENERATOR(QuantizeQ8Generator, quantize_q8)
