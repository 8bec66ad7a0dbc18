#include "calibrate/CalibrationForward.h"

#include "reference/Reference.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <numeric>
#include <thread>

namespace stc {

namespace {

// a . b in f32 with 16 partial sums (vectorized, one clone per instruction
// set: the compiler is built for plain x86-64).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
float dot(const float *a, const float *b, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j)
      acc[j] += a[i + j] * b[i + j];
  float s = 0;
  for (int j = 0; j < 16; ++j)
    s += acc[j];
  for (; i < n; ++i)
    s += a[i] * b[i];
  return s;
}

// f(i) for i in [0, n) on every core, in contiguous chunks; the first error
// wins.
template <class F> Status parallelFor(int64_t n, F f) {
  const int64_t threads = std::max<int64_t>(
      1, std::min<int64_t>(n, std::thread::hardware_concurrency()));
  std::vector<Status> status(threads);
  std::atomic<int64_t> next{0};
  auto work = [&](int64_t t) {
    for (int64_t i = next++; i < n && status[t].ok(); i = next++)
      status[t] = f(i);
  };
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < threads; ++t)
    pool.emplace_back(work, t);
  work(0);
  for (std::thread &th : pool)
    th.join();
  for (const Status &s : status)
    STC_TRY(s);
  return Status::success();
}

// y[t][o] = x[t] . W[o] for W [rows][cols], x [T][cols]: rows in tasks of 16.
Status matmul(const float *x, int64_t T, const float *W, int64_t rows,
              int64_t cols, float *y) {
  return parallelFor((rows + 15) / 16, [&](int64_t task) {
    for (int64_t o = task * 16; o < std::min(rows, task * 16 + 16); ++o)
      for (int64_t t = 0; t < T; ++t)
        y[t * rows + o] = dot(x + t * cols, W + o * cols, cols);
    return Status::success();
  });
}

// The rows of x as the matmul of weight `name` reads them: Q8_0-rounded where
// the compiled kernels round (reference::roundsInputToQ8).
const float *inputFor(const Checkpoint &ck, const std::string &name,
                      const std::vector<float> &x, int64_t cols,
                      std::vector<float> &rounded) {
  if (!ref::roundsInputToQ8(ck, name))
    return x.data();
  rounded.resize(x.size());
  for (size_t r = 0; r < x.size(); r += cols)
    ref::roundToQ8(x.data() + r, cols, rounded.data() + r);
  return rounded.data();
}

} // namespace

