// stc_prefetch: called from inside the kernels to request memory into L2: by
// the K-quant gemm for its next row group (targets/kernelgen/quant_dot.h), and
// by the sparse kernels (sparse_up, sparse_down) for the rows of upcoming live
// neurons. Which rows a sparse kernel reads next is data (the live-neuron
// list), so neither the hardware prefetcher (a row is a short run of lines at
// an unpredictable distance) nor Halide 14's prefetch directive (its bounds
// cover the whole matrix once the row index is loaded from memory) can fetch
// them ahead; without it the kernels stalled on every row's first cache lines.
// The rows go to L2 (locality 1, prefetcht2): requests for L1 several rows
// ahead measured 30-40% slower kernels (on the Zen 4 this was measured on), the
// L1's few miss buffers filling up.
#include <cstdint>

extern "C" int32_t stc_prefetch(uint64_t address, int32_t bytes) {
  const char *p = reinterpret_cast<const char *>(address);
  for (int32_t i = 0; i < bytes; i += 64)
    __builtin_prefetch(p + i, 0, 1);
  return 0;
}
