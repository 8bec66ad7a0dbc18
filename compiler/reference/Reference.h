// Reference: the f32 oracle. A SmallThinker forward pass written straight from
// spec/smallthinker.md §2.2, sharing no code with the compiled path (only the
// file readers). Weights are read per layer on demand, experts only when a
// token selects them, so it runs on the real 4B/21B shapes in modest memory.
#pragma once

#include "formats/Checkpoint.h"
#include "formats/Status.h"

#include <cstdint>
#include <functional>
#include <vector>

namespace stc {
namespace ref {

// The pieces, exposed so each can be checked by hand in tests.

// Causal mask with an optional sliding window (0 = global): a query at `q` sees
// key `k` when k <= q and, with a window W, k > q - W (W keys including
// itself).
bool keyVisible(int64_t q, int64_t k, int64_t window);

// KV head that query head `qHead` reads under GQA (repeat_kv: contiguous
// groups).
int64_t kvHeadFor(int64_t qHead, int64_t numHeads, int64_t numKVHeads);

// NEOX / rotate-half RoPE in place on one head vector: element j pairs with j +
// dim/2, angle = pos * theta^(-2j/dim).
void applyRopeNeox(float *head, int64_t dim, int64_t pos, double theta);

// Top-k selection on raw router logits and the combine weights, by the given
// rule. HF: softmax over the k selected logits, or sigmoid of each divided by
// their sum. llama.cpp: softmax/sigmoid over all E, gather the k, divide by
// their sum clamped to at least 6.103515625e-5. Indices come out in
// descending-logit order (ties: lower index).
void route(const float *logits, int64_t numExperts, int64_t topK,
           RouterWeighting weighting, Convention convention,
           std::vector<int64_t> &indices, std::vector<float> &weights);

void rmsNorm(const float *x, const float *w, int64_t n, double eps, float *out);

// The Q8_0 round trip of n values (whole blocks): the activation rounding of
// the compiled quantized matmuls.
void roundToQ8(const float *x, int64_t n, float *out);
// Whether the compiled model rounds the input of weight `name`'s matmul to
// Q8_0 first: where it is kept in a type the int8 kernels read (its own, or its
// exact Q8_0 image; PowerInfer's transposed down multiplies f32 activations).
bool roundsInputToQ8(const Checkpoint &ck, const std::string &name);

struct Options {
  Convention convention = Convention::HF;
  // Round the input of every matmul whose weight is stored as q8_0/q4_0 to Q8_0
  // blocks first, as llama.cpp and stc's quantized kernels do; the reference
  // then isolates the compiled kernels' own error from the (intended)
  // activation quantization.
  bool q8Activations = false;
  // The KV cache's element type: every key (after RoPE) and value is rounded
  // as the compiled model stores it, F16 (saturated at +-65504) or Q8_0
  // (blocks of 32 along head_dim, ggml's rounding), before attention reads
  // it. Queries stay f32, but for Q8_0, whose dot product with the keys
  // takes Q8_0 queries (as llama.cpp's).
  DType kvType = DType::F32;
  // Observers. `beforeExperts` sees each layer's expert input (T x D, after
  // ffn_norm) before that layer's expert weights are read; `onGate` sees the
  // gate pre-activations (F values, relu(g) = 0 is a dead neuron) of every
  // routed (token, expert) pair, in the order the experts are summed.
  std::function<Status(int64_t layer, const float *h, int64_t T)> beforeExperts;
  std::function<void(int64_t layer, int64_t token, int64_t expert,
                     const float *gate)>
      onGate;
  // Stop after the last layer: no final norm, no head, `logits` left empty.
  bool skipHead = false;
};

// Runs the whole model on `tokens` (positions 0..T-1) and returns T x vocab
// logits, with the checkpoint's own convention (HF or llama.cpp), or the given
// options.
Status forward(const Checkpoint &ck, const std::vector<int64_t> &tokens,
               std::vector<float> &logits);
Status forward(const Checkpoint &ck, const std::vector<int64_t> &tokens,
               const Options &options, std::vector<float> &logits);

} // namespace ref
} // namespace stc
