#include "KvCache.h"

#include "Half.h"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace stc::rt {

namespace {

// Bytes of one layer's values (K or V) and of its q8_0 scales, page-rounded
// so every array starts aligned.
uint64_t pages(uint64_t b) { return (b + 4095) / 4096 * 4096; }

struct LayerBytes {
  uint64_t values, scales;
};

LayerBytes layerBytes(const KvLayerPlan &l, int kvHeads, int headDim) {
  const uint64_t cells =
      static_cast<uint64_t>(kvHeads) * l.storageSlots() * headDim;
  return {pages(cells * kvElementBytes(l.type)),
          l.type == model::KvType::Q8_0 ? pages(cells / 32 * 2) : 0};
}

} // namespace

uint64_t KvCache::bytesFor(const std::vector<KvLayerPlan> &layers, int kvHeads,
                           int headDim) {
  uint64_t total = 0;
  for (const KvLayerPlan &l : layers) {
    const LayerBytes b = layerBytes(l, kvHeads, headDim);
    total += 2 * (b.values + b.scales);
  }
  return total;
}

bool KvCache::init(const std::vector<KvLayerPlan> &layers, int kvHeads,
                   int headDim, int context, std::string &error) {
  layers_ = layers;
  kvHeads_ = kvHeads;
  headDim_ = headDim;
  if (headDim % 32 != 0) {
    error = "KV cache: head_dim must be a multiple of 32";
    return false;
  }
  bytes_ = bytesFor(layers_, kvHeads, headDim);
  // Reserved, not touched: a page is charged when a position first fills it.
  if (!arena_.reserve(bytes_)) {
    error = "cannot reserve " + std::to_string(bytes_ >> 20) +
            " MiB for the KV cache";
    return false;
  }
  uint8_t *at = arena_.data();
  data_.assign(layers_.size(), Layer());
  for (size_t i = 0; i < layers_.size(); ++i) {
    const LayerBytes b = layerBytes(layers_[i], kvHeads, headDim);
    Layer &L = data_[i];
    L.k = at;
    at += b.values;
    L.v = at;
    at += b.values;
    if (b.scales) {
      L.kScale = reinterpret_cast<uint16_t *>(at);
      at += b.scales;
      L.vScale = reinterpret_cast<uint16_t *>(at);
      at += b.scales;
    }
    if (layers_[i].ring)
      L.kpos.assign(layers_[i].storageSlots(), -1);
  }
  int longest = 0;
  for (const KvLayerPlan &l : layers_)
    if (!l.ring)
      longest = std::max(longest, l.storageSlots());
  positions_.resize(std::max(longest, context));
  std::iota(positions_.begin(), positions_.end(), 0);
  return true;
}

void KvCache::store(int layer, int pos, const float *k, const float *v) {
  const KvLayerPlan &plan = layers_[layer];
  Layer &L = data_[layer];
  const int slots = plan.storageSlots(), hd = headDim_;
  const int slot = pos % plan.slots, tile = slot / 16, lane = slot % 16;
  for (int h = 0; h < kvHeads_; ++h) {
    const float *kh = k + static_cast<size_t>(h) * hd;
    const float *vh = v + static_cast<size_t>(h) * hd;
    // Element (d) of this key within its tile, and this value's row.
    const size_t kAt = (static_cast<size_t>(h) * slots / 16 + tile) * hd * 16;
    const size_t vAt = (static_cast<size_t>(h) * slots + slot) * hd;
    switch (plan.type) {
    case model::KvType::F32: {
      auto *kd = reinterpret_cast<float *>(L.k) + kAt;
      for (int d = 0; d < hd; ++d)
        kd[d * 16 + lane] = kh[d];
      std::memcpy(reinterpret_cast<float *>(L.v) + vAt, vh, hd * 4);
      break;
    }
    case model::KvType::F16: {
      auto *kd = reinterpret_cast<uint16_t *>(L.k) + kAt;
      auto *vd = reinterpret_cast<uint16_t *>(L.v) + vAt;
      for (int d = 0; d < hd; ++d) {
        kd[d * 16 + lane] = floatToHalfKv(kh[d]);
        vd[d] = floatToHalfKv(vh[d]);
      }
      break;
    }
    case model::KvType::Q8_0: {
      auto *kd = reinterpret_cast<int8_t *>(L.k) + kAt;
      auto *vd = reinterpret_cast<int8_t *>(L.v) + vAt;
      int8_t q[32];
      for (int b = 0; b < hd / 32; ++b) {
        const uint16_t ks = quantizeQ8Block(kh + b * 32, q);
        for (int j = 0; j < 32; ++j)
          kd[(b * 32 + j) * 16 + lane] = q[j];
        L.kScale[kAt / 32 + b * 16 + lane] = ks;
        L.vScale[vAt / 32 + b] = quantizeQ8Block(vh + b * 32, vd + b * 32);
      }
      break;
    }
    }
  }
  if (plan.ring)
    L.kpos[slot] = pos;
}

KvCache::Head KvCache::head(int layer, int kvHead) const {
  const KvLayerPlan &plan = layers_[layer];
  const Layer &L = data_[layer];
  const size_t cells =
      static_cast<size_t>(kvHead) * plan.storageSlots() * headDim_;
  const int eb = kvElementBytes(plan.type);
  Head h;
  h.type = plan.type;
  h.k = L.k + cells * eb;
  h.v = L.v + cells * eb;
  h.kScale = L.kScale ? L.kScale + cells / 32 : nullptr;
  h.vScale = L.vScale ? L.vScale + cells / 32 : nullptr;
  h.kpos = plan.ring ? L.kpos.data() : positions_.data();
  return h;
}

void KvCache::forgetFrom(int n) {
  for (size_t l = 0; l < layers_.size(); ++l)
    if (layers_[l].ring)
      for (int32_t &p : data_[l].kpos)
        if (p >= n)
          p = -1;
}

bool KvCache::holdsWindowBefore(int n, std::string &error) const {
  for (size_t l = 0; l < layers_.size(); ++l) {
    if (!layers_[l].ring)
      continue;
    const int slots = layers_[l].slots;
    const int window = layers_[l].window > 0 ? layers_[l].window : slots;
    for (int p = std::max(0, n - window + 1); p < n; ++p)
      if (data_[l].kpos[p % slots] != p) {
        error = "layer " + std::to_string(l) +
                "'s sliding-window cache no longer holds position " +
                std::to_string(p);
        return false;
      }
  }
  return true;
}

} // namespace stc::rt
