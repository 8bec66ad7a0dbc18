// The attention step: appends each segment's keys and values to its
// sequence's KV cache (in its element type) and runs flash attention over it,
// every segment of the step in one parallel loop. Work is cut into units (one
// KV head x a tile of one segment's query tokens: all the KV head's query
// heads read each key once) and each unit's keys into chunks of kChunk slots;
// the kernel returns a chunk's partial softmax and the chunks merge in slot
// order. A unit's chunks run in one task, or (decode, few units) each chunk in
// its own task with the merge after: the same arithmetic in the same order, so
// the result does not depend on the thread count.
#include "Runtime.h"

#include "Half.h"
#include "KernelSet.h"
#include "Kernels.h"
#include "RuntimeDetail.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstring>

namespace stc::rt {

namespace {

// Keys per kernel call: a multiple of kSlotQuantum. 256 keys of f16 K and V
// for one KV head are 128 KiB: the chunk stays in L2 while every query row of
// the unit reads it.
constexpr int kChunk = 256;
// Decode's longest run of consecutive chunks in one task. Within a run the
// kernel's requests for keys ahead reach into the next chunk; a task per
// chunk (tasks claimed in turn by the threads) left every chunk's first keys
// unrequested.
constexpr int kRunChunks = 8;
// Query tokens per unit in a multi-token step.
constexpr int kTileTokens = 16;

int roundUp(int v, int m) { return (v + m - 1) / m * m; }

// The online softmax's step: the state (o, and (max, sum) pairs in ml) of
// `rows` rows := the state merged with a chunk's (oc, mlc). A chunk row that
// saw no key (sum 0) leaves the row unchanged; an empty state takes the
// chunk's.
void mergeInto(float *o, float *ml, const float *oc, const float *mlc, int rows,
               int hd) {
  for (int r = 0; r < rows; ++r) {
    const float mc = mlc[2 * r], lc = mlc[2 * r + 1];
    float *orow = o + static_cast<size_t>(r) * hd;
    const float *crow = oc + static_cast<size_t>(r) * hd;
    if (lc == 0)
      continue;
    if (ml[2 * r + 1] == 0) {
      ml[2 * r] = mc;
      ml[2 * r + 1] = lc;
      std::memcpy(orow, crow, hd * 4);
      continue;
    }
    const float mn = std::max(ml[2 * r], mc);
    const float a = std::exp(ml[2 * r] - mn), b = std::exp(mc - mn);
    ml[2 * r] = mn;
    ml[2 * r + 1] = ml[2 * r + 1] * a + lc * b;
    for (int d = 0; d < hd; ++d)
      orow[d] = orow[d] * a + crow[d] * b;
  }
}

using AttentionKernel = int (*)(halide_buffer_t *, halide_buffer_t *,
                                halide_buffer_t *, halide_buffer_t *,
                                halide_buffer_t *, halide_buffer_t *,
                                halide_buffer_t *, int32_t, float, uint64_t,
                                uint64_t, int32_t, halide_buffer_t *,
                                halide_buffer_t *);

AttentionKernel kernelFor(model::KvType type, int hd, bool tile) {
  const bool fixed = hd == 128;
  switch (type) {
  case model::KvType::F16:
    return !fixed ? stc_attention_f16
           : tile ? stc_attention_f16_hd128_tile
                  : stc_attention_f16_hd128;
  case model::KvType::Q8_0:
    return !fixed ? stc_attention_q8_0
           : tile ? stc_attention_q8_0_hd128_tile
                  : stc_attention_q8_0_hd128;
  default:
    return !fixed ? stc_attention_f32
           : tile ? stc_attention_f32_hd128_tile
                  : stc_attention_f32_hd128;
  }
}

} // namespace

bool Runtime::attentionChunk(const KvCache::Head &kv, int hd, int rows,
                             const float *q, const int32_t *qpos, int slot0,
                             int count, int requestSlots, int window,
                             float scale, bool tile, float *o,
                             float *ml) const {
  static const uint16_t noScales[16] = {};
  const bool q8 = kv.type == model::KvType::Q8_0;
  const int eb = kv.type == model::KvType::F32   ? 4
                 : kv.type == model::KvType::F16 ? 2
                                                 : 1;
  // f16 values travel as their bits (uint16): the kernel converts them.
  const halide_type_code_t code = q8 ? halide_type_int
                                  : kv.type == model::KvType::F16
                                      ? halide_type_uint
                                      : halide_type_float;
  const int32_t tiles = count / 16, B = hd / 32;
  HBuf hq(q, halide_type_float, 32, {{hd, 1}, {rows, hd}});
  HBuf hqpos(qpos, halide_type_int, 32, {{rows, 1}});
  HBuf hk(kv.k + static_cast<size_t>(slot0) * hd * eb, code, eb * 8,
          {{16, 1}, {hd, 16}, {tiles, 16 * hd}});
  HBuf hks(q8 ? kv.kScale + static_cast<size_t>(slot0) * B : noScales,
           halide_type_uint, 16,
           {{16, 1}, {q8 ? B : 1, 16}, {q8 ? tiles : 1, 16 * B}});
  HBuf hv(kv.v + static_cast<size_t>(slot0) * hd * eb, code, eb * 8,
          {{hd, 1}, {count, hd}});
  HBuf hvs(q8 ? kv.vScale + static_cast<size_t>(slot0) * B : noScales,
           halide_type_uint, 16, {{q8 ? B : 1, 1}, {q8 ? count : 1, B}});
  HBuf hkpos(kv.kpos + slot0, halide_type_int, 32, {{count, 1}});
  HBuf ho(o, halide_type_float, 32, {{hd, 1}, {rows, hd}});
  HBuf hml(ml, halide_type_float, 32, {{2, 1}, {rows, 2}});
  // Decode reads its chunk from memory once and asks for it ahead (the
  // prefill tile's rows reuse each key many times: no requests).
  const uint64_t kAddress = tile ? 0 : address(hk.buf.host),
                 vAddress = tile ? 0 : address(hv.buf.host);
  return kernelFor(kv.type, hd,
                   tile)(hq.get(), hqpos.get(), hk.get(), hks.get(), hv.get(),
                         hvs.get(), hkpos.get(), window, scale, kAddress,
                         vAddress, requestSlots / 16, ho.get(), hml.get()) == 0;
}

bool Runtime::attention(const model::Step *s, int n, std::string &error) {
  (void)n; // the segments' rows
  const auto &ints = *s->ints();
  const int H = static_cast<int>(ints[0]), KV = static_cast<int>(ints[1]),
            hd = static_cast<int>(ints[2]), window = static_cast<int>(ints[3]);
  const int layer = s->layer();
  const float *q = f32(s->inputs()->Get(0));
  const float *k = f32(s->inputs()->Get(1));
  const float *v = f32(s->inputs()->Get(2));
  float *out = f32(s->outputs()->Get(0));
  const size_t kvw = static_cast<size_t>(KV) * hd;
  for (const Segment &g : segments_)
    for (int t = 0; t < g.n; ++t)
      g.seq->kv_.store(layer, g.seq->pos_ + t, k + (g.t0 + t) * kvw,
                       v + (g.t0 + t) * kvw);
  return attend(layer, H, KV, hd, window, q, out, error);
}

bool Runtime::attend(int layer, int H, int KV, int hd, int window,
                     const float *q, float *out, std::string &error) {
  // Every sequence's cache has the same plan.
  const KvLayerPlan &plan = own_.kv_.layer(layer);
  const int G = H / KV;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  // Units (segment, kv head, query tile) and each unit's chunks of key slots;
  // a segment's units are what they are when it runs alone.
  units_.clear();
  chunkRanges_.clear();
  chunkRow_.clear();
  int qRows = 0, stateRows = 0;
  for (size_t si = 0; si < segments_.size(); ++si) {
    const Segment &seg = segments_[si];
    const int n = seg.n, pos0 = seg.seq->pos_;
    const bool tile = n > 1;
    const int tokens = tile ? kTileTokens : 1;
    const int tilesPerHead = (n + tokens - 1) / tokens;
    // Padded with rows that see nothing to the kernels' row blocks: 8 in a
    // prefill tile, 6 or 8 in decode (SmallThinker's 4B has 6 query heads
    // per KV head, the 21B 7).
    const int rows = tile || G != 6 ? roundUp(tokens * G, 8) : 6;
    for (int g = 0; g < KV; ++g)
      for (int ti = 0; ti < tilesPerHead; ++ti) {
        const int t0 = ti * tokens, t1 = std::min(n, t0 + tokens);
        const int p0 = pos0 + t0, p1 = pos0 + t1 - 1;
        int lo, hi; // slots [lo, hi) hold the keys some row may see
        if (plan.ring) {
          lo = 0;
          hi = std::min(pos0 + n, plan.slots);
        } else {
          lo = window > 0 ? std::max(0, p0 - window + 1) : 0;
          hi = p1 + 1;
        }
        AttentionUnit u{static_cast<int>(si),
                        g,
                        seg.t0 + t0,
                        seg.t0 + t1,
                        static_cast<int>(chunkRanges_.size()) / 2,
                        0,
                        rows,
                        qRows,
                        tile};
        for (int c = lo / kChunk; c * kChunk < hi; ++c) {
          const int a = std::max(c * kChunk, lo / kSlotQuantum * kSlotQuantum);
          const int b = std::min((c + 1) * kChunk, roundUp(hi, kSlotQuantum));
          chunkRanges_.push_back(a);
          chunkRanges_.push_back(b - a);
          chunkRow_.push_back(stateRows);
          stateRows += rows;
          ++u.chunks;
        }
        qRows += rows;
        units_.push_back(u);
      }
  }
  const int nUnits = static_cast<int>(units_.size());
  const int nChunks = static_cast<int>(chunkRanges_.size()) / 2;
  // Few units (decode): a task per chunk, each into its own partial state
  // (at chunkRow_), merged after; else a task per unit (its state at its
  // query rows), merging as it goes. Both merge the same states in the same
  // order.
  const bool perChunk = nUnits < 2 * threads_;
  const int states = perChunk ? stateRows : qRows;
  attnQ_.resize(static_cast<size_t>(qRows) * hd);
  attnQpos_.resize(qRows);
  attnO_.resize(static_cast<size_t>(states) * hd);
  attnMl_.resize(static_cast<size_t>(states) * 2);
  if (!perChunk) {
    attnChunkO_.resize(static_cast<size_t>(qRows) * hd);
    attnChunkMl_.resize(static_cast<size_t>(qRows) * 2);
  }
  // Each unit's query rows (token-major, its G heads each), padded with rows
  // that see nothing.
  for (int u = 0; u < nUnits; ++u) {
    const AttentionUnit &U = units_[u];
    const int pos0 = segments_[U.segment].seq->pos_ - segments_[U.segment].t0;
    float *qu = &attnQ_[static_cast<size_t>(U.row) * hd];
    int32_t *pu = &attnQpos_[U.row];
    int r = 0;
    for (int t = U.t0; t < U.t1; ++t)
      for (int h = 0; h < G; ++h, ++r) {
        std::memcpy(qu + static_cast<size_t>(r) * hd,
                    q + (static_cast<size_t>(t) * H + U.kvHead * G + h) * hd,
                    hd * 4);
        pu[r] = pos0 + t;
      }
    for (; r < U.rows; ++r) {
      std::memset(qu + static_cast<size_t>(r) * hd, 0, hd * 4);
      pu[r] = INT_MIN;
    }
    // With q8_0 keys the queries are rounded to Q8_0 blocks too, as llama.cpp
    // rounds them for its q8_0 x q8_0 dot product (its logits then agree with
    // stc's to ~1e-6 on the tests' models; stc ref --kv-type q8_0 does the
    // same). The kernel multiplies the rounded values in f32.
    if (plan.type == model::KvType::Q8_0)
      for (float *x = qu; x < qu + static_cast<size_t>(U.rows) * hd; x += 32) {
        int8_t qb[32];
        const float d = halfToFloat(quantizeQ8Block(x, qb));
        for (int j = 0; j < 32; ++j)
          x[j] = d * qb[j];
      }
  }
  std::atomic<int> failed{-1};
  auto task = [&](int i) -> int {
    const int u = perChunk ? chunkUnit_[chunkRuns_[2 * i]] : i;
    const AttentionUnit &U = units_[u];
    const KvCache::Head head =
        segments_[U.segment].seq->kv_.head(layer, U.kvHead);
    const float *qu = &attnQ_[static_cast<size_t>(U.row) * hd];
    const int32_t *pu = &attnQpos_[U.row];
    if (perChunk) {
      // The run's chunks in turn, each into its own state; each asks for the
      // keys ahead up to the run's end, so the next chunk's first keys are
      // on their way when it starts.
      const int first = chunkRuns_[2 * i], last = first + chunkRuns_[2 * i + 1];
      const int end =
          chunkRanges_[2 * (last - 1)] + chunkRanges_[2 * (last - 1) + 1];
      for (int c = first; c < last; ++c) {
        const int slot0 = chunkRanges_[2 * c];
        if (!attentionChunk(head, hd, U.rows, qu, pu, slot0,
                            chunkRanges_[2 * c + 1], end - slot0, window, scale,
                            U.tile,
                            &attnO_[static_cast<size_t>(chunkRow_[c]) * hd],
                            &attnMl_[static_cast<size_t>(chunkRow_[c]) * 2])) {
          failed = c;
          return 1;
        }
      }
      return 0;
    }
    float *o = &attnO_[static_cast<size_t>(U.row) * hd],
          *ml = &attnMl_[static_cast<size_t>(U.row) * 2];
    float *oc = &attnChunkO_[static_cast<size_t>(U.row) * hd],
          *mlc = &attnChunkMl_[static_cast<size_t>(U.row) * 2];
    std::fill(ml, ml + 2 * U.rows, 0.0f);
    for (int c = U.firstChunk; c < U.firstChunk + U.chunks; ++c) {
      if (!attentionChunk(head, hd, U.rows, qu, pu, chunkRanges_[2 * c],
                          chunkRanges_[2 * c + 1], chunkRanges_[2 * c + 1],
                          window, scale, U.tile, oc, mlc)) {
        failed = c;
        return 1;
      }
      // (m, l) interleaved in ml as the kernel writes them.
      mergeInto(o, ml, oc, mlc, U.rows, hd);
    }
    return 0;
  };
  if (perChunk) {
    chunkUnit_.resize(nChunks);
    for (int u = 0; u < nUnits; ++u)
      for (int c = 0; c < units_[u].chunks; ++c)
        chunkUnit_[units_[u].firstChunk + c] = u;
    // Runs of up to kRunChunks consecutive chunks of a unit, at least about
    // 4 runs per thread. Which chunks share a run changes only who computes
    // a chunk's state, never its bits.
    const int runChunks =
        std::max(1, std::min(kRunChunks, nChunks / (4 * threads_)));
    chunkRuns_.clear();
    for (int u = 0; u < nUnits; ++u)
      for (int c = 0; c < units_[u].chunks; c += runChunks) {
        chunkRuns_.push_back(units_[u].firstChunk + c);
        chunkRuns_.push_back(std::min(runChunks, units_[u].chunks - c));
      }
  }
  const int tasks = perChunk ? static_cast<int>(chunkRuns_.size()) / 2 : nUnits;
  if (pool_->forEach(tasks, task) != 0) {
    error = kernelError("attention kernel failed in layer " +
                        std::to_string(layer));
    return false;
  }
  // The chunks' states merged in slot order (decode), then each row divided
  // by its sum into its head's place in the output.
  for (int u = 0; u < nUnits; ++u) {
    const AttentionUnit &U = units_[u];
    float *o, *ml;
    if (perChunk) {
      const size_t first = chunkRow_[U.firstChunk];
      o = &attnO_[first * hd];
      ml = &attnMl_[first * 2];
      for (int c = U.firstChunk + 1; c < U.firstChunk + U.chunks; ++c)
        mergeInto(o, ml, &attnO_[static_cast<size_t>(chunkRow_[c]) * hd],
                  &attnMl_[static_cast<size_t>(chunkRow_[c]) * 2], U.rows, hd);
    } else {
      o = &attnO_[static_cast<size_t>(U.row) * hd];
      ml = &attnMl_[static_cast<size_t>(U.row) * 2];
    }
    int r = 0;
    for (int t = U.t0; t < U.t1; ++t)
      for (int h = 0; h < G; ++h, ++r) {
        float *dst = out + (static_cast<size_t>(t) * H + U.kvHead * G + h) * hd;
        const float *src = o + static_cast<size_t>(r) * hd;
        const float inv = 1.0f / ml[2 * r + 1];
        for (int d = 0; d < hd; ++d)
          dst[d] = src[d] * inv;
      }
  }
  return true;
}

} // namespace stc::rt
