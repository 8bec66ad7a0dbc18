// The runtime's side of a memory budget (MemoryPlan.h): which tensors stay
// resident, what the activations, the KV cache and the process take, the
// plan, and the load of the resident weights past the page cache.
#include "Runtime.h"

#include <algorithm>
#include <sys/stat.h>

namespace stc::rt {

namespace {

constexpr uint64_t kMiB = uint64_t(1) << 20;

} // namespace

uint64_t Runtime::activationBytes(int batch, int logitRows) const {
  const model::Config &c = config();
  const uint64_t n = static_cast<uint64_t>(batch);
  const uint64_t D = c.hidden_size(), F = c.expert_ffn(), K = c.top_k(),
                 E = c.num_experts(), V = c.vocab_size(),
                 width = static_cast<uint64_t>(c.num_heads()) * c.head_dim();
  const uint64_t widest = std::max({D, F, width});
  const model::Model *m = file_.model();
  uint64_t bytes = 0;
  // The plan's buffers, `batch` rows each, the logits only for the rows kept.
  for (uint32_t i = 0; i < m->buffers()->size(); ++i) {
    const uint64_t rows =
        static_cast<int32_t>(i) == m->logits_buffer() ? logitRows : n;
    bytes += m->buffers()->Get(i)->width() * rows * 4;
  }
  bytes += V * 4;     // the last logits
  bytes += n * E * 4; // router logits
  // Activations quantized to Q8_0 (int8 values, a scale and a sum per 32).
  bytes += n * widest * (1 + 8 / 32.0);
  // The MoE through the expert cache: an expert's tokens' inputs, gate, up
  // and outputs, every slot's output (added in routing order); the sparse
  // path's live neurons (entry and up value each).
  bytes += n * (2 * D + 2 * F) * 4 + n * K * D * 4 + n * K * F * 16;
  // Attention: each query tile's rows, its state and a chunk's, padded to
  // blocks of 8 rows (decode's chunk states grow with the context:
  // contextBytes).
  const uint64_t G = c.num_heads() / c.num_kv_heads();
  const uint64_t rowsPadded = (G * 16 + 7) / 8 * 8;
  const uint64_t tiles = (n + 15) / 16 * c.num_kv_heads();
  bytes += 3 * tiles * rowsPadded * (c.head_dim() + 2) * 4;
  return bytes;
}

uint64_t Runtime::contextBytes(int context, int sequences) const {
  // Each sequence's KV cache, the RoPE tables (cos and sin, head_dim / 2 each
  // per position) and decode's attention states (a chunk of 256 slots each,
  // for every sequence of a step).
  const model::Config &c = config();
  const uint64_t n = static_cast<uint64_t>(context);
  const uint64_t G = c.num_heads() / c.num_kv_heads();
  const uint64_t S = static_cast<uint64_t>(sequences);
  return S * KvCache::bytesFor(kvLayers(context), c.num_kv_heads(),
                               c.head_dim()) +
         n * c.head_dim() * 4 +
         S * (n + 255) / 256 * c.num_kv_heads() * ((G + 7) / 8 * 8) *
             (c.head_dim() + 2) * 4;
}

uint64_t Runtime::processBytes() const {
  // The code (this program's file, as much of it as can be paged in), the C++
  // and C libraries, the threads' stacks, and the heap: the tokenizer's tables
  // (measured: ~7x its bytes in the model file) and the rest.
  struct stat st;
  const uint64_t code = ::stat("/proc/self/exe", &st) == 0
                            ? static_cast<uint64_t>(st.st_size)
                            : 8 * kMiB;
  uint64_t tokenizer = 0;
  if (const model::Tokenizer *t = file_.model()->tokenizer())
    tokenizer = (t->token_bytes() ? t->token_bytes()->size() : 0) +
                (t->token_ends() ? t->token_ends()->size() * 4 : 0) +
                (t->merges() ? t->merges()->size() * 4 : 0);
  return code + 8 * kMiB + threads_ * kMiB / 4 + 7 * tokenizer + 8 * kMiB;
}

bool Runtime::planBudget(uint64_t budget, int context, int maxBatch,
                         std::string &error) {
  const model::Model *m = file_.model();
  const model::Config &c = config();
  // Resident: everything but the experts and an embedding no matmul reads
  // (untied from the head), whose rows are read one per token.
  std::vector<bool> resident(m->tensors()->size(), true);
  for (const std::vector<int> &layer : moeWeights_)
    for (int t : layer)
      resident[t] = false;
  int32_t embedding = -1;
  std::vector<bool> multiplied(m->tensors()->size(), false);
  for (const model::Step *s : *m->steps()) {
    if (!s->weights())
      continue;
    if (s->op() == model::Op::Embed)
      embedding = s->weights()->Get(0);
    else
      for (int32_t w : *s->weights())
        multiplied[w] = true;
  }
  MemoryPlanInputs in;
  const bool lookupOnly = embedding >= 0 && !multiplied[embedding];
  if (lookupOnly) {
    resident[embedding] = false;
    in.onDemand = m->tensors()->Get(embedding)->size();
  }
  for (uint32_t i = 0; i < resident.size(); ++i)
    if (resident[i])
      in.resident += (m->tensors()->Get(i)->size() + 4095) / 4096 * 4096;
  in.resident += file_.planBytes();
  in.budget = budget;
  in.slotBytes = ExpertCache::slotBytes(file_, moeWeights_);
  in.maxSlots = static_cast<uint64_t>(c.num_layers()) * c.num_experts();
  in.topK = c.top_k();
  in.layers = c.num_layers();
  in.trainedContext = c.max_positions();
  in.requestedContext = context;
  in.maxBatch = maxBatch;
  in.process = processBytes();
  in.sequences = maxSequences_; // 0: the plan chooses
  in.kvBytes = [&](int n, int sequences) { return contextBytes(n, sequences); };
  // Logits rows kept at once: what 1/64 of the budget holds, 1 to a batch.
  in.logitRows = static_cast<int>(std::clamp<uint64_t>(
      budget / 64 / (static_cast<uint64_t>(c.vocab_size()) * 4), 1,
      static_cast<uint64_t>(maxBatch)));
  in.activationBytes = [&](int batch, int logitRows) {
    return activationBytes(batch, logitRows);
  };
  if (!planMemory(in, plan_, error)) {
    error = file_.path() + ": " + error;
    return false;
  }
  maxContext_ = plan_.context;
  maxSequences_ = plan_.sequences;
  maxBatch_ = plan_.batch;
  // The resident weights into memory, the page cache left empty; experts
  // come from storage (O_DIRECT): a cache the budget does not hold would
  // otherwise be charged for every expert read.
  if (!file_.loadResident(resident, error))
    return false;
  // (The plan moved with the image: pointers into it are taken after.)
  if (lookupOnly)
    lookupOnly_ = file_.model()->tensors()->Get(embedding);
  return true;
}

} // namespace stc::rt
