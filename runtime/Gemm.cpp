// The weight-streaming kernel calls of the runtime: dense GEMM/GEMV (f32, f16,
// Q4_0, Q8_0 in rows16 tiles, the K-quants in rows16k tiles), the batched GEMV
// over k experts, the Q8_0 activation quantization they share, and the
// embedding row lookup.
#include "Runtime.h"

#include "CpuFeatures.h"
#include "Half.h"
#include "KTileRow.h"
#include "Kernels.h"
#include "RuntimeDetail.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace stc::rt {

void Runtime::embedRow(const Weight &w, int64_t row, float *out) const {
  const int64_t K = w.cols;
  switch (w.t->dtype()) {
  case model::DType::F32:
    std::memcpy(out, w.data + row * K * 4, K * 4);
    return;
  case model::DType::F16:
    for (int64_t k = 0; k < K; ++k)
      out[k] = halfToFloat(loadU16(w.data + (row * K + k) * 2));
    return;
  default:
    break;
  }
  if (isKQuant(w.t->dtype()))
    return kTileRowToFloat(kKindOf(w.t->dtype()), w.data, K, row, out);
  // Rows16: gather the row's bytes out of its group's tiles.
  const int Q = quads(w.t->dtype());
  const int64_t B = K / 32, g = row / 16, l = row % 16;
  const int64_t tileBytes = Q * 64, G = w.rows / 16;
  const uint8_t *tiles = w.data;
  const uint8_t *scales = w.data + G * B * tileBytes;
  for (int64_t b = 0; b < B; ++b) {
    const uint8_t *tile = tiles + (g * B + b) * tileBytes;
    float d = halfToFloat(loadU16(scales + ((g * B + b) * 16 + l) * 2));
    for (int j = 0; j < Q; ++j)
      for (int r = 0; r < 4; ++r) {
        uint8_t byte = tile[j * 64 + l * 4 + r];
        if (Q == 4) {
          out[b * 32 + 4 * j + r] = d * ((byte & 15) - 8);
          out[b * 32 + 16 + 4 * j + r] = d * ((byte >> 4) - 8);
        } else {
          out[b * 32 + 4 * j + r] = d * (static_cast<int>(byte) - 128);
        }
      }
  }
}

int Runtime::rowRanges(const Weight &w, int64_t row,
                       std::pair<uint64_t, uint64_t> ranges[2]) const {
  const int64_t K = w.cols;
  switch (w.t->dtype()) {
  case model::DType::F32:
  case model::DType::F16: {
    const uint64_t bytes = w.t->dtype() == model::DType::F32 ? 4 : 2;
    ranges[0] = {static_cast<uint64_t>(row * K) * bytes, K * bytes};
    return 1;
  }
  default:
    break;
  }
  const int64_t g = row / 16, G = w.rows / 16;
  if (isKQuant(w.t->dtype())) { // the group's tiles hold their scales
    const uint64_t group = static_cast<uint64_t>(K / kKTileCols) *
                           kTileLayout(kKindOf(w.t->dtype())).tileBytes;
    ranges[0] = {g * group, group};
    return 1;
  }
  // Rows16: the group's tiles, then its scales after every group's tiles.
  const uint64_t B = K / 32, tiles = B * quads(w.t->dtype()) * 64;
  ranges[0] = {g * tiles, tiles};
  ranges[1] = {G * tiles + g * B * 16 * 2, B * 16 * 2};
  return 2;
}

bool Runtime::embedRowFromStorage(const Weight &w, int64_t row, float *out,
                                  std::string &error) {
  std::pair<uint64_t, uint64_t> ranges[2];
  const int n = rowRanges(w, row, ranges);
  for (int i = 0; i < n; ++i)
    if (!file_.readIntoImage(w.t, ranges[i].first, ranges[i].second)) {
      error = file_.path() + ": cannot read row " + std::to_string(row) +
              " of '" + w.t->name()->str() + "'";
      return false;
    }
  embedRow(w, row, out);
  for (int i = 0; i < n; ++i)
    file_.releaseFromImage(w.t, ranges[i].first, ranges[i].second);
  return true;
}

