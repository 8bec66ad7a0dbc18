#include "Reference.h"

#include "Half.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

namespace stc {
namespace ref {

bool keyVisible(int64_t q, int64_t k, int64_t window) {
  if (k > q)
    return false;
  return window == 0 || k > q - window;
}

int64_t kvHeadFor(int64_t qHead, int64_t numHeads, int64_t numKVHeads) {
  return qHead / (numHeads / numKVHeads);
}

void applyRopeNeox(float *head, int64_t dim, int64_t pos, double theta) {
  int64_t half = dim / 2;
  for (int64_t j = 0; j < half; ++j) {
    double invFreq = std::pow(theta, -2.0 * static_cast<double>(j) /
                                         static_cast<double>(dim));
    double angle = static_cast<double>(pos) * invFreq;
    double c = std::cos(angle), s = std::sin(angle);
    double a = head[j], b = head[j + half];
    head[j] = static_cast<float>(a * c - b * s);
    head[j + half] = static_cast<float>(b * c + a * s);
  }
}

void route(const float *logits, int64_t numExperts, int64_t topK,
           RouterWeighting weighting, Convention convention,
           std::vector<int64_t> &indices, std::vector<float> &weights) {
  std::vector<int64_t> order(numExperts);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return logits[a] > logits[b]; });
  indices.assign(order.begin(), order.begin() + topK);
  weights.assign(topK, 0.0f);
  if (convention == Convention::HF) {
    if (weighting == RouterWeighting::Softmax) {
      double mx = logits[indices[0]], sum = 0;
      for (int64_t j = 0; j < topK; ++j)
        sum += std::exp(logits[indices[j]] - mx);
      for (int64_t j = 0; j < topK; ++j)
        weights[j] =
            static_cast<float>(std::exp(logits[indices[j]] - mx) / sum);
    } else {
      double sum = 0;
      std::vector<double> s(topK);
      for (int64_t j = 0; j < topK; ++j)
        sum += s[j] =
            1.0 / (1.0 + std::exp(-static_cast<double>(logits[indices[j]])));
      for (int64_t j = 0; j < topK; ++j)
        weights[j] = static_cast<float>(s[j] / sum);
    }
    return;
  }
  // llama.cpp: probabilities over all experts, gather, renormalize with a
  // clamped sum.
  std::vector<double> probs(numExperts);
  if (weighting == RouterWeighting::Softmax) {
    double mx = logits[order[0]], sum = 0;
    for (int64_t e = 0; e < numExperts; ++e)
      sum += probs[e] = std::exp(logits[e] - mx);
    for (double &p : probs)
      p /= sum;
  } else {
    for (int64_t e = 0; e < numExperts; ++e)
      probs[e] = 1.0 / (1.0 + std::exp(-static_cast<double>(logits[e])));
  }
  double sum = 0;
  for (int64_t j = 0; j < topK; ++j)
    sum += probs[indices[j]];
  sum = std::max(sum, 6.103515625e-5);
  for (int64_t j = 0; j < topK; ++j)
    weights[j] = static_cast<float>(probs[indices[j]] / sum);
}

void rmsNorm(const float *x, const float *w, int64_t n, double eps,
             float *out) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i)
    ss += static_cast<double>(x[i]) * x[i];
  double scale = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
  for (int64_t i = 0; i < n; ++i)
    out[i] = static_cast<float>(x[i] * scale) * w[i];
}

bool roundsInputToQ8(const Checkpoint &ck, const std::string &name) {
  const WeightInfo *w = ck.find(name);
  return w && !w->expertsTransposed && hasKernels(exactKernelType(w->dtype));
}

void roundToQ8(const float *x, int64_t n, float *out) {
  std::vector<uint8_t> q(static_cast<size_t>(n / kQuantBlock) *
                         kQ8_0BlockBytes);
  quantize(DType::Q8_0, x, q.data(), n);
  dequantize(DType::Q8_0, q.data(), out, n);
}

