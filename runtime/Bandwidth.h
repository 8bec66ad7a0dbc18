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

} // namespace stc::rt
