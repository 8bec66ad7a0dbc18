// SynthValues: the value of every element of a synthetic checkpoint, as one
// function of (seed, canonical weight, element index) so that the HF and GGUF
// layouts, and the calibration model --activation-sparsity runs, hold the same
// weights.
#pragma once

#include "formats/Checkpoint.h"

#include <cstdint>
#include <vector>

namespace stc {

// What --activation-sparsity changes in the seeded random weights (see
// ActivationSparsity.h): one residual coordinate that every token's embedding
// sets to a large constant (a "massive activation"), which the router, the
// attention projections and the final norm ignore (weight 0, so the head's
// logits do not carry it as an offset) and whose weight in each expert gate row
// offsets that neuron's pre-activation, so each neuron fires at its own rate;
// and layer outputs (attn_output, ffn_down_exps) scaled down (by 0.5 /
// sqrt(hidden)) so that each layer adds less to the residual stream than the
// embedding put there, which keeps the expert inputs about as token-dependent
// in the last layer as in the first (with the usual scale, the 4B's last
// layers saw tokens so alike that two live sets overlapped by Jaccard 0.52).
struct SparsityPlan {
  bool enabled = false;
  int64_t massive = 0; // the coordinate
  float massiveValue = 0;
  float outputScale = 1;
  // [layer][expert * F + neuron]: the gate row's weight on the coordinate.
  std::vector<std::vector<float>> gateBias;
};

// Elements [begin, begin + count) of canonical weight `w` (logical,
// row-major order) for `seed`, with `plan`'s overrides.
// A seeded 64-bit random number: element `index` of stream `stream`.
uint64_t synthRandom(uint64_t seed, uint64_t stream, uint64_t index);
uint64_t synthNameHash(const std::string &name);

void synthValues(uint64_t seed, const WeightSpec &w, bool tied,
                 const SparsityPlan &plan, uint64_t begin, uint64_t count,
                 float *out);

} // namespace stc
