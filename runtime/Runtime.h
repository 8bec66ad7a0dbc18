// Runtime: executes a model file's plan. Holds the weights, the activation
// buffers and the RoPE tables, and the sequences' KV caches (Sequence.h); a
// step advances a batch of sequences through the plan's steps, calling the AOT
// kernels: prompt chunks (prefill) and single decoded tokens alike, the dense
// matmuls over every token of the step, the experts grouped across them,
// attention per sequence.
#pragma once

#include "ExpertCache.h"
#include "KvCache.h"
#include "MemoryPlan.h"
#include "ModelFile.h"
#include "Reservation.h"
#include "Sequence.h"
#include "ThreadPool.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace stc::rt {

struct RuntimeOptions {
  int threads = 0;    // <= 0: every core
  int maxContext = 0; // <= 0: the model's trained length (max positions)
  int maxBatch = 256; // tokens per pass; longer prompts run in chunks
  // Sequences that may exist at once (the runtime's own and newSequence's):
  // a memory budget plans a KV cache for each. 0: 1 under a budget; < 0: as
  // many as the budget's plan gives a useful context each (up to 4); without
  // a budget, either: any number.
  int sequences = 0;
  bool populate = true; // read every weight into memory at load
  // With populate and no budget: keep the weights in the file's page-cache
  // mapping (shared with other processes mapping the file) rather than a
  // private copy in transparent huge pages.
  bool sharedMapping = false;
  // Bytes the runtime may use (0: the model file's budget, which may be 0 =
  // none).
  uint64_t memoryBudget = 0;
  // Under a budget: every streamed expert is read from storage (O_DIRECT), not
  // from the page cache, which no budget counts (ModelFile::readFromStorage).
  bool expertsFromStorage = false;
  // The KV cache's element type; absent: the one st-kv-plan chose (the
  // attention kernels for it must be linked).
  int kvType = -1; // a model::KvType, or -1
  // Time every step by kind, for stc-bench --profile.
  bool profile = false;
  // A check, not a speed setting: the evaluating thread runs no parallel task
  // of its own, so every parallel loop runs on the other threads
  // (stc-bench --workers-only; see ThreadPool).
  bool workersOnly = false;
};

class Runtime {
public:
  Runtime() = default;
  ~Runtime();
  Runtime(const Runtime &) = delete;
  Runtime &operator=(const Runtime &) = delete;
  bool load(const std::string &path, const RuntimeOptions &options,
            std::string &error);
  // Evaluates `n` tokens at the next positions of the runtime's own sequence;
  // `allLogits` (n x vocab) may be null.
  bool eval(const int32_t *tokens, int n, float *allLogits, std::string &error);
  const float *lastLogits() const { return own_.lastLogits(); }
  int vocab() const { return config().vocab_size(); }
  int position() const { return own_.position(); }
  // Tokens evaluated since the load.
  uint64_t tokensEvaluated() const { return tokensEvaluated_; }
  int maxContext() const { return maxContext_; }
  // Tokens one step holds (a prompt longer than this runs in chunks).
  int maxBatch() const { return maxBatch_; }
  void reset() { reset(own_); }
  // Keeps the first n positions of the context; false (context unchanged)
  // when n is past it or a sliding-window ring no longer holds the keys that
  // position n attends to.
  bool rewind(int n, std::string &error) { return rewind(own_, n, error); }

