// The MoE steps: routing (top-k and combine weights), the per-step layout
// check, and the dense ReGLU expert FFN (single tokens: the k experts of every
// token in one batched call per projection; prompt chunks: each expert once
// for all its tokens). The sparse ReGLU path is in SparseMoe.cpp. Either way
// each token's k outputs are added in routing order, so a token's result does
// not depend on the tokens beside it in the step.
#include "Runtime.h"

#include "RuntimeDetail.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace stc::rt {

void Runtime::route(const float *logits, int E, int n, const model::Step *s,
                    float *wts, int32_t *idx) {
  const int K = static_cast<int>(s->ints()->Get(0));
  const bool softmax = s->ints()->Get(1) != 0;
  std::vector<int> order(E);
  for (int t = 0; t < n; ++t) {
    const float *l = logits + static_cast<size_t>(t) * E;
    for (int e = 0; e < E; ++e)
      order[e] = e;
    std::partial_sort(
        order.begin(), order.begin() + K, order.end(),
        [&](int a, int b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
    // Softmax over the k selected logits, or sigmoid of each over their sum.
    float sum = 0;
    for (int j = 0; j < K; ++j) {
      float v = softmax ? std::exp(l[order[j]] - l[order[0]])
                        : 1.0f / (1.0f + std::exp(-l[order[j]]));
      wts[t * K + j] = v;
      idx[t * K + j] = order[j];
      sum += v;
    }
    for (int j = 0; j < K; ++j)
      wts[t * K + j] /= sum;
  }
}

bool Runtime::moe(const model::Step *s, int n, std::string &error) {
  const model::Config &c = config();
  const int K = c.top_k(), D = c.hidden_size(), E = c.num_experts();
  const int32_t *idx = i32(s->inputs()->Get(2));
  for (int i = 0; i < n * K; ++i)
    if (idx[i] < 0 || idx[i] >= E) {
      error = "router produced expert " + std::to_string(idx[i]);
      return false;
    }
  float *out = f32(s->outputs()->Get(0));
  std::fill(out, out + static_cast<size_t>(n) * D, 0.0f);
  // The distinct experts the step computes (each read once per path).
  expertSeen_.assign(E, 0);
  for (int i = 0; i < n * K; ++i)
    expertsUsed_ += !expertSeen_[idx[i]]++;
  const bool sparse = sparseStep(s);
  auto run = [&](int t0, int rows, bool decode) {
    return sparse ? sparseMoe(s, t0, rows, decode, error)
                  : denseMoe(s, t0, rows, decode, error);
  };
  const int single = std::min(singleRows_, n);
  return (single == 0 || run(0, single, true)) &&
         (single == n || run(single, n - single, false));
}

const int32_t *Runtime::orderSlots(const int32_t *idx, int n, int K) {
  const int slots = n * K;
  rowSlot_.resize(slots);
  for (int i = 0; i < slots; ++i)
    rowSlot_[i] = i;
  if (n > 1)
    std::stable_sort(rowSlot_.begin(), rowSlot_.end(),
                     [&](int32_t a, int32_t b) { return idx[a] < idx[b]; });
  slotRow_.resize(slots);
  rowExpert_.resize(slots);
  for (int r = 0; r < slots; ++r) {
    slotRow_[rowSlot_[r]] = r;
    rowExpert_[r] = idx[rowSlot_[r]];
  }
  return rowExpert_.data();
}

void Runtime::combineSlots(float *out, const float *wts, int n, int K, int D,
                           const float *y, const int32_t *rowOf) {
  for (int t = 0; t < n; ++t) {
    float *o = out + static_cast<size_t>(t) * D;
    for (int j = 0; j < K; ++j) {
      const int slot = t * K + j;
      const float *ys = y + static_cast<size_t>(rowOf ? rowOf[slot] : slot) * D;
      for (int d = 0; d < D; ++d)
        o[d] += wts[slot] * ys[d];
    }
  }
}

void Runtime::expandToSlots(int n, int K, int32_t cols) {
  const int32_t B = cols / 32;
  expandQ_.assign(qx_.begin(), qx_.begin() + static_cast<size_t>(n) * cols);
  expandD_.assign(dx_.begin(), dx_.begin() + static_cast<size_t>(n) * B);
  expandS_.assign(sx_.begin(), sx_.begin() + static_cast<size_t>(n) * B);
  qx_.resize(static_cast<size_t>(n) * K * cols);
  dx_.resize(static_cast<size_t>(n) * K * B);
  sx_.resize(dx_.size());
  for (int r = 0; r < n * K; ++r) {
    const size_t t = static_cast<size_t>(rowSlot_[r] / K);
    std::memcpy(&qx_[static_cast<size_t>(r) * cols], &expandQ_[t * cols], cols);
    std::memcpy(&dx_[static_cast<size_t>(r) * B], &expandD_[t * B], B * 4);
    std::memcpy(&sx_[static_cast<size_t>(r) * B], &expandS_[t * B], B * 4);
  }
}

bool Runtime::sparseStep(const model::Step *s) const {
  // st-sparse-reglu's layouts: the down transposed, or (PowerInfer's down,
  // neuron_rows either way) the up in per-row tiles (blocks16) or f32.
  const model::Tensor *up = file_.model()->tensors()->Get(s->weights()->Get(1));
  const model::Layout down =
      file_.model()->tensors()->Get(s->weights()->Get(2))->layout();
  return down == model::Layout::Transposed ||
         (down == model::Layout::NeuronRows &&
          (up->layout() == model::Layout::Blocks16 ||
           up->dtype() == model::DType::F32));
}

bool Runtime::forEachExpert(
    const model::Step *s, int t0, int n,
    const std::function<bool(int, const std::vector<int> &, const Weight *)>
        &body,
    std::string &error) {
  const model::Config &c = config();
  const int K = c.top_k(), D = c.hidden_size(), E = c.num_experts();
  const float *x = f32(s->inputs()->Get(0)) + static_cast<size_t>(t0) * D;
  const float *wts = f32(s->inputs()->Get(1)) + static_cast<size_t>(t0) * K;
  const int32_t *idx = i32(s->inputs()->Get(2)) + static_cast<size_t>(t0) * K;
  float *out = f32(s->outputs()->Get(0)) + static_cast<size_t>(t0) * D;
  moeSlotY_.resize(static_cast<size_t>(n) * K * D);
  std::vector<std::vector<int>> slots(E);
  for (int t = 0; t < n; ++t)
    for (int j = 0; j < K; ++j)
      slots[idx[t * K + j]].push_back(t * K + j);
  for (int e = 0; e < E; ++e) {
    const int m = static_cast<int>(slots[e].size());
    if (m == 0)
      continue;
    moeX_.resize(static_cast<size_t>(m) * D);
    for (int i = 0; i < m; ++i)
      std::memcpy(&moeX_[static_cast<size_t>(i) * D],
                  x + static_cast<size_t>(slots[e][i] / K) * D, D * 4);
    // The expert's matrices: in the mapping, or in an expert-cache slot under a
    // memory budget.
    Weight mats[3];
    for (int w = 0; w < 3; ++w)
      mats[w] = weight(s->weights()->Get(w), e);
    if (cache_) {
      const uint8_t *data[3];
      if (!cache_->acquire(s->layer(), e, data, error))
        return false;
      for (int w = 0; w < 3; ++w)
        mats[w].data = data[w];
    }
    if (!body(e, slots[e], mats))
      return false;
  }
  combineSlots(out, wts, n, K, D, moeSlotY_.data(), nullptr);
  return true;
}

bool Runtime::denseMoe(const model::Step *s, int t0, int n, bool decode,
                       std::string &error) {
  const model::Config &c = config();
  const int K = c.top_k(), D = c.hidden_size(), F = c.expert_ffn();
  const float *x = f32(s->inputs()->Get(0)) + static_cast<size_t>(t0) * D;
  const float *wts = f32(s->inputs()->Get(1)) + static_cast<size_t>(t0) * K;
  const int32_t *idx = i32(s->inputs()->Get(2)) + static_cast<size_t>(t0) * K;
  float *out = f32(s->outputs()->Get(0)) + static_cast<size_t>(t0) * D;
  auto quantized = [&](int i) {
    return isQuant(weight(s->weights()->Get(i)).t->dtype());
  };
  if (decode && !cache_ && quantized(0) && quantized(1) &&
      (quantized(2) ||
       weight(s->weights()->Get(2)).t->layout() == model::Layout::NeuronRows)) {
    // Single tokens: the k selected experts of every token in one call per
    // projection (slot t*K + j: token t's j-th expert); gate and up share
    // each token's quantized input (one token: one row for every slot).
    double t = seconds();
    const int slots = n * K;
    moeG_.resize(static_cast<size_t>(slots) * F);
    moeU_.resize(moeG_.size());
    moeY_.resize(static_cast<size_t>(slots) * D);
    // Row r is slot rowSlot_[r]'s (by expert when several tokens share the
    // step: orderSlots).
    const int32_t *rowIdx = orderSlots(idx, n, K);
    if (!quantizeRows(x, n, D, error))
      return false;
    if (n > 1)
      expandToSlots(n, K, D);
    if (!expertsGemm(s->weights()->Get(0), rowIdx, slots, n == 1, moeG_.data(),
                     error))
      return false;
    chargePhase("moe gate", t);
    if (!expertsGemm(s->weights()->Get(1), rowIdx, slots, n == 1, moeU_.data(),
                     error))
      return false;
    chargePhase("moe up (all rows)", t);
    uint64_t dead = 0;
    for (size_t i = 0; i < moeG_.size(); ++i) { // ReGLU: relu(gate) * up
      dead += moeG_[i] <= 0.0f;
      moeG_[i] = std::max(moeG_[i], 0.0f) * moeU_[i];
    }
    // The ReLU sparsity a sparse ReGLU would exploit: neurons whose up and down
    // rows contribute nothing for this token.
    deadNeurons_ += dead;
    expertNeurons_ += moeG_.size();
    const Weight down = weight(s->weights()->Get(2));
    if (down.t->layout() == model::Layout::NeuronRows) {
      for (int j = 0; j < slots; ++j)
        if (!downProject(weight(s->weights()->Get(2), rowIdx[j]),
                         &moeG_[static_cast<size_t>(j) * F], 1,
                         &moeY_[static_cast<size_t>(j) * D], error))
          return false;
    } else if (!quantizeRows(moeG_.data(), slots, F, error) ||
               !expertsGemm(s->weights()->Get(2), rowIdx, slots, false,
                            moeY_.data(), error))
      return false;
    combineSlots(out, wts, n, K, D, moeY_.data(), slotRow_.data());
    chargePhase("moe down (all rows)", t);
    return true;
  }
  if (!cache_)
    return denseMoePrefill(s, t0, n, error);
  // Under a memory budget: each expert once for all its tokens, through the
  // expert cache.
  return forEachExpert(
      s, t0, n,
      [&](int, const std::vector<int> &slots, const Weight *mats) {
        const int m = static_cast<int>(slots.size());
        moeG_.resize(static_cast<size_t>(m) * F);
        moeU_.resize(moeG_.size());
        moeY_.resize(moeX_.size());
        if (!gemm(moeX_.data(), m, mats[0], moeG_.data(), error) ||
            !gemm(moeX_.data(), m, mats[1], moeU_.data(), error))
          return false;
        uint64_t dead = 0;
        for (size_t i = 0; i < moeG_.size(); ++i) { // ReGLU: relu(gate) * up
          dead += moeG_[i] <= 0.0f;
          moeG_[i] = std::max(moeG_[i], 0.0f) * moeU_[i];
        }
        if (decode) { // single tokens count the ReLU sparsity as without a
                      // budget
          deadNeurons_ += dead;
          expertNeurons_ += moeG_.size();
        }
        if (!downProject(mats[2], moeG_.data(), m, moeY_.data(), error))
          return false;
        for (int i = 0; i < m; ++i)
          std::memcpy(&moeSlotY_[static_cast<size_t>(slots[i]) * D],
                      &moeY_[static_cast<size_t>(i) * D], D * 4);
        return true;
      },
      error);
}

bool Runtime::denseMoePrefill(const model::Step *s, int t0, int n,
                              std::string &error) {
  const model::Config &c = config();
  const int K = c.top_k(), D = c.hidden_size(), F = c.expert_ffn(),
            E = c.num_experts();
  const float *x = f32(s->inputs()->Get(0)) + static_cast<size_t>(t0) * D;
  const float *wts = f32(s->inputs()->Get(1)) + static_cast<size_t>(t0) * K;
  const int32_t *idx = i32(s->inputs()->Get(2)) + static_cast<size_t>(t0) * K;
  float *out = f32(s->outputs()->Get(0)) + static_cast<size_t>(t0) * D;
  // Rows grouped by expert (a counting sort of the n*K slots): expert e's
  // rows are [start[e], start[e+1]), in token order.
  const int rows = n * K;
  prefillStart_.assign(E + 1, 0);
  for (int i = 0; i < rows; ++i)
    ++prefillStart_[idx[i] + 1];
  for (int e = 0; e < E; ++e)
    prefillStart_[e + 1] += prefillStart_[e];
  prefillSlots_.resize(rows);
  prefillRowOf_.resize(rows);
  {
    std::vector<int32_t> next(prefillStart_.begin(), prefillStart_.end() - 1);
    for (int i = 0; i < rows; ++i) {
      const int r = next[idx[i]]++;
      prefillSlots_[r] = i;
      prefillRowOf_[i] = r;
    }
  }
  const size_t widest = static_cast<size_t>(std::max(D, F));
  prefillX_.resize(static_cast<size_t>(rows) * D);
  prefillY_.resize(prefillX_.size());
  prefillG_.resize(static_cast<size_t>(rows) * F);
  prefillU_.resize(prefillG_.size());
  prefillQ_.resize(rows * widest);
  prefillD_.resize(rows * widest / 32);
  prefillS_.resize(prefillD_.size());
  for (int r = 0; r < rows; ++r)
    std::memcpy(&prefillX_[static_cast<size_t>(r) * D],
                x + static_cast<size_t>(prefillSlots_[r] / K) * D, D * 4);
  // The experts with tokens, the busiest first: whole experts are the tasks,
  // so the longest should not start last.
  std::vector<int> order;
  for (int e = 0; e < E; ++e)
    if (prefillStart_[e + 1] > prefillStart_[e])
      order.push_back(e);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return prefillStart_[a + 1] - prefillStart_[a] >
           prefillStart_[b + 1] - prefillStart_[b];
  });
  std::vector<std::string> errors(order.size());
  // One expert on one thread: its kernels' own parallel loops run serially
  // inside the task, and every expert is computed the same way whatever the
  // thread count.
  auto expert = [&](int task) -> int {
    const int e = order[task];
    const int r0 = prefillStart_[e], m = prefillStart_[e + 1] - r0;
    Weight mats[3];
    for (int w = 0; w < 3; ++w)
      mats[w] = weight(s->weights()->Get(w), e);
    float *X = &prefillX_[static_cast<size_t>(r0) * D];
    float *G = &prefillG_[static_cast<size_t>(r0) * F];
    float *U = &prefillU_[static_cast<size_t>(r0) * F];
    float *Y = &prefillY_[static_cast<size_t>(r0) * D];
    int8_t *q = &prefillQ_[r0 * widest];
    float *qd = &prefillD_[r0 * widest / 32],
          *qs = &prefillS_[r0 * widest / 32];
    std::string &err = errors[task];
    // `in` quantized once for the projections that read it (gate and up).
    const float *quantized = nullptr;
    auto project = [&](const float *in, int k, const Weight &w, float *o) {
      if (w.t->layout() == model::Layout::NeuronRows)
        return downProject(w, in, m, o, err);
      if (!isQuant(w.t->dtype()))
        return gemm(in, m, w, o, err);
      if (quantized != in && !quantizeInto(in, m, k, q, qd, qs, err))
        return false;
      quantized = in;
      return gemmQuantized(q, qd, qs, m, w, o,
                           static_cast<int32_t>(w.rows / 16), err);
    };
    if (!project(X, D, mats[0], G) || !project(X, D, mats[1], U))
      return 1;
    for (size_t i = 0; i < static_cast<size_t>(m) * F; ++i) // relu(g) * up
      G[i] = std::max(G[i], 0.0f) * U[i];
    return project(G, F, mats[2], Y) ? 0 : 1;
  };
  if (pool_->forEach(static_cast<int>(order.size()), expert) != 0) {
    for (const std::string &e : errors)
      if (!e.empty()) {
        error = e;
        break;
      }
    return false;
  }
  combineSlots(out, wts, n, K, D, prefillY_.data(), prefillRowOf_.data());
  return true;
}

