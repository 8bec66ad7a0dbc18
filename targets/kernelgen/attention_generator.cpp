// attention: one KV head's share of causal GQA attention, over one chunk of its
// cached keys. The runtime (runtime/Attention.cpp) gathers the query rows of
// the KV head's query heads (for one token in decode, a tile of tokens in
// prefill), calls this kernel once per chunk of keys, and merges the chunks'
// partial softmaxes in a fixed order (flash attention / flash decoding): the
// kernel returns, per query row, the unnormalized sum of exp(score - max) * v,
// the max and the sum of exp(score - max).
//
// Keys are read in the KV cache's stored type (f32, f16, or q8_0: int8 values
// with an fp16 scale per 32 of head_dim, as ggml's blocks) and turned into f32
// here; the queries stay f32. Key s is visible to a query at position p when
// 0 <= kpos(s) <= p and (window == 0 or kpos(s) > p - window).
//
// The cache stores K with keys innermost in tiles of 16 ([tile][d][16 keys]),
// so a vector of 16 keys' scores accumulates with one multiply-add per head
// dimension and no horizontal sums; V rows are stored whole ([key][d]), so the
// weighted sum accumulates a row of head_dim at a time.
#include "Halide.h"
#include "quant_dot.h"

using namespace Halide;
using stc::kernelgen::halfToFloat;
using stc::kernelgen::stc_prefetch_l1;

namespace {

class AttentionGenerator : public Generator<AttentionGenerator> {
public:
  // The KV cache's element type: f32, f16 or q8_0.
  GeneratorParam<std::string> kv_type{"kv_type", "f32"};
  // 0: any head dimension (a multiple of 32); SmallThinker's 128 fixed at
  // compile time lets the accumulators of a row live in registers.
  GeneratorParam<int> head_dim{"head_dim", 0};
  // The schedule for many query rows (a prefill tile: register-blocked
  // products over rows and keys) rather than a decoded token's few heads.
  GeneratorParam<bool> tile{"tile", false};
  // fp16 converted by the CPU's instruction (quant_dot.h's halfToFloat): set
  // by KernelBuild where the kernel is built through the LLVM IR route.
  GeneratorParam<bool> native_half{"native_half", false};

  // Query rows (d, row): the runtime pads the row count to a multiple of 8
  // (padding rows have position INT_MIN: they see no key).
  Input<Buffer<float>> q{"q", 2};
  Input<Buffer<int32_t>> qpos{"qpos", 1}; // (row): the query's position
  // Keys (lane, d, tile): key 16 * tile + lane. A multiple of 32 keys.
  // float32, int8 (q8_0), or uint16 holding fp16 bits.
  Input<Buffer<>> k{"k", 3};
  // q8_0: fp16 scales (lane, d / 32, tile); other types ignore it.
  Input<Buffer<uint16_t>> k_scale{"k_scale", 3};
  Input<Buffer<>> v{"v", 2};                     // (d, key)
  Input<Buffer<uint16_t>> v_scale{"v_scale", 2}; // q8_0: (d / 32, key)
  Input<Buffer<int32_t>> kpos{"kpos", 1};        // (key): position, -1 empty
  Input<int32_t> window{"window"};
  Input<float> scale{"scale"};
  // k's and v's host addresses, for the decode schedule's requests of the
  // keys and values ahead (0: none).
  Input<uint64_t> k_address{"k_address"};
  Input<uint64_t> v_address{"v_address"};
  // How many key tiles from k's first may be requested: the rest of the
  // calling task's run of chunks, which follow this one in memory.
  Input<int32_t> request_tiles{"request_tiles"};
  Output<Buffer<float>> o{"o", 2};   // (d, row): sum of exp(s - max) * v
  Output<Buffer<float>> ml{"ml", 2}; // (0 max | 1 sum of exp(s - max), row)

