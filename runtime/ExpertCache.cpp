#include "ExpertCache.h"

#include <algorithm>
#include <chrono>

#include <sys/mman.h>

namespace stc::rt {

uint64_t ExpertCache::slotBytes(const ModelFile &file,
                                const std::vector<std::vector<int>> &tensors) {
  uint64_t bytes = 0;
  for (const std::vector<int> &layer : tensors) {
    uint64_t b = 0;
    for (int t : layer)
      b += file.model()->tensors()->Get(t)->expert_stride();
    bytes = std::max(bytes, b);
  }
  return bytes;
}

bool ExpertCache::init(const ModelFile &file,
                       std::vector<std::vector<int>> tensors, int numExperts,
                       uint64_t slots, std::string &error) {
  file_ = &file;
  tensors_ = std::move(tensors);
  numExperts_ = numExperts;
  slots_ = slots;
  slotBytes_ = slotBytes(file, tensors_);
  // Populated now, as the resident weights are: the plan counts these bytes
  // as the process's from the start, so a cap too small for them fails at
  // load, not in the middle of a reply; and faulting a page in while a read
  // targets it made every first read of a slot zero the page in the I/O
  // thread (the 21B's 6 GiB arena under an 8 GiB cap: a third of all CPU
  // samples in clear_page during its first 50 tokens on a 2-vCPU VM, whose
  // first touch of a page costs more than a read of it).
  void *p = ::mmap(nullptr, slots_ * slotBytes_, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) {
    error = "cannot allocate the expert cache";
    return false;
  }
  arena_ = static_cast<uint8_t *>(p);
  key_.assign(slots_, -1);
  lastUse_.assign(slots_, 0);
  pinned_.assign(slots_, 0);
  guessed_.assign(slots_, 0);
  startedReads_.assign(slots_, 0);
  state_.reset(new std::atomic<int>[slots_]);
  for (uint64_t i = 0; i < slots_; ++i)
    state_[i].store(0);
  pendingReads_.assign(slots_, 0);
  readFailed_.assign(slots_, 0);
  for (int i = 0; i < kIoThreads; ++i)
    io_.emplace_back([this] { ioLoop(); });
  return true;
}

ExpertCache::~ExpertCache() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  queued_.notify_all();
  for (std::thread &t : io_)
    t.join();
  if (arena_)
    ::munmap(arena_, slots_ * slotBytes_);
}

int ExpertCache::assign(int layer, int32_t e, bool ahead, int now) {
  if (now < 0)
    now = layer;
  const int64_t key = static_cast<int64_t>(layer) * numExperts_ + e;
  auto it = where_.find(key);
  if (it != where_.end()) {
    lastUse_[it->second] = ++clock_;
    if (guessed_[it->second]) { // a guess that came true
      guessed_[it->second] = 0;
      ++guessesUsed_;
    }
    return it->second;
  }
  // The victim: an empty slot, else the expert whose layer runs again
  // furthest from now, the least recently used of that layer; never one being
  // read or pinned by the acquireAll running. Layers run in a cycle, so after
  // layer l the next to need their experts are l + 1, l + 2, ..., and this
  // layer's other experts are needed last (at the next token). Least recently
  // used alone evicts exactly those needed soonest whenever the slots are
  // fewer than every layer's working set (each token sweeps all layers): it
  // fell to nearly every read missing.
  const int layers = static_cast<int>(tensors_.size());
  auto distance = [&](uint64_t s) {
    if (key_[s] < 0)
      return layers + 1; // empty
    const int l = static_cast<int>(key_[s] / numExperts_);
    const int d = ((l - now) % layers + layers) % layers;
    return d == 0 ? layers : d;
  };
  int victim = -1, victimDistance = -1;
  for (uint64_t s = 0; s < slots_; ++s) {
    if (state_[s].load() == 1 || pinned_[s])
      continue;
    const int d = distance(s);
    if (d > victimDistance ||
        (d == victimDistance && lastUse_[s] < lastUse_[victim])) {
      victim = static_cast<int>(s);
      victimDistance = d;
    }
  }
  if (victim < 0)
    return -1;
  if (key_[victim] >= 0)
    where_.erase(key_[victim]);
  guessed_[victim] = 0; // (a guess evicted unused stays counted as read)
  key_[victim] = key;
  where_[key] = victim;
  lastUse_[victim] = ++clock_;
  ++misses_;
  readsAhead_ += ahead;
  state_[victim].store(1);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    int requests = 0;
    for (size_t m = 0; m < tensors_[layer].size(); ++m) {
      const uint64_t bytes =
          file_->model()->tensors()->Get(tensors_[layer][m])->expert_stride();
      for (uint64_t at = 0; at < bytes; at += kReadBytes, ++requests)
        queue_.push_back({victim, static_cast<int>(m), at,
                          std::min(kReadBytes, bytes - at)});
    }
    pendingReads_[victim] = requests;
    startedReads_[victim] = 0;
    readFailed_[victim] = 0;
  }
  queued_.notify_all();
  return victim;
}

