// MemoryPlan: how a memory budget is spent. A budget bounds what a memory
// cgroup charges the process (what a phone, a board or a container with that
// much memory enforces): its anonymous memory, the page cache its reads and
// mappings fault in, and its code. The runtime plans every part at load:
// the plan and the dense weights resident (read past the page cache), the
// embedding read a row at a time when no matmul needs it, the KV cache for the
// context, the activation buffers and scratch for the prefill batch, the
// process itself (code, stacks, heap, tokenizer), a safety margin, and the rest
// for expert-cache slots. Everything that allocates at run time is sized here.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace stc::rt {

struct MemoryPlan {
  uint64_t budget = 0;
  uint64_t resident = 0; // the plan and the dense weights
  uint64_t onDemand = 0; // weights read a row at a time (not resident)
  uint64_t kv = 0;       // KV caches of `sequences` sequences of `context`
                         // positions (rings included), the RoPE tables and
                         // attention states that grow with it
  int context = 0;
  int sequences = 1;
  bool contextChosen = false; // picked by the plan (no --ctx)
  uint64_t activations = 0;   // buffers and scratch for `batch` tokens
  int batch = 0;
  int logitRows = 0;    // rows of logits kept at once
  uint64_t process = 0; // code, thread stacks, heap, tokenizer
  uint64_t margin = 0;  // what the estimates may miss
  uint64_t slotBytes = 0;
  uint64_t slots = 0; // expert-cache slots (one layer's gate, up, down each)

  uint64_t experts() const { return slots * slotBytes; }
  // "budget 1024.0 MiB: dense weights 230.1 MiB resident, ..." (MiB).
  std::string describe() const;
};

// What the plan is made from (the runtime fills it from the model file).
struct MemoryPlanInputs {
  uint64_t budget = 0;
  uint64_t resident = 0, onDemand = 0;
  uint64_t slotBytes = 0;
  uint64_t maxSlots = 0; // every (layer, expert)
  int topK = 0, layers = 0;
  int trainedContext = 0;
  int requestedContext = 0; // 0: the plan chooses
  // Sequences, each with a KV cache of the context; 0: the plan chooses (up
  // to 4, as many as get a useful context each).
  int sequences = 1;
  int maxBatch = 0;  // the model's planned prefill chunk
  int logitRows = 1; // rows of logits kept at once (at most a batch)
  uint64_t process = 0;
  // KV bytes for a context of n positions for s sequences; activation bytes
  // for a batch with some rows of logits.
  std::function<uint64_t(int, int)> kvBytes;
  std::function<uint64_t(int, int)> activationBytes;
};
// The plan for `in`, or false with a one-line `error` that gives the numbers:
// a budget below the dense weights, the process and one layer's experts, or a
// requested context whose KV cache cannot fit beside them.
bool planMemory(const MemoryPlanInputs &in, MemoryPlan &plan,
                std::string &error);

} // namespace stc::rt
