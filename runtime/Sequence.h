// Sequence: one conversation's state in a loaded model: its KV cache, the
// positions it holds and the logits of its last token. The weights, the
// activation buffers and the threads are the model's (Runtime), shared by
// every sequence; a batched step (Runtime::evalBatch) advances several
// sequences at once. A Runtime has a sequence of its own, which the
// single-sequence calls (eval, reset, rewind) use.
#pragma once

#include "KvCache.h"

#include <atomic>
#include <vector>

namespace stc::rt {

class Sequence {
public:
  Sequence() = default;
  Sequence(const Sequence &) = delete;
  Sequence &operator=(const Sequence &) = delete;
  ~Sequence() {
    if (live_)
      --*live_;
  }
  // Positions of context filled.
  int position() const { return pos_; }
  // The logits of the last token evaluated (vocab floats).
  const float *lastLogits() const { return lastLogits_.data(); }

private:
  friend class Runtime;
  KvCache kv_;
  int pos_ = 0;
  std::vector<float> lastLogits_;
  // The model's count of live sequences (a memory budget plans for a number
  // of them), decremented when this one goes.
  std::atomic<int> *live_ = nullptr;
};

} // namespace stc::rt
