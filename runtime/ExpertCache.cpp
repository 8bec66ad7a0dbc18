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
  void *p = ::mmap(nullptr, slots_ * slotBytes_, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    error = "cannot allocate the expert cache";
    return false;
  }
  arena_ = static_cast<uint8_t *>(p);
  key_.assign(slots_, -1);
  lastUse_.assign(slots_, 0);
  pinned_.assign(slots_, 0);
  state_.reset(new std::atomic<int>[slots_]);
  for (uint64_t i = 0; i < slots_; ++i)
    state_[i].store(0);
  io_ = std::thread([this] { ioLoop(); });
  return true;
}

ExpertCache::~ExpertCache() {
  if (io_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    queued_.notify_all();
    io_.join();
  }
  if (arena_)
    ::munmap(arena_, slots_ * slotBytes_);
}

int ExpertCache::assign(int layer, int32_t e, bool ahead) {
  const int64_t key = static_cast<int64_t>(layer) * numExperts_ + e;
  auto it = where_.find(key);
  if (it != where_.end()) {
    lastUse_[it->second] = ++clock_;
    return it->second;
  }
  // Least recently used slot that is neither being read for the current
  // layer nor pinned by the acquireAll running.
  int victim = -1;
  for (uint64_t s = 0; s < slots_; ++s) {
    if (state_[s].load() == 1 || pinned_[s])
      continue;
    if (victim < 0 || lastUse_[s] < lastUse_[victim])
      victim = static_cast<int>(s);
  }
  if (victim < 0)
    return -1;
  if (key_[victim] >= 0)
    where_.erase(key_[victim]);
  key_[victim] = key;
  where_[key] = victim;
  lastUse_[victim] = ++clock_;
  ++misses_;
  readsAhead_ += ahead;
  state_[victim].store(1);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(victim);
  }
  queued_.notify_one();
  return victim;
}

void ExpertCache::prefetch(int layer, const int32_t *experts, int count) {
  for (int i = 0; i < count; ++i)
    if (experts[i] >= 0 && experts[i] < numExperts_)
      assign(layer, experts[i], true);
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

int ExpertCache::waitForSlot(int layer, int32_t e, std::string &error) {
  int slot = assign(layer, e, false);
  while (slot < 0) {
    // Every slot is being read (a prefill prefetched more experts than fit):
    // wait for one read to finish, then take the least recently used slot.
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
  if (state_[slot].load() != 2) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return state_[slot].load() >= 2; });
  }
  if (state_[slot].load() == 3) {
    error = file_->path() + ": cannot read expert " + std::to_string(e) +
            " of layer " + std::to_string(layer);
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
  std::fill(pinned_.begin(), pinned_.end(), 0);
  return ok;
}

void ExpertCache::ioLoop() {
  while (true) {
    int slot;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      queued_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_)
        return;
      slot = queue_.front();
      queue_.pop_front();
    }
    const int64_t key = key_[slot];
    const int layer = static_cast<int>(key / numExperts_);
    const int e = static_cast<int>(key % numExperts_);
    uint8_t *dst = arena_ + static_cast<uint64_t>(slot) * slotBytes_;
    bool ok = true;
    auto start = std::chrono::steady_clock::now();
    for (int t : tensors_[layer]) {
      const model::Tensor *tensor = file_->model()->tensors()->Get(t);
      uint64_t stride = tensor->expert_stride();
      ok = ok && file_->readTensor(tensor, static_cast<uint64_t>(e) * stride,
                                   dst, stride);
      dst += stride;
      bytesRead_ += stride;
    }
    readNanos_ += static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::steady_clock::now() - start)
            .count());
    {
      std::lock_guard<std::mutex> lock(mutex_);
      state_[slot].store(ok ? 2 : 3);
    }
    done_.notify_all();
  }
}

} // namespace stc::rt