Status calibrationForward(
    const Checkpoint &ck, const std::vector<std::vector<int64_t>> &sequences,
    const std::function<void(int64_t, int64_t, const float *)> &onGate) {
  const ModelConfig &c = ck.config;
  const int64_t D = c.hiddenSize, H = c.numHeads, KV = c.numKVHeads,
                hd = c.headDim, E = c.numExperts, K = c.topK, F = c.expertFfn,
                V = c.vocabSize;
  // Every sequence's tokens, one after another, each with its position.
  std::vector<int64_t> ids, positions, starts;
  for (const std::vector<int64_t> &s : sequences) {
    starts.push_back(static_cast<int64_t>(ids.size()));
    for (size_t p = 0; p < s.size(); ++p) {
      if (s[p] < 0 || s[p] >= V)
        return Status::error("calibration: token id " + std::to_string(s[p]) +
                             " is outside the vocabulary [0, " +
                             std::to_string(V) + ")");
      ids.push_back(s[p]);
      positions.push_back(static_cast<int64_t>(p));
    }
  }
  starts.push_back(static_cast<int64_t>(ids.size()));
  const int64_t T = static_cast<int64_t>(ids.size());
  if (T == 0)
    return Status::success();

  std::vector<float> x(T * D), h(T * D), q(T * H * hd), k(T * KV * hd),
      v(T * KV * hd), attn(T * H * hd), proj(T * D), routerLogits(T * E),
      rounded;
  const WeightInfo *embed = ck.find("token_embd");
  for (int64_t t = 0; t < T; ++t)
    STC_TRY(ck.readF32(*embed, static_cast<uint64_t>(ids[t] * D), D,
                       x.data() + t * D));
  std::vector<float> w;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int64_t layer = 0; layer < c.numLayers; ++layer) {
    const std::string p = "blk." + std::to_string(layer) + ".";
    // The router on the raw layer input.
    STC_TRY(ck.readAllF32(p + "ffn_gate_inp", w));
    STC_TRY(matmul(inputFor(ck, p + "ffn_gate_inp", x, D, rounded), T, w.data(),
                   E, D, routerLogits.data()));
    // Attention.
    STC_TRY(ck.readAllF32(p + "attn_norm", w));
    for (int64_t t = 0; t < T; ++t)
      ref::rmsNorm(&x[t * D], w.data(), D, c.rmsNormEps, &h[t * D]);
    const struct {
      const char *name;
      float *out;
      int64_t rows;
    } qkv[] = {{"attn_q", q.data(), H * hd},
               {"attn_k", k.data(), KV * hd},
               {"attn_v", v.data(), KV * hd}};
    for (const auto &m : qkv) {
      STC_TRY(ck.readAllF32(p + m.name, w));
      STC_TRY(matmul(inputFor(ck, p + m.name, h, D, rounded), T, w.data(),
                     m.rows, D, m.out));
    }
    if (c.layerUsesRope(layer))
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t hh = 0; hh < H; ++hh)
          ref::applyRopeNeox(&q[(t * H + hh) * hd], hd, positions[t],
                             c.ropeTheta);
        for (int64_t hh = 0; hh < KV; ++hh)
          ref::applyRopeNeox(&k[(t * KV + hh) * hd], hd, positions[t],
                             c.ropeTheta);
      }
    const int64_t window = c.layerWindow(layer);
    STC_TRY(parallelFor(T * H, [&](int64_t i) {
      const int64_t t = i / H, hq = i % H;
      const int64_t s0 = *(std::upper_bound(starts.begin(), starts.end(), t) -
                           1); // the token's sequence start
      const int64_t hk = ref::kvHeadFor(hq, H, KV);
      const float *qv = &q[(t * H + hq) * hd];
      std::vector<float> scores(t - s0 + 1);
      float mx = -INFINITY;
      for (int64_t s = s0; s <= t; ++s) {
        float &sc = scores[s - s0];
        sc = ref::keyVisible(positions[t], positions[s], window)
                 ? dot(qv, &k[(s * KV + hk) * hd], hd) * scale
                 : -INFINITY;
        mx = std::max(mx, sc);
      }
      float sum = 0;
      for (float &sc : scores)
        sum += sc = sc == -INFINITY ? 0 : std::exp(sc - mx);
      float *out = &attn[(t * H + hq) * hd];
      std::fill(out, out + hd, 0.0f);
      for (int64_t s = s0; s <= t; ++s)
        for (int64_t d = 0; d < hd; ++d)
          out[d] += scores[s - s0] / sum * v[(s * KV + hk) * hd + d];
      return Status::success();
    }));
    STC_TRY(ck.readAllF32(p + "attn_output", w));
    STC_TRY(matmul(inputFor(ck, p + "attn_output", attn, H * hd, rounded), T,
                   w.data(), D, H * hd, proj.data()));
    for (int64_t i = 0; i < T * D; ++i)
      x[i] += proj[i];

    // The MoE FFN: the tokens grouped by expert, each expert's matrices read
    // once for all of its tokens.
    STC_TRY(ck.readAllF32(p + "ffn_norm", w));
    for (int64_t t = 0; t < T; ++t)
      ref::rmsNorm(&x[t * D], w.data(), D, c.rmsNormEps, &h[t * D]);
    std::vector<int64_t> idx(T * K);
    std::vector<float> wts(T * K);
    std::vector<std::vector<int64_t>> slotsOf(E); // (t * K + j) per expert
    for (int64_t t = 0; t < T; ++t) {
      std::vector<int64_t> i;
      std::vector<float> ww;
      ref::route(&routerLogits[t * E], E, K, c.weighting, c.convention, i, ww);
      for (int64_t j = 0; j < K; ++j) {
        idx[t * K + j] = i[j];
        wts[t * K + j] = ww[j];
        slotsOf[i[j]].push_back(t * K + j);
      }
    }
    const WeightInfo *gate = ck.find(p + "ffn_gate_exps");
    const WeightInfo *up = ck.find(p + "ffn_up_exps");
    const WeightInfo *down = ck.find(p + "ffn_down_exps");
    if (!gate || !up || !down)
      return Status::error(ck.path + ": layer " + std::to_string(layer) +
                           " lacks its expert tensors");
    const bool q8Up = ref::roundsInputToQ8(ck, p + "ffn_gate_exps"),
               q8Down = ref::roundsInputToQ8(ck, p + "ffn_down_exps");
    std::vector<float> gates(T * K * F), outs(T * K * D);
    STC_TRY(parallelFor(E, [&](int64_t e) {
      const std::vector<int64_t> &slots = slotsOf[e];
      const int64_t m = static_cast<int64_t>(slots.size());
      if (m == 0)
        return Status::success();
      std::vector<float> G(F * D), U(F * D), Dn(D * F), in(m * D), g(m * F),
          u(m * F), act(m * F), y(m * D);
      STC_TRY(ck.readF32(*gate, e * F * D, F * D, G.data()));
      STC_TRY(ck.readF32(*up, e * F * D, F * D, U.data()));
      STC_TRY(ck.readF32(*down, e * D * F, D * F, Dn.data()));
      for (int64_t i = 0; i < m; ++i) {
        const float *row = &h[slots[i] / K * D];
        if (q8Up)
          ref::roundToQ8(row, D, &in[i * D]);
        else
          std::copy(row, row + D, &in[i * D]);
      }
      for (int64_t i = 0; i < m; ++i)
        for (int64_t f = 0; f < F; ++f) {
          g[i * F + f] = dot(&in[i * D], &G[f * D], D);
          u[i * F + f] = dot(&in[i * D], &U[f * D], D);
          act[i * F + f] = u[i * F + f] * std::max(g[i * F + f], 0.0f);
        }
      for (int64_t i = 0; i < m; ++i) {
        std::copy(&g[i * F], &g[i * F] + F, &gates[slots[i] * F]);
        if (q8Down)
          ref::roundToQ8(&act[i * F], F, &act[i * F]);
        for (int64_t d = 0; d < D; ++d)
          outs[slots[i] * D + d] = dot(&act[i * F], &Dn[d * F], F);
      }
      return Status::success();
    }));
    for (int64_t t = 0; t < T; ++t) {
      // HF sums the hit experts in ascending expert id; llama.cpp in top-k
      // order (the reference's orders).
      std::vector<int64_t> order(K);
      std::iota(order.begin(), order.end(), 0);
      if (c.convention == Convention::HF)
        std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
          return idx[t * K + a] < idx[t * K + b];
        });
      for (int64_t j : order) {
        onGate(layer, idx[t * K + j], &gates[(t * K + j) * F]);
        for (int64_t d = 0; d < D; ++d)
          x[t * D + d] += wts[t * K + j] * outs[(t * K + j) * D + d];
      }
    }
  }
  return Status::success();
}

} // namespace stc