  // Another sequence of this model, with a KV cache of its own for
  // maxContext() positions (reserved; pages touched as positions fill). At
  // most RuntimeOptions::sequences exist at once, the runtime's own included
  // (a memory budget planned that many caches): past that, null and `error`.
  std::unique_ptr<Sequence> newSequence(std::string &error);
  int maxSequences() const { return maxSequences_; }
  Sequence &ownSequence() { return own_; }
  void reset(Sequence &s);
  bool rewind(Sequence &s, int n, std::string &error);
  // `n` tokens at the next positions of `sequence`; `allLogits` (n x vocab,
  // one row per token) may be null.
  struct BatchItem {
    Sequence *sequence;
    const int32_t *tokens;
    int n;
    float *allLogits;
  };
  // Evaluates `count` items of distinct sequences in steps of at most
  // maxBatch() tokens. Each item's tokens are cut into chunks of maxBatch()
  // from its first, as eval cuts them, and a step takes whole chunks (the
  // items' first chunks in order, as many as fit, then the next), so a
  // sequence's chunks and every kernel's arithmetic on its tokens are what
  // they are when it runs alone: its logits are the same bits whatever its
  // batch-mates. Nothing is evaluated (false) when an item is invalid; a
  // kernel's failure mid-way leaves the sequences in an unknown state
  // (reset them).
  bool evalBatch(const BatchItem *items, int count, std::string &error);
  // Steps run since the load, and the sequences they advanced: the mean batch
  // (1 without batching).
  uint64_t steps() const { return steps_; }
  uint64_t stepSequences() const { return stepSequences_; }
  // Distinct (layer, expert) pairs the steps' tokens routed to, summed over
  // the steps: an expert several tokens of a step share counts once.
  uint64_t expertsUsed() const { return expertsUsed_; }
  const model::Config &config() const { return *file_.model()->config(); }
  const ModelFile &file() const { return file_; }
  bool weightsInHugePages() const { return file_.inHugePages(); }
  // The memory plan under a budget (budget 0 without one).
  const MemoryPlan &memoryPlan() const { return plan_; }
  // Weight bytes one decoded token reads when every active weight is read once.
  uint64_t weightBytesPerToken() const;
  // KV cache growth per token of context (global layers), and the fixed size of
  // the sliding-window layers' rings, in the cache's element type.
  uint64_t kvBytesPerToken() const;
  uint64_t kvRingBytes() const;
  model::KvType kvType() const { return kvType_; }
  const ExpertCache *expertCache() const { return cache_.get(); }
  // Share of decoded tokens' expert neurons with relu(gate) = 0 so far
  // (counted in one-token evaluations without an expert cache, and in every
  // sparse ReGLU step).
  double reluZeroFraction() const {
    return expertNeurons_ ? static_cast<double>(deadNeurons_) / expertNeurons_
                          : 0;
  }
  // Whether the MoE steps run st-sparse-reglu's layout, and the expert bytes
  // per decoded token it did not read (the dead neurons' up and down rows).
  bool sparseReglu() const { return sparse_; }
  // With RuntimeOptions::profile: seconds spent in one-token steps, by kind
  // ("gemm q4_0", "moe gate", "moe up (live rows)", ...).
  const std::map<std::string, double> &profile() const { return profile_; }
  // The same for multi-token evaluations (prefill), by step kind.
  const std::map<std::string, double> &prefillProfile() const {
    return prefillProfile_;
  }
  // Of each step kind's parallel tasks, those the pool's other threads ran
  // (one-token evaluations, then multi-token ones): which kinds really split.
  const std::map<std::string, uint64_t> &splitTasks() const {
    return splitTasks_;
  }
  const std::map<std::string, uint64_t> &prefillSplitTasks() const {
    return prefillSplitTasks_;
  }
  void clearProfile() {
    profile_.clear();
    prefillProfile_.clear();
    splitTasks_.clear();
    prefillSplitTasks_.clear();
  }
  double skippedBytesPerToken() const {
    return decodedTokens_ ? static_cast<double>(skippedBytes_) / decodedTokens_
                          : 0;
  }
  // Bytes of one expert neuron's up row plus down row in the sparse layouts
  // (0 until a sparse MoE step ran): the unit the sparse kernels read or skip.
  uint64_t sparseNeuronBytes() const { return sparseNeuronBytes_; }

private:
  struct Weight {
    const model::Tensor *t;
    const uint8_t *data;
    int64_t rows, cols; // of one (expert) matrix
  };
  // One step of the batch: a part of a sequence's tokens at its next
  // positions, rows [t0, t0 + n) of the step's buffers, and where its logits
  // go (every row's, or null: only the last, into the sequence).
  struct Segment {
    Sequence *seq;
    const int32_t *tokens;
    int t0, n;
    float *allLogits;
  };
  // The running step's segments: the one-token ones first, so rows
  // [0, singleRows_) are single tokens (the MoE's decode path).
  std::vector<Segment> segments_;
  int singleRows_ = 0;
  bool decodeStep_ = false; // every segment a single token (the profile's
                            // one-token steps)
  // The tail's rows: the step's rows whose logits are wanted, and their
  // segments.
  std::vector<int> wantedRows_, wantedSegment_;
  // Runs the step of segments_ (n tokens in all).
  bool runSegments(int n, std::string &error);
  bool step(const model::Step *s, int n, std::string &error);
  bool runStep(const model::Step *s, int n, std::string &error);
  // Adds the time since `start` to profile_[kind] (a step of single tokens)
  // or prefillProfile_[kind] when profiling.
  void charge(const char *kind, double start);
  // Profiling a decode step's parts: charges the time since `since` to
  // `kind` instead of the step's total (`parent`: "moe (other)" for the MoE's
  // phases) and restarts `since`.
  void chargePhase(const char *kind, double &since,
                   const char *parent = "moe (other)");
  bool profiling_ = false;
  std::map<std::string, double> profile_, prefillProfile_;
  std::map<std::string, uint64_t> splitTasks_, prefillSplitTasks_;
  float *f32(int buffer) { return reinterpret_cast<float *>(bufs_[buffer]); }
  int32_t *i32(int buffer) {
    return reinterpret_cast<int32_t *>(bufs_[buffer]);
  }
  int64_t width(int buffer) const {
    return file_.model()->buffers()->Get(buffer)->width();
  }
  Weight weight(int tensor, int expert = 0) const;
  bool gemm(const float *x, int n, const Weight &w, float *y,
            std::string &error);
  // Quantizes n rows of K activations to Q8_0 blocks into qx_/dx_/sx_, or
  // into the given arrays (n*K values, n*K/32 scales and sums).
  bool quantizeRows(const float *x, int n, int32_t K, std::string &error);
  bool quantizeInto(const float *x, int n, int32_t K, int8_t *q, float *d,
                    float *sums, std::string &error);
  // The rows of single tokens' expert slots (slot t*K + j: token t's j-th
  // expert) in the order the decode kernels take them: by expert when several
  // tokens share the step, so that a matrix several of them route to is read
  // in a row, the later reads from cache (each row is computed alike in any
  // order: the same bits). Fills rowSlot_ / slotRow_ and returns the expert
  // of each row.
  const int32_t *orderSlots(const int32_t *idx, int n, int K);
  // The n quantized rows (cols values each) in qx_/dx_/sx_ to n*K rows, row
  // r a copy of the token of slot rowSlot_[r]: one input row per expert slot.
  void expandToSlots(int n, int K, int32_t cols);
  // out[t] += wts[t*K + j] * y[row of slot t*K + j] for each of the n tokens'
  // K experts in routing order (so a token's sum is the same whatever order
  // its experts ran in); rowOf maps a slot to its row of y (null: the slot).
  static void combineSlots(float *out, const float *wts, int n, int K, int D,
                           const float *y, const int32_t *rowOf);
  // y [n][rows] = the quantized rows (q, d, sums) times W (Q4_0/Q8_0 rows16)
  // transposed, `perTask` groups of 16 rows per parallel task. Uses no member
  // scratch: callable from several tasks at once.
  bool gemmQuantized(const int8_t *q, const float *d, const float *sums, int n,
                     const Weight &w, float *y, int32_t perTask,
                     std::string &error);
  // The experts idx[0..slots) of stacked tensor `tensor` on the quantized rows
  // in qx_ (one shared row, or one per slot), into y [slots][rows].
  bool expertsGemm(int tensor, const int32_t *idx, int slots, bool sharedInput,
                   float *y, std::string &error);
  // The same on `experts` matrices of w's tensor's type and shape at w.data,
  // `stride` bytes apart (the tensor's experts, or the expert cache's slots).
  bool expertsGemm(const Weight &w, int32_t experts, int64_t stride,
                   const int32_t *idx, int slots, bool sharedInput, float *y,
                   std::string &error);
  // The K-quant kernel on `experts` stacked rows16k matrices at `data`
  // (`stride` bytes apart): slot s multiplies expert idx[s] with quantized row
  // s (row 0 for every slot when sharedInput). Uses no member scratch.
  bool kquantGemm(const Weight &w, int32_t experts, int64_t stride,
                  const int32_t *idx, int slots, const int8_t *q,
                  const float *d, const float *sums, bool sharedInput, float *y,
                  int32_t perTask, std::string &error);
  int32_t groupsPerTask(int32_t groups) const;
  void embedRow(const Weight &table, int64_t row, float *out) const;
  // The byte ranges of `table` that row `row` reads (1 or 2), and embedRow
  // for a table not in memory (a budget's lookup-only embedding): those bytes
  // read from storage, given back after.
  int rowRanges(const Weight &table, int64_t row,
                std::pair<uint64_t, uint64_t> ranges[2]) const;
  bool embedRowFromStorage(const Weight &table, int64_t row, float *out,
                           std::string &error);
  // A Moe step: checks the routing, then the dense or (down stored
  // transposed) the sparse ReGLU path.
  // The MoE of the step's n tokens: rows [0, singleRows_) through the decode
  // path, the rest through the prefill path (each expert once for its rows).
  bool moe(const model::Step *s, int n, std::string &error);
  // The dense or sparse ReGLU experts of rows [t0, t0 + n); `decode`: the rows
  // are single-token segments (the k experts of every row in one batched call
  // per projection; a decoded token computes alone as in a batch).
  bool denseMoe(const model::Step *s, int t0, int n, bool decode,
                std::string &error);
  // Whether a Moe step runs st-sparse-reglu's path (its tensors' layouts).
  bool sparseStep(const model::Step *s) const;
  // y [m][D] = the m rows of act [m][F] through an expert's down matrix: a
  // gemm, or for PowerInfer's neuron_rows layout the down_rows kernel over
  // every row.
  bool downProject(const Weight &down, const float *act, int m, float *y,
                   std::string &error);
  // The down_rows kernel (neuron_rows: a neuron's output row in ggml blocks
  // along D): y[t][d] = sum_i act[t * actStride + i] * stored row rows[i]
  // (null: rows 0..count-1), for `tokens` tokens.
  bool downRows(const Weight &down, const int32_t *rows, int count,
                const float *act, int actStride, int tokens, float *y,
                std::string &error);
  // Prefill without an expert cache: one task per expert with tokens (gate,
  // up, ReGLU, down on its rows, each on one thread), then each token's
  // outputs combined in routing order.
  bool denseMoePrefill(const model::Step *s, int t0, int n, std::string &error);
  // st-sparse-reglu's expert FFN: all gate rows, then the up rows and down rows
  // of the live neurons only.
  bool sparseMoe(const model::Step *s, int t0, int n, bool decode,
                 std::string &error);
  // Groups the (token, slot) pairs of rows [t0, t0 + n) by expert and, for
  // each expert with tokens, gathers their rows of the step's input into
  // moeX_, finds its gate/up/down (in the mapping, or an expert-cache slot
  // under a memory budget) and calls body(expert, its slots (relative to t0),
  // the three matrices), which writes each slot's output row into moeSlotY_
  // (slot x D); then adds each token's rows to the step's output in routing
  // order (the sum a decoded token makes). Each expert's weights are read once
  // for all its tokens.
  bool forEachExpert(const model::Step *s, int t0, int n,
                     const std::function<bool(int, const std::vector<int> &,
                                              const Weight *)> &body,
                     std::string &error);
  std::vector<float> moeSlotY_;
  // Shapes and layouts of a Moe step's expert tensors (dense or sparse ReGLU).
  bool checkMoeLayouts(const model::Step *s, std::string &error);
  // u[i] = up row ent[3i+1] of matrix ent[3i] (of `experts` at up.data,
  // `stride` bytes apart) dotted with row ent[3i+2] of the activations
  // quantized in qx_ (`x` for f32 weights, D values per row).
  bool sparseUp(const Weight &up, int experts, int64_t stride,
                const int32_t *ent, int count, const float *x, float *u,
                std::string &error);
  // One expert's down projection for sparseDowns: y = down x act (F values in
  // neuron order, zero for dead neurons), reading the transposed rows of live
  // neurons only. Row `row` of qx_/dx_ holds `act` quantized (quantized
  // weights). `order`: st-neuron-layout's order of the stored rows, or null.
  struct SparseDownJob {
    Weight down;
    const float *act;
    int row;
    const int32_t *order;
    float *y;
  };
  // Runs n jobs (one dtype and shape) in one parallel loop over the threads.
  bool sparseDowns(const SparseDownJob *jobs, int n, std::string &error);
  // Top-k and combine weights of n rows of E router logits (ints: top_k,
  // softmax).
  void route(const float *logits, int E, int n, const model::Step *s,
             float *wts, int32_t *idx);
  // Starts reading the experts `idx` that Dispatch step `s` routed its n
  // tokens to (route-ahead): queued on the expert cache under a budget (with
  // one token, also guessNextLayer on the step's input `x`), else asked of
  // the OS for a lazy mapping; a no-op when the weights were populated at
  // load.
  bool prefetchExperts(const model::Step *s, const float *x, const int32_t *idx,
                       int n, std::string &error);
  // Dispatch step `d`'s router on n rows of `x`: top-k and weights (into
  // routerLogits_ first).
  bool routeAhead(const model::Step *d, const float *x, int n, float *wts,
                  int32_t *idx, std::string &error);
  // Under a budget, one token: queues reads of the experts the next layer's
  // router picks for this layer's input `x` (ExpertStreaming.cpp).
  bool guessNextLayer(const model::Step *s, const float *x, std::string &error);
  bool attention(const model::Step *s, int n, std::string &error);
  // Attention of the step's query tokens (q: n x H x hd, each segment's at
  // its sequence's next positions) over layer `layer` of each segment's KV
  // cache, into out (n x H x hd).
  bool attend(int layer, int H, int KV, int hd, int window, const float *q,
              float *out, std::string &error);
  // One kernel call: `rows` query rows over key slots [slot0, slot0 + count)
  // of one KV head, into a chunk's partial state (o, ml). Decode's kernel asks
  // for keys and values ahead up to slot slot0 + requestSlots (the end of the
  // calling task's run of chunks).
  bool attentionChunk(const KvCache::Head &kv, int hd, int rows, const float *q,
                      const int32_t *qpos, int slot0, int count,
                      int requestSlots, int window, float scale, bool tile,
                      float *o, float *ml) const;
  // attend's work: one KV head x a tile of one segment's query tokens, and
  // its chunks' entries in chunkRanges_ (slot0, count pairs). Its query rows
  // (padded to the kernel's blocks) start at row `row` of attnQ_.
  struct AttentionUnit {
    int segment, kvHead, t0, t1; // query tokens [t0, t1) of the step
    int firstChunk, chunks;
    int rows, row;
    bool tile; // the prefill tile's kernel (the segment has several tokens)
  };
  std::vector<AttentionUnit> units_;
  std::vector<int32_t> chunkRanges_, chunkUnit_, chunkRow_, attnQpos_;
  // Decode's tasks: runs of consecutive chunks of one unit (first chunk,
  // count pairs).
  std::vector<int32_t> chunkRuns_;
  std::vector<float> attnQ_, attnO_, attnMl_, attnChunkO_, attnChunkMl_;

