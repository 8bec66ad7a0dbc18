// Bandwidth: streaming read bandwidth of this machine, the denominator of every
// roofline stc reports (stc-bench, stc compile --report). Header-only.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

namespace stc::rt {

// `threads` readers over `bytes` of memory written first (so no page is the
// shared zero page), median of `passes`.
inline double measureReadBandwidth(int threads, size_t bytes = size_t(1) << 30,
                                   int passes = 7) {
  threads = std::max(1, threads);
  std::vector<uint64_t> buf(bytes / 8);
  for (size_t i = 0; i < buf.size(); ++i)
    buf[i] = i * 0x9E3779B97F4A7C15ull;
  std::vector<double> rates;
  for (int pass = 0; pass < passes; ++pass) {
    std::vector<uint64_t> sink(static_cast<size_t>(threads) * 8);
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        size_t n = buf.size() / threads, begin = t * n;
        uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (size_t i = begin; i + 4 <= begin + n; i += 4) {
          a0 += buf[i];
          a1 += buf[i + 1];
          a2 += buf[i + 2];
          a3 += buf[i + 3];
        }
        sink[t * 8] = a0 + a1 + a2 + a3;
      });
    for (auto &th : pool)
      th.join();
    double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    rates.push_back(static_cast<double>(bytes) / s);
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

// The read bandwidth of sparse ReGLU's access pattern: rows of `rowBytes`, each
// live with probability `live` (a fixed pseudo-random pattern), only the live
// ones read, each requested into L2 four live rows ahead as the sparse kernels
// do; `threads` readers over contiguous shares of the rows. Measured against
// the streaming rate of the same memory in the same run, because on the machine
// this was written on a live row cost about twice its bytes: the hardware
// prefetchers also fetch the row after it (at 768-byte rows and half of them
// live, reading the live half took as long as streaming everything), so the
// bytes a sparse path skips are not the time it saves.
struct SparseReadRates {
  double streaming = 0; // bytes/s, every row
  double liveRows = 0;  // bytes/s of live rows read (skipped rows not counted)
};
inline SparseReadRates
measureSparseReadBandwidth(int threads, size_t rowBytes, double live,
                           size_t bytes = size_t(512) << 20, int passes = 5) {
  threads = std::max(1, threads);
  rowBytes = std::max<size_t>(64, rowBytes / 64 * 64);
  const size_t rows = bytes / rowBytes, words = rowBytes / 8;
  std::vector<uint64_t> buf(rows * words);
  for (size_t i = 0; i < buf.size(); ++i)
    buf[i] = i * 0x9E3779B97F4A7C15ull;
  std::vector<size_t> liveRows;
  uint64_t h = 0x243F6A8885A308D3ull;
  for (size_t r = 0; r < rows; ++r) {
    h ^= h >> 12, h ^= h << 25, h ^= h >> 27; // xorshift64
    if (static_cast<double>((h * 0x2545F4914F6CDD1Dull) >> 11) * 0x1p-53 < live)
      liveRows.push_back(r);
  }
  auto rate = [&](bool sparse) {
    std::vector<double> rates;
    for (int pass = 0; pass < passes; ++pass) {
      std::vector<uint64_t> sink(static_cast<size_t>(threads) * 8);
      auto t0 = std::chrono::steady_clock::now();
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
          uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
          auto sum = [&](const uint64_t *p, size_t n) {
            for (size_t i = 0; i + 4 <= n; i += 4) {
              a0 += p[i];
              a1 += p[i + 1];
              a2 += p[i + 2];
              a3 += p[i + 3];
            }
          };
          if (!sparse) {
            size_t n = rows / threads;
            sum(buf.data() + t * n * words, n * words);
          } else {
            size_t n = liveRows.size(), begin = n * t / threads,
                   end = n * (t + 1) / threads;
            for (size_t i = begin; i < end; ++i) {
              if (i + 4 < end) {
                const char *next = reinterpret_cast<const char *>(
                    buf.data() + liveRows[i + 4] * words);
                for (size_t b = 0; b < rowBytes; b += 64)
                  __builtin_prefetch(next + b, 0, 1);
              }
              sum(buf.data() + liveRows[i] * words, words);
            }
          }
          sink[t * 8] = a0 + a1 + a2 + a3;
        });
      for (auto &th : pool)
        th.join();
      double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
              .count();
      double read = static_cast<double>(sparse ? liveRows.size() : rows) *
                    static_cast<double>(rowBytes);
      rates.push_back(read / s);
    }
    std::sort(rates.begin(), rates.end());
    return rates[rates.size() / 2];
  };
  SparseReadRates r;
  r.streaming = rate(false);
  r.liveRows = liveRows.empty() ? r.streaming : rate(true);
  return r;
}

} // namespace stc::rt
