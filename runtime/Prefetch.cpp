// Software prefetches the kernels call (HalideExtern in
// targets/kernelgen/quant_dot.h).
//
// stc_prefetch: into L2, for the sparse kernels (sparse_up, sparse_down): the
// rows of upcoming live neurons. Which rows a sparse kernel reads next is data
// (the live-neuron list), so neither the hardware prefetcher (a row is a short
// run of lines at an unpredictable distance) nor Halide 14's prefetch directive
// (its bounds cover the whole matrix once the row index is loaded from memory)
// can fetch them ahead; without it the kernels stalled on every row's first
// cache lines. The rows go to L2 (locality 1, prefetcht2): requests for L1
// several rows ahead measured 30-40% slower kernels (on the Zen 4 this was
// measured on), the L1's few miss buffers filling up.
#include <cstdint>

namespace {

// A read prefetch of every cache line of [address, address + bytes) with
// __builtin_prefetch's locality (a compile-time constant).
template <int Locality> int32_t prefetchLines(uint64_t address, int32_t bytes) {
  const char *p = reinterpret_cast<const char *>(address);
  for (int32_t i = 0; i < bytes; i += 64)
    __builtin_prefetch(p + i, 0, Locality);
  return 0;
}

} // namespace

extern "C" int32_t stc_prefetch(uint64_t address, int32_t bytes) {
  return prefetchLines<1>(address, bytes);
}

// stc_prefetch_l1: into L1 (prefetcht0), for the K-quant gemm's next row group
// (a stream consumed in order, one group later). Measured against L2 requests
// (prefetcht2) on Zen 5, 32768 x 1536 matrices from DRAM: Q6_K 24.6 -> 29.8
// GB/s on one thread and 26-38 -> 38-53 on two, Q3_K 21 -> 24.5 and 30-32 ->
// 33-36, Q4_K 26-27 -> 26-28 and 37-39 -> 34-40.
extern "C" int32_t stc_prefetch_l1(uint64_t address, int32_t bytes) {
  return prefetchLines<3>(address, bytes);
}