void ExpertCache::prefetch(int layer, const int32_t *experts, int count,
                           bool pin) {
  releaseAll();
  // The layer's guesses it did not route to: those no thread has started
  // reading give their slot back (and their place in the queue).
  for (uint64_t s = 0; s < slots_; ++s) {
    if (!guessed_[s] || key_[s] < 0 || key_[s] / numExperts_ != layer ||
        std::find(experts, experts + count,
                  static_cast<int32_t>(key_[s] % numExperts_)) !=
            experts + count)
      continue;
    guessed_[s] = 0;
    std::lock_guard<std::mutex> lock(mutex_);
    if (startedReads_[s] > 0 || state_[s].load() != 1)
      continue; // being read, or read: an ordinary cached expert now
    queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                                [&](const Request &r) {
                                  return static_cast<uint64_t>(r.slot) == s;
                                }),
                 queue_.end());
    pendingReads_[s] = 0;
    where_.erase(key_[s]);
    key_[s] = -1;
    state_[s].store(0);
    --misses_;
    --readsAhead_;
    --guessesRead_;
    ++guessesDropped_;
  }
  for (int i = 0; i < count; ++i)
    if (experts[i] >= 0 && experts[i] < numExperts_) {
      const int slot = assign(layer, experts[i], true);
      if (pin && slot >= 0)
        pinned_[slot] = 1;
    }
}

void ExpertCache::guess(int layer, const int32_t *experts, int count) {
  for (int i = 0; i < count; ++i) {
    if (experts[i] < 0 || experts[i] >= numExperts_ ||
        where_.count(static_cast<int64_t>(layer) * numExperts_ + experts[i]))
      continue;
    // Distances from the layer running now (the one before): the guessed
    // layer's own experts are the next needed, not the last.
    const int layers = static_cast<int>(tensors_.size());
    const int slot =
        assign(layer, experts[i], true, (layer + layers - 1) % layers);
    if (slot >= 0) {
      guessed_[slot] = 1;
      ++guessesRead_;
    }
  }
}

const uint8_t *ExpertCache::slotMatrix(int layer, int slot, int which) const {
  uint64_t off = static_cast<uint64_t>(slot) * slotBytes_;
  for (int i = 0; i < which; ++i)
    off += file_->model()->tensors()->Get(tensors_[layer][i])->expert_stride();
  return arena_ + off;
}

bool ExpertCache::acquire(int layer, int32_t e, const uint8_t *matrices[3],
                          std::string &error) {
  const int slot = waitForSlot(layer, e, error);
  if (slot < 0)
    return false;
  for (int i = 0; i < 3; ++i)
    matrices[i] = slotMatrix(layer, slot, i);
  return true;
}

int ExpertCache::reserveSlot(int layer, int32_t e, std::string &error) {
  int slot = assign(layer, e, false);
  while (slot < 0) {
    // Every slot is being read or pinned (a prefill prefetched more experts
    // than fit): wait for one read to finish, then take a free slot.
    if (slots_ == 0) {
      error = "expert cache: the budget leaves no slot for an expert";
      return -1;
    }
    {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [&] {
        for (uint64_t s = 0; s < slots_; ++s)
          if (state_[s].load() != 1 && !pinned_[s])
            return true;
        return false;
      });
    }
    slot = assign(layer, e, false);
  }
  return slot;
}

