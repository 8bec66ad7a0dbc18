// gemm_quant (bits=4: q4_0, bits=8: q8_0): y[t][n] = sum_k W[n][k] * x[t][k]
// for GGUF-quantized weights repacked into rows16 tiles, with x quantized once
// per token to Q8_0 blocks. Decode (T = 1) is a GEMV; prefill runs every token
// against each weight tile while it is hot in cache.
//
// Weight layout (rows16, written by the compiler): rows are interleaved in
// groups of 16. For each (group g, block b) a tile of bytes [j][l][r], l = row
// in group (16), r = byte in a quad (4), j = quad: 4 quads of nibble bytes for
// q4_0 (byte 4j + r of the GGUF block), 8 quads of int8 values stored as u8 = q
// + 128 for q8_0. Scales are fp16 in a separate array [g][b][l]. Unsigned
// weights let the dot product be u8 x s8 (vpdpbusd / pmaddubsw); the offset (8
// or 128) is folded into a per-block correction:
//   y = sum_b d_w * (d_x * sum_i u_i * qx_i - offset * d_x * sum_i qx_i)
#include "quant_dot.h"

using namespace Halide;

namespace {

class GemmQuantGenerator : public Generator<GemmQuantGenerator> {
public:
  // 4 for q4_0 (4 quads of nibble bytes, offset 8), 8 for q8_0 (8 quads, offset
  // 128).
  GeneratorParam<int> bits{"bits", 4};
  // The scales converted by the CPU's instruction (quant_dot.h's halfToFloat):
  // set by KernelBuild on the LLVM IR route.
  GeneratorParam<bool> native_half{"native_half", false};

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
  // w's host address, and how many bytes of the next row group to request
  // while a group runs (0: none; the runtime chooses by CPU, see
  // runtime/Gemm.cpp).
  Input<uint64_t> w_address{"w_address"};
  Input<int32_t> request_bytes{"request_bytes"};
  Output<Buffer<float>> y{"y", 3}; // (l, g, t) == row-major [t][16g + l]

  void generate() {
    const int quads = bits == 4 ? 4 : 8;
    stc::kernelgen::defineQuantDot(
        y, quads, qx.dim(0).extent() / 32,
        [&](Expr r, Expr l, Expr j, Expr b, Expr g, Expr) {
          return w(r, l, j, b, g);
        },
        [&](Expr l, Expr b, Expr g, Expr) {
          return stc::kernelgen::halfToFloat(sw(l, b, g), native_half);
        },
        [&](Expr k, Expr t) { return qx(k, t); },
        [&](Expr b, Expr t) { return dx(b, t); },
        [&](Expr b, Expr t) { return sx(b, t); }, groups_per_task,
        /*slotMajor=*/false,
        stc::kernelgen::requestNextGroup(
            [&](Expr gv, Expr) {
              return w_address + ConciseCasts::u64(gv) *
                                     ConciseCasts::u64(w.dim(4).stride());
            },
            request_bytes, w.dim(4).extent(), [](Expr sv) { return sv > 0; }),
        /*sharedSlots=*/qx.dim(1).extent());

    stc::kernelgen::constrainRows16(w, sw, qx, dx, sx, y, quads);
  }
};

} // namespace

HALIDE_REGISTER_GENERATOR(GemmQuantGenerator, gemm_quant)
