// Kernels: the AOT Halide kernels the runtime calls (generated per target by
// stc-kernelgen; `stc compile` links them in), and helpers to describe memory
// to them.
#pragma once

#include "HalideRuntime.h"

#include <cstdint>
#include <initializer_list>
#include <utility>

// out/ links only the kernels its plan calls (KernelSet.h): the compile makes
// the others stubs that fail, and lists them in stc_absent_kernels, which
// Runtime::load checks.
#define STC_KERNEL int

extern "C" {
// Null-terminated names of the kernels this binary has only stubs of.
extern const char *const stc_absent_kernels[];
STC_KERNEL stc_gemm_f32(halide_buffer_t *w, halide_buffer_t *x,
                        halide_buffer_t *y);
STC_KERNEL stc_gemm_f16(halide_buffer_t *w, halide_buffer_t *x,
                        halide_buffer_t *y);
STC_KERNEL stc_gemm_q4_0(halide_buffer_t *w, halide_buffer_t *sw,
                         halide_buffer_t *qx, halide_buffer_t *dx,
                         halide_buffer_t *sx, int32_t groups_per_task,
                         uint64_t w_address, int32_t request_bytes,
                         halide_buffer_t *y);
STC_KERNEL stc_gemm_q8_0(halide_buffer_t *w, halide_buffer_t *sw,
                         halide_buffer_t *qx, halide_buffer_t *dx,
                         halide_buffer_t *sx, int32_t groups_per_task,
                         uint64_t w_address, int32_t request_bytes,
                         halide_buffer_t *y);
STC_KERNEL stc_gemm_experts_q4_0(halide_buffer_t *w, halide_buffer_t *sw,
                                 halide_buffer_t *idx, halide_buffer_t *qx,
                                 halide_buffer_t *dx, halide_buffer_t *sx,
                                 int32_t groups_per_task, halide_buffer_t *y);
STC_KERNEL stc_gemm_experts_q8_0(halide_buffer_t *w, halide_buffer_t *sw,
                                 halide_buffer_t *idx, halide_buffer_t *qx,
                                 halide_buffer_t *dx, halide_buffer_t *sx,
                                 int32_t groups_per_task, halide_buffer_t *y);
// ggml's K-quants in rows16k tiles (KQuantLayout.h), decode, prefill and
// experts alike: slot s reads expert idx[s] (idx all 0 for a 2-D matrix).
// w_address is w's host address, for the request of the next row group.
#define STC_KQUANT_GEMM(name)                                                  \
  STC_KERNEL name(                                                             \
      halide_buffer_t *w, halide_buffer_t *sd, halide_buffer_t *idx,           \
      halide_buffer_t *qx, halide_buffer_t *dx, halide_buffer_t *sx,           \
      int32_t groups_per_task, uint64_t w_address, halide_buffer_t *y)
STC_KQUANT_GEMM(stc_gemm_q4_k);
STC_KQUANT_GEMM(stc_gemm_q5_k);
STC_KQUANT_GEMM(stc_gemm_q6_k);
STC_KQUANT_GEMM(stc_gemm_q3_k);
STC_KERNEL stc_sparse_up_q4_0(halide_buffer_t *w, halide_buffer_t *sw,
                              halide_buffer_t *ent, halide_buffer_t *qx,
                              halide_buffer_t *dx, halide_buffer_t *sx,
                              int32_t entries_per_task, uint64_t w_address,
                              uint64_t sw_address, halide_buffer_t *u);
STC_KERNEL stc_sparse_up_q8_0(halide_buffer_t *w, halide_buffer_t *sw,
                              halide_buffer_t *ent, halide_buffer_t *qx,
                              halide_buffer_t *dx, halide_buffer_t *sx,
                              int32_t entries_per_task, uint64_t w_address,
                              uint64_t sw_address, halide_buffer_t *u);
STC_KERNEL stc_sparse_down_q4_0(halide_buffer_t *w, halide_buffer_t *sw,
                                halide_buffer_t *qa, halide_buffer_t *da,
                                halide_buffer_t *live,
                                halide_buffer_t *live_block,
                                halide_buffer_t *block_live,
                                int32_t chunks_per_task, uint64_t w_address,
                                uint64_t sw_address, halide_buffer_t *y);
STC_KERNEL stc_sparse_down_q8_0(halide_buffer_t *w, halide_buffer_t *sw,
                                halide_buffer_t *qa, halide_buffer_t *da,
                                halide_buffer_t *live,
                                halide_buffer_t *live_block,
                                halide_buffer_t *block_live,
                                int32_t chunks_per_task, uint64_t w_address,
                                uint64_t sw_address, halide_buffer_t *y);
// PowerInfer's down layout (neuron_rows): one expert's rows list times their
// activations (targets/kernelgen/down_rows_generator.cpp).
STC_KERNEL stc_down_rows_q4_0(halide_buffer_t *w, halide_buffer_t *rows,
                              halide_buffer_t *act, uint64_t w_address,
                              halide_buffer_t *y);
STC_KERNEL stc_down_rows_q8_0(halide_buffer_t *w, halide_buffer_t *rows,
                              halide_buffer_t *act, uint64_t w_address,
                              halide_buffer_t *y);
STC_KERNEL stc_quantize_q8(halide_buffer_t *x, halide_buffer_t *qx,
                           halide_buffer_t *dx, halide_buffer_t *sx);
STC_KERNEL stc_rms_norm(halide_buffer_t *x, halide_buffer_t *w, float eps,
                        halide_buffer_t *y);
STC_KERNEL stc_rope_neox(halide_buffer_t *x, halide_buffer_t *pos,
                         halide_buffer_t *cos_t, halide_buffer_t *sin_t,
                         halide_buffer_t *y);
// One KV head's attention over a chunk of cached keys in the KV cache's type
// (targets/kernelgen/attention_generator.cpp): a generic head_dim, and for
// head_dim 128 a decode and a prefill-tile schedule.
#define STC_ATTENTION(name)                                                    \
  STC_KERNEL name(                                                             \
      halide_buffer_t *q, halide_buffer_t *qpos, halide_buffer_t *k,           \
      halide_buffer_t *k_scale, halide_buffer_t *v, halide_buffer_t *v_scale,  \
      halide_buffer_t *kpos, int32_t window, float scale, uint64_t k_address,  \
      uint64_t v_address, int32_t request_tiles, halide_buffer_t *o,           \
      halide_buffer_t *ml)
STC_ATTENTION(stc_attention_f32);
STC_ATTENTION(stc_attention_f32_hd128);
STC_ATTENTION(stc_attention_f32_hd128_tile);
STC_ATTENTION(stc_attention_f16);
STC_ATTENTION(stc_attention_f16_hd128);
STC_ATTENTION(stc_attention_f16_hd128_tile);
STC_ATTENTION(stc_attention_q8_0);
STC_ATTENTION(stc_attention_q8_0_hd128);
STC_ATTENTION(stc_attention_q8_0_hd128_tile);
}

namespace stc::rt {

// A halide_buffer_t over existing memory, dims innermost first as {extent,
// stride}.
struct HBuf {
  halide_buffer_t buf{};
  halide_dimension_t dims[6]{};

  HBuf(const void *host, halide_type_code_t code, int bits,
       std::initializer_list<std::pair<int32_t, int32_t>> extentsStrides) {
    buf.host = static_cast<uint8_t *>(const_cast<void *>(host));
    buf.type.code = code;
    buf.type.bits = static_cast<uint8_t>(bits);
    buf.type.lanes = 1;
    buf.dimensions = static_cast<int32_t>(extentsStrides.size());
    buf.dim = dims;
    int i = 0;
    for (const auto &es : extentsStrides) {
      dims[i].min = 0;
      dims[i].extent = es.first;
      dims[i].stride = es.second;
      dims[i].flags = 0;
      ++i;
    }
  }
  HBuf(const HBuf &) = delete;
  halide_buffer_t *get() { return &buf; }
};

// A host pointer as the kernels' uint64 address parameters (their prefetches).
inline uint64_t address(const void *p) {
  return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p));
}

} // namespace stc::rt
