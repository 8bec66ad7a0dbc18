// Experts under a memory budget and the route-ahead prefetch: sizing the
// expert cache from the budget, and starting the reads of a layer's routed
// experts while attention computes.
#include "Runtime.h"

#include <cstdio>
#include <sys/mman.h>
#include <unistd.h>

namespace stc::rt {

bool Runtime::initExpertCache(uint64_t budget, bool expertsFromStorage,
                              std::string &error) {
  const model::Model *m = file_.model();
  const model::Config &c = config();
  std::vector<bool> isExpert(m->tensors()->size(), false);
  for (const std::vector<int> &layer : moeWeights_)
    for (int t : layer)
      isExpert[t] = true;
  uint64_t dense = 0;
  for (size_t i = 0; i < isExpert.size(); ++i)
    if (!isExpert[i])
      dense += m->tensors()->Get(i)->size();
  // What this process holds besides weights: activation buffers, KV caches,
  // RoPE tables, and a fixed reserve for code, libraries, stacks and the heap.
  constexpr uint64_t kReserve = 48ull << 20;
  uint64_t overhead = kReserve + (cos_.size() + sin_.size()) * 4;
  for (const std::vector<uint8_t> &b : bufs_)
    overhead += b.size();
  overhead += kv_.bytes();
  const uint64_t slotBytes = ExpertCache::slotBytes(file_, moeWeights_);
  const uint64_t minimum = dense + overhead + slotBytes * c.top_k();
  if (slotBytes == 0 || budget < minimum) {
    char buf[256];
    std::snprintf(buf, sizeof(buf),
                  "memory budget %.1f MiB is below the minimum %.1f MiB: dense "
                  "weights %.1f MiB, buffers and KV %.1f MiB, one layer's %d "
                  "active experts %.1f MiB",
                  budget / 1048576.0, minimum / 1048576.0, dense / 1048576.0,
                  overhead / 1048576.0, c.top_k(),
                  slotBytes * c.top_k() / 1048576.0);
    error = file_.path() + ": " + buf;
    return false;
  }
  uint64_t slots = (budget - dense - overhead) / slotBytes;
  slots = std::min<uint64_t>(slots, static_cast<uint64_t>(c.num_layers()) *
                                        c.num_experts());
  if (expertsFromStorage && !file_.readFromStorage(error))
    return false;
  cache_ = std::make_unique<ExpertCache>();
  return cache_->init(file_, moeWeights_, c.num_experts(), slots, error);
}

void Runtime::prefetchExperts(int layer, const int32_t *idx, int count) {
  if (layer < 0 || layer >= static_cast<int>(moeWeights_.size()))
    return;
  if (cache_) {
    // Under a budget: queue the reads of the missing ones on the cache's I/O
    // thread, which runs them while attention computes.
    cache_->prefetch(layer, idx, count);
    return;
  }
  if (populated_)
    return; // resident weights: nothing to fetch
  const long page = ::sysconf(_SC_PAGESIZE);
  const int E = config().num_experts();
  for (int i = 0; i < count; ++i) {
    if (idx[i] < 0 || idx[i] >= E)
      continue;
    for (int tensor : moeWeights_[layer]) {
      const model::Tensor *t = file_.model()->tensors()->Get(tensor);
      uintptr_t begin = reinterpret_cast<uintptr_t>(file_.tensorData(t)) +
                        static_cast<uint64_t>(idx[i]) * t->expert_stride();
      uintptr_t aligned = begin & ~static_cast<uintptr_t>(page - 1);
      ::madvise(reinterpret_cast<void *>(aligned),
                begin - aligned + t->expert_stride(), MADV_WILLNEED);
    }
  }
}

} // namespace stc::rt
