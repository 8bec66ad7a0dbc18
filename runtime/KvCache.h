// KvCache: one sequence's keys and values for every layer, in the element
// type st-kv-plan chose (f32, f16, or q8_0 blocks of 32 along head_dim with an
// fp16 scale, as ggml's), a ring on sliding-window layers, the whole context on
// the others. The memory for the context is reserved at init and its pages are
// touched only as positions fill.
//
// Layouts, per layer and KV head, as the attention kernels read them
// (targets/kernelgen/attention_generator.cpp):
//   K: tiles of 16 slots, [slot / 16][d][16] (a vector of 16 keys' values of
//      one dimension is contiguous), q8_0 scales [slot / 16][d / 32][16];
//   V: rows, [slot][d], q8_0 scales [slot][d / 32].
// Each layer's storage is padded to a multiple of 32 slots (kSlotQuantum): the
// kernels read keys in pairs of tiles; slots past the filled ones, and a
// ring's padding, are masked by position.
#pragma once

#include "ModelLayout.h"
#include "Reservation.h"

#include <cstdint>
#include <string>
#include <vector>

namespace stc::rt {

constexpr int kSlotQuantum = 32;

// One layer's cache as planned: `slots` positions (a ring when smaller than
// the context: position p in slot p mod slots) and the element type.
struct KvLayerPlan {
  int slots = 0;
  int storageSlots() const {
    return (slots + kSlotQuantum - 1) / kSlotQuantum * kSlotQuantum;
  }
  int window = 0; // sliding window, 0 = global
  bool ring = false;
  model::KvType type = model::KvType::F32;
};

class KvCache {
public:
  KvCache() = default;
  KvCache(const KvCache &) = delete;
  KvCache &operator=(const KvCache &) = delete;

  // Reserves every layer's memory (untouched) for `context` positions.
  bool init(const std::vector<KvLayerPlan> &layers, int kvHeads, int headDim,
            int context, std::string &error);
  // Bytes reserved for every layer (what the context costs once full).
  static uint64_t bytesFor(const std::vector<KvLayerPlan> &layers, int kvHeads,
                           int headDim);
  uint64_t bytes() const { return bytes_; }

  // Stores position `pos`'s keys (after RoPE) and values of every KV head
  // (kvHeads x headDim floats each) into layer `layer`, in its type.
  void store(int layer, int pos, const float *k, const float *v);

  // What the kernels read of one KV head of one layer.
  struct Head {
    model::KvType type;
    const uint8_t *k;       // [slot / 16][d][16] elements
    const uint16_t *kScale; // q8_0: [slot / 16][d / 32][16]
    const uint8_t *v;       // [slot][d] elements
    const uint16_t *vScale; // q8_0: [slot][d / 32]
    const int32_t *kpos;    // [slot]: the position it holds, -1 empty
  };
  Head head(int layer, int kvHead) const;
  const KvLayerPlan &layer(int l) const { return layers_[l]; }
  int numLayers() const { return static_cast<int>(layers_.size()); }
  int headDim() const { return headDim_; }

  // Forgets positions >= n (their ring slots read as empty).
  void forgetFrom(int n);
  // Whether every ring still holds the keys position n attends to (those in
  // (n - window, n)); else names the layer and the lost position in `error`.
  bool holdsWindowBefore(int n, std::string &error) const;

private:
  struct Layer {
    uint8_t *k = nullptr, *v = nullptr;
    uint16_t *kScale = nullptr, *vScale = nullptr;
    std::vector<int32_t> kpos; // rings only (a global layer's slot is its
                               // position: positions_)
  };
  std::vector<KvLayerPlan> layers_;
  std::vector<Layer> data_;
  std::vector<int32_t> positions_; // 0, 1, 2, ...: a global layer's kpos
  int kvHeads_ = 0, headDim_ = 0;
  Reservation arena_;
  uint64_t bytes_ = 0;
};

} // namespace stc::rt
