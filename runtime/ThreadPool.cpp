#include "ThreadPool.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace stc::rt {

namespace {

// 24 generation bits: a worker would have to sleep through 16M jobs between
// reading the claim word and claiming for a generation to repeat.
constexpr uint64_t kIndexBits = 20, kSizeBits = 20;
constexpr uint64_t kMask = (uint64_t(1) << kIndexBits) - 1;
constexpr int kSpins = 1 << 16; // about 0.1-0.5 ms of pause before sleeping

uint64_t genOf(uint64_t c) { return c >> (kIndexBits + kSizeBits); }
uint64_t sizeOf(uint64_t c) { return (c >> kIndexBits) & kMask; }
uint64_t indexOf(uint64_t c) { return c & kMask; }

void pause() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

thread_local ThreadPool *t_current = nullptr;
thread_local bool t_insideTask = false;

int doParFor(void *uc, halide_task_t task, int min, int size,
             uint8_t *closure) {
  if (ThreadPool *pool = t_current)
    return pool->parallelFor(uc, task, min, size, closure);
  for (int i = 0; i < size; ++i) // no pool on this thread: serially
    if (int rc = task(uc, min + i, closure))
      return rc;
  return 0;
}

} // namespace

ThreadPool::ThreadPool(int threads, bool workersOnly)
    : workersOnly_(workersOnly) {
  for (int i = 1; i < threads; ++i)
    workers_.emplace_back([this] { workerLoop(); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  { std::lock_guard<std::mutex> lock(mutex_); }
  wake_.notify_all();
  for (std::thread &t : workers_)
    t.join();
}

ThreadPool::Use::Use(ThreadPool *pool) : previous_(t_current) {
  // Every kernel's parallel loop goes through doParFor from the first use on
  // (setting it again is harmless).
  static const bool installed = [] {
    halide_set_custom_do_par_for(doParFor);
    return true;
  }();
  (void)installed;
  t_current = pool;
}

ThreadPool::Use::~Use() { t_current = previous_; }

bool ThreadPool::tryRunOne(bool worker) {
  uint64_t c = claim_.load(std::memory_order_acquire);
  while (indexOf(c) < sizeOf(c)) {
    // While the claimed job is unfinished its fields are stable (they are
    // written only between jobs), so read them before the claim and use them
    // after.
    halide_task_t task = task_;
    void *uc = userContext_;
    uint8_t *closure = closure_;
    int min = min_;
    if (claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel)) {
      t_insideTask = true;
      int rc = task(uc, min + static_cast<int>(indexOf(c)), closure);
      t_insideTask = false;
      if (rc != 0)
        error_.store(rc);
      if (worker)
        tasksOnWorkers_.fetch_add(1, std::memory_order_relaxed);
      done_.fetch_add(1, std::memory_order_release);
      return true;
    }
  }
  return false;
}

int ThreadPool::parallelFor(void *uc, halide_task_t task, int min, int size,
                            uint8_t *closure) {
  if (workers_.empty() || size <= 1 || t_insideTask ||
      static_cast<uint64_t>(size) > kMask) {
    for (int i = 0; i < size; ++i)
      if (int rc = task(uc, min + i, closure))
        return rc;
    return 0;
  }
  task_ = task;
  userContext_ = uc;
  closure_ = closure;
  min_ = min;
  done_.store(0, std::memory_order_relaxed);
  error_.store(0, std::memory_order_relaxed);
  generation_ = (generation_ + 1) & 0xFFFFFF;
  claim_.store((generation_ << (kIndexBits + kSizeBits)) |
                   (static_cast<uint64_t>(size) << kIndexBits),
               std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    { std::lock_guard<std::mutex> lock(mutex_); }
    wake_.notify_all();
  }
  while (!workersOnly_ && tryRunOne(false)) {
  }
  while (done_.load(std::memory_order_acquire) < size)
    pause();
  return error_.load();
}

void ThreadPool::workerLoop() {
  uint64_t seen = genOf(claim_.load());
  while (!stop_.load(std::memory_order_relaxed)) {
    if (tryRunOne(true))
      continue;
    // Nothing to claim: spin a while for the next job, then sleep until one
    // comes.
    bool found = false;
    for (int i = 0; i < kSpins && !stop_.load(std::memory_order_relaxed); ++i) {
      uint64_t c = claim_.load(std::memory_order_acquire);
      if (genOf(c) != seen && indexOf(c) < sizeOf(c)) {
        found = true;
        break;
      }
      pause();
    }
    if (found) {
      seen = genOf(claim_.load());
      continue;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    wake_.wait(lock, [&] {
      uint64_t c = claim_.load(std::memory_order_seq_cst);
      return stop_.load() || (indexOf(c) < sizeOf(c));
    });
    sleepers_.fetch_sub(1, std::memory_order_seq_cst);
    seen = genOf(claim_.load());
  }
}

} // namespace stc::rt