std::string ExpertCache::readError(int layer, int32_t e) const {
  return file_->path() + ": cannot read expert " + std::to_string(e) +
         " of layer " + std::to_string(layer);
}

int ExpertCache::waitForSlot(int layer, int32_t e, std::string &error) {
  const int slot = reserveSlot(layer, e, error);
  if (slot < 0)
    return -1;
  if (state_[slot].load() != 2) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return state_[slot].load() >= 2; });
  }
  if (state_[slot].load() == 3) {
    error = readError(layer, e);
    return -1;
  }
  return slot;
}

bool ExpertCache::acquireAll(int layer, const int32_t *experts, int count,
                             int32_t *slotsOut, std::string &error) {
  // The budget holds at least top-k slots, so a slot that is neither pinned
  // nor being read always frees up.
  bool ok = true;
  for (int i = 0; i < count && ok; ++i) {
    slotsOut[i] = waitForSlot(layer, experts[i], error);
    ok = slotsOut[i] >= 0;
    if (ok)
      pinned_[slotsOut[i]] = 1;
  }
  releaseAll();
  return ok;
}

bool ExpertCache::reserveAll(int layer, const int32_t *experts, int count,
                             int32_t *slotsOut, std::string &error) {
  for (int i = 0; i < count; ++i) {
    slotsOut[i] = reserveSlot(layer, experts[i], error);
    if (slotsOut[i] < 0) {
      releaseAll();
      return false;
    }
    pinned_[slotsOut[i]] = 1;
  }
  return true;
}

bool ExpertCache::waitReady(int layer, const int32_t *experts,
                            const int32_t *slots, int count,
                            std::vector<char> &taken, std::vector<int> &ready,
                            std::string &error) {
  auto anyResident = [&] {
    for (int i = 0; i < count; ++i)
      if (!taken[i] && state_[slots[i]].load() >= 2)
        return true;
    return false;
  };
  if (!anyResident()) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, anyResident);
  }
  for (int i = 0; i < count; ++i) {
    if (taken[i] || state_[slots[i]].load() < 2)
      continue;
    if (state_[slots[i]].load() == 3) {
      error = readError(layer, experts[i]);
      return false;
    }
    taken[i] = 1;
    ready.push_back(i);
  }
  return true;
}

void ExpertCache::releaseAll() { std::fill(pinned_.begin(), pinned_.end(), 0); }

void ExpertCache::ioLoop() {
  while (true) {
    Request r;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      queued_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_)
        return;
      r = queue_.front();
      queue_.pop_front();
      ++startedReads_[r.slot];
      if (inFlight_++ == 0)
        busySince_ = std::chrono::steady_clock::now();
    }
    // The slot's key stays put while any of its reads is pending (a slot
    // being read is never a victim).
    const int64_t key = key_[r.slot];
    const int layer = static_cast<int>(key / numExperts_);
    const int e = static_cast<int>(key % numExperts_);
    const model::Tensor *tensor =
        file_->model()->tensors()->Get(tensors_[layer][r.matrix]);
    const bool ok = file_->readTensor(
        tensor, static_cast<uint64_t>(e) * tensor->expert_stride() + r.offset,
        const_cast<uint8_t *>(slotMatrix(layer, r.slot, r.matrix)) + r.offset,
        r.bytes);
    bytesRead_ += r.bytes;
    bool finished;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--inFlight_ == 0)
        readNanos_ += static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::steady_clock::now() - busySince_)
                .count());
      readFailed_[r.slot] |= !ok;
      finished = --pendingReads_[r.slot] == 0;
      if (finished)
        state_[r.slot].store(readFailed_[r.slot] ? 3 : 2);
    }
    if (finished)
      done_.notify_all();
  }
}

} // namespace stc::rt
