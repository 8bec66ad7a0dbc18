// quant_dot.h: the int8 dot-product algorithm and schedule shared by the
// quantized GEMM generators (gemm_quant, gemm_quant_experts, gemm_kquant), its
// per-block integer dot (also sparse_up), the software prefetch extern (the
// rows16k kernels' next row group, the sparse kernels' live rows), and the fp16
// scale conversion every quantized kernel uses (also sparse_up, sparse_down).
// See gemm_quant_generator.cpp for the rows16 layout and the offset correction.
#pragma once

#include "Halide.h"

#include <functional>

namespace stc::kernelgen {

// runtime/Prefetch.cpp: request `bytes` from `address` into L2 (stc_prefetch)
// or L1 (stc_prefetch_l1), returning 0. (HalideExtern_2's definitions, inline
// so that every generator can include them.)
inline HalideExtern_2(int32_t, stc_prefetch, uint64_t, int32_t);
inline HalideExtern_2(int32_t, stc_prefetch_l1, uint64_t, int32_t);

// request(g, s): while row group g runs, the next group's bytes are requested
// into L1 (stc_prefetch_l1), once per group and matrix (not again for a slot
// that reads the same matrix as the slot before it, as prefill's tokens do).
// Addresses past the last group are never requested. For the rows16k tiles,
// whose per-block reads jump between the bit planes and the scales at the
// tile's end, the hardware prefetcher alone left the kernels streaming at 60%
// of a plain read loop's bandwidth (a 1536-column Q4_K matrix from DRAM, one
// thread, Zen 5: 11-16 GB/s against 27; 23-26 GB/s with this request one group
// ahead into L2, 22-23 two groups ahead; into L1 Q6_K and Q3_K gained another
// 15-40%, see runtime/Prefetch.cpp).
// `groupAddress(g, s)` is the host address of slot s's group g, `groupBytes`
// its size.
inline Halide::Func requestNextGroup(
    const std::function<Halide::Expr(Halide::Expr, Halide::Expr)> &groupAddress,
    Halide::Expr groupBytes, Halide::Expr groups,
    const std::function<Halide::Expr(Halide::Expr)> &sameAsBefore) {
  using namespace Halide;
  Var g("g"), s("s");
  Expr wanted = g + 1 < groups && !sameAsBefore(s);
  Func request("request");
  request(g, s) =
      stc_prefetch_l1(groupAddress(g + 1, s), select(wanted, groupBytes, 0));
  return request;
}

// y(l, g, s) = acc(l, g, s), with the request (if defined) joined so that it
// is not dead code (it returns 0).
inline void defineOutput(Halide::Func y, Halide::Func acc,
                         Halide::Func request) {
  Halide::Var l("l"), g("g"), s("s");
  if (!request.defined()) {
    y(l, g, s) = acc(l, g, s);
    return;
  }
  y(l, g, s) = Halide::select(request(g, s) == 0, acc(l, g, s), 0.0f);
}

// fp16 bits (any unsigned type) to f32 by moving the exponent and mantissa into
// place and rebiasing with one multiply by 2^112 (exact for normal and
// subnormal halves; GGUF scales are never inf or nan): 6 vector ops, where
// Halide 14's generic fp16 cast emits about 14.
inline Halide::Expr halfBitsToFloat(Halide::Expr bits) {
  using namespace Halide;
  Expr h = ConciseCasts::u32(bits);
  Expr magnitude =
      reinterpret(Float(32), (h & 0x7fff) << 13) * 5.192296858534828e33f;
  return reinterpret(Float(32),
                     reinterpret(UInt(32), magnitude) | ((h & 0x8000) << 16));
}

// fp16 bits to f32 by the CPU's own conversion: an extern that KernelBuild's
// LLVM IR route defines as fpext (one vcvtph2ps per 16 lanes on x86, where
// halfBitsToFloat takes 6 vector ops); only generators built through that
// route (native_half=true) may call it, others would link a missing symbol.
inline HalideExtern_1(float, stc_half_to_float, uint16_t);
inline Halide::Expr halfToFloat(Halide::Expr bits, bool native) {
  return native ? stc_half_to_float(Halide::ConciseCasts::u16(bits))
                : halfBitsToFloat(bits);
}

// The integer dot product of one Q8_0 block with a weight block, shared by
// every int8-dot kernel: its reduction domain (rd.x the byte of a quad, rd.y
// the quad, rd.z the nibble for q4_0), the weight value a domain point reads
// (a nibble of `byte` for q4_0, the byte for q8_0), and the schedule that turns
// the reduction over a quad's 4 bytes into a dot instruction (vpdpbusd on VNNI
// targets): innermost and atomic, 16 lanes `l` wide, computed per block `at`.
inline Halide::RDom blockDotDomain(int quads) {
  return Halide::RDom(0, 4, 0, quads, 0, quads == 4 ? 2 : 1, "rd");
}
inline Halide::Expr blockDotWeight(Halide::Expr byte, const Halide::RDom &rd,
                                   int quads) {
  return quads == 4 ? Halide::select(rd.z == 0, byte & 15, byte >> 4) : byte;
}
inline void scheduleBlockDot(Halide::Func dot, const Halide::RDom &rd,
                             Halide::Var l, Halide::Func acc,
                             Halide::VarOrRVar at) {
  dot.compute_at(Halide::LoopLevel(acc, at)).vectorize(l);
  dot.update()
      .reorder(rd.x, l, rd.y, rd.z)
      .atomic()
      .vectorize(rd.x)
      .vectorize(l)
      .unroll(rd.y)
      .unroll(rd.z);
}

// The schedule every rows16 / rows16k GEMM shares: 16 rows per vector, row
// groups split into tasks across threads (`groupsPerTask` each), every slot
// of a task run against its weights; the block reduction `acc` and the next
// group's `request` (if defined) per (l, g, s). `slotMajor` orders a task's
// loops: slot-major streams each slot's groups in a row, group-major runs
// every slot over a group while its tiles are in L1 (prefill's tokens sharing
// one matrix). Slot-major paid for the Q4_0 routed experts in decode (4
// experts x 768 rows from DRAM, Zen 5: 23-26 -> 26-28 GB/s in a kernel
// microbenchmark on one thread, 19-35 -> 37-38 on two; 4b decode +5-8%), not
// for the K-quant experts, whose next-group request already keeps them
// streaming (4b Q4_K_M decode at parity, or 10-20% slower with the request
// issued for a slot's whole range at once).
inline void scheduleRowGroupTasks(Halide::Func y, Halide::Func acc,
                                  Halide::Func request, Halide::Var l,
                                  Halide::Var g, Halide::Var s,
                                  Halide::Expr groupsPerTask, bool slotMajor) {
  using namespace Halide;
  Var go("go"), gi("gi");
  y.vectorize(l).split(g, go, gi, max(groupsPerTask, 1),
                       TailStrategy::GuardWithIf);
  if (slotMajor)
    y.reorder(l, gi, s, go);
  else
    y.reorder(l, s, gi, go);
  y.parallel(go);
  acc.compute_at(y, s).vectorize(l);
  acc.update().vectorize(l);
  if (request.defined())
    request.compute_at(y, s);
}

// The Q8_0 activations' contiguous k and blocks, and the output's (l, g) rows
// of 16, so every load and store is a dense vector.
template <typename Q, typename D, typename X, typename Y>
void constrainActivations(Q &qx, D &dx, X &sx, Y &y) {
  qx.dim(0).set_min(0).set_stride(1);
  dx.dim(0).set_min(0).set_stride(1);
  sx.dim(0).set_min(0).set_stride(1);
  y.dim(0).set_bounds(0, 16).set_stride(1);
  y.dim(1).set_min(0).set_stride(16);
}

// Defines `y(l, g, s)` = sum over blocks of the rows16 tile dot products, where
// `weight(r, l, j, b, g, s)` / `scale(l, b, g, s)` give the weight bytes and
// the f32 scale (halfToFloat of the stored fp16) for slot s, and qx/dx/sx give
// slot s's Q8_0 activations.
// `quads` is 4 for q4_0 (nibbles, offset 8) and 8 for q8_0 (bytes, offset 128).
// `slotMajor`: see scheduleRowGroupTasks.
// `sharedSlots`, if defined, is the slot count of a kernel whose slots all
// read the same weights (gemm_quant): from 4 slots on they share each weight
// block's unpacking (below).
// `request` (requestNextGroup), if defined, asks for the next row group's
// tiles while a group runs. gemm_quant defines it with a run-time byte count
// that the runtime sets by CPU: on Zen 5, where the hardware prefetcher follows
// the tiles and the scale array as two plain streams, it made the Q4_0 kernel
// slower (20 against 24 GB/s, one thread, 32768 x 1536 from DRAM); on an Intel
// Xeon it cut the 4b dense gemm's time by 17-25% (runtime/Gemm.cpp). The expert
// kernel (gemm_quant_experts) has none: with it the 4b q4_0 MoE took 5-7%
// longer on the same Xeon.
inline void defineQuantDot(
    Halide::Func y, int quads, Halide::Expr blocks,
    const std::function<Halide::Expr(Halide::Expr, Halide::Expr, Halide::Expr,
                                     Halide::Expr, Halide::Expr, Halide::Expr)>
        &weight,
    const std::function<Halide::Expr(Halide::Expr, Halide::Expr, Halide::Expr,
                                     Halide::Expr)> &scale,
    const std::function<Halide::Expr(Halide::Expr, Halide::Expr)> &qx,
    const std::function<Halide::Expr(Halide::Expr, Halide::Expr)> &dx,
    const std::function<Halide::Expr(Halide::Expr, Halide::Expr)> &sx,
    Halide::Expr groupsPerTask, bool slotMajor,
    Halide::Func request = Halide::Func(),
    Halide::Expr sharedSlots = Halide::Expr()) {
  using namespace Halide;
  using namespace Halide::ConciseCasts;
  Var l("l"), g("g"), s("s"), b("b");
  const bool nibbles = quads == 4;
  const float offset = nibbles ? 8.0f : 128.0f;

  // Integer dot product of one row with one activation block.
  RDom rd = blockDotDomain(quads);
  Expr u = blockDotWeight(weight(rd.x, l, rd.y, b, g, s), rd, quads);
  Expr k = 32 * b + (nibbles ? 16 * rd.z : 0) + 4 * rd.y + rd.x;
  Func dot("dot");
  dot(l, b, g, s) = 0;
  dot(l, b, g, s) += i32(widening_mul(u, qx(k, s)));

  // Accumulate the blocks in f32 with the offset correction.
  RDom rb(0, blocks, "rb");
  Expr dw = scale(l, rb, g, s);
  Func acc("acc");
  acc(l, g, s) = 0.0f;
  acc(l, g, s) += dw * (dx(rb, s) * f32(dot(l, rb, g, s)) - offset * sx(rb, s));
  if (!sharedSlots.defined()) {
    defineOutput(y, acc, request);
    // Schedule: row groups in tasks; the reduction over the 4 bytes of a quad
    // is innermost and atomic so it becomes a dot instruction (vpdpbusd on
    // VNNI targets).
    scheduleRowGroupTasks(y, acc, request, l, g, s, groupsPerTask, slotMajor);
    scheduleBlockDot(dot, rd, l, acc, rb);
    return;
  }

  // Every slot reads the same weights (a dense matrix) and there are at least
  // kSlotBlock of them: blocks of kSlotBlock slots share each weight block's
  // unpacked values and scales (the last block shifted inwards, recomputing
  // a few slots' same values). Per (row, slot) the arithmetic is acc's, term
  // for term and in the same order, so a token's outputs have the same bits
  // alone and in a batch (capi-batch checks it). With one slot per weight
  // block the nibbles were unpacked and the scales converted once per slot:
  // the 4b's dense gemm took 20.7 ms for a step of 4 sequences against 10.7
  // for one, though it reads the same bytes; shared, 14.7 ms (2 threads,
  // Intel Xeon; stc-bench --sequences 4 --profile; prefill of 64-token
  // prompts +8%).
  constexpr int kSlotBlock = 4;
  Var x("x"), j("j"), z("z");
  Func wu("wu"); // the weight block's values as the dot reads them
  Expr byte = weight(x, l, j, b, g, 0);
  wu(x, l, j, z, b, g) = nibbles ? select(z == 0, byte & 15, byte >> 4) : byte;
  Func ws("ws"); // the weight block's scales in f32
  ws(l, b, g) = scale(l, b, g, 0);
  Func dotS("dotS");
  dotS(l, b, g, s) = 0;
  dotS(l, b, g, s) +=
      i32(widening_mul(wu(rd.x, l, rd.y, rd.z, b, g), qx(k, s)));
  Func accS("accS");
  accS(l, g, s) = 0.0f;
  accS(l, g, s) +=
      ws(l, rb, g) * (dx(rb, s) * f32(dotS(l, rb, g, s)) - offset * sx(rb, s));
  Expr shared = sharedSlots >= kSlotBlock;
  Func both("both");
  both(l, g, s) = select(shared, accS(l, g, s), acc(l, g, s));
  defineOutput(y, both, request);

  // The general schedule (fewer slots: acc), then the shared one.
  scheduleRowGroupTasks(y, acc, request, l, g, s, groupsPerTask, slotMajor);
  scheduleBlockDot(dot, rd, l, acc, rb);
  Var si("si");
  y.specialize(shared)
      .split(s, s, si, kSlotBlock, TailStrategy::ShiftInwards)
      .unroll(si);
  accS.compute_at(y, s).vectorize(l).unroll(s);
  accS.update().reorder(l, s, rb).vectorize(l).unroll(s);
  ws.compute_at(accS, rb).vectorize(l);
  wu.compute_at(accS, rb)
      .bound(x, 0, 4)
      .bound(j, 0, quads)
      .bound(z, 0, nibbles ? 2 : 1)
      .vectorize(x)
      .vectorize(l)
      .unroll(j)
      .unroll(z);
  scheduleBlockDot(dotS, rd, l, accS, s);
}

// Declares the rows16 tile strides of the weight bytes (dims r, l, j, b, g,
// ...) and fp16 scales (l, b, g, ...), and the activations' and output's.
template <typename W, typename S, typename Q, typename D, typename X,
          typename Y>
void constrainRows16(W &w, S &sw, Q &qx, D &dx, X &sx, Y &y, int quads) {
  const int blockBytes = quads * 64;
  w.dim(0).set_bounds(0, 4).set_stride(1);
  w.dim(1).set_bounds(0, 16).set_stride(4);
  w.dim(2).set_bounds(0, quads).set_stride(64);
  w.dim(3).set_min(0).set_stride(blockBytes);
  w.dim(4).set_min(0).set_stride(blockBytes * w.dim(3).extent());
  sw.dim(0).set_bounds(0, 16).set_stride(1);
  sw.dim(1).set_min(0).set_stride(16);
  constrainActivations(qx, dx, sx, y);
}

} // namespace stc::kernelgen
