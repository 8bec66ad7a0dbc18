#include "ActivationSparsity.h"

#include "reference/Reference.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>

namespace stc {

Status parseSparsityTarget(const std::string &text, SparsityTarget &out) {
  out = SparsityTarget();
  if (text == "paper") {
    out.paper = true;
    return Status::success();
  }
  char *end = nullptr;
  double f = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(f > 0 && f < 1))
    return Status::error("--activation-sparsity expects 'paper' or a dead "
                         "fraction between 0 and 1 such as 0.8, got '" +
                         text + "'");
  out.fraction = f;
  return Status::success();
}

double deadTarget(const SparsityTarget &t, int64_t layer, int64_t layers) {
  if (!t.paper)
    return t.fraction;
  const double x = layers > 1 ? static_cast<double>(layer) / (layers - 1) : 0;
  if (x <= 0.25)
    return 0.95;
  if (x <= 0.5)
    return 0.95 + (x - 0.25) / 0.25 * (0.6 - 0.95);
  return 0.6 + (x - 0.5) / 0.5 * (0.5 - 0.6);
}

namespace {

constexpr double kMinRate = 0.002, kMaxRate = 0.98;

// A standard normal draw (Box-Muller on two seeded uniforms).
double normal(uint64_t seed, uint64_t stream, uint64_t index) {
  auto uniform = [&](uint64_t i) {
    return (static_cast<double>(synthRandom(seed, stream, i) >> 11) + 0.5) /
           9007199254740992.0;
  };
  double u = uniform(2 * index), v = uniform(2 * index + 1);
  return std::sqrt(-2 * std::log(u)) * std::cos(6.283185307179586 * v);
}

// x with P(N(0,1) < x) = p.
double inverseNormal(double p) {
  double lo = -10, hi = 10;
  for (int i = 0; i < 60; ++i) {
    double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

// The weights synth is about to write, computed on demand as f32 (no
// quantization): the model the calibration runs.
class SynthCheckpoint : public Checkpoint {
public:
  SynthCheckpoint(const SynthOptions &o, const ModelConfig &c,
                  const SparsityPlan &plan)
      : seed_(o.seed), tied_(c.tieWordEmbeddings), plan_(plan) {
    config = c;
    config.convention =
        o.format == "gguf" ? Convention::LlamaCpp : Convention::HF;
    const bool withOutput = synthPresetHasLmHead(o.preset);
    lmHeadTied = !withOutput;
    for (const WeightSpec &s : expectedWeights(c, withOutput)) {
      WeightInfo w;
      w.name = s.name;
      w.dtype = DType::F32;
      w.shape = s.shape;
      weights.push_back(w);
      specs_[s.name] = s;
    }
  }
  const WeightSpec &spec(const std::string &name) const {
    return specs_.at(name);
  }
  Status readF32(const WeightInfo &w, uint64_t begin, uint64_t count,
                 float *out) const override {
    synthValues(seed_, specs_.at(w.name), tied_, plan_, begin, count, out);
    return Status::success();
  }

private:
  uint64_t seed_;
  bool tied_;
  const SparsityPlan &plan_;
  std::map<std::string, WeightSpec> specs_;
};

} // namespace

std::vector<double> neuronFiringRates(uint64_t seed, int64_t layer, int64_t n,
                                      double rate) {
  // Log-normal spread: wide where few neurons fire, narrower towards half, so
  // that the hot neurons (clipped at kMaxRate) do not make every token's live
  // set alike: with independent firing the mean Jaccard of two live sets is
  // ~0.37 at rate 0.5 and ~0.26 at 0.2 (measured on the 4B: 0.41 and 0.32,
  // tokens being somewhat alike).
  const double sigma = std::clamp(1.0 - 3.0 * (rate - 0.25), 0.3, 1.0);
  const uint64_t stream = synthNameHash("firing rates") + layer;
  std::vector<double> z(n), p(n);
  for (int64_t i = 0; i < n; ++i)
    z[i] = sigma * normal(seed, stream, i);
  double lo = -30, hi = 10; // log of the scale, bisected to the mean rate
  for (int it = 0; it < 60; ++it) {
    double mid = 0.5 * (lo + hi), sum = 0;
    for (int64_t i = 0; i < n; ++i)
      sum += std::clamp(std::exp(mid + z[i]), kMinRate, kMaxRate);
    (sum / n < rate ? lo : hi) = mid;
  }
  for (int64_t i = 0; i < n; ++i)
    p[i] = std::clamp(std::exp(0.5 * (lo + hi) + z[i]), kMinRate, kMaxRate);
  return p;
}

Status planSparsity(const SynthOptions &o, const ModelConfig &c,
                    const SparsityTarget &target, SparsityPlan &plan) {
  const int64_t D = c.hiddenSize, E = c.numExperts, F = c.expertFfn,
                L = c.numLayers;
  plan = SparsityPlan();
  plan.enabled = true;
  plan.massive =
      static_cast<int64_t>(synthRandom(o.seed, synthNameHash("massive"), 0) %
                           static_cast<uint64_t>(D));
  // The embedding rows have norm ~1 and each layer adds less than that, so 4
  // keeps the coordinate the largest by far (~100x a typical one) in every
  // layer, and the gate weights on it (the offsets) within a few times the
  // others, which keeps them exact enough under 4-bit quantization.
  plan.massiveValue = 4.0f;
  plan.outputScale = 0.5f / std::sqrt(static_cast<float>(D));
  plan.gateBias.assign(L, std::vector<float>(E * F, 0.0f));

  SynthCheckpoint ck(o, c, plan);
  std::vector<int64_t> tokens(kSparsityCalibrationTokens);
  for (int64_t i = 0; i < kSparsityCalibrationTokens; ++i)
    tokens[i] = static_cast<int64_t>(
        synthRandom(o.seed, synthNameHash("calibration tokens"), i) %
        static_cast<uint64_t>(c.vocabSize));
  const int64_t m = plan.massive;
  ref::Options ro;
  ro.convention = ck.config.convention;
  ro.skipHead = true;
  ro.beforeExperts = [&](int64_t layer, const float *h, int64_t T) {
    // The token-dependent part of every neuron's pre-activation (its gate row
    // without the massive coordinate) over the calibration tokens, transposed
    // so that the dot products vectorize over tokens.
    std::vector<float> hT(static_cast<size_t>(D) * T);
    double massive = 0;
    for (int64_t t = 0; t < T; ++t) {
      massive += h[t * D + m];
      for (int64_t d = 0; d < D; ++d)
        hT[d * T + t] = d == m ? 0.0f : h[t * D + d];
    }
    massive /= T;
    if (!(std::fabs(massive) > 1e-3))
      return Status::error("synth: --activation-sparsity: the massive "
                           "coordinate vanished at layer " +
                           std::to_string(layer));
    const std::vector<double> rates = neuronFiringRates(
        o.seed, layer, E * F, 1.0 - deadTarget(target, layer, L));
    const WeightSpec &gate =
        ck.spec("blk." + std::to_string(layer) + ".ffn_gate_exps");
    std::vector<float> rows(static_cast<size_t>(F) * D), z(T);
    for (int64_t e = 0; e < E; ++e) {
      synthValues(o.seed, gate, c.tieWordEmbeddings, plan, e * F * D, F * D,
                  rows.data());
      for (int64_t f = 0; f < F; ++f) {
        std::fill(z.begin(), z.end(), 0.0f);
        const float *g = &rows[f * D];
        for (int64_t d = 0; d < D; ++d)
          for (int64_t t = 0; t < T; ++t)
            z[t] += g[d] * hT[d * T + t];
        double mean = 0, var = 0;
        for (float v : z)
          mean += v;
        mean /= T;
        for (float v : z)
          var += (v - mean) * (v - mean);
        const double sd = std::sqrt(var / (T - 1)) + 1e-12;
        // P(z + bias * massive > 0) = rate for z ~ N(mean, sd).
        plan.gateBias[layer][e * F + f] = static_cast<float>(
            (sd * inverseNormal(rates[e * F + f]) - mean) / massive);
      }
    }
    return Status::success();
  };
  std::vector<float> unused;
  return ref::forward(ck, tokens, ro, unused);
}

} // namespace stc
