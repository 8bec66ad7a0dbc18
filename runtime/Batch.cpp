// The batched step: evalBatch checks its items, cuts their tokens into chunks
// and packs the chunks into steps; runSegments runs one step of the plan over
// them: every token's id and position, the layers over all the step's tokens
// at once (attention per sequence, the MoE's decode path for single tokens),
// then the tail (final norm, head) over the rows whose logits are wanted.
#include "Runtime.h"

#include "RuntimeDetail.h"

#include <algorithm>
#include <cstring>

namespace stc::rt {

bool Runtime::eval(const int32_t *tokens, int n, float *allLogits,
                   std::string &error) {
  const BatchItem item{&own_, tokens, n, allLogits};
  return evalBatch(&item, 1, error);
}

bool Runtime::evalBatch(const BatchItem *items, int count, std::string &error) {
  const int V = config().vocab_size();
  if (count <= 0) {
    error = "no tokens to evaluate";
    return false;
  }
  // Every item is checked before any is evaluated.
  for (int i = 0; i < count; ++i) {
    const BatchItem &it = items[i];
    const std::string which =
        count > 1 ? "batch item " + std::to_string(i) + ": " : "";
    if (!it.sequence || !it.tokens || it.n <= 0) {
      error = which + (it.sequence ? "no tokens to evaluate" : "no sequence");
      return false;
    }
    const int pos = it.sequence->pos_;
    if (pos + it.n > maxContext_) {
      error = which + "context full: " + std::to_string(pos) + " + " +
              std::to_string(it.n) + " tokens exceed the maximum of " +
              std::to_string(maxContext_);
      return false;
    }
    for (int t = 0; t < it.n; ++t)
      if (it.tokens[t] < 0 || it.tokens[t] >= V) {
        error = which + "token id " + std::to_string(it.tokens[t]) +
                " is outside the vocabulary [0, " + std::to_string(V) + ")";
        return false;
      }
    for (int j = 0; j < i; ++j)
      if (items[j].sequence == it.sequence) {
        error = which + "the same sequence as batch item " + std::to_string(j) +
                " (a step advances each sequence once)";
        return false;
      }
  }
  // This model's threads run the kernels' parallel loops (another model in the
  // process has its own).
  ThreadPool::Use use(pool_.get());
  std::vector<int> done(count, 0);
  for (bool left = true; left;) {
    segments_.clear();
    int total = 0;
    left = false;
    for (int i = 0; i < count; ++i) {
      const int rest = items[i].n - done[i];
      if (rest == 0)
        continue;
      const int chunk = std::min(maxBatch_, rest);
      if (total + chunk > maxBatch_) {
        left = true; // the next step
        continue;
      }
      segments_.push_back(
          {items[i].sequence, items[i].tokens + done[i], 0, chunk,
           items[i].allLogits
               ? items[i].allLogits + static_cast<size_t>(done[i]) * V
               : nullptr});
      total += chunk;
      done[i] += chunk;
      left = left || done[i] < items[i].n;
    }
    // Single tokens first (the MoE's decode path takes rows [0, singleRows_)).
    std::stable_partition(segments_.begin(), segments_.end(),
                          [](const Segment &g) { return g.n == 1; });
    int row = 0;
    singleRows_ = 0;
    for (Segment &g : segments_) {
      g.t0 = row;
      row += g.n;
      singleRows_ += g.n == 1;
    }
    if (!runSegments(total, error))
      return false;
  }
  return true;
}

bool Runtime::runSegments(int n, std::string &error) {
  const model::Model *m = file_.model();
  const int V = config().vocab_size();
  int32_t *ids = i32(m->ids_buffer());
  int32_t *positions = i32(m->positions_buffer());
  int end = 0; // past the furthest position reached
  for (const Segment &g : segments_) {
    for (int t = 0; t < g.n; ++t) {
      ids[g.t0 + t] = g.tokens[t];
      positions[g.t0 + t] = g.seq->pos_ + t;
    }
    end = std::max(end, g.seq->pos_ + g.n);
  }
  decodedTokens_ += singleRows_;
  decodeStep_ = singleRows_ == n;
  ropeTo(end);
  const auto &steps = *m->steps();
  for (int i = 0; i < tailStart_; ++i)
    if (!step(steps.Get(i), n, error))
      return false;
  // The steps after the last layer (final norm, head) run on the rows whose
  // logits are wanted: each segment's last, or all its rows when asked for,
  // in blocks of the rows the memory plan keeps at once (all of them without
  // a budget). The head is a quarter of a prefill's work.
  wantedRows_.clear();
  wantedSegment_.clear();
  for (size_t j = 0; j < segments_.size(); ++j) {
    const Segment &g = segments_[j];
    for (int t = g.allLogits ? 0 : g.n - 1; t < g.n; ++t) {
      wantedRows_.push_back(g.t0 + t);
      wantedSegment_.push_back(static_cast<int>(j));
    }
  }
  const int wanted = static_cast<int>(wantedRows_.size());
  const int block = plan_.budget ? std::max(1, plan_.logitRows) : wanted;
  const float *logits = f32(m->logits_buffer());
  std::vector<bool> gathered(bufs_.size());
  for (int r0 = 0; r0 < wanted; r0 += block) {
    const int rows = std::min(block, wanted - r0);
    // The block's rows of each tail input produced before the tail, to rows
    // 0.. where the tail steps read them: row i from row wantedRows_[r0 + i]
    // >= i (the rows ascend), so no row is overwritten before it is read, and
    // a later block's rows lie past the rows the tail writes. Each buffer once
    // (several tail steps may read it).
    std::fill(gathered.begin(), gathered.end(), false);
    for (size_t j = tailStart_; j < steps.size(); ++j)
      for (int32_t b : *steps.Get(j)->inputs()) {
        if (!producedBefore_[b] || gathered[b] || b == m->ids_buffer() ||
            b == m->positions_buffer())
          continue;
        gathered[b] = true;
        const size_t rowBytes = static_cast<size_t>(width(b)) * 4;
        for (int i = 0; i < rows; ++i)
          if (wantedRows_[r0 + i] != i)
            std::memmove(bufs_[b] + i * rowBytes,
                         bufs_[b] + wantedRows_[r0 + i] * rowBytes, rowBytes);
      }
    for (size_t i = tailStart_; i < steps.size(); ++i)
      if (!step(steps.Get(i), rows, error))
        return false;
    for (int i = 0; i < rows; ++i) {
      const Segment &g = segments_[wantedSegment_[r0 + i]];
      const int t = wantedRows_[r0 + i] - g.t0;
      const float *row = logits + static_cast<size_t>(i) * V;
      if (g.allLogits)
        std::memcpy(g.allLogits + static_cast<size_t>(t) * V, row, V * 4);
      if (t == g.n - 1)
        std::memcpy(g.seq->lastLogits_.data(), row, V * 4);
    }
  }
  for (const Segment &g : segments_)
    g.seq->pos_ += g.n;
  tokensEvaluated_ += n;
  ++steps_;
  stepSequences_ += segments_.size();
  return true;
}

} // namespace stc::rt