int32_t Runtime::groupsPerTask(int32_t groups) const {
  // About four tasks per thread: large enough to stream, small enough to
  // balance.
  return std::max<int32_t>(1, (groups + 4 * threads_ - 1) / (4 * threads_));
}

bool Runtime::quantizeRows(const float *x, int n, int32_t K,
                           std::string &error) {
  const int32_t B = K / 32;
  qx_.resize(static_cast<size_t>(n) * K);
  dx_.resize(static_cast<size_t>(n) * B);
  sx_.resize(dx_.size());
  return quantizeInto(x, n, K, qx_.data(), dx_.data(), sx_.data(), error);
}

bool Runtime::quantizeInto(const float *x, int n, int32_t K, int8_t *q,
                           float *d, float *sums, std::string &error) {
  const int32_t B = K / 32;
  HBuf hx(x, halide_type_float, 32, {{K, 1}, {n, K}});
  HBuf hqx(q, halide_type_int, 8, {{K, 1}, {n, K}});
  HBuf hdx(d, halide_type_float, 32, {{B, 1}, {n, B}});
  HBuf hsx(sums, halide_type_float, 32, {{B, 1}, {n, B}});
  if (stc_quantize_q8(hx.get(), hqx.get(), hdx.get(), hsx.get()) != 0) {
    error = kernelError("quantize_q8 kernel failed");
    return false;
  }
  return true;
}

bool Runtime::kquantGemm(const Weight &w, int32_t experts, int64_t stride,
                         const int32_t *idx, int slots, const int8_t *q,
                         const float *d, const float *sums, bool sharedInput,
                         float *y, int32_t perTask, std::string &error) {
  const KTileLayout L = kTileLayout(kKindOf(w.t->dtype()));
  const int32_t K = static_cast<int32_t>(w.cols),
                N = static_cast<int32_t>(w.rows);
  const int32_t B = K / 32, G = N / 16, SB = K / kKTileCols, tile = L.tileBytes;
  if (stride > INT32_MAX || static_cast<int64_t>(G) * SB * tile > INT32_MAX) {
    error = "tensor '" + w.t->name()->str() +
            "' is too large for one K-quant kernel call";
    return false;
  }
  const int32_t es = static_cast<int32_t>(stride);
  const int32_t rowK = sharedInput ? 0 : K, rowB = sharedInput ? 0 : B;
  HBuf hw(w.data, halide_type_uint, 8,
          {{tile, 1}, {SB, tile}, {G, SB * tile}, {experts, es}});
  HBuf hsd(w.data + L.supers, halide_type_uint, 16,
           {{16, 1},
            {L.mins >= 0 ? 2 : 1, 16},
            {SB, tile / 2},
            {G, SB * tile / 2},
            {experts, es / 2}});
  HBuf hidx(idx, halide_type_int, 32, {{slots, 1}});
  HBuf hqx(q, halide_type_int, 8, {{K, 1}, {slots, rowK}});
  HBuf hdx(d, halide_type_float, 32, {{B, 1}, {slots, rowB}});
  HBuf hsx(sums, halide_type_float, 32, {{B, 1}, {slots, rowB}});
  HBuf hy(y, halide_type_float, 32, {{16, 1}, {G, 16}, {slots, N}});
  auto *kernel = w.t->dtype() == model::DType::Q4_K   ? stc_gemm_q4_k
                 : w.t->dtype() == model::DType::Q5_K ? stc_gemm_q5_k
                 : w.t->dtype() == model::DType::Q6_K ? stc_gemm_q6_k
                                                      : stc_gemm_q3_k;
  if (kernel(hw.get(), hsd.get(), hidx.get(), hqx.get(), hdx.get(), hsx.get(),
             perTask, address(w.data), hy.get()) != 0) {
    error = kernelError("K-quant gemm kernel failed on tensor '" +
                        w.t->name()->str() + "'");
    return false;
  }
  return true;
}

