// sparse_up (bits=4: q4_0, bits=8: q8_0): the up rows of the live neurons only
// (st-sparse-reglu). Entry n names an expert, a row of its up matrix and a
// token; u[n] = sum_k W[expert][row][k] * x[token][k] with x quantized to Q8_0
// blocks, the same integer dot product and offset correction as gemm_quant.
//
// Weight layout (blocks16, written by the compiler): each row stands alone so a
// dead neuron's row is never read. A row's blocks come in tiles of 16 blocks,
// laid out like a rows16 tile with the 16 lanes holding 16 blocks of one row
// instead of one block of 16 rows: tile bytes [j][l][r] = byte 4j + r of block
// 16 * tile + l (nibbles for q4_0, u8 = q + 128 for q8_0); fp16 scales
// [tile][l] in a separate array. The activations are reordered once per call
// into the same order, so every load in the loop is a dense 64-byte vector and
// the reduction over a quad's 4 bytes becomes vpdpbusd, as in gemm_quant (a
// plain row-major dot vectorizes badly in Halide 14: notes/kernels.md).
#include "quant_dot.h"

using namespace Halide;
using namespace Halide::ConciseCasts;
using stc::kernelgen::stc_prefetch;

namespace {

// How far ahead (in entries) an entry's row is requested: 8 measured better
// than 4 (the row request goes to L2, see runtime/Prefetch.cpp).
const int kAhead = 8;

class SparseUpGenerator : public Generator<SparseUpGenerator> {
public:
  GeneratorParam<int> bits{"bits", 4};

  Input<Buffer<uint8_t>> w{"w", 6};     // (r, l, j, tile, row, expert)
  Input<Buffer<uint16_t>> sw{"sw", 4};  // (l, tile, row, expert)
  Input<Buffer<int32_t>> ent{"ent", 2}; // (field, n): expert, row, token
  Input<Buffer<int8_t>> qx{"qx", 2};    // (k, token)
  Input<Buffer<float>> dx{"dx", 2};     // (b, token)
  Input<Buffer<float>> sx{"sx", 2};     // (b, token)
  Input<int32_t> entries_per_task{"entries_per_task"};
  // w's and sw's host addresses, for the software prefetch of upcoming rows
  // (which rows come next is data: no hardware prefetcher can guess them).
  Input<uint64_t> w_address{"w_address"};
  Input<uint64_t> sw_address{"sw_address"};
  Output<Buffer<float>> u{"u", 1}; // (n)

  void generate() {
    const int quads = bits == 4 ? 4 : 8;
    const bool nibbles = quads == 4;
    const float offset = nibbles ? 8.0f : 128.0f;
    Var r("r"), l("l"), j("j"), z("z"), tl("tl"), t("t"), n("n");
    Expr K = qx.dim(0).extent(), B = K / 32, T = qx.dim(1).extent();

    // Activations in tile order, zero in the padding blocks past K.
    Expr blk = 16 * tl + l;
    Expr k = 32 * blk + (nibbles ? 16 * z : 0) + 4 * j + r;
    Func xr("xr"), dxr("dxr"), sxr("sxr");
    xr(r, l, j, z, tl, t) =
        select(blk < B, qx(clamp(k, 0, K - 1), t), cast<int8_t>(0));
    dxr(l, tl, t) = select(blk < B, dx(clamp(blk, 0, B - 1), t), 0.0f);
    sxr(l, tl, t) = select(blk < B, sx(clamp(blk, 0, B - 1), t), 0.0f);

    Expr e = clamp(ent(0, n), 0, w.dim(5).extent() - 1);
    Expr row = clamp(ent(1, n), 0, w.dim(4).extent() - 1);
    Expr tok = clamp(ent(2, n), 0, T - 1);

    // Entry n + kAhead's row (tiles and scales) requested before entry n runs.
    Expr ahead = clamp(n + kAhead, 0, ent.dim(1).extent() - 1);
    Expr ea = u64(clamp(ent(0, ahead), 0, w.dim(5).extent() - 1));
    Expr ra = u64(clamp(ent(1, ahead), 0, w.dim(4).extent() - 1));
    Func request("request");
    request(n) = stc_prefetch(w_address + ea * u64(w.dim(5).stride()) +
                                  ra * u64(w.dim(4).stride()),
                              w.dim(4).stride()) +
                 stc_prefetch(sw_address + (ea * u64(sw.dim(3).stride()) +
                                            ra * u64(sw.dim(2).stride())) *
                                               2,
                              sw.dim(2).stride() * 2);

    RDom rd = stc::kernelgen::blockDotDomain(quads);
    Expr q =
        stc::kernelgen::blockDotWeight(w(rd.x, l, rd.y, tl, row, e), rd, quads);
    Func dot("dot");
    dot(l, tl, n) = 0;
    dot(l, tl, n) += i32(widening_mul(q, xr(rd.x, l, rd.y, rd.z, tl, tok)));

    RDom rt(0, w.dim(3).extent(), "rt");
    Expr dw = stc::kernelgen::halfBitsToFloat(sw(l, rt, row, e));
    Func acc("acc");
    acc(l, n) = 0.0f;
    acc(l, n) +=
        dw * (dxr(l, rt, tok) * f32(dot(l, rt, n)) - offset * sxr(l, rt, tok));
    RDom rl(0, 16, "rl");
    // (The request's 0 joins the result so that it is not dead code.)
    u(n) = select(request(n) == 0, sum(acc(rl, n)), 0.0f);

    // Schedule: entries in tasks across threads; per entry the 16 lanes are 16
    // blocks of its row, reduced across lanes once at the end.
    xr.compute_root().vectorize(r, 4).vectorize(l, 16);
    dxr.compute_root().vectorize(l);
    sxr.compute_root().vectorize(l);
    Var no("no"), ni("ni");
    u.split(n, no, ni, max(entries_per_task, 1), TailStrategy::GuardWithIf)
        .parallel(no);
    acc.compute_at(u, ni).vectorize(l);
    request.compute_at(u, ni);
    acc.update().vectorize(l);
    stc::kernelgen::scheduleBlockDot(dot, rd, l, acc, rt);

    const int tileBytes = quads * 64;
    w.dim(0).set_bounds(0, 4).set_stride(1);
    w.dim(1).set_bounds(0, 16).set_stride(4);
    w.dim(2).set_bounds(0, quads).set_stride(64);
    w.dim(3).set_min(0).set_stride(tileBytes);
    w.dim(4).set_min(0);
    w.dim(5).set_min(0);
    sw.dim(0).set_bounds(0, 16).set_stride(1);
    sw.dim(1).set_min(0).set_stride(16);
    sw.dim(2).set_min(0);
    sw.dim(3).set_min(0);
    ent.dim(0).set_bounds(0, 3).set_stride(1);
    qx.dim(0).set_min(0).set_stride(1);
    dx.dim(0).set_min(0).set_stride(1);
    sx.dim(0).set_min(0).set_stride(1);
    u.dim(0).set_min(0).set_stride(1);
  }
};

} // namespace

HALIDE_REGISTER_GENERATOR(SparseUpGenerator, sparse_up)
