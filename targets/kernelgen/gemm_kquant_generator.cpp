// gemm_kquant (type=q4_k, q5_k, q6_k, q3_k): y[s][n] = sum_k W[idx[s]][n][k] *
// x[s][k] for ggml's K-quant matrices in rows16k tiles
// (runtime/KQuantLayout.h), with x quantized to Q8_0 blocks as for gemm_quant.
// One kernel serves decode (one slot), prefill (a slot per token, every idx 0)
// and the routed experts (a slot per expert; slot stride 0 when they share the
// token).
//
// Each 32-column block's unsigned levels u come out of their bit planes as u8
// (one 64-byte load per plane and quad gives 4 columns of the 16 rows) and meet
// the activations in the int8 dot (vpdpbusd on VNNI targets), one dot per
// 16-column half z. The scales then apply as ggml's dequantization defines
// them:
//   Q4_K, Q5_K: value = d*sc_b*u - dmin*m_b, so a block adds
//     (d*sc_b) * (d_x * (dot_0 + dot_1)) - (dmin*m_b) * s_x
//     with s_x = d_x * sum of the block's qx (quantize_q8's sums);
//   Q6_K, Q3_K: value = d*sc_(2b+z)*(u - offset), so a block adds
//     (d * d_x) * sum_z sc_(2b+z) * (dot_z - offset * hsum_z)
//     in exact integers up to the one conversion, with hsum_z the half's sum
//     of qx (the dot starts from -offset * hsum_z).
#include "KQuantLayout.h"
#include "quant_dot.h"

#include <stdexcept>

using namespace Halide;
using namespace Halide::ConciseCasts;

namespace {

stc::rt::KKind kindOf(const std::string &t) {
  if (t == "q4_k")
    return stc::rt::KKind::Q4_K;
  if (t == "q5_k")
    return stc::rt::KKind::Q5_K;
  if (t == "q6_k")
    return stc::rt::KKind::Q6_K;
  if (t == "q3_k")
    return stc::rt::KKind::Q3_K;
  throw std::runtime_error("gemm_kquant: unknown type " + t);
}

class GemmKQuantGenerator : public Generator<GemmKQuantGenerator> {
public:
  GeneratorParam<std::string> type{"type", "q4_k"};

  Input<Buffer<uint8_t>> w{"w", 4};     // (byte of tile, sb, g, expert)
  Input<Buffer<uint16_t>> sd{"sd", 5};  // fp16 (l, d|dmin, sb, g, expert)
  Input<Buffer<int32_t>> idx{"idx", 1}; // (slot): expert of each slot
  Input<Buffer<int8_t>> qx{"qx", 2};    // (k, slot)
  Input<Buffer<float>> dx{"dx", 2};     // (block, slot)
  Input<Buffer<float>> sx{"sx", 2};     // (block, slot)
  Input<int32_t> groups_per_task{"groups_per_task"};
  // w's host address, for the next row group's prefetch.
  Input<uint64_t> w_address{"w_address"};
  Output<Buffer<float>> y{"y", 3}; // (l, g, slot)

