// ThreadPool: the runtime's worker threads. Halide's do_par_for is
// process-wide, so ours runs each kernel's parallel loop on the pool the
// calling thread is using (ThreadPool::Use, set by each model's evaluation):
// two models in one process keep their own threads. Decode issues a few hundred
// short parallel loops per token; waking sleeping threads for each (Halide's
// default pool) cost ~20% of the time in the kernel scheduler, so idle workers
// spin briefly before they sleep.
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
  // The caller is one of the threads, unless `workersOnly` (a test knob: the
  // caller then only waits, so every loop of two or more tasks provably runs
  // on the other threads; with one thread, loops run serially as always).
  explicit ThreadPool(int threads, bool workersOnly = false);
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

  // While alive, the kernels this thread calls run their parallel loops on
  // `pool` (nullptr: serially). Nests.
  class Use {
  public:
    explicit Use(ThreadPool *pool);
    ~Use();
    Use(const Use &) = delete;
    Use &operator=(const Use &) = delete;

  private:
    ThreadPool *previous_;
  };

  // Tasks run by the pool's workers rather than by the thread that started
  // the loop, since the pool was made: how much of the work really split.
  uint64_t tasksOnWorkers() const {
    return tasksOnWorkers_.load(std::memory_order_relaxed);
  }

private:
  void workerLoop();
  bool tryRunOne(bool worker);
  std::atomic<uint64_t> tasksOnWorkers_{0};
  bool workersOnly_ = false;

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