bool Runtime::expertsGemm(int tensor, const int32_t *idx, int slots,
                          bool sharedInput, float *y, std::string &error) {
  Weight w = weight(tensor);
  return expertsGemm(w, static_cast<int32_t>(w.t->shape()->Get(0)),
                     static_cast<int64_t>(w.t->expert_stride()), idx, slots,
                     sharedInput, y, error);
}

bool Runtime::expertsGemm(const Weight &w, int32_t E, int64_t expertStride,
                          const int32_t *idx, int slots, bool sharedInput,
                          float *y, std::string &error) {
  if (isKQuant(w.t->dtype()))
    return kquantGemm(w, E, expertStride, idx, slots, qx_.data(), dx_.data(),
                      sx_.data(), sharedInput, y,
                      groupsPerTask(static_cast<int32_t>(w.rows / 16)), error);
  const int32_t K = static_cast<int32_t>(w.cols),
                N = static_cast<int32_t>(w.rows);
  const int32_t B = K / 32, G = N / 16, Q = quads(w.t->dtype());
  const int32_t tile = Q * 64;
  // Halide's strides are 32-bit: callers keep E * stride below 2^31.
  const int32_t stride = static_cast<int32_t>(expertStride);
  // Every slot reads row 0 of the quantized input when they share it (stride
  // 0).
  const int32_t rowK = sharedInput ? 0 : K, rowB = sharedInput ? 0 : B;
  HBuf hw(w.data, halide_type_uint, 8,
          {{4, 1}, {16, 4}, {Q, 64}, {B, tile}, {G, tile * B}, {E, stride}});
  HBuf hsw(w.data + static_cast<int64_t>(G) * B * tile, halide_type_uint, 16,
           {{16, 1}, {B, 16}, {G, 16 * B}, {E, stride / 2}});
  HBuf hidx(idx, halide_type_int, 32, {{slots, 1}});
  HBuf hqx(qx_.data(), halide_type_int, 8, {{K, 1}, {slots, rowK}});
  HBuf hdx(dx_.data(), halide_type_float, 32, {{B, 1}, {slots, rowB}});
  HBuf hsx(sx_.data(), halide_type_float, 32, {{B, 1}, {slots, rowB}});
  HBuf hy(y, halide_type_float, 32, {{16, 1}, {G, 16}, {slots, N}});
  int rc = w.t->dtype() == model::DType::Q4_0
               ? stc_gemm_experts_q4_0(hw.get(), hsw.get(), hidx.get(),
                                       hqx.get(), hdx.get(), hsx.get(),
                                       groupsPerTask(G), hy.get())
               : stc_gemm_experts_q8_0(hw.get(), hsw.get(), hidx.get(),
                                       hqx.get(), hdx.get(), hsx.get(),
                                       groupsPerTask(G), hy.get());
  if (rc != 0) {
    error = kernelError("expert gemm kernel failed on tensor '" +
                        w.t->name()->str() + "'");
    return false;
  }
  return true;
}

bool Runtime::gemm(const float *x, int n, const Weight &w, float *y,
                   std::string &error) {
  const int32_t K = static_cast<int32_t>(w.cols),
                N = static_cast<int32_t>(w.rows);
  int rc = 0;
  switch (w.t->dtype()) {
  case model::DType::F32:
  case model::DType::F16: {
    HBuf hw(w.data, halide_type_float,
            w.t->dtype() == model::DType::F32 ? 32 : 16, {{K, 1}, {N, K}});
    HBuf hx(x, halide_type_float, 32, {{K, 1}, {n, K}});
    HBuf hy(y, halide_type_float, 32, {{N, 1}, {n, N}});
    rc = w.t->dtype() == model::DType::F32
             ? stc_gemm_f32(hw.get(), hx.get(), hy.get())
             : stc_gemm_f16(hw.get(), hx.get(), hy.get());
    break;
  }
  case model::DType::Q8_0:
  case model::DType::Q4_0:
  case model::DType::Q4_K:
  case model::DType::Q5_K:
  case model::DType::Q6_K:
  case model::DType::Q3_K:
    // Quantize the activations once per call; every row of W reuses them.
    return quantizeRows(x, n, K, error) &&
           gemmQuantized(qx_.data(), dx_.data(), sx_.data(), n, w, y,
                         groupsPerTask(N / 16), error);
  default:
    error = "tensor '" + w.t->name()->str() + "' has a dtype no kernel reads";
    return false;
  }
  if (rc != 0) {
    error = kernelError("gemm kernel failed on tensor '" + w.t->name()->str() +
                        "'");
    return false;
  }
  return true;
}