  ModelFile file_;
  std::unique_ptr<ThreadPool> pool_;
  int maxContext_ = 0, maxBatch_ = 0, threads_ = 1;
  Sequence own_; // eval's
  int maxSequences_ = 1;
  std::atomic<int> liveSequences_{1};
  bool initSequence(Sequence &s, std::string &error);
  uint64_t steps_ = 0, stepSequences_ = 0, expertsUsed_ = 0;
  std::vector<uint8_t> expertSeen_;
  int tailStart_ = 0;                // first step after the last layer
  std::vector<bool> producedBefore_; // buffers written before the tail
  std::vector<std::vector<int>>
      moeWeights_; // per layer: gate, up, down tensors
  bool populated_ = true;
  bool sparse_ = false; // any Moe step with a transposed down matrix
  std::vector<float> routerLogits_;
  std::vector<int> dispatchOf_; // per layer: its Dispatch step's index, or -1
  std::vector<float> guessWeights_;
  std::vector<int32_t> guessExperts_;
  std::unique_ptr<ExpertCache> cache_; // under a memory budget
  uint64_t deadNeurons_ = 0, expertNeurons_ = 0;
  // Decoded tokens, and the up and down bytes the sparse ReGLU skipped for
  // them.
  uint64_t decodedTokens_ = 0, skippedBytes_ = 0;
  uint64_t tokensEvaluated_ = 0;
  uint64_t sparseNeuronBytes_ = 0;
  bool initExpertCache(std::string &error);
  // The activation buffers (one reservation; rows charged as written).
  Reservation bufferArena_;
  std::vector<uint8_t *> bufs_;
  model::KvType kvType_ = model::KvType::F32;
  // Each layer's KV cache as st-kv-plan planned it (ring slots, window, type;
  // `slots` 0 for a global layer), and as sized for a context.
  std::vector<KvLayerPlan> kvLayers_;
  bool readKvLayers(int kvType, std::string &error);
  std::vector<KvLayerPlan> kvLayers(int context) const;
  // Under a memory budget: the plan, and the embedding when only looked up
  // (no matmul reads it): its rows are read from storage one at a time.
  MemoryPlan plan_;
  const model::Tensor *lookupOnly_ = nullptr;
  // Plans the budget (MemoryPlan.h), sets the context and batch, and reads
  // the resident weights.
  bool planBudget(uint64_t budget, int context, int maxBatch,
                  std::string &error);
  // Upper bounds of the activation buffers and scratch for a batch, and of
  // the process around the runtime (code, stacks, heap, tokenizer).
  uint64_t activationBytes(int batch, int logitRows) const;
  // What a context of n positions takes for `sequences` sequences: their KV
  // caches, the RoPE tables and decode's attention states.
  uint64_t contextBytes(int context, int sequences) const;
  uint64_t processBytes() const;
  std::vector<float> cos_, sin_; // [position][head_dim / 2]
  int ropeRows_ = 0;             // positions the tables hold
  // Extends the RoPE tables to the first `positions` positions.
  void ropeTo(int positions);
  // Scratch for activations quantized to Q8_0 blocks and for the MoE gather.
  std::vector<int8_t> qx_;
  std::vector<float> dx_, sx_, moeX_, moeG_, moeU_, moeY_;
  // denseMoePrefill's rows, grouped by expert: (token, slot) order, inputs,
  // gate/up, outputs, and the quantized rows of each expert's inputs.
  std::vector<int32_t> prefillSlots_, prefillRowOf_, prefillStart_;
  std::vector<float> prefillX_, prefillG_, prefillU_, prefillY_, prefillD_,
      prefillS_;
  std::vector<int8_t> prefillQ_;
  // Sparse ReGLU: the live neurons and their up values.
  std::vector<int32_t> sparseUpEnt_; // (expert, neuron, token) per live neuron
  // Single tokens under a budget: the distinct experts' expert-cache slots,
  // and each (token, expert) slot's.
  std::vector<int32_t> expertSlots_, slotOf_;
  std::vector<int32_t> subWhich_, subExpert_; // sparseMoe: a group's rows
  std::vector<int32_t> zeroRows_; // sparseMoe: every row matrix 0 (of a slot)
  // orderSlots: the slot of each row, the row of each slot, each row's expert.
  std::vector<int32_t> rowSlot_, slotRow_, rowExpert_;
  std::vector<int8_t> expandQ_; // expandToSlots' copy of the token rows
  std::vector<float> expandD_, expandS_;
  std::vector<float> sparseU_;
  // Per down job: the live rows for the down kernel, their blocks, each
  // block's count, and the quantized activations in stored order.
  struct SparseDownScratch {
    std::vector<int32_t> live, liveBlock, blockLive;
    std::vector<int8_t> qa;
    std::vector<float> values; // neuron_rows: the live rows' activations
  };
  std::vector<SparseDownScratch> sparseDownScratch_;
  std::vector<SparseDownJob> downJobs_;
};

} // namespace stc::rt