  void generate() {
    const stc::rt::KTileLayout L = stc::rt::kTileLayout(kindOf(type));
    const bool mins = L.mins >= 0;
    Var l("l"), g("g"), s("s"), b("b"), sb("sb"), z("z");
    Expr experts = w.dim(3).extent();
    auto expert = [&](Expr slot) { return clamp(idx(slot), 0, experts - 1); };
    auto byteAt = [&](Expr off, Expr sbv, Expr gv, Expr slot) {
      return w(off, sbv, gv, expert(slot));
    };

    // The level of column 16z + 4j + r of block b, row l.
    RDom rd(0, 4, 0, 4, "rd"); // r (byte of a quad), j (quad)
    Expr r = rd.x, j = rd.y, lane = 4 * l + r, base = b * L.blockBytes;
    Expr u = u8(0);
    int bits = 0;
    if (L.nibbles >= 0) {
      Expr byte = byteAt(base + L.nibbles + 64 * j + lane, sb, g, s);
      u = (byte >> u8(4 * z)) & u8(15);
      bits = 4;
    }
    if (L.twoBits >= 0) {
      Expr byte = byteAt(base + L.twoBits + 64 * z + lane, sb, g, s);
      u = u | (((byte >> u8(2 * j)) & u8(3)) << u8(bits));
      bits += 2;
    }
    if (L.oneBit >= 0) {
      Expr byte = byteAt(base + L.oneBit + lane, sb, g, s);
      u = u | (((byte >> u8(j + 4 * z)) & u8(1)) << u8(bits));
    }
    Expr k = 256 * sb + 32 * b + 16 * z + 4 * j + r;
    // Q6_K and Q3_K need the half-block's offset term -offset * hsum_z: the
    // dot starts from it (`start`, a few values per block and token, computed
    // once per call) instead of from 0, which saves an add per half.
    Func start("start");
    Expr init = 0;
    if (!mins) {
      Var h("h"), t("t");
      RDom ri(0, 16, "ri");
      start(h, t) = 0;
      start(h, t) += i32(qx(16 * h + ri, t));
      start(h, t) = -L.offset * start(h, t);
      start.compute_root();
      init = start(2 * (8 * sb + b) + z, s);
    }
    Func dot("dot");
    dot(l, z, b, sb, g, s) = init;
    dot(l, z, b, sb, g, s) += i32(widening_mul(u, qx(k, s)));

    RDom rb(0, 8, 0, qx.dim(0).extent() / 256, "rb");
    Expr bb = rb.x, sbb = rb.y, kb = 8 * sbb + bb;
    Expr e = expert(s);
    Expr d = stc::kernelgen::halfBitsToFloat(sd(l, 0, sbb, g, e));
    Expr add;
    if (mins) {
      Expr dmin = stc::kernelgen::halfBitsToFloat(sd(l, 1, sbb, g, e));
      Expr sc = f32(byteAt(L.scales + 16 * bb + l, sbb, g, s));
      Expr m = f32(byteAt(L.mins + 16 * bb + l, sbb, g, s));
      Expr idot = dot(l, 0, bb, sbb, g, s) + dot(l, 1, bb, sbb, g, s);
      add = (d * sc) * (dx(kb, s) * f32(idot)) - (dmin * m) * sx(kb, s);
    } else {
      Expr isum = 0;
      for (int half = 0; half < 2; ++half) {
        Expr sc =
            i32(i8(byteAt(L.scales + 16 * (2 * bb + half) + l, sbb, g, s)));
        isum += sc * dot(l, half, bb, sbb, g, s);
      }
      add = (d * dx(kb, s)) * f32(isum);
    }
    Func acc("acc");
    acc(l, g, s) = 0.0f;
    acc(l, g, s) += add;
    Func request = stc::kernelgen::requestNextGroup(
        [&](Expr gv, Expr sv) {
          return w_address + u64(expert(sv)) * u64(w.dim(3).stride()) +
                 u64(gv) * u64(w.dim(2).stride());
        },
        w.dim(2).stride(), w.dim(2).extent(),
        [&](Expr sv) {
          return sv > 0 && expert(sv) == expert(max(sv - 1, 0));
        });
    stc::kernelgen::defineOutput(y, acc, request);

    // Schedule: as gemm_quant (row groups in tasks), with the next group's
    // tiles requested; the reduction over a quad's 4 bytes innermost and
    // atomic so it becomes a dot instruction, both halves unrolled.
    stc::kernelgen::scheduleRowGroupTasks(y, acc, request, l, g, s,
                                          groups_per_task, /*slotMajor=*/false);
    dot.compute_at(acc, rb.x).vectorize(l).unroll(z);
    dot.update()
        .reorder(rd.x, l, rd.y, z)
        .atomic()
        .vectorize(rd.x)
        .vectorize(l)
        .unroll(rd.y)
        .unroll(z);

    // Tiles: bytes contiguous, a tile per super-block, strides of groups and
    // experts given by the runtime.
    w.dim(0).set_bounds(0, L.tileBytes).set_stride(1);
    w.dim(1).set_min(0).set_stride(L.tileBytes);
    w.dim(2).set_min(0);
    w.dim(3).set_min(0);
    sd.dim(0).set_bounds(0, 16).set_stride(1);
    sd.dim(1).set_min(0).set_stride(16);
    sd.dim(2).set_min(0).set_stride(L.tileBytes / 2);
    stc::kernelgen::constrainActivations(qx, dx, sx, y);
  }
};

} // namespace

HALIDE_REGISTER_GENERATOR(GemmKQuantGenerator, gemm_kquant)
