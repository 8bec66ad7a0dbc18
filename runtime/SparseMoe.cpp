// st-sparse-reglu's expert FFN: every gate row, then the up rows and the
// (transposed) down rows of the live neurons only, through the sparse kernels.
#include "Runtime.h"

#include "Kernels.h"
#include "ModelLayout.h"
#include "RuntimeDetail.h"

#include <algorithm>
#include <atomic>

namespace stc::rt {

bool Runtime::sparseUp(const Weight &up, int experts, int64_t expertStride,
                       const int32_t *ent, int count, const float *x, float *u,
                       std::string &error) {
  const int32_t D = static_cast<int32_t>(up.cols),
                F = static_cast<int32_t>(up.rows);
  if (up.t->dtype() == model::DType::F32) {
    // The exact path (f32 weights): plain loops.
    for (int i = 0; i < count; ++i) {
      const float *w =
          reinterpret_cast<const float *>(up.data + ent[3 * i] * expertStride) +
          static_cast<size_t>(ent[3 * i + 1]) * D;
      const float *xt = x + static_cast<size_t>(ent[3 * i + 2]) * D;
      float acc = 0;
      for (int32_t k = 0; k < D; ++k)
        acc += w[k] * xt[k];
      u[i] = acc;
    }
    return true;
  }
  const int32_t Q = quads(up.t->dtype()), tile = Q * 64, B = D / 32;
  const int32_t tiles = static_cast<int32_t>(blocks16Tiles(D));
  const int32_t T = static_cast<int32_t>(qx_.size() / D);
  // Halide's strides are 32-bit: callers keep experts * stride below 2^31.
  const int32_t stride = static_cast<int32_t>(expertStride);
  HBuf hw(up.data, halide_type_uint, 8,
          {{4, 1},
           {16, 4},
           {Q, 64},
           {tiles, tile},
           {F, tiles * tile},
           {experts, stride}});
  HBuf hsw(up.data + static_cast<int64_t>(F) * tiles * tile, halide_type_uint,
           16, {{16, 1}, {tiles, 16}, {F, tiles * 16}, {experts, stride / 2}});
  HBuf hent(ent, halide_type_int, 32, {{3, 1}, {count, 3}});
  HBuf hqx(qx_.data(), halide_type_int, 8, {{D, 1}, {T, D}});
  HBuf hdx(dx_.data(), halide_type_float, 32, {{B, 1}, {T, B}});
  HBuf hsx(sx_.data(), halide_type_float, 32, {{B, 1}, {T, B}});
  HBuf hu(u, halide_type_float, 32, {{count, 1}});
  const int32_t perTask = std::max(8, count / (4 * threads_) + 1);
  const uint64_t weights = address(hw.buf.host), scales = address(hsw.buf.host);
  int rc = up.t->dtype() == model::DType::Q4_0
               ? stc_sparse_up_q4_0(hw.get(), hsw.get(), hent.get(), hqx.get(),
                                    hdx.get(), hsx.get(), perTask, weights,
                                    scales, hu.get())
               : stc_sparse_up_q8_0(hw.get(), hsw.get(), hent.get(), hqx.get(),
                                    hdx.get(), hsx.get(), perTask, weights,
                                    scales, hu.get());
  if (rc != 0) {
    error = kernelError("sparse up kernel failed on tensor '" +
                        up.t->name()->str() + "'");
    return false;
  }
  return true;
}

bool Runtime::sparseDowns(const SparseDownJob *jobs, int n,
                          std::string &error) {
  // Logical [D, F] (one expert), stored [F][D]; with st-neuron-layout's order
  // stored row p holds neuron order[p]. `act` is in neuron order.
  if (n == 0)
    return true;
  const int32_t D = static_cast<int32_t>(jobs[0].down.rows),
                F = static_cast<int32_t>(jobs[0].down.cols);
  const model::DType dtype = jobs[0].down.t->dtype();
  if (jobs[0].down.t->layout() == model::Layout::NeuronRows) {
    // PowerInfer's down: each live row (its scales inside) times its
    // activation, in stored order.
    for (int j = 0; j < n; ++j) {
      const SparseDownJob &job = jobs[j];
      SparseDownScratch &sc = sparseDownScratch_.empty()
                                  ? sparseDownScratch_.emplace_back()
                                  : sparseDownScratch_[0];
      sc.live.clear();
      sc.values.clear();
      for (int32_t p = 0; p < F; ++p) {
        const float a = job.act[job.order ? job.order[p] : p];
        if (a != 0.0f) {
          sc.live.push_back(p);
          sc.values.push_back(a);
        }
      }
      const int live = static_cast<int>(sc.live.size());
      if (live == 0)
        std::fill(job.y, job.y + D, 0.0f);
      else if (!downRows(job.down, sc.live.data(), live, sc.values.data(), live,
                         1, job.y, error))
        return false;
    }
    return true;
  }
  if (dtype == model::DType::F32) {
    for (int j = 0; j < n; ++j) {
      const SparseDownJob &job = jobs[j];
      std::fill(job.y, job.y + D, 0.0f);
      for (int32_t p = 0; p < F; ++p) {
        const float a = job.act[job.order ? job.order[p] : p];
        if (a == 0.0f)
          continue;
        const float *w = reinterpret_cast<const float *>(job.down.data) +
                         static_cast<size_t>(p) * D;
        for (int32_t d = 0; d < D; ++d)
          job.y[d] += a * w[d];
      }
    }
    return true;
  }
  // Per job: the live rows in stored order, each with its block of 32 neurons
  // (the kernel sums each block's rows in integers: one weight scale and one
  // activation scale per block and output), and each block's count; with a
  // neuron order, the kernel's activations in stored order too.
  const int32_t G = F / 32;
  if (sparseDownScratch_.size() < static_cast<size_t>(n))
    sparseDownScratch_.resize(n);
  for (int j = 0; j < n; ++j) {
    const SparseDownJob &job = jobs[j];
    SparseDownScratch &sc = sparseDownScratch_[j];
    sc.live.resize(F + 1);
    sc.liveBlock.resize(F + 1);
    sc.blockLive.assign(G, 0);
    if (job.order) { // the activations in stored order
      const int8_t *qa = qx_.data() + static_cast<size_t>(job.row) * F;
      sc.qa.resize(F);
      for (int32_t p = 0; p < F; ++p)
        sc.qa[p] = qa[job.order[p]];
    }
    int32_t live = 0;
    for (int32_t p = 0; p < F; ++p) { // branch-free
      const int32_t f = job.order ? job.order[p] : p;
      const bool on = job.act[f] != 0.0f;
      sc.live[live] = p;
      sc.liveBlock[live] = f / 32;
      sc.blockLive[f / 32] += on;
      live += on;
    }
    sc.live.resize(live);
    sc.liveBlock.resize(live);
    if (live == 0)
      std::fill(job.y, job.y + D, 0.0f);
  }
  // Tasks: each job whole on one thread when there are enough jobs to keep
  // the threads busy (the decode's k experts on 2 threads: each row read by
  // one core, one parallel loop per layer instead of one per expert), else
  // each job split into slices of its outputs.
  const bool q4 = dtype == model::DType::Q4_0;
  const int32_t chunkBytes = q4 ? 32 : 64, C = D / 64;
  const int slices = std::min<int>(C, std::max(1, (2 * threads_ + n - 1) / n));
  std::atomic<int> failed{-1}; // a job whose kernel failed
  auto task = [&](int i) -> int {
    const int j = i / slices, slice = i % slices;
    const SparseDownJob &job = jobs[j];
    SparseDownScratch &sc = sparseDownScratch_[j];
    const int32_t live = static_cast<int32_t>(sc.live.size());
    if (live == 0)
      return 0;
    const int32_t c0 = slice * C / slices, c1 = (slice + 1) * C / slices;
    const uint8_t *w = job.down.data + static_cast<size_t>(c0) * chunkBytes;
    const uint8_t *sw = job.down.data +
                        static_cast<int64_t>(F) * C * chunkBytes +
                        static_cast<size_t>(c0) * 64 * 2;
    HBuf hw(w, halide_type_uint, 8,
            {{chunkBytes, 1}, {c1 - c0, chunkBytes}, {F, C * chunkBytes}});
    HBuf hsw(sw, halide_type_uint, 16, {{(c1 - c0) * 64, 1}, {G, D}});
    HBuf hqa(job.order ? sc.qa.data()
                       : qx_.data() + static_cast<size_t>(job.row) * F,
             halide_type_int, 8, {{F, 1}});
    HBuf hda(dx_.data() + static_cast<size_t>(job.row) * G, halide_type_float,
             32, {{G, 1}});
    HBuf hlive(sc.live.data(), halide_type_int, 32, {{live, 1}});
    HBuf hblock(sc.liveBlock.data(), halide_type_int, 32, {{live, 1}});
    HBuf hcount(sc.blockLive.data(), halide_type_int, 32, {{G, 1}});
    HBuf hy(job.y + static_cast<size_t>(c0) * 64, halide_type_float, 32,
            {{32, 1}, {2, 32}, {c1 - c0, 64}});
    const int32_t perTask = c1 - c0; // one slice per call
    int rc =
        q4 ? stc_sparse_down_q4_0(hw.get(), hsw.get(), hqa.get(), hda.get(),
                                  hlive.get(), hblock.get(), hcount.get(),
                                  perTask, address(w), address(sw), hy.get())
           : stc_sparse_down_q8_0(hw.get(), hsw.get(), hqa.get(), hda.get(),
                                  hlive.get(), hblock.get(), hcount.get(),
                                  perTask, address(w), address(sw), hy.get());
    if (rc != 0) {
      failed.store(j);
      return 1;
    }
    return 0;
  };
  if (pool_->forEach(n * slices, task) != 0) {
    const int j = std::max(failed.load(), 0);
    error = kernelError("sparse down kernel failed on tensor '" +
                        jobs[j].down.t->name()->str() + "'");
    return false;
  }
  return true;
}

bool Runtime::sparseMoe(const model::Step *s, int t0, int n, bool decode,
                        std::string &error) {
  const model::Config &c = config();
  const int K = c.top_k(), D = c.hidden_size(), F = c.expert_ffn(),
            E = c.num_experts();
  const float *x = f32(s->inputs()->Get(0)) + static_cast<size_t>(t0) * D;
  const float *wts = f32(s->inputs()->Get(1)) + static_cast<size_t>(t0) * K;
  const int32_t *idx = i32(s->inputs()->Get(2)) + static_cast<size_t>(t0) * K;
  float *out = f32(s->outputs()->Get(0)) + static_cast<size_t>(t0) * D;
  Weight gate = weight(s->weights()->Get(0)), up = weight(s->weights()->Get(1)),
         down = weight(s->weights()->Get(2));
  // Bytes of one neuron's up row (with its scales) and down row (the down
  // scales are shared by 32 neurons and always read): what a dead neuron saves.
  const uint64_t upRow =
      isQuant(up.t->dtype())
          ? blocks16Tiles(D) * (quads(up.t->dtype()) * 64 + 32)
          : static_cast<uint64_t>(D) * 4;
  // (PowerInfer's neuron_rows down: the row's own scales too.)
  const bool rowScales = down.t->layout() == model::Layout::NeuronRows;
  const uint64_t downRow =
      down.t->dtype() == model::DType::Q4_0   ? D / 2 + (rowScales ? D / 16 : 0)
      : down.t->dtype() == model::DType::Q8_0 ? D + (rowScales ? D / 16 : 0)
                                              : D * 4ull;
  const uint64_t neuronBytes = upRow + downRow;
  // st-neuron-layout's order of expert e's stored rows, or null.
  const auto *orders = s->neuron_order();
  auto orderOf = [&](int32_t e) -> const int32_t * {
    return orders ? orders->data() + static_cast<size_t>(e) * F : nullptr;
  };
  sparseNeuronBytes_ = neuronBytes;
  uint64_t dead = 0;
  auto phase = [&](const char *kind, double &since) {
    chargePhase(kind, since);
  };
  // The live neurons of the `rows` gate rows in moeG_ (F each) as up-kernel
  // entries (expert, neuron, token); row r's are entries rowStart[r] ..
  // rowStart[r + 1] - 1. Returns how many.
  std::vector<int> rowStart;
  auto listLive = [&](int rows, auto expertOf, auto tokenOf) {
    sparseUpEnt_.resize(static_cast<size_t>(rows) * F * 3);
    rowStart.assign(rows + 1, 0);
    int live = 0;
    for (int r = 0; r < rows; ++r) {
      rowStart[r] = live;
      const float *g = &moeG_[static_cast<size_t>(r) * F];
      const int32_t expert = expertOf(r), token = tokenOf(r);
      // Branch-free: half the neurons are dead at random, a branch on each
      // would mispredict half the time.
      for (int f = 0; f < F; ++f) {
        int32_t *e = &sparseUpEnt_[static_cast<size_t>(live) * 3];
        e[0] = expert;
        e[1] = f;
        e[2] = token;
        live += g[f] > 0.0f;
      }
    }
    rowStart[rows] = live;
    dead += static_cast<uint64_t>(rows) * F - live;
    return live;
  };
  // The down kernels' input: relu(gate) * up of each row's live neurons, zero
  // for the dead ones, in neuron order (the gate and up values are in stored
  // order), and its Q8_0 rounding in qx_ (quantized down weights): the
  // blocks the dense down rounds.
  auto activations = [&](int rows, auto expertOf) {
    moeU_.assign(static_cast<size_t>(rows) * F, 0.0f);
    for (int r = 0; r < rows; ++r) {
      const int32_t *order = orderOf(expertOf(r));
      for (int i = rowStart[r]; i < rowStart[r + 1]; ++i) {
        const int32_t p = sparseUpEnt_[static_cast<size_t>(i) * 3 + 1];
        const size_t row = static_cast<size_t>(r) * F;
        moeU_[row + (order ? order[p] : p)] = moeG_[row + p] * sparseU_[i];
      }
    }
    return down.t->layout() != model::Layout::Transposed ||
           !isQuant(down.t->dtype()) ||
           quantizeRows(moeU_.data(), rows, F, error);
  };
  // Single tokens: slot t*K + j is token t's j-th expert. Under a memory
  // budget the distinct experts' cache slots stand in for the stacked
  // tensors (matrix slotOf_[i] of the arena instead of matrix idx[i]), while
  // the cache holds them all at once and either the arena fits the kernels'
  // 32-bit strides or the step is one token's (whose experts then run one
  // at a time, each slot a stack of one: bigArena).
  const int slots = n * K;
  bool fast = decode && isQuant(gate.t->dtype()) && isQuant(up.t->dtype());
  // Row r of the fast path is slot rowSlot_[r]'s (by expert when several
  // tokens share the step: orderSlots).
  const int32_t *rowIdx = fast ? orderSlots(idx, n, K) : nullptr;
  if (fast && cache_) {
    expertSlots_.clear(); // the distinct experts, then their cache slots
    for (int i = 0; i < slots; ++i)
      if (std::find(expertSlots_.begin(), expertSlots_.end(), idx[i]) ==
          expertSlots_.end())
        expertSlots_.push_back(idx[i]);
    fast = (cache_->slots() * cache_->slotStride() < (1ull << 31) || n == 1) &&
           expertSlots_.size() <= cache_->slots();
  }
  if (fast) {
    // The gates of every slot in one call, one up call over the live neurons
    // of all of them, then one down kernel per slot in one parallel loop.
    double t = seconds();
    int32_t matrices = E;
    const int32_t *which = rowIdx;
    int64_t strides[3];
    Weight *mats[3] = {&gate, &up, &down};
    for (int w = 0; w < 3; ++w)
      strides[w] = static_cast<int64_t>(mats[w]->t->expert_stride());
    // One token under a budget: its k experts in groups, those resident
    // first, each next group as soon as its reads are done (waitReady), so
    // that the compute of the first overlaps the reads of the last.
    const bool pipelined = cache_ && n == 1;
    const bool bigArena =
        cache_ && cache_->slots() * cache_->slotStride() >= (1ull << 31);
    const int distinct = static_cast<int>(expertSlots_.size());
    std::vector<int32_t> experts(expertSlots_);
    if (cache_) {
      const bool ok =
          pipelined ? cache_->reserveAll(s->layer(), experts.data(), distinct,
                                         expertSlots_.data(), error)
                    : cache_->acquireAll(s->layer(), experts.data(), distinct,
                                         expertSlots_.data(), error);
      if (!ok)
        return false;
      slotOf_.resize(slots);
      for (int i = 0; i < slots; ++i)
        slotOf_[i] =
            expertSlots_[std::find(experts.begin(), experts.end(), rowIdx[i]) -
                         experts.begin()];
      matrices = static_cast<int32_t>(cache_->slots());
      which = slotOf_.data();
      for (int w = 0; w < 3; ++w) { // matrix 0 is slot 0's
        mats[w]->data = cache_->slotMatrix(s->layer(), 0, w);
        strides[w] = static_cast<int64_t>(cache_->slotStride());
      }
      phase("moe expert cache", t);
    }
    moeY_.resize(static_cast<size_t>(slots) * D);
    // Rows `rows` of the step (indices into which / rowIdx, all when null):
    // their gates, live ups and downs into their rows of moeY_. (The input's
    // Q8_0 rows in qx_ are made here each time: the down's activations
    // replace them.)
    auto runRows = [&](int count, const int32_t *rows) {
      if (!quantizeRows(x, n, D, error))
        return false;
      if (n > 1)
        expandToSlots(n, K, D);
      const int32_t *w = which, *ex = rowIdx;
      if (rows) {
        subWhich_.resize(count);
        subExpert_.resize(count);
        for (int j = 0; j < count; ++j) {
          subWhich_[j] = which[rows[j]];
          subExpert_[j] = rowIdx[rows[j]];
        }
        w = subWhich_.data();
        ex = subExpert_.data();
      }
      moeG_.resize(static_cast<size_t>(count) * F);
      if (!expertsGemm(gate, matrices, strides[0], w, count, n == 1,
                       moeG_.data(), error))
        return false;
      phase("moe gate", t);
      // Each slot's live neurons read its input row (row 0 for one token).
      const int live = listLive(
          count, [&](int j) { return w[j]; },
          [&](int j) { return n == 1 ? 0 : j; });
      sparseU_.resize(live);
      phase("moe live list", t);
      if (live > 0 && !sparseUp(up, matrices, strides[1], sparseUpEnt_.data(),
                                live, x, sparseU_.data(), error))
        return false;
      phase("moe up (live rows)", t);
      if (!activations(count, [&](int j) { return ex[j]; }))
        return false;
      phase("moe down prep", t);
      downJobs_.clear();
      for (int j = 0; j < count; ++j)
        downJobs_.push_back(
            {{down.t, down.data + w[j] * strides[2], down.rows, down.cols},
             &moeU_[static_cast<size_t>(j) * F],
             j,
             orderOf(ex[j]),
             &moeY_[static_cast<size_t>(rows ? rows[j] : j) * D]});
      if (!sparseDowns(downJobs_.data(), count, error))
        return false;
      phase("moe down (live rows)", t);
      return true;
    };
    if (!pipelined) {
      if (!runRows(slots, nullptr))
        return false;
    } else {
      // One token: row j is expert experts[j]'s (distinct == slots == K).
      std::vector<char> taken(distinct, 0);
      zeroRows_.assign(slots, 0);
      std::vector<int> ready;
      std::vector<int32_t> rows;
      for (int done = 0; done < distinct;) {
        ready.clear();
        if (!cache_->waitReady(s->layer(), experts.data(), expertSlots_.data(),
                               distinct, taken, ready, error)) {
          cache_->releaseAll();
          return false;
        }
        phase("moe expert cache", t);
        // The groups: all ready experts at once while the arena fits the
        // kernels' 32-bit strides (matrix slotOf_[row] of the arena), else
        // each alone; an expert alone is its slot's matrices as a stack of
        // one (matrix 0 at the slot), either way.
        const size_t groups = bigArena ? ready.size() : 1;
        for (size_t g = 0; g < groups; ++g) {
          const size_t r0 = bigArena ? g : 0,
                       r1 = bigArena ? g + 1 : ready.size();
          rows.clear();
          for (size_t r = r0; r < r1; ++r)
            for (int j = 0; j < slots; ++j)
              if (rowIdx[j] == experts[ready[r]])
                rows.push_back(j);
          const bool alone = r1 - r0 == 1;
          matrices = alone ? 1 : static_cast<int32_t>(cache_->slots());
          which = alone ? zeroRows_.data() : slotOf_.data();
          for (int w = 0; w < 3; ++w)
            mats[w]->data = cache_->slotMatrix(
                s->layer(), alone ? expertSlots_[ready[r0]] : 0, w);
          if (!runRows(static_cast<int>(rows.size()), rows.data())) {
            cache_->releaseAll();
            return false;
          }
        }
        done += static_cast<int>(ready.size());
      }
      cache_->releaseAll();
    }
    combineSlots(out, wts, n, K, D, moeY_.data(), slotRow_.data());
  } else {
    // Prompt chunks, f32 weights, and an expert cache too small for every
    // slot's expert at once: each expert once for all its tokens.
    bool ok = forEachExpert(
        s, t0, n,
        [&](int expert, const std::vector<int> &slots, const Weight *mats) {
          const int m = static_cast<int>(slots.size());
          moeG_.resize(static_cast<size_t>(m) * F);
          if (!gemm(moeX_.data(), m, mats[0], moeG_.data(), error))
            return false;
          // The gate gemm quantized the rows only if its weights are
          // quantized.
          if (isQuant(up.t->dtype()) && !isQuant(gate.t->dtype()) &&
              !quantizeRows(moeX_.data(), m, D, error))
            return false;
          const int live = listLive(
              m, [](int) { return 0; }, [](int i) { return i; });
          sparseU_.resize(live);
          if (live > 0 &&
              !sparseUp(mats[1], 1, static_cast<int64_t>(up.t->expert_stride()),
                        sparseUpEnt_.data(), live, moeX_.data(),
                        sparseU_.data(), error))
            return false;
          if (!activations(m, [&](int) { return expert; }))
            return false;
          downJobs_.clear();
          for (int i = 0; i < m; ++i)
            downJobs_.push_back(
                {mats[2], &moeU_[static_cast<size_t>(i) * F], i,
                 orderOf(expert),
                 &moeSlotY_[static_cast<size_t>(slots[i]) * D]});
          return sparseDowns(downJobs_.data(), m, error);
        },
        error);
    if (!ok)
      return false;
  }
  if (decode) {
    deadNeurons_ += dead;
    expertNeurons_ += static_cast<uint64_t>(slots) * F;
    skippedBytes_ += dead * neuronBytes;
  }
  return true;
}

} // namespace stc::rt
