// Bandwidth: read bandwidth of this machine, the denominator of every roofline
// stc reports (stc-bench, stc compile --report): streaming, and for the sparse
// ReGLU path the rate of reading scattered rows. Header-only.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

namespace stc::rt {

namespace detail {

// Memory written first, so no page is the shared zero page.
inline std::vector<uint64_t> filledWords(size_t words) {
  std::vector<uint64_t> buf(words);
  for (size_t i = 0; i < buf.size(); ++i)
    buf[i] = i * 0x9E3779B97F4A7C15ull;
  return buf;
}

// Sums n words (four accumulators, so the loop is bound by loads, not adds).
inline uint64_t sumWords(const uint64_t *p, size_t n) {
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (size_t i = 0; i + 4 <= n; i += 4) {
    a0 += p[i];
    a1 += p[i + 1];
    a2 += p[i + 2];
    a3 += p[i + 3];
  }
  return a0 + a1 + a2 + a3;
}

// Median over `passes` of `bytes` / the wall time of `threads` threads each
// running read(t) (which returns a sum, kept so the reads are not optimized
// away).
template <typename Read>
double medianRate(int threads, int passes, double bytes, Read read) {
  std::vector<double> rates;
  for (int pass = 0; pass < passes; ++pass) {
    std::vector<uint64_t> sink(static_cast<size_t>(threads) * 8);
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] { sink[t * 8] = read(t); });
    for (auto &th : pool)
      th.join();
    double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    rates.push_back(bytes / s);
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

} // namespace detail

// `threads` readers over `bytes` of memory, median of `passes`.
inline double measureReadBandwidth(int threads, size_t bytes = size_t(1) << 30,
                                   int passes = 7) {
  threads = std::max(1, threads);
  const std::vector<uint64_t> buf = detail::filledWords(bytes / 8);
  const size_t share = buf.size() / threads;
  return detail::medianRate(
      threads, passes, static_cast<double>(bytes),
      [&](int t) { return detail::sumWords(buf.data() + t * share, share); });
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
  const std::vector<uint64_t> buf = detail::filledWords(rows * words);
  std::vector<size_t> liveRows;
  uint64_t h = 0x243F6A8885A308D3ull;
  for (size_t r = 0; r < rows; ++r) {
    h ^= h >> 12, h ^= h << 25, h ^= h >> 27; // xorshift64
    if (static_cast<double>((h * 0x2545F4914F6CDD1Dull) >> 11) * 0x1p-53 < live)
      liveRows.push_back(r);
  }
  SparseReadRates r;
  const size_t share = rows / threads * words;
  r.streaming = detail::medianRate(
      threads, passes, static_cast<double>(share * threads * 8),
      [&](int t) { return detail::sumWords(buf.data() + t * share, share); });
  if (liveRows.empty()) {
    r.liveRows = r.streaming;
    return r;
  }
  r.liveRows = detail::medianRate(
      threads, passes, static_cast<double>(liveRows.size() * rowBytes),
      [&](int t) {
        const size_t n = liveRows.size(), begin = n * t / threads,
                     end = n * (t + 1) / threads;
        uint64_t sum = 0;
        for (size_t i = begin; i < end; ++i) {
          if (i + 4 < end) {
            const char *next = reinterpret_cast<const char *>(
                buf.data() + liveRows[i + 4] * words);
            for (size_t b = 0; b < rowBytes; b += 64)
              __builtin_prefetch(next + b, 0, 1);
          }
          sum += detail::sumWords(buf.data() + liveRows[i] * words, words);
        }
        return sum;
      });
  return r;
}

// The sparse roofline: seconds per decoded token when `skippable` of its
// `bytes` are read only for live neurons (a share 1 - dead of them, read at
// `liveShare` of the streaming rate) and the rest streams at `bandwidth`.
inline double sparseSecondsPerToken(double bytes, double skippable, double dead,
                                    double bandwidth, double liveShare) {
  return (bytes - skippable) / bandwidth +
         skippable * (1 - dead) / (bandwidth * liveShare);
}

// The rate storage delivers a file's bytes to O_DIRECT reads as the expert
// cache issues them (`inFlight` reads of `bytes` at once, at pseudo-random
// aligned offsets), for about `seconds`: the denominator of a budgeted
// decode's storage bound. Bypasses the page cache, so it neither needs nor
// charges more memory than its buffers (inFlight x bytes). 0 if the file
// cannot be read so (no O_DIRECT, or shorter than one read).
inline double measureStorageReadRate(const char *path, int inFlight = 8,
                                     size_t bytes = size_t(256) << 10,
                                     double seconds = 1.0) {
  const int fd = ::open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0)
    return 0;
  const off_t size = ::lseek(fd, 0, SEEK_END);
  const uint64_t blocks = size > 0 ? static_cast<uint64_t>(size) / bytes : 0;
  std::atomic<uint64_t> total{0};
  std::atomic<bool> failed{false};
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                         start)
        .count();
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < inFlight && blocks > 0; ++t)
    pool.emplace_back([&, t] {
      void *buf = nullptr;
      if (::posix_memalign(&buf, 4096, bytes) != 0) {
        failed = true;
        return;
      }
      uint64_t h = 0x9E3779B97F4A7C15ull * (t + 1);
      while (!failed && elapsed() < seconds) {
        h ^= h >> 12, h ^= h << 25, h ^= h >> 27; // xorshift64
        const off_t at = static_cast<off_t>((h % blocks) * bytes);
        const ssize_t got = ::pread(fd, buf, bytes, at);
        if (got != static_cast<ssize_t>(bytes)) {
          failed = true;
          break;
        }
        total += bytes;
      }
      ::free(buf);
    });
  for (std::thread &th : pool)
    th.join();
  const double s = elapsed();
  ::close(fd);
  return failed || blocks == 0 || s <= 0 ? 0 : total / s;
}

} // namespace stc::rt