namespace {

// y[t][o] = sum_i x[t][i] * W[o][i] for W of shape [rows, cols], accumulated in
// double. With `q8x` each input row is first rounded to Q8_0 blocks.
void matmulT(const std::vector<float> &x, int64_t T, const float *W,
             int64_t rows, int64_t cols, float *y, bool q8x = false) {
  std::vector<float> rounded(q8x ? cols : 0);
  for (int64_t t = 0; t < T; ++t) {
    const float *xt = x.data() + t * cols;
    if (q8x) {
      roundToQ8(xt, cols, rounded.data());
      xt = rounded.data();
    }
    for (int64_t o = 0; o < rows; ++o) {
      const float *wo = W + o * cols;
      double acc = 0;
      for (int64_t i = 0; i < cols; ++i)
        acc += static_cast<double>(xt[i]) * wo[i];
      y[t * rows + o] = static_cast<float>(acc);
    }
  }
}

} // namespace

Status forward(const Checkpoint &ck, const std::vector<int64_t> &tokens,
               std::vector<float> &logits) {
  Options o;
  o.convention = ck.config.convention;
  return forward(ck, tokens, o, logits);
}

Status forward(const Checkpoint &ck, const std::vector<int64_t> &tokens,
               const Options &options, std::vector<float> &logits) {
  const Convention convention = options.convention;
  // Whether a weight's matmul rounds its input to Q8_0 first: where the
  // compiled model keeps it in a type the int8 kernels read (its own, or its
  // exact Q8_0 image; a transposed down has none and is kept in f32).
  auto q8x = [&](const std::string &name) {
    return options.q8Activations && roundsInputToQ8(ck, name);
  };
  const ModelConfig &c = ck.config;
  const int64_t T = static_cast<int64_t>(tokens.size());
  const int64_t D = c.hiddenSize, H = c.numHeads, KV = c.numKVHeads,
                hd = c.headDim, E = c.numExperts, K = c.topK, F = c.expertFfn,
                V = c.vocabSize;
  if (T == 0)
    return Status::error("reference: no tokens given");
  for (int64_t t : tokens)
    if (t < 0 || t >= V)
      return Status::error("reference: token id " + std::to_string(t) +
                           " is outside the vocabulary [0, " +
                           std::to_string(V) + ")");

  // x = embed_tokens[ids], no scaling.
  std::vector<float> x(T * D);
  const WeightInfo *embed = ck.find("token_embd");
  for (int64_t t = 0; t < T; ++t)
    STC_TRY(ck.readF32(*embed, static_cast<uint64_t>(tokens[t] * D), D,
                       x.data() + t * D));

  std::vector<float> h(T * D), q(T * H * hd), k(T * KV * hd), v(T * KV * hd),
      attn(T * H * hd), proj(T * D), routerLogits(T * E);
  std::vector<float> wNorm, wRouter, wq, wk, wv, wo, wNorm2;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  for (int64_t layer = 0; layer < c.numLayers; ++layer) {
    std::string p = "blk." + std::to_string(layer) + ".";
    // Router on the raw layer input (pre-attention, not normed).
    STC_TRY(ck.readAllF32(p + "ffn_gate_inp", wRouter));
    matmulT(x, T, wRouter.data(), E, D, routerLogits.data(),
            q8x(p + "ffn_gate_inp"));

    // Attention.
    STC_TRY(ck.readAllF32(p + "attn_norm", wNorm));
    for (int64_t t = 0; t < T; ++t)
      rmsNorm(&x[t * D], wNorm.data(), D, c.rmsNormEps, &h[t * D]);
    STC_TRY(ck.readAllF32(p + "attn_q", wq));
    STC_TRY(ck.readAllF32(p + "attn_k", wk));
    STC_TRY(ck.readAllF32(p + "attn_v", wv));
    matmulT(h, T, wq.data(), H * hd, D, q.data(), q8x(p + "attn_q"));
    matmulT(h, T, wk.data(), KV * hd, D, k.data(), q8x(p + "attn_k"));
    matmulT(h, T, wv.data(), KV * hd, D, v.data(), q8x(p + "attn_v"));
    if (c.layerUsesRope(layer)) {
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t hh = 0; hh < H; ++hh)
          applyRopeNeox(&q[(t * H + hh) * hd], hd, t, c.ropeTheta);
        for (int64_t hh = 0; hh < KV; ++hh)
          applyRopeNeox(&k[(t * KV + hh) * hd], hd, t, c.ropeTheta);
      }
    }
    if (options.kvType == DType::F16) {
      // As the KV cache stores them (runtime/KvCache.cpp): f16, saturated.
      for (std::vector<float> *kv : {&k, &v})
        for (float &x : *kv)
          x = rt::halfToFloat(rt::floatToHalfKv(x));
    } else if (options.kvType == DType::Q8_0) {
      // Q8_0 blocks along head_dim; the queries too, as llama.cpp rounds them
      // for its q8_0 x q8_0 dot product with the keys (runtime/Attention.cpp).
      std::vector<uint8_t> stored(hd / kQuantBlock * kQ8_0BlockBytes);
      for (std::vector<float> *x : {&q, &k, &v})
        for (float *row = x->data(); row < x->data() + x->size(); row += hd) {
          quantize(DType::Q8_0, row, stored.data(), hd);
          dequantize(DType::Q8_0, stored.data(), row, hd);
        }
    }
    const int64_t window = c.layerWindow(layer);
    std::vector<double> scores(T);
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t hq = 0; hq < H; ++hq) {
        int64_t hk = kvHeadFor(hq, H, KV);
        const float *qv = &q[(t * H + hq) * hd];
        double mx = -INFINITY;
        for (int64_t s = 0; s <= t; ++s) {
          if (!keyVisible(t, s, window)) {
            scores[s] = -INFINITY;
            continue;
          }
          const float *kv = &k[(s * KV + hk) * hd];
          double dot = 0;
          for (int64_t i = 0; i < hd; ++i)
            dot += static_cast<double>(qv[i]) * kv[i];
          scores[s] = dot * scale;
          mx = std::max(mx, scores[s]);
        }
        double sum = 0;
        for (int64_t s = 0; s <= t; ++s) {
          scores[s] = scores[s] == -INFINITY ? 0 : std::exp(scores[s] - mx);
          sum += scores[s];
        }
        float *out = &attn[(t * H + hq) * hd];
        for (int64_t i = 0; i < hd; ++i) {
          double acc = 0;
          for (int64_t s = 0; s <= t; ++s)
            if (scores[s] != 0)
              acc += scores[s] * v[(s * KV + hk) * hd + i];
          out[i] = static_cast<float>(acc / sum);
        }
      }
    }
    STC_TRY(ck.readAllF32(p + "attn_output", wo));
    matmulT(attn, T, wo.data(), D, H * hd, proj.data(), q8x(p + "attn_output"));
    for (int64_t i = 0; i < T * D; ++i)
      x[i] += proj[i];

    // MoE FFN on the post-attention norm, routed by the pre-attention logits.
    STC_TRY(ck.readAllF32(p + "ffn_norm", wNorm2));
    for (int64_t t = 0; t < T; ++t)
      rmsNorm(&x[t * D], wNorm2.data(), D, c.rmsNormEps, &h[t * D]);
    if (options.beforeExperts)
      STC_TRY(options.beforeExperts(layer, h.data(), T));
    std::vector<std::vector<int64_t>> idx(T);
    std::vector<std::vector<float>> wts(T);
    std::map<int64_t, bool> needed;
    for (int64_t t = 0; t < T; ++t) {
      route(&routerLogits[t * E], E, K, c.weighting, convention, idx[t],
            wts[t]);
      for (int64_t e : idx[t])
        needed[e] = true;
    }
    const WeightInfo *gate = ck.find(p + "ffn_gate_exps");
    const WeightInfo *up = ck.find(p + "ffn_up_exps");
    const WeightInfo *down = ck.find(p + "ffn_down_exps");
    std::map<int64_t, std::vector<float>> G, U, Dn;
    for (const auto &kv : needed) {
      int64_t e = kv.first;
      G[e].resize(F * D);
      U[e].resize(F * D);
      Dn[e].resize(D * F);
      STC_TRY(ck.readF32(*gate, e * F * D, F * D, G[e].data()));
      STC_TRY(ck.readF32(*up, e * F * D, F * D, U[e].data()));
      STC_TRY(ck.readF32(*down, e * D * F, D * F, Dn[e].data()));
    }
    std::vector<float> act(F), gateOut(F), hq(D), aq(F);
    std::vector<double> y(D);
    const bool q8Up = q8x(p + "ffn_gate_exps"),
               q8Down = q8x(p + "ffn_down_exps");
    for (int64_t t = 0; t < T; ++t) {
      // HF sums hit experts in ascending expert id; llama.cpp in top-k order.
      std::vector<int64_t> order(K);
      std::iota(order.begin(), order.end(), 0);
      if (convention == Convention::HF)
        std::sort(order.begin(), order.end(),
                  [&](int64_t a, int64_t b) { return idx[t][a] < idx[t][b]; });
      std::fill(y.begin(), y.end(), 0.0);
      const float *ht = &h[t * D];
      if (q8Up) {
        roundToQ8(ht, D, hq.data());
        ht = hq.data();
      }
      for (int64_t j : order) {
        int64_t e = idx[t][j];
        for (int64_t f = 0; f < F; ++f) {
          double g = 0, u = 0;
          const float *gr = &G[e][f * D], *ur = &U[e][f * D];
          for (int64_t i = 0; i < D; ++i) {
            g += static_cast<double>(ht[i]) * gr[i];
            u += static_cast<double>(ht[i]) * ur[i];
          }
          act[f] = static_cast<float>(u * std::max(g, 0.0)); // ReGLU
          gateOut[f] = static_cast<float>(g);
        }
        if (options.onGate)
          options.onGate(layer, t, e, gateOut.data());
        if (q8Down) {
          roundToQ8(act.data(), F, aq.data());
          act = aq;
        }
        for (int64_t o = 0; o < D; ++o) {
          const float *dr = &Dn[e][o * F];
          double acc = 0;
          for (int64_t f = 0; f < F; ++f)
            acc += static_cast<double>(act[f]) * dr[f];
          y[o] += wts[t][j] * static_cast<float>(acc);
        }
      }
      for (int64_t o = 0; o < D; ++o)
        x[t * D + o] += static_cast<float>(y[o]);
    }
  }

  if (options.skipHead) {
    logits.clear();
    return Status::success();
  }
  // Final norm and LM head, the head read in row blocks.
  std::vector<float> wFinal;
  STC_TRY(ck.readAllF32("output_norm", wFinal));
  for (int64_t t = 0; t < T; ++t)
    rmsNorm(&x[t * D], wFinal.data(), D, c.rmsNormEps, &h[t * D]);
  const WeightInfo &head = ck.lmHead();
  logits.assign(static_cast<size_t>(T * V), 0.0f);
  constexpr int64_t kRows = 4096;
  std::vector<float> block, out;
  for (int64_t r0 = 0; r0 < V; r0 += kRows) {
    int64_t n = std::min(kRows, V - r0);
    block.resize(n * D);
    out.resize(T * n);
    STC_TRY(ck.readF32(head, r0 * D, n * D, block.data()));
    matmulT(h, T, block.data(), n, D, out.data(), q8x(head.name));
    for (int64_t t = 0; t < T; ++t)
      std::copy(&out[t * n], &out[t * n] + n, &logits[t * V + r0]);
  }
  return Status::success();
}

} // namespace ref
} // namespace stc