  void generate() {
    const std::string type = kv_type;
    const bool q8 = type == "q8_0";
    const int fixed = head_dim;
    Var si("si"), st("st"), d("d"), r("r"), s("s"), i("i");
    Expr hd = fixed > 0 ? Expr(fixed) : q.dim(0).extent();
    Expr tiles = k.dim(2).extent();
    // K and V in f32.
    Func kf("kf"), vf("vf");
    const bool nh = native_half;
    if (q8) {
      kf(si, d, st) =
          cast<float>(k(si, d, st)) * halfToFloat(k_scale(si, d / 32, st), nh);
      vf(d, s) = cast<float>(v(d, s)) * halfToFloat(v_scale(d / 32, s), nh);
    } else if (type == "f16") {
      kf(si, d, st) = halfToFloat(k(si, d, st), nh);
      vf(d, s) = halfToFloat(v(d, s), nh);
    } else {
      kf(si, d, st) = k(si, d, st);
      vf(d, s) = v(d, s);
    }
    RDom rd(0, hd, "rd");
    Func qk("qk");
    qk(si, st, r) = 0.0f;
    qk(si, st, r) += q(rd, r) * kf(si, rd, st);
    Expr kp = kpos(st * 16 + si);
    Expr p = qpos(r);
    Expr visible = kp >= 0 && kp <= p && (window == 0 || kp > p - window);
    const float ninf = -std::numeric_limits<float>::infinity();
    // Decode streams its chunk from memory once: while a pair of key tiles'
    // scores accumulate, the keys and values of the pair kAhead pairs on are
    // requested (the kernel would otherwise wait for each pair's keys, then
    // for the values, with no compute in between), up to the end of the
    // calling task's run of chunks. Into L1 rather than L2: 2-7% less
    // attention time at depth 16384 on the 2-vCPU Xeon (2-layer 4b, f16;
    // 4 and 8 pairs ahead measured no better than 2).
    const int elementBytes = type == "f32" ? 4 : type == "f16" ? 2 : 1;
    const int kAhead = 2;
    Expr pairBytes = 32 * hd * elementBytes;
    Var pr("pr");
    Expr ahead = pr + kAhead;
    Expr bytes =
        select(k_address != 0 && ahead * 2 < request_tiles, pairBytes, 0);
    Func request("request");
    request(pr) =
        stc_prefetch_l1(k_address + cast<uint64_t>(ahead * pairBytes), bytes) +
        stc_prefetch_l1(v_address + cast<uint64_t>(ahead * pairBytes), bytes);
    Func score("score");
    score(si, st, r) =
        select(request(st / 2) == 0 && visible, qk(si, st, r) * scale, ninf);
    // Max and sum per row: 16 lanes over the tiles, then across the lanes.
    RDom rt(0, tiles, "rt");
    RDom rl(0, 16, "rl");
    Func laneMax("laneMax"), mx("mx"), e("e"), laneSum("laneSum"), den("den");
    laneMax(si, r) = ninf;
    laneMax(si, r) = max(laneMax(si, r), score(si, rt, r));
    mx(r) = ninf;
    mx(r) = max(mx(r), laneMax(rl, r));
    // A row that sees no key in this chunk keeps max -inf and sum 0.
    e(si, st, r) =
        select(score(si, st, r) == ninf, 0.0f, exp(score(si, st, r) - mx(r)));
    laneSum(si, r) = 0.0f;
    laneSum(si, r) += e(si, rt, r);
    den(r) = 0.0f;
    den(r) += laneSum(rl, r);
    RDom rs(0, 16, 0, tiles, "rs"); // rs.x: lane, rs.y: tile
    Func acc("acc");
    acc(d, r) = 0.0f;
    acc(d, r) += e(rs.x, rs.y, r) * vf(d, rs.y * 16 + rs.x);
    o(d, r) = acc(d, r);
    ml(i, r) = select(i == 0, mx(r), den(r));

    // Schedule. No parallel loop: the runtime runs one call per task.
    Var dv("dv"), di("di"), ro("ro"), ri("ri"), sto("sto"), sti("sti"),
        dvo("dvo"), dvi("dvi");
    request.compute_root(); // (decode: at each pair of key tiles, below)
    laneMax.compute_root().vectorize(si);
    laneMax.update().reorder(si, rt, r).vectorize(si);
    mx.compute_root();
    laneSum.compute_root().vectorize(si);
    laneSum.update().reorder(si, rt, r).vectorize(si);
    den.compute_root();
    e.compute_root().vectorize(si);
    if (fixed > 0 && tile) {
      // Many rows: K and V turned into f32 once per call; scores in blocks of
      // 8 rows x 32 keys (16 accumulators), values in blocks of 4 rows x 64
      // dims (16 accumulators).
      if (type != "f32") {
        kf.compute_root().vectorize(si);
        vf.compute_root().vectorize(d, 16);
      }
      score.compute_root()
          .split(st, sto, sti, 2)
          .split(r, ro, ri, 8)
          .reorder(si, sti, ri, sto, ro)
          .vectorize(si)
          .unroll(sti)
          .unroll(ri);
      qk.compute_at(score, sto).vectorize(si).unroll(st).unroll(r);
      qk.update().reorder(si, st, r, rd).vectorize(si).unroll(st).unroll(r);
      o.split(d, dv, di, 16)
          .vectorize(di)
          .split(dv, dvo, dvi, 4)
          .unroll(dvi)
          .split(r, ro, ri, 4)
          .unroll(ri)
          .reorder(di, dvi, ri, dvo, ro);
      acc.compute_at(o, dvo).vectorize(d, 16).unroll(d).unroll(r);
      acc.update()
          .split(d, dv, di, 16)
          .vectorize(di)
          .unroll(dv)
          .unroll(r)
          .reorder(di, dv, r, rs.x, rs.y);
    } else {
      // A few rows (one decoded token's heads), in blocks of 8 (or 6: the
      // runtime pads a KV group's heads to 6 or a multiple of 8). Scores: two
      // key tiles' vectors (32 keys) at a time, each loaded (and converted)
      // once per dimension for every row of the block; values: a quarter or
      // half of each value row loaded once per key for every row. Inside a
      // block the rows unroll and the accumulators are registers: 12 or 16
      // for the scores, 24 or 16 for the values.
      score.compute_root();
      o.compute_root();
      if (fixed > 0) {
        Expr rows = o.dim(1).extent();
        auto blocks = [&](Stage score, Stage out, int n) {
          score.split(r, ro, ri, n)
              .split(st, sto, sti, 2)
              .reorder(si, sti, ri, sto, ro)
              .vectorize(si)
              .unroll(sti)
              .unroll(ri);
          out.split(r, ro, ri, n)
              .split(d, dv, di, 16)
              .vectorize(di)
              .split(dv, dvo, dvi, n == 8 ? 2 : 4)
              .unroll(dvi)
              .unroll(ri)
              .reorder(di, dvi, ri, dvo, ro);
        };
        blocks(score.specialize(rows == 6), o.specialize(rows == 6), 6);
        blocks(score, o, 8);
        request.compute_at(score, sto);
        qk.compute_at(score, sto).vectorize(si).unroll(st).unroll(r);
        qk.update().reorder(si, st, r, rd).vectorize(si).unroll(st).unroll(r);
        acc.compute_at(o, dvo).vectorize(d, 16).unroll(d).unroll(r);
        acc.update()
            .split(d, dv, di, 16)
            .vectorize(di)
            .unroll(dv)
            .unroll(r)
            .reorder(di, dv, r, rs.x, rs.y);
      } else {
        score.vectorize(si);
        qk.compute_root().vectorize(si);
        qk.update().reorder(si, rd, r, st).vectorize(si);
        o.vectorize(d, 16, TailStrategy::GuardWithIf);
        acc.compute_root().vectorize(d, 16, TailStrategy::GuardWithIf);
        acc.update()
            .split(d, dv, di, 16, TailStrategy::GuardWithIf)
            .vectorize(di)
            .reorder(di, dv, rs.x, rs.y, r);
      }
    }

    // Every row-indexed buffer has the output's rows.
    Expr rows = o.dim(1).extent();
    q.dim(0).set_min(0).set_stride(1);
    q.dim(1).set_bounds(0, rows);
    qpos.dim(0).set_bounds(0, rows).set_stride(1);
    k.dim(0).set_bounds(0, 16).set_stride(1);
    k.dim(1).set_min(0).set_stride(16);
    k.dim(2).set_min(0);
    v.dim(0).set_min(0).set_stride(1);
    v.dim(1).set_min(0);
    kpos.dim(0).set_min(0).set_stride(1);
    o.dim(0).set_min(0).set_stride(1);
    o.dim(1).set_min(0);
    ml.dim(0).set_bounds(0, 2).set_stride(1);
    ml.dim(1).set_bounds(0, rows);
    if (q8) {
      k_scale.dim(0).set_bounds(0, 16).set_stride(1);
      k_scale.dim(1).set_min(0).set_stride(16);
      v_scale.dim(0).set_min(0).set_stride(1);
    }
    if (fixed > 0) {
      q.dim(0).set_extent(fixed);
      k.dim(1).set_extent(fixed);
      v.dim(0).set_extent(fixed);
      o.dim(0).set_extent(fixed);
      q.dim(1).set_stride(fixed);
      k.dim(2).set_stride(16 * fixed);
      v.dim(1).set_stride(fixed);
      o.dim(1).set_stride(fixed);
    }
  }
};

} // namespace

HALIDE_REGISTER_GENERATOR(AttentionGenerator, attention)