namespace {

// How many bytes of the next row group the dense rows16 gemm (Q4_0, Q8_0:
// the head and attention projections) requests into L1 while a group runs
// (quant_dot.h's requestNextGroup), or 0 for none. Whether it pays depends on
// the CPU. On a 2-vCPU Intel Xeon (family 6 model 167, 2.0 GHz), whose
// hardware prefetcher alone left these kernels at ~60% of the read probe, the
// request cut the 4b q4_0 file's dense gemm from 24.3 to 18.5 ms per token on
// one thread and from 13.4 to 11.1 on two (decode +16% / +8%, stc-bench
// --profile). On Zen 5 the same request made the kernel slower (24 -> 20 GB/s
// in a kernel benchmark, one thread, 32768 x 1536 from DRAM). So: on for
// Intel CPUs, off elsewhere; STC_DENSE_REQUEST=0 or 1 overrides (to measure
// both on one build).
int32_t denseRequestBytes(int32_t groupBytes) {
  static const bool on = [] {
    if (const char *e = std::getenv("STC_DENSE_REQUEST"))
      return std::strcmp(e, "0") != 0;
    return hostCpuVendor() == "GenuineIntel";
  }();
  return on ? groupBytes : 0;
}

} // namespace

bool Runtime::gemmQuantized(const int8_t *q, const float *d, const float *sums,
                            int n, const Weight &w, float *y, int32_t perTask,
                            std::string &error) {
  if (isKQuant(w.t->dtype())) {
    // One matrix: every slot (token) reads expert 0. Per calling thread (the
    // prefill's expert tasks call this at once), grown only, so decode's
    // calls allocate nothing.
    thread_local std::vector<int32_t> zeros;
    if (zeros.size() < static_cast<size_t>(n))
      zeros.resize(static_cast<size_t>(n), 0);
    return kquantGemm(w, 1, 0, zeros.data(), n, q, d, sums, false, y, perTask,
                      error);
  }
  const int32_t K = static_cast<int32_t>(w.cols),
                N = static_cast<int32_t>(w.rows);
  const int32_t B = K / 32, G = N / 16, Q = quads(w.t->dtype());
  HBuf hqx(q, halide_type_int, 8, {{K, 1}, {n, K}});
  HBuf hdx(d, halide_type_float, 32, {{B, 1}, {n, B}});
  HBuf hsx(sums, halide_type_float, 32, {{B, 1}, {n, B}});
  const int32_t tile = Q * 64;
  HBuf hw(w.data, halide_type_uint, 8,
          {{4, 1}, {16, 4}, {Q, 64}, {B, tile}, {G, tile * B}});
  HBuf hsw(w.data + static_cast<int64_t>(G) * B * tile, halide_type_uint, 16,
           {{16, 1}, {B, 16}, {G, 16 * B}});
  HBuf hy(y, halide_type_float, 32, {{16, 1}, {G, 16}, {n, N}});
  const int rc = w.t->dtype() == model::DType::Q4_0
                     ? stc_gemm_q4_0(hw.get(), hsw.get(), hqx.get(), hdx.get(),
                                     hsx.get(), perTask, address(w.data),
                                     denseRequestBytes(tile * B), hy.get())
                     : stc_gemm_q8_0(hw.get(), hsw.get(), hqx.get(), hdx.get(),
                                     hsx.get(), perTask, address(w.data),
                                     denseRequestBytes(tile * B), hy.get());
  if (rc != 0) {
    error = kernelError("gemm kernel failed on tensor '" + w.t->name()->str() +
                        "'");
    return false;
  }
  return true;
}

} // namespace stc::rt
