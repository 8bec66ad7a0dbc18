// sparse_down (bits=4: q4_0, bits=8: q8_0): one expert's down projection over
// its live neurons only (st-sparse-reglu). The input is the expert's ReGLU
// activation a = relu(gate) * up quantized to Q8_0 blocks of 32 neurons (qa,
// da: the same rounding the dense down matmul applies) and the list of live
// neurons (relu(gate) > 0); a dead neuron's row is never read:
//   y[d] = sum_g S[g][d] * da[g] * sum_{f in g, live} qa[f] * (w[f][d] - 8)
// which is the dense int8 dot product of the same weights and activations.
//
// Weight layout (transposed, written by the compiler; the values of the GGUF
// blocks, which run along F): per stored row a contiguous row of D values
// (q4_0: 32 bytes per 64 outputs, byte j of chunk c holding d = 64c + j in
// its low nibble and d = 64c + 32 + j in its high one; q8_0: int8 [d]), then
// the fp16 scales [block][d], shared by the 32 neurons of a block. Stored row
// p may hold any neuron (st-neuron-layout orders them hot-first); `live_block`
// names each live row's block of 32 neurons, whose weight and activation
// scales apply to it.
//
// Schedule: one call computes the outputs it is given in slices of
// chunks_per_task chunks (the runtime gives each call one expert whole, or a
// slice of one when there are fewer experts than twice the threads, and runs
// the calls of a layer in one parallel loop); the live rows are walked in
// stored order (ascending addresses, so the hot rows st-neuron-layout put first
// are read as a stream), each row's slice multiplied into its block's 16-bit
// (q4_0) or 32-bit (q8_0) integer accumulators, 32 lanes per vector (all
// blocks' accumulators of a slice stay in L2: 24 blocks x 1536 outputs x 2
// bytes for a whole expert of the 4B shape); then each block with a live row is
// scaled into the f32 sum (blocks without one read no scales). The integer form
// does per value a third of the work of an f32 axpy (measured: the f32 axpy was
// compute-bound at ~7 GB/s with 2 threads). q4_0 cannot overflow 16 bits: 32 *
// 127 * 8 < 32768. It is still about 4x the work per value of the dense VNNI
// GEMV: vpdpbusd sums four bytes of one lane, which here would be four rows'
// values of one output, and written as such Halide 14 loads them with a 64-lane
// byte gather. Rows are requested into L2 a few live rows ahead (stc_prefetch),
// the hardware prefetchers cannot know which rows come next.
#include "quant_dot.h"

using namespace Halide;
using namespace Halide::ConciseCasts;
using stc::kernelgen::stc_prefetch;

namespace {

// How far ahead (in live rows) a row is requested: 4, 8 and 16 measured the
// same, 2 slower.
const int kAhead = 4;

class SparseDownGenerator : public Generator<SparseDownGenerator> {
public:
  GeneratorParam<int> bits{"bits", 4};

  Input<Buffer<uint8_t>> w{"w", 3};    // (i, chunk of 64 outputs, neuron)
  Input<Buffer<uint16_t>> sw{"sw", 2}; // (d, neuron block)
  Input<Buffer<int8_t>> qa{"qa", 1};   // (neuron): Q8_0 activation
  Input<Buffer<float>> da{"da", 1};    // (neuron block): its scale
  // The live rows in increasing stored order, each one's block of 32
  // neurons, and how many live rows each block has.
  Input<Buffer<int32_t>> live{"live", 1};
  Input<Buffer<int32_t>> live_block{"live_block", 1};
  Input<Buffer<int32_t>> block_live{"block_live", 1};
  Input<int32_t> chunks_per_task{"chunks_per_task"};
  // w's and sw's host addresses, for the software prefetch of upcoming rows
  // and scales.
  Input<uint64_t> w_address{"w_address"};
  Input<uint64_t> sw_address{"sw_address"};
  Output<Buffer<float>> y{"y", 3}; // (v, z, c): output 64c + 32z + v

