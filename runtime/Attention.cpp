// The attention step: appends the chunk's keys and values to the layer's KV
// cache (a ring on sliding-window layers) and calls the attention kernel.
#include "Runtime.h"

#include "KernelSet.h"
#include "Kernels.h"
#include "RuntimeDetail.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace stc::rt {

bool Runtime::attention(const model::Step *s, int n, std::string &error) {
  const auto &ints = *s->ints();
  const int32_t H = static_cast<int32_t>(ints[0]),
                KV = static_cast<int32_t>(ints[1]),
                hd = static_cast<int32_t>(ints[2]),
                window = static_cast<int32_t>(ints[3]);
  const int layer = s->layer();
  const float *q = f32(s->inputs()->Get(0));
  const float *k = f32(s->inputs()->Get(1));
  const float *v = f32(s->inputs()->Get(2));
  float *out = f32(s->outputs()->Get(0));
  const size_t kvw = static_cast<size_t>(KV) * hd;
  // Append this chunk's keys (after RoPE) and values: position p goes to slot
  // p mod slots, which for a full cache is p itself.
  const int slots = kvSlots_[layer];
  for (int t = 0; t < n; ++t) {
    const int p = pos_ + t, slot = p % slots;
    std::memcpy(&kcache_[layer][slot * kvw], k + t * kvw, kvw * 4);
    std::memcpy(&vcache_[layer][slot * kvw], v + t * kvw, kvw * 4);
    kpos_[layer][slot] = p;
  }
  const int32_t keys = std::min(pos_ + n, slots);
  HBuf hq(q, halide_type_float, 32, {{hd, 1}, {H, hd}, {n, H * hd}});
  HBuf hk(kcache_[layer].data(), halide_type_float, 32,
          {{hd, 1}, {KV, hd}, {keys, static_cast<int32_t>(kvw)}});
  HBuf hv(vcache_[layer].data(), halide_type_float, 32,
          {{hd, 1}, {KV, hd}, {keys, static_cast<int32_t>(kvw)}});
  HBuf hp(kpos_[layer].data(), halide_type_int, 32, {{keys, 1}});
  HBuf ho(out, halide_type_float, 32, {{hd, 1}, {H, hd}, {n, H * hd}});
  // The kernel kernelsFor linked (KernelSet.cpp's rule).
  auto *kernel =
      attentionHd128(hd, H, KV) ? stc_attention_hd128 : stc_attention;
  int rc = kernel(hq.get(), hk.get(), hv.get(), hp.get(), pos_, window,
                  1.0f / std::sqrt(static_cast<float>(hd)), ho.get());
  if (rc != 0) {
    error = kernelError("attention kernel failed in layer " +
                        std::to_string(layer));
    return false;
  }
  return true;
}

} // namespace stc::rt
