// down_rows (bits=4: q4_0, bits=8: q8_0): one expert's down projection when
// the checkpoint stores it as PowerInfer's converter does (--transpose-down):
// a row of D outputs per neuron, quantized in blocks of 32 along D, each block
// with its own fp16 scale, so a neuron's row and its scales are one contiguous
// read (18 bytes per 32 outputs for q4_0). Over a list of rows (the live
// neurons of st-sparse-reglu, or every neuron):
//   y[d][t] = sum_i act[i][t] * s[row_i][d / 32] * (w[row_i][d] - 8)
// (q8_0: w[row_i][d] as int8, no offset). A dead neuron's row is never read.
//
// Weight layout: ggml's blocks as the file holds them, [row][block][bytes]:
// q4_0 {fp16 scale, 16 bytes: value j < 16 in byte j's low nibble, j + 16 in
// its high one}; q8_0 {fp16 scale, 32 int8}.
//
// Schedule: the outputs in tasks of 256 (8 blocks); a task walks the rows in
// list order and accumulates each row's 8 blocks (16 vectors of 16 outputs)
// into registers per token, so every output sums its rows in the same order
// whatever the split. The scale times the activation is one scalar per row and
// block; the offset 8 is applied through the same product.
#include "quant_dot.h"

using namespace Halide;
using namespace Halide::ConciseCasts;

namespace {

// How far ahead (in list entries) a row is requested, as sparse_down's.
const int kAhead = 4;

class DownRowsGenerator : public Generator<DownRowsGenerator> {
public:
  GeneratorParam<int> bits{"bits", 4};

  Input<Buffer<uint8_t>> w{"w", 3};       // (byte, block, row)
  Input<Buffer<int32_t>> rows{"rows", 1}; // (i): the rows to read
  Input<Buffer<float>> act{"act", 2};     // (i, token)
  Input<uint64_t> w_address{"w_address"}; // w's host address (prefetches)
  Output<Buffer<float>> y{"y", 2};        // (d, token)

  void generate() {
    const bool q4 = bits == 4;
    const int blockBytes = q4 ? 18 : 34;
    Var d("d"), t("t"), j("j"), h("h"), b("b");
    RDom r(0, rows.dim(0).extent(), "r");
    // The runtime passes rows of the matrix only.
    Expr f = unsafe_promise_clamped(rows(r), 0, w.dim(2).extent() - 1);
    Expr scale = stc::kernelgen::halfBitsToFloat(u16(w(0, b, f)) |
                                                 (u16(w(1, b, f)) << 8));
    // Output 32 b + 16 h + j of row f.
    Expr value = q4 ? f32(i32((w(2 + j, b, f) >> (h * 4)) & 15) - 8)
                    : f32(i8(w(2 + 16 * h + j, b, f)));
    // While a row is summed, the row kAhead entries on is requested into L2
    // (this task's blocks of it): which rows come next is data, the hardware
    // prefetchers cannot know it.
    Var slice("slice"), i("i");
    Expr next =
        unsafe_promise_clamped(rows(min(i + kAhead, rows.dim(0).extent() - 1)),
                               0, w.dim(2).extent() - 1);
    Func request("request");
    request(slice, i) = stc::kernelgen::stc_prefetch(
        w_address +
            cast<uint64_t>(next * w.dim(2).stride() + slice * 8 * blockBytes),
        select(i + kAhead < rows.dim(0).extent(), 8 * blockBytes, 0));
    Func acc("acc");
    acc(j, h, b, t) = 0.0f;
    acc(j, h, b, t) +=
        select(request(b / 8, r) == 0, act(r, t), 0.0f) * scale * value;
    y(d, t) = acc(d % 16, (d / 16) % 2, d / 32, t);

    // Schedule.
    Var dout("dout"), dv("dv"), di("di");
    y.split(d, dout, d, 256, TailStrategy::GuardWithIf)
        .split(d, dv, di, 16)
        .reorder(di, dv, t, dout)
        .vectorize(di)
        .parallel(dout);
    acc.compute_at(y, dout).vectorize(j).unroll(h);
    Var bo("bo"), bi("bi");
    acc.update()
        .split(b, bo, bi, 8, TailStrategy::GuardWithIf)
        .reorder(j, h, bi, bo, t, r)
        .vectorize(j)
        .unroll(h)
        .unroll(bi);
    // One token (decode), the same schedule without the token loop: the 16
    // accumulators of a task's 8 blocks stay in registers over the rows.
    acc.update().specialize(y.dim(1).extent() == 1);
    request.compute_at(acc, r);

    w.dim(0).set_bounds(0, blockBytes).set_stride(1);
    w.dim(1).set_min(0).set_stride(blockBytes);
    w.dim(2).set_min(0);
    rows.dim(0).set_min(0).set_stride(1);
    act.dim(0).set_min(0).set_stride(1);
    y.dim(0).set_min(0).set_stride(1);
  }
};

} // namespace

HALIDE_REGISTER_GENERATOR(DownRowsGenerator, down_rows)
