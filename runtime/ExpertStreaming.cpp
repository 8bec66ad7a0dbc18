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

bool Runtime::routeAhead(const model::Step *d, const float *x, int n,
                         float *wts, int32_t *idx, std::string &error) {
  Weight w = weight(d->weights()->Get(0));
  routerLogits_.resize(static_cast<size_t>(n) * w.rows);
  if (!gemm(x, n, w, routerLogits_.data(), error))
    return false;
  route(routerLogits_.data(), static_cast<int>(w.rows), n, d, wts, idx);
  return true;
}

bool Runtime::prefetchExperts(const model::Step *s, const float *x,
                              const int32_t *idx, int n, std::string &error) {
  const int layer = s->layer();
  const int count = n * static_cast<int>(s->ints()->Get(0));
  if (layer < 0 || layer >= static_cast<int>(moeWeights_.size()))
    return true;
  if (cache_) {
    // Under a budget: queue the reads of the missing ones on the cache's I/O
    // threads, which run them while attention computes. One token's experts
    // stay resident until its MoE step has run (the next layer's guesses
    // must not evict them), and its next layer is guessed.
    cache_->prefetch(layer, idx, count, n == 1);
    return n != 1 || guessNextLayer(s, x, error);
  }
  if (populated_)
    return true; // resident weights: nothing to fetch
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
  return true;
}

bool Runtime::guessNextLayer(const model::Step *s, const float *x,
                             std::string &error) {
  // The next layer's router applied to this layer's input: the residual
  // stream changes little from one layer to the next, so its top-k is mostly
  // the experts the next layer will choose (95.7% of them on the 4b paper
  // file, decoding random ids), and their reads can start a whole layer
  // earlier: queued behind this layer's, they keep the storage busy while
  // this layer's last experts compute and the next layer's attention runs.
  // A wrong guess that no read has started on is dropped when the next
  // layer routes (ExpertCache::prefetch).
  const int next = s->layer() + 1;
  if (next >= static_cast<int>(dispatchOf_.size()) || dispatchOf_[next] < 0)
    return true;
  const model::Step *d = file_.model()->steps()->Get(dispatchOf_[next]);
  const int K = static_cast<int>(d->ints()->Get(0));
  guessWeights_.resize(K);
  guessExperts_.resize(K);
  if (!routeAhead(d, x, 1, guessWeights_.data(), guessExperts_.data(), error))
    return false;
  cache_->guess(next, guessExperts_.data(), K);
  return true;
}

} // namespace stc::rt
