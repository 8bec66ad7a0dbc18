// SparsityStats: what the reference's gate pre-activations say about ReLU
// sparsity: the dead share per layer, how alike two tokens' live sets are
// within one expert, and each neuron's firing count (the profile that
// `stc compile --calibrate` records).
#pragma once

#include "Reference.h"

#include <cstdint>
#include <vector>

namespace stc {
namespace ref {

class SparsityStats {
public:
  explicit SparsityStats(const ModelConfig &config);

  // One routed (token, expert) pair's gate pre-activations, from
  // Options::onGate; calls from several forward passes (sequences) add up.
  void add(int64_t layer, int64_t expert, const float *gate);
  // Adds another collector's counts (same config).
  void merge(const SparsityStats &other);
  // An Options::onGate that calls add().
  std::function<void(int64_t, int64_t, int64_t, const float *)> observer();

  struct Layer {
    uint64_t evaluated = 0; // neurons of routed (token, expert) pairs
    uint64_t dead = 0;
    // Mean Jaccard index |A n B| / |A u B| of the live sets of two different
    // tokens routed to the same expert, over all such pairs (0 without pairs).
    double jaccard = 0;
    uint64_t pairs = 0;
    double deadShare() const {
      return evaluated ? static_cast<double>(dead) / evaluated : 0;
    }
  };
  std::vector<Layer> layers() const;
  // Tokens routed to `expert` of `layer`, and how often each of its neurons
  // fired among them.
  uint32_t routed(int64_t layer, int64_t expert) const;
  const uint32_t *fired(int64_t layer, int64_t expert) const;

private:
  int64_t E_, F_, words_;
  std::vector<uint32_t> routed_, fired_; // [layer][expert], [..][neuron]
  // [layer][expert]: the live bit sets of its routed tokens, `words_` each.
  std::vector<std::vector<uint64_t>> live_;
};

} // namespace ref
} // namespace stc