bool Runtime::checkMoeLayouts(const model::Step *s, std::string &error) {
  const model::Config &c = config();
  const std::string where =
      "the MoE step of layer " + std::to_string(s->layer());
  if (s->weights()->size() != 3 || !s->inputs() || s->inputs()->size() != 3 ||
      !s->outputs() || s->outputs()->size() != 1) {
    error = where + " does not have 3 inputs, 3 weights and 1 output";
    return false;
  }
  const model::Tensor *t[3];
  for (int i = 0; i < 3; ++i)
    t[i] = file_.model()->tensors()->Get(s->weights()->Get(i));
  const int64_t E = c.num_experts(), F = c.expert_ffn(), D = c.hidden_size();
  const bool sparse = sparseStep(s);
  const int64_t want[3][3] = {{E, F, D}, {E, F, D}, {E, D, F}};
  for (int i = 0; i < 3; ++i) {
    const auto *shape = t[i]->shape();
    if (shape->size() != 3 || shape->Get(0) != want[i][0] ||
        shape->Get(1) != want[i][1] || shape->Get(2) != want[i][2]) {
      error = where + ": tensor '" + t[i]->name()->str() +
              "' does not have the shape [" + std::to_string(want[i][0]) +
              ", " + std::to_string(want[i][1]) + ", " +
              std::to_string(want[i][2]) + "]";
      return false;
    }
  }
  auto layoutOk = [&](const model::Tensor *w, bool sparseRole) {
    const model::DType d = w->dtype();
    if (!sparseRole)
      return isQuant(d) ? w->layout() == model::Layout::Rows16
                        : w->layout() == model::Layout::RowMajor;
    if (w == t[1])
      return isQuant(d) ? w->layout() == model::Layout::Blocks16
                        : d == model::DType::F32 &&
                              w->layout() == model::Layout::RowMajor;
    return (isQuant(d) ? D % 64 == 0 : d == model::DType::F32);
  };
  // PowerInfer's down (neuron_rows: q4_0 or q8_0 blocks along D) serves the
  // dense and the sparse path alike.
  const bool neuronRows = t[2]->layout() == model::Layout::NeuronRows &&
                          (t[2]->dtype() == model::DType::Q4_0 ||
                           t[2]->dtype() == model::DType::Q8_0) &&
                          D % 32 == 0;
  if (!layoutOk(t[0], false) || !layoutOk(t[1], sparse) ||
      (!neuronRows && !layoutOk(t[2], sparse))) {
    error = where +
            " has expert tensors in layouts no MoE kernel reads (dense: rows16 "
            "or f32 row-major; sparse ReGLU: blocks16 or f32 up, transposed "
            "down with D a multiple of 64 when quantized; PowerInfer's down: "
            "neuron_rows q4_0 or q8_0 with D a multiple of 32)";
    return false;
  }
  if (const auto *order = s->neuron_order()) {
    // st-neuron-layout's order: each expert's a permutation of its neurons,
    // and only where the sparse path reads it.
    if (!sparse || order->size() != static_cast<uint32_t>(E * F)) {
      error = where + ": a neuron order " +
              (sparse ? "of " + std::to_string(order->size()) +
                            " entries, expected experts x ffn = " +
                            std::to_string(E * F)
                      : std::string("on a dense MoE step"));
      return false;
    }
    std::vector<bool> seen(F);
    for (int64_t e = 0; e < E; ++e) {
      std::fill(seen.begin(), seen.end(), false);
      for (int64_t p = 0; p < F; ++p) {
        const int32_t f = order->Get(static_cast<uint32_t>(e * F + p));
        if (f < 0 || f >= F || seen[f]) {
          error = where + ": the neuron order of expert " + std::to_string(e) +
                  " is not a permutation of 0.." + std::to_string(F - 1);
          return false;
        }
        seen[f] = true;
      }
    }
  }
  sparse_ = sparse_ || sparse;
  return true;
}

} // namespace stc::rt
