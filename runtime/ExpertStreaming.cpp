// Experts under a memory budget and the route-ahead prefetch: the expert
// cache the memory plan sized, and starting the reads of a layer's routed
// experts while attention computes.
#include "Runtime.h"

#include <cstdio>
#include <sys/mman.h>
#include <unistd.h>

namespace stc::rt {

bool Runtime::initExpertCache(std::string &error) {
  cache_ = std::make_unique<ExpertCache>();
  return cache_->init(file_, moeWeights_, config().num_experts(), plan_.slots,
                      error);
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
