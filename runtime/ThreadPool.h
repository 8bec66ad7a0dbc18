// ThreadPool: the runtime's worker threads, installed as Halide's do_par_for so
// every kernel's parallel loop runs on them. Decode issues a few hundred short
// parallel loops per token; waking sleeping threads for each (Halide's default
// pool) cost ~20% of the time in the kernel scheduler, so idle workers spin
// briefly before they sleep.
#pragma once

#include "HalideRuntime.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace stc::rt {

class ThreadPool {
public:
  explicit ThreadPool(int threads); // the caller is one of the threads
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  // Runs task(user_context, i, closure) for i in [min, min + size) on all
  // threads.
  int parallelFor(void *userContext, halide_task_t task, int min, int size,
                  uint8_t *closure);
  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs f(i) for i in [0, n) on all threads, each index once, claimed in
  // order; the kernels f calls run their own parallel loops serially (a task
  // never waits on the pool). Returns the first nonzero f returned, or 0.
  template <class F> int forEach(int n, F &f) {
    auto trampoline = [](void *, int i, uint8_t *closure) -> int {
      return (*reinterpret_cast<F *>(closure))(i);
    };
    return parallelFor(nullptr, trampoline, 0, n,
                       reinterpret_cast<uint8_t *>(&f));
  }

  // Makes `pool` the one Halide's kernels use (nullptr: back to Halide's own).
  static void install(ThreadPool *pool);

private:
  void workerLoop();
  bool tryRunOne();

  // One word holds the job: generation (16 bits) | size (24) | next index (24),
  // so a successful claim proves the job it belongs to is still the current
  // one.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int> done_{0}, error_{0};
  halide_task_t task_ = nullptr;
  void *userContext_ = nullptr;
  uint8_t *closure_ = nullptr;
  int min_ = 0;
  uint64_t generation_ = 0;

  std::vector<std::thread> workers_;
  std::atomic<bool> stop_{false};
  std::atomic<int> sleepers_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
};

} // namespace stc::rt
