// gemm_quant (bits=4: q4_0, bits=8: q8_0): y[t][n] = sum_k W[n][k] * x[t][k]
// for GGUF-quantized weights repacked into rows16 tiles, with x quantized once
// per token to Q8_0 blocks. Decode (T = 1) is a GEMV; prefill runs every token
// against each weight tile while it is hot.
//
// Weight layout (rows16, written by the compiler): rows are interleaved in
// groups of 16. For each (group g, block b) a tile of bytes [j][l][r], l = row
// in group (16), r = byte in a quad (4), j = quad: 4 quads of nibble bytes for
// q4_0 (byte 4j + r of the GGUF block), 8 quads of int8 values stored as u8 = q
// + 128 for q8_0. Scales are fp16 in a separate array [g][b][l]. Unsigned
// weights let the dot product be u8 x s8 (vpdpbusd / pmaddubsw); the offset (8
// or 128) is folded into a per-block correction:
//   y = sum_b d_w * (d_x * sum_i u_i * qx_i - offset * d_x * sum_i qx_i)
#include "Halide.h"

using namespace Halide;
using namespace Halide::ConciseCasts;

namespace {

class GemmQuantGenerator : public Generator<GemmQuantGenerator> {
public:
  // 4 for q4_0 (4 quads of nibble bytes, offset 8), 8 for q8_0 (8 quads, offset
  // 128).
  GeneratorParam<int> bits{"bits", 4};

  Input<Buffer<uint8_t>> w{"w", 5};    // (r, l, j, b, g)
  Input<Buffer<uint16_t>> sw{"sw", 3}; // fp16 bits (l, b, g)
  Input<Buffer<int8_t>> qx{"qx", 2};   // (k, t)
  Input<Buffer<float>> dx{"dx", 2};    // (b, t): activation block scales
  Input<Buffer<float>> sx{"sx", 2};    // (b, t): d_x * sum of the block's qx
  // Row groups (of 16 rows) per parallel task, chosen by the runtime from the
  // matrix size and thread count: a few large tasks per thread stream best
  // (measured: 4 groups per task reached 27 GB/s on the 131 MB head with 2
  // threads, 16 reached 30).
  Input<int32_t> groups_per_task{"groups_per_task"};
  Output<Buffer<float>> y{"y", 3}; // (l, g, t) == row-major [t][16g + l]

  void generate() {
    Var l("l"), g("g"), t("t"), b("b");
    const int kQuads = bits == 4 ? 4 : 8;
    const int kOffset = bits == 4 ? 8 : 128;
    const int kBlockBytes = kQuads * 4 * 16;
    const bool nibbles = kQuads == 4;

    // Integer dot product of one row with one activation block.
    RDom rd(0, 4, 0, kQuads, 0, nibbles ? 2 : 1, "rd");
    Expr byte = w(rd.x, l, rd.y, b, g);
    Expr u = nibbles ? select(rd.z == 0, byte & 15, byte >> 4) : byte;
    Expr k = 32 * b + (nibbles ? 16 * rd.z : 0) + 4 * rd.y + rd.x;
    Func dot("dot");
    dot(l, b, g, t) = 0;
    dot(l, b, g, t) += i32(widening_mul(u, qx(k, t)));

    // Accumulate the blocks in f32 with the offset correction.
    RDom rb(0, qx.dim(0).extent() / 32, "rb");
    Expr dw = f32(reinterpret(Float(16), sw(l, rb, g)));
    Func acc("acc");
    acc(l, g, t) = 0.0f;
    acc(l, g, t) +=
        dw * (dx(rb, t) * f32(dot(l, rb, g, t)) - float(kOffset) * sx(rb, t));
    y(l, g, t) = acc(l, g, t);

    // Schedule: 16 rows per vector, groups split across threads; the reduction
    // over the 4 bytes of a quad is innermost and atomic so it can become a dot
    // instruction.
    Var go("go"), gi("gi");
    y.vectorize(l)
        .split(g, go, gi, max(groups_per_task, 1), TailStrategy::GuardWithIf)
        .parallel(go);
    y.reorder(l, t, gi, go);
    acc.compute_at(y, t).vectorize(l);
    acc.update().vectorize(l);
    dot.compute_at(acc, rb).vectorize(l);
    dot.update()
        .reorder(rd.x, l, rd.y, rd.z)
        .atomic()
        .vectorize(rd.x)
        .vectorize(l)
        .unroll(rd.y)
        .unroll(rd.z);

    // Dense, statically strided tiles so the loads are whole vectors.
    w.dim(0).set_bounds(0, 4).set_stride(1);
    w.dim(1).set_bounds(0, 16).set_stride(4);
    w.dim(2).set_bounds(0, kQuads).set_stride(64);
    w.dim(3).set_min(0).set_stride(kBlockBytes);
    w.dim(4).set_min(0).set_stride(kBlockBytes * w.dim(3).extent());
    sw.dim(0).set_bounds(0, 16).set_stride(1);
    sw.dim(1).set_min(0).set_stride(16);
    qx.dim(0).set_min(0).set_stride(1);
    dx.dim(0).set_min(0).set_stride(1);
    sx.dim(0).set_min(0).set_stride(1);
    y.dim(0).set_bounds(0, 16).set_stride(1);
    y.dim(1).set_min(0).set_stride(16);
  }
};

} // namespace

HALIDE_REGISTER_GENERATOR(GemmQuantGenerator, gemm_quant)
