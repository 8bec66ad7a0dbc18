// ExpertCache: under a memory budget, experts are not read through the mapping
// (which would grow RSS without bound) but streamed with pread into a fixed
// arena of slots, one (layer, expert) triple of gate/up/down matrices per slot;
// the expert out is the one whose layer runs again furthest from now (assign).
// The route-ahead dispatch names the layer's experts early, and (one token at
// a time) guesses the next layer's; I/O threads read them while attention
// runs, and the MoE step computes each expert as soon as it is resident.
#pragma once

#include "ModelFile.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace stc::rt {

class ExpertCache {
public:
  ~ExpertCache();
  // `tensors[layer]` = {gate, up, down} tensor ids; `slots` triples fit the
  // budget.
  bool init(const ModelFile &file, std::vector<std::vector<int>> tensors,
            int numExperts, uint64_t slots, std::string &error);
  static uint64_t slotBytes(const ModelFile &file,
                            const std::vector<std::vector<int>> &tensors);

  // Starts reading the given experts of `layer` (duplicates and cached ones
  // skipped); with `pin`, they stay resident (not victims of other reads)
  // until the next prefetch or releaseAll. Guesses of `layer` (guess) that
  // are not among them and that no read has started on are dropped.
  void prefetch(int layer, const int32_t *experts, int count, bool pin = false);
  // Starts reading experts that `layer` will probably route to (the layer
  // before guessed them), queued behind every read queued so far.
  void guess(int layer, const int32_t *experts, int count);
  // Waits until expert `e` of `layer` is resident and returns its slot's
  // matrices (which = 0 gate, 1 up, 2 down). Valid until the next
  // prefetch/acquire of another layer.
  bool acquire(int layer, int32_t e, const uint8_t *matrices[3],
               std::string &error);

  // acquire for `count` distinct experts of `layer` at once: all of them stay
  // resident until the next call (none is the victim of another's read), and
  // slotsOut[i] is experts[i]'s slot in the arena.
  bool acquireAll(int layer, const int32_t *experts, int count,
                  int32_t *slotsOut, std::string &error);
  // acquireAll in steps, so that the experts already resident are computed
  // while the others are still being read: reserveAll gives each expert its
  // slot (queueing the reads of the missing ones) and pins them all until
  // releaseAll; waitReady blocks until at least one of the slots not yet
  // `taken` is resident and appends the indices of all such ones to `ready`
  // (marking them taken); false with `error` if a read failed.
  bool reserveAll(int layer, const int32_t *experts, int count,
                  int32_t *slotsOut, std::string &error);
  bool waitReady(int layer, const int32_t *experts, const int32_t *slots,
                 int count, std::vector<char> &taken, std::vector<int> &ready,
                 std::string &error);
  void releaseAll();
  // Matrix `which` (0 gate, 1 up, 2 down) of a layer's expert in `slot`; the
  // slots are slotStride() bytes apart.
  const uint8_t *slotMatrix(int layer, int slot, int which) const;
  uint64_t slotStride() const { return slotBytes_; }
  uint64_t slots() const { return slots_; }
  uint64_t misses() const { return misses_; }
  // Of the misses, the reads queued by prefetch (ahead of their use) rather
  // than by acquire.
  uint64_t readsAhead() const { return readsAhead_; }
  uint64_t bytesRead() const { return bytesRead_; }
  // Guessed experts: read (counted in misses()), and of those, routed to
  // when their layer ran; dropped before any of their bytes were read (not
  // counted in misses()).
  uint64_t guessesRead() const { return guessesRead_; }
  uint64_t guessesUsed() const { return guessesUsed_; }
  uint64_t guessesDropped() const { return guessesDropped_; }
  // Wall time with at least one read in flight (bytesRead() / readSeconds() is
  // rate the storage, or the page cache, delivered).
  double readSeconds() const { return readNanos_ * 1e-9; }

private:
  // Main thread only: the slot for (layer, e), queueing its read on a miss
  // (`ahead`: for a prefetch, counted in readsAhead()).
  // The victim is chosen by distances from layer `now` (-1: `layer`).
  int assign(int layer, int32_t e, bool ahead, int now = -1);
  // The slot of (layer, e), waiting for a slot to free up if every one is
  // being read or pinned; -1 with `error` if the budget left no slot.
  int reserveSlot(int layer, int32_t e, std::string &error);
  // acquire's wait: the resident slot of (layer, e), or -1 with `error`.
  int waitForSlot(int layer, int32_t e, std::string &error);
  std::string readError(int layer, int32_t e) const;
  void ioLoop();

  const ModelFile *file_ = nullptr;
  std::vector<std::vector<int>> tensors_;
  int numExperts_ = 0;
  uint64_t slots_ = 0, slotBytes_ = 0;
  uint8_t *arena_ = nullptr;
  std::vector<int64_t> key_;      // (layer * E + e) held by each slot
  std::vector<uint64_t> lastUse_; // LRU clock per slot
  std::vector<char> pinned_;      // held by the acquireAll running
  std::vector<char> guessed_;     // read on a guess, not routed to yet
  std::unique_ptr<std::atomic<int>[]>
      state_; // 0 empty, 1 queued, 2 ready, 3 failed
  std::unordered_map<int64_t, int> where_; // key -> slot
  uint64_t clock_ = 0;

  // The reads: each matrix (gate, up, down) of a slot being filled as
  // requests of at most kReadBytes, queued in order and served by kIoThreads
  // threads at once. Storage behind a virtual disk (or an NVMe drive) may
  // deliver several times the bandwidth to several requests in flight as to
  // one (O_DIRECT reads of 640 KiB on one 2-vCPU Intel VM: 2.0 GB/s with one
  // in flight, 15.8 with 8); where it is capped it is not worse (another VM
  // of that kind: 1.95 GB/s with one, 2.23 with 8, 2.35 with 8 of 256 KiB).
  // Requests smaller than a matrix finish in the order they were queued, so
  // the first expert of a layer is resident (and computed, waitReady) while
  // the last is still being read, instead of all of them at the end.
  static constexpr int kIoThreads = 8;
  static constexpr uint64_t kReadBytes = 256 << 10;
  struct Request {
    int slot, matrix;
    uint64_t offset, bytes; // within the matrix
  };
  std::mutex mutex_;
  std::condition_variable queued_, done_;
  std::deque<Request> queue_;
  std::vector<int> pendingReads_; // per slot: its requests not served yet
  std::vector<int> startedReads_; // per slot: its requests taken by a thread
  std::vector<char> readFailed_;  // per slot, while being read
  std::vector<std::thread> io_;
  bool stop_ = false;
  int inFlight_ = 0; // reads being served (mutex_)
  std::chrono::steady_clock::time_point busySince_;
  std::atomic<uint64_t> bytesRead_{0}, readNanos_{0};
  uint64_t misses_ = 0;     // experts read from the file
  uint64_t readsAhead_ = 0; // of those, queued by prefetch
  uint64_t guessesRead_ = 0, guessesUsed_ = 0, guessesDropped_ = 0;
};

} // namespace stc::rt
