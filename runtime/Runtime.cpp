// The runtime's loader and plan executor: maps the model file, sizes the
// buffers, KV caches and RoPE tables, and runs the plan's steps in order (the
// weight-reading steps live in Gemm.cpp, Attention.cpp, Moe.cpp and
// SparseMoe.cpp).
#include "Runtime.h"

#include "CpuFeatures.h"
#include "KernelSet.h"
#include "Kernels.h"
#include "RuntimeDetail.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>

namespace stc::rt {

namespace {

// Halide's default error handler prints and aborts; keep the message instead so
// the failing step can report it as an error.
thread_local std::string halideErrorText;

void onHalideError(void *, const char *msg) { halideErrorText = msg; }

} // namespace

namespace {

// The first kernel the plan of `m` may call that this binary has only a stub
// of, or "".
std::string missingKernel(const model::Model &m) {
  for (const std::string &k : kernelsFor(m))
    for (const char *const *absent = stc_absent_kernels; *absent; ++absent)
      if (k == *absent)
        return k;
  return "";
}

} // namespace

std::string kernelError(const std::string &what) {
  std::string m = what + ": " + halideErrorText;
  while (!m.empty() && (m.back() == '\n' || m.back() == ' '))
    m.pop_back();
  return m;
}

Runtime::~Runtime() {}

bool Runtime::load(const std::string &path, const RuntimeOptions &options,
                   std::string &error) {
  // A memory budget (the runtime's own, else the compiled one) maps lazily and
  // streams the experts through a cache; without one the whole file is read in
  // at load.
  if (!file_.open(path, error, false))
    return false;
  const uint64_t budget = options.memoryBudget ? options.memoryBudget
                                               : file_.model()->memory_budget();
  if (budget == 0 && options.expertsFromStorage) {
    error = path + ": reading experts from storage needs a memory budget "
                   "(without one every weight is resident)";
    return false;
  }
  // Every weight resident: in a private copy in huge pages where the OS has
  // them (ModelFile::copyToHugePages says why), else the file's own pages,
  // read in now.
  if (budget == 0 && options.populate) {
    const bool inHugePages = !options.sharedMapping && file_.copyToHugePages();
    if (!inHugePages)
      file_.populate();
  }
  const model::Model *m = file_.model();
  const std::string target = m->target() ? m->target()->str() : "?";
  const std::string halideTarget =
      m->halide_target() ? m->halide_target()->str() : "";
#if defined(__x86_64__)
  const bool sameArch = halideTarget.rfind("x86-64", 0) == 0;
#elif defined(__aarch64__)
  const bool sameArch = halideTarget.rfind("arm-64", 0) == 0;
#else
  const bool sameArch = false;
#endif
  if (!sameArch) {
    error = path + ": compiled for target '" + target + "' (" + halideTarget +
            "), another CPU architecture than this one";
    return false;
  }
  // Refuse a CPU that lacks the kernels' instructions before running any of
  // them (instead of dying of SIGILL in the first kernel).
  if (m->cpu_features()) {
    for (const auto *f : *m->cpu_features()) {
      if (!hostHas(f->str())) {
        error = path + ": compiled for target '" + target +
                "', which needs the CPU feature '" + f->str() +
                "' that this CPU lacks; compile for --target host";
        return false;
      }
    }
  }
  // The kernels are weak symbols: out/ links only those its plan calls.
  if (const std::string k = missingKernel(*m); !k.empty()) {
    error = path + ": needs the kernel " + k +
            ", which this binary was not linked with (link the libstc_model.a "
            "of the same compile)";
    return false;
  }
  halide_set_error_handler(onHalideError);
  const model::Config &c = config();
  int threads = options.threads > 0
                    ? options.threads
                    : static_cast<int>(std::thread::hardware_concurrency());
  threads_ = std::max(1, threads);
  pool_ = std::make_unique<ThreadPool>(threads_, options.workersOnly);
  maxContext_ = options.maxContext > 0 ? options.maxContext
                                       : std::min(c.max_positions(), 4096);
  maxBatch_ = std::max(1, options.maxBatch);
  // Ring KV caches were sized for chunks of at most the planned batch.
  if (m->max_batch() > 0)
    maxBatch_ = std::min(maxBatch_, m->max_batch());

  bufs_.resize(m->buffers()->size());
  for (size_t i = 0; i < bufs_.size(); ++i)
    bufs_[i].assign(
        static_cast<size_t>(m->buffers()->Get(i)->width()) * maxBatch_ * 4, 0);
  if (c.head_dim() % 16 != 0) {
    error = path + ": head_dim " + std::to_string(c.head_dim()) +
            " is not a multiple of 16, which the attention kernels need";
    return false;
  }
  // KV caches as planned (st-kv-plan): a ring of kv_slots on sliding-window
  // layers, the whole context on the others.
  const size_t kvWidth = static_cast<size_t>(c.num_kv_heads()) * c.head_dim();
  kvSlots_.assign(c.num_layers(), maxContext_);
  kvWindow_.assign(c.num_layers(), 0);
  for (const model::Step *s : *m->steps()) {
    if (s->op() != model::Op::Attention || !s->ints() || s->layer() < 0)
      continue;
    if (s->ints()->size() > 3)
      kvWindow_[s->layer()] = static_cast<int>(s->ints()->Get(3));
    if (s->ints()->size() > 4 && s->ints()->Get(4) > 0)
      kvSlots_[s->layer()] =
          static_cast<int>(std::min<int64_t>(s->ints()->Get(4), maxContext_));
  }
  kcache_.resize(c.num_layers());
  vcache_.resize(c.num_layers());
  kpos_.resize(c.num_layers());
  for (int l = 0; l < c.num_layers(); ++l) {
    kcache_[l].assign(kvWidth * kvSlots_[l], 0.0f);
    vcache_[l].assign(kvWidth * kvSlots_[l], 0.0f);
    kpos_[l].assign(kvSlots_[l], -1);
  }
  // RoPE tables in double precision: angle = pos * theta^(-2j/d).
  const int half = c.head_dim() / 2;
  cos_.resize(static_cast<size_t>(maxContext_) * half);
  sin_.resize(cos_.size());
  for (int p = 0; p < maxContext_; ++p)
    for (int j = 0; j < half; ++j) {
      double angle = p * std::pow(c.rope_theta(), -2.0 * j / c.head_dim());
      cos_[static_cast<size_t>(p) * half + j] =
          static_cast<float>(std::cos(angle));
      sin_[static_cast<size_t>(p) * half + j] =
          static_cast<float>(std::sin(angle));
    }
  lastLogits_.assign(c.vocab_size(), 0.0f);
  // The tail: the steps after the last per-layer step. Buffers written before
  // it are the ones whose last row the tail may need.
  const auto &steps = *m->steps();
  tailStart_ = static_cast<int>(steps.size());
  for (size_t i = 0; i < steps.size(); ++i)
    if (steps.Get(i)->layer() >= 0)
      tailStart_ = static_cast<int>(i) + 1;
  // Each layer's expert tensors, for the route-ahead prefetch.
  moeWeights_.assign(c.num_layers(), {});
  for (const model::Step *s : *m->steps())
    if (s->op() == model::Op::Moe && s->layer() >= 0 && s->weights()) {
      for (int32_t w : *s->weights())
        moeWeights_[s->layer()].push_back(w);
      if (!checkMoeLayouts(s, error))
        return false;
    }
  populated_ = options.populate && budget == 0;
  profiling_ = options.profile;
  if (budget > 0 && !initExpertCache(budget, options.expertsFromStorage, error))
    return false;
  producedBefore_.assign(bufs_.size(), false);
  for (int i = 0; i < tailStart_; ++i)
    for (int32_t b : *steps.Get(i)->outputs())
      producedBefore_[b] = true;
  return true;
}

Runtime::Weight Runtime::weight(int tensor, int expert) const {
  const model::Tensor *t = file_.model()->tensors()->Get(tensor);
  const auto *shape = t->shape();
  size_t r = shape->size();
  Weight w;
  w.t = t;
  w.cols = shape->Get(r - 1);
  w.rows = r >= 2 ? shape->Get(r - 2) : 1;
  w.data =
      file_.tensorData(t) + static_cast<uint64_t>(expert) * t->expert_stride();
  return w;
}

void Runtime::reset() {
  pos_ = 0;
  for (std::vector<int32_t> &k : kpos_)
    std::fill(k.begin(), k.end(), -1);
}

bool Runtime::rewind(int n, std::string &error) {
  if (n < 0 || n > pos_) {
    error = "cannot rewind to " + std::to_string(n) + " tokens: the context " +
            "holds " + std::to_string(pos_);
    return false;
  }
  // Position n attends to the keys in (n - window, n): on a ring, those must
  // not have been overwritten by the positions being forgotten.
  for (size_t l = 0; l < kpos_.size(); ++l) {
    const int slots = kvSlots_[l];
    if (slots >= maxContext_)
      continue;
    const int window = kvWindow_[l] > 0 ? kvWindow_[l] : slots;
    for (int p = std::max(0, n - window + 1); p < n; ++p)
      if (kpos_[l][p % slots] != p) {
        error = "cannot rewind to " + std::to_string(n) + " tokens: layer " +
                std::to_string(l) + "'s sliding-window cache no longer " +
                "holds position " + std::to_string(p);
        return false;
      }
  }
  for (std::vector<int32_t> &k : kpos_)
    for (int32_t &p : k)
      if (p >= n)
        p = -1;
  pos_ = n;
  return true;
}

uint64_t Runtime::kvBytesPerToken() const {
  const model::Config &c = config();
  uint64_t perLayer = 2ull * c.num_kv_heads() * c.head_dim() * 4;
  uint64_t total = 0;
  for (int l = 0; l < c.num_layers(); ++l)
    if (kvSlots_[l] == maxContext_)
      total += perLayer;
  return total;
}

uint64_t Runtime::kvRingBytes() const {
  const model::Config &c = config();
  uint64_t perSlot = 2ull * c.num_kv_heads() * c.head_dim() * 4;
  uint64_t total = 0;
  for (int l = 0; l < c.num_layers(); ++l)
    if (kvSlots_[l] != maxContext_)
      total += perSlot * kvSlots_[l];
  return total;
}

uint64_t Runtime::weightBytesPerToken() const {
  const model::Model *m = file_.model();
  uint64_t total = 0;
  for (const model::Step *s : *m->steps()) {
    if (!s->weights())
      continue;
    for (int32_t i : *s->weights()) {
      const model::Tensor *t = m->tensors()->Get(i);
      if (s->op() == model::Op::Embed)
        total += t->size() / t->shape()->Get(0);
      else if (s->op() == model::Op::Moe)
        total += t->expert_stride() * config().top_k();
      else
        total += t->size();
    }
  }
  return total;
}

bool Runtime::runStep(const model::Step *s, int n, std::string &error) {
  auto in = [&](int i) { return s->inputs()->Get(i); };
  auto outb = [&](int i) { return s->outputs()->Get(i); };
  switch (s->op()) {
  case model::Op::Embed: {
    Weight table = weight(s->weights()->Get(0));
    const int32_t *ids = i32(in(0));
    float *x = f32(outb(0));
    for (int t = 0; t < n; ++t)
      embedRow(table, ids[t], x + static_cast<size_t>(t) * table.cols);
    return true;
  }
  case model::Op::RmsNorm: {
    const int32_t D = static_cast<int32_t>(width(in(0)));
    Weight w = weight(s->weights()->Get(0));
    HBuf hx(f32(in(0)), halide_type_float, 32, {{D, 1}, {n, D}});
    HBuf hw(w.data, halide_type_float, 32, {{D, 1}});
    HBuf hy(f32(outb(0)), halide_type_float, 32, {{D, 1}, {n, D}});
    if (stc_rms_norm(hx.get(), hw.get(),
                     static_cast<float>(s->floats()->Get(0)), hy.get()) != 0) {
      error = kernelError("rms_norm kernel failed");
      return false;
    }
    return true;
  }
  case model::Op::Gemm:
    return gemm(f32(in(0)), n, weight(s->weights()->Get(0)), f32(outb(0)),
                error);
  case model::Op::Route:
    route(f32(in(0)), static_cast<int>(width(in(0))), n, s, f32(outb(0)),
          i32(outb(1)));
    return true;
  case model::Op::Dispatch: {
    // Route-ahead: the router matmul, top-k and weighting in one step, then a
    // prefetch of the chosen experts so their reads overlap attention.
    Weight w = weight(s->weights()->Get(0));
    routerLogits_.resize(static_cast<size_t>(n) * w.rows);
    if (!gemm(f32(in(0)), n, w, routerLogits_.data(), error))
      return false;
    route(routerLogits_.data(), static_cast<int>(w.rows), n, s, f32(outb(0)),
          i32(outb(1)));
    prefetchExperts(s->layer(), i32(outb(1)),
                    n * static_cast<int>(s->ints()->Get(0)));
    return true;
  }
  case model::Op::Rope: {
    const int32_t H = static_cast<int32_t>(s->ints()->Get(0));
    const int32_t hd = static_cast<int32_t>(s->ints()->Get(1));
    // Each head's d values as (j, half): the kernel pairs x(j, 0) with
    // x(j, 1).
    const int32_t half = hd / 2;
    HBuf hx(f32(in(0)), halide_type_float, 32,
            {{half, 1}, {2, half}, {H, hd}, {n, H * hd}});
    HBuf hp(i32(in(1)), halide_type_int, 32, {{n, 1}});
    HBuf hc(cos_.data(), halide_type_float, 32,
            {{half, 1}, {maxContext_, half}});
    HBuf hs(sin_.data(), halide_type_float, 32,
            {{half, 1}, {maxContext_, half}});
    HBuf hy(f32(outb(0)), halide_type_float, 32,
            {{half, 1}, {2, half}, {H, hd}, {n, H * hd}});
    if (stc_rope_neox(hx.get(), hp.get(), hc.get(), hs.get(), hy.get()) != 0) {
      error = kernelError("rope kernel failed");
      return false;
    }
    return true;
  }
  case model::Op::Attention:
    return attention(s, n, error);
  case model::Op::Moe:
    return moe(s, n, error);
  case model::Op::Add: {
    const size_t count = static_cast<size_t>(n) * width(in(0));
    const float *a = f32(in(0)), *b = f32(in(1));
    float *o = f32(outb(0));
    for (size_t i = 0; i < count; ++i)
      o[i] = a[i] + b[i];
    return true;
  }
  }
  error = "unknown step";
  return false;
}

bool Runtime::runChunk(const int32_t *tokens, int n, float *allLogits,
                       std::string &error) {
  const model::Model *m = file_.model();
  const int V = config().vocab_size();
  int32_t *ids = i32(m->ids_buffer());
  int32_t *positions = i32(m->positions_buffer());
  if (n == 1)
    ++decodedTokens_;
  for (int t = 0; t < n; ++t) {
    if (tokens[t] < 0 || tokens[t] >= V) {
      error = "token id " + std::to_string(tokens[t]) +
              " is outside the vocabulary [0, " + std::to_string(V) + ")";
      return false;
    }
    ids[t] = tokens[t];
    positions[t] = pos_ + t;
  }
  const auto &steps = *m->steps();
  // Without a request for every position's logits, the steps after the last
  // layer (final norm, head) run on the last token only: the head is a quarter
  // of the prefill work and only the last row is wanted.
  const int tailRows = allLogits ? n : 1;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (static_cast<int>(i) == tailStart_ && tailRows != n) {
      // Move the last token's row of each tail input produced before the tail
      // to row 0; tail steps then see a batch of one.
      for (size_t j = i; j < steps.size(); ++j)
        for (int32_t b : *steps.Get(j)->inputs())
          if (producedBefore_[b] && b != m->ids_buffer() &&
              b != m->positions_buffer()) {
            size_t rowBytes = static_cast<size_t>(width(b)) * 4;
            std::memmove(bufs_[b].data(), bufs_[b].data() + (n - 1) * rowBytes,
                         rowBytes);
          }
    }
    const int rows = static_cast<int>(i) >= tailStart_ ? tailRows : n;
    if (!step(steps.Get(i), rows, error))
      return false;
  }
  const float *logits = f32(m->logits_buffer());
  if (allLogits)
    std::memcpy(allLogits, logits, static_cast<size_t>(n) * V * 4);
  std::memcpy(lastLogits_.data(),
              logits + static_cast<size_t>(tailRows - 1) * V, V * 4);
  pos_ += n;
  return true;
}

bool Runtime::eval(const int32_t *tokens, int n, float *allLogits,
                   std::string &error) {
  if (n <= 0) {
    error = "no tokens to evaluate";
    return false;
  }
  if (pos_ + n > maxContext_) {
    error = "context full: " + std::to_string(pos_) + " + " +
            std::to_string(n) + " tokens exceed the maximum of " +
            std::to_string(maxContext_);
    return false;
  }
  const int V = config().vocab_size();
  // This model's threads run the kernels' parallel loops (another model in the
  // process has its own).
  ThreadPool::Use use(pool_.get());
  for (int done = 0; done < n; done += maxBatch_) {
    int chunk = std::min(maxBatch_, n - done);
    if (!runChunk(tokens + done, chunk,
                  allLogits ? allLogits + static_cast<size_t>(done) * V
                            : nullptr,
                  error))
      return false;
  }
  return true;
}

} // namespace stc::rt