  void generate() {
    const bool nibbles = bits == 4;
    Var v("v"), z("z"), c("c"), g("g");
    Expr F = qa.dim(0).extent(), G = F / 32;

    // Every live row in stored order, into its block's integer sums.
    Expr L = live.dim(0).extent();
    RDom r(0, L, "r");
    auto liveRow = [&](Expr i) {
      return clamp(live(clamp(i, 0, max(L - 1, 0))), 0, F - 1);
    };
    Expr f = liveRow(r);
    Expr block = clamp(live_block(r), 0, G - 1);
    // Each live row is requested kAhead rows ahead of its use.
    Var j("j");
    Expr rowBytes = w.dim(2).stride();
    Func request("request");
    request(j) = stc_prefetch(
        w_address + u64(liveRow(j + kAhead)) * u64(rowBytes), rowBytes);
    Expr fetched = request(r) == 0; // always true; keeps the request
    Func acc("acc");
    if (nibbles) {
      Expr byte = w(v, c, f);
      Expr q = i16(select(z == 0, byte & 15, byte >> 4)) - 8;
      acc(v, z, c, g) = i16(0);
      acc(v, z, c, block) += select(fetched, i16(qa(f)), i16(0)) * q;
    } else {
      Expr q = i32(reinterpret(Int(8), w(32 * z + v, c, f)));
      acc(v, z, c, g) = 0;
      acc(v, z, c, block) += select(fetched, i32(qa(f)), 0) * q;
    }
    // The block scaled into f32: weight scale S[g][d] times the activation
    // scale.
    Func scale("scale");
    scale(v, z, c, g) =
        stc::kernelgen::halfBitsToFloat(sw(64 * c + 32 * z + v, g));
    RDom rg(0, G, "rg");
    rg.where(block_live(rg) > 0);
    // The next block's scales, requested while this block runs (sw's block
    // stride: the caller may pass a slice of the outputs).
    Func requestScales("request_scales");
    requestScales(c, g) = stc_prefetch(
        sw_address + u64(((g + 1) * sw.dim(1).stride() + 64 * c) * 2), 128);
    Func total("total");
    total(v, z, c) = 0.0f;
    total(v, z, c) +=
        select(requestScales(c, rg) == 0,
               f32(acc(v, z, c, rg)) * scale(v, z, c, rg) * da(rg), 0.0f);
    y(v, z, c) = total(v, z, c);

    Var co("co"), ci("ci");
    y.split(c, co, ci, max(chunks_per_task, 1), TailStrategy::ShiftInwards)
        .parallel(co)
        .vectorize(v, 16);
    total.compute_at(y, co).vectorize(v, 16);
    total.update().reorder(v, z, c, rg).vectorize(v, 16);
    acc.compute_at(y, co).vectorize(v, 32);
    acc.update().reorder(v, z, c, r).vectorize(v, 32);
    request.compute_at(acc, r);
    requestScales.compute_at(total, rg);

    const int chunkBytes = nibbles ? 32 : 64;
    w.dim(0).set_bounds(0, chunkBytes).set_stride(1);
    w.dim(1).set_min(0).set_stride(chunkBytes);
    w.dim(2).set_min(0);
    sw.dim(0).set_min(0).set_stride(1);
    sw.dim(1).set_min(0);
    qa.dim(0).set_min(0).set_stride(1);
    live.dim(0).set_min(0).set_stride(1);
    live_block.dim(0).set_min(0).set_stride(1);
    block_live.dim(0).set_min(0).set_stride(1);
    da.dim(0).set_min(0).set_stride(1);
    y.dim(0).set_bounds(0, 32).set_stride(1);
    y.dim(1).set_bounds(0, 2).set_stride(32);
    y.dim(2).set_min(0).set_stride(64);
  }
};

} // namespace

HALIDE_REGISTER_GENERATOR(SparseDownGenerator, sparse_down)
