#include "SparsityStats.h"

namespace stc {
namespace ref {

SparsityStats::SparsityStats(const ModelConfig &c)
    : E_(c.numExperts), F_(c.expertFfn), words_((c.expertFfn + 63) / 64),
      routed_(c.numLayers * c.numExperts, 0),
      fired_(c.numLayers * c.numExperts * c.expertFfn, 0),
      live_(c.numLayers * c.numExperts) {}

void SparsityStats::add(int64_t layer, int64_t expert, const float *gate) {
  const int64_t at = layer * E_ + expert;
  ++routed_[at];
  uint32_t *fired = &fired_[at * F_];
  std::vector<uint64_t> &sets = live_[at];
  sets.resize(sets.size() + words_, 0);
  uint64_t *bits = &sets[sets.size() - words_];
  for (int64_t f = 0; f < F_; ++f)
    if (gate[f] > 0) {
      ++fired[f];
      bits[f / 64] |= uint64_t(1) << (f % 64);
    }
}

void SparsityStats::merge(const SparsityStats &o) {
  for (size_t i = 0; i < routed_.size(); ++i)
    routed_[i] += o.routed_[i];
  for (size_t i = 0; i < fired_.size(); ++i)
    fired_[i] += o.fired_[i];
  for (size_t i = 0; i < live_.size(); ++i)
    live_[i].insert(live_[i].end(), o.live_[i].begin(), o.live_[i].end());
}

std::function<void(int64_t, int64_t, int64_t, const float *)>
SparsityStats::observer() {
  return [this](int64_t layer, int64_t, int64_t expert, const float *gate) {
    add(layer, expert, gate);
  };
}

uint32_t SparsityStats::routed(int64_t layer, int64_t expert) const {
  return routed_[layer * E_ + expert];
}

const uint32_t *SparsityStats::fired(int64_t layer, int64_t expert) const {
  return &fired_[(layer * E_ + expert) * F_];
}

std::vector<SparsityStats::Layer> SparsityStats::layers() const {
  const int64_t L = static_cast<int64_t>(routed_.size()) / E_;
  std::vector<Layer> out(L);
  for (int64_t l = 0; l < L; ++l) {
    Layer &r = out[l];
    double jaccardSum = 0;
    for (int64_t e = 0; e < E_; ++e) {
      const uint64_t n = routed(l, e);
      r.evaluated += n * F_;
      const uint32_t *fired = this->fired(l, e);
      for (int64_t f = 0; f < F_; ++f)
        r.dead += n - fired[f];
      const uint64_t *sets = live_[l * E_ + e].data();
      for (uint64_t a = 0; a < n; ++a)
        for (uint64_t b = a + 1; b < n; ++b) {
          uint64_t both = 0, either = 0;
          for (int64_t w = 0; w < words_; ++w) {
            both += __builtin_popcountll(sets[a * words_ + w] &
                                         sets[b * words_ + w]);
            either += __builtin_popcountll(sets[a * words_ + w] |
                                           sets[b * words_ + w]);
          }
          jaccardSum += either ? static_cast<double>(both) / either : 1.0;
          ++r.pairs;
        }
    }
    r.jaccard = r.pairs ? jaccardSum / r.pairs : 0;
  }
  return out;
}

} // namespace ref
} // namespace stc
