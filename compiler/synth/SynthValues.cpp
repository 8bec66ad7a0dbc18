#include "SynthValues.h"

#include "Synth.h"

#include <cmath>

namespace stc {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t hashName(const std::string &s) {
  uint64_t h = 1469598103934665603ull; // FNV-1a
  for (unsigned char c : s)
    h = (h ^ c) * 1099511628211ull;
  return h;
}

bool endsWith(const std::string &n, const char *suffix) {
  std::string s(suffix);
  return n.size() >= s.size() &&
         n.compare(n.size() - s.size(), s.size(), s) == 0;
}

// How the values of one canonical weight are drawn.
struct ValueRule {
  uint64_t nameHash;
  float scale, offset;
};

ValueRule valueRule(const WeightSpec &w, bool tied) {
  const std::string &n = w.name;
  // The head draws the embedding's values: a real 4B checkpoint ships an
  // lm_head.weight next to tie_word_embeddings=true, and keeping them equal
  // makes HF's rule (use the embedding) and llama.cpp's (use output.weight)
  // agree, as they must for a faithful file.
  std::string source = n == "output" && tied ? "token_embd" : n;
  ValueRule r{hashName(source), 0, 0};
  if (endsWith(n, "norm")) {
    r.scale = 0.1f; // norm weights around 1
    r.offset = 1.0f;
  } else {
    // Unit-variance outputs for unit-RMS inputs; for the embedding this keeps
    // the residual stream small next to what the layers add.
    r.scale = 1.0f / std::sqrt(static_cast<float>(w.shape.back()));
  }
  return r;
}

} // namespace

uint64_t synthRandom(uint64_t seed, uint64_t stream, uint64_t index) {
  return splitmix64(splitmix64(seed ^ stream) + index);
}

uint64_t synthNameHash(const std::string &name) { return hashName(name); }

float synthValue(uint64_t seed, uint64_t nameHash, uint64_t index, float scale,
                 float offset) {
  uint64_t r = synthRandom(seed, nameHash, index);
  // Uniform in [-1, 1) from the top 24 bits; scaled so the std is `scale`.
  float u = static_cast<float>(r >> 40) * (2.0f / 16777216.0f) - 1.0f;
  return offset + u * scale * 1.7320508f;
}

void synthValues(uint64_t seed, const WeightSpec &w, bool tied,
                 const SparsityPlan &plan, uint64_t begin, uint64_t count,
                 float *out) {
  const ValueRule rule = valueRule(w, tied);
  for (uint64_t i = 0; i < count; ++i)
    out[i] =
        synthValue(seed, rule.nameHash, begin + i, rule.scale, rule.offset);
  if (!plan.enabled)
    return;
  if (endsWith(w.name, "attn_output") || endsWith(w.name, "ffn_down_exps")) {
    for (uint64_t i = 0; i < count; ++i)
      out[i] *= plan.outputScale;
    return;
  }
  // The other overrides sit at column `massive` of a [.., cols] weight.
  const uint64_t cols = static_cast<uint64_t>(w.shape.back());
  const bool embedding = w.name == "token_embd" || (w.name == "output" && tied);
  const bool gate = endsWith(w.name, "ffn_gate_exps");
  const bool ignores = w.name == "output_norm" ||
                       endsWith(w.name, "ffn_gate_inp") ||
                       endsWith(w.name, "attn_q") ||
                       endsWith(w.name, "attn_k") || endsWith(w.name, "attn_v");
  if (!embedding && !gate && !ignores)
    return;
  const uint64_t m = static_cast<uint64_t>(plan.massive);
  uint64_t first = begin - begin % cols + m;
  if (first < begin)
    first += cols;
  for (uint64_t at = first; at < begin + count; at += cols) {
    float &v = out[at - begin];
    if (embedding)
      v = plan.massiveValue;
    else if (ignores)
      v = 0; // routing, attention and the head do not see the coordinate
    else
      v = plan.gateBias[w.layer][at / cols];
  }
}

} // namespace stc
