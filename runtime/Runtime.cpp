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
#include <climits>
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
bool absent(const std::string &kernel) {
  for (const char *const *a = stc_absent_kernels; *a; ++a)
    if (kernel == *a)
      return true;
  return false;
}

std::string missingKernel(const model::Model &m) {
  for (const std::string &k : kernelsFor(m))
    if (absent(k))
      return k;
  return "";
}

// The first attention kernel a KV cache of `type` needs that this binary has
// only a stub of, or "".
std::string missingAttentionKernel(model::KvType type, int headDim) {
  for (const std::string &k : attentionKernels(type, headDim))
    if (absent(k))
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
  if (!file_.open(path, error, false))
    return false;
  // A memory budget (the runtime's own, else the compiled one) plans the whole
  // process (MemoryPlan.h); without one every weight is read in at load.
  const uint64_t budget = options.memoryBudget ? options.memoryBudget
                                               : file_.model()->memory_budget();
  if (budget == 0 && options.expertsFromStorage) {
    error = path + ": reading experts from storage needs a memory budget "
                   "(without one every weight is resident)";
    return false;
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
  // Under a budget the plan counts each sequence's KV cache (0: it chooses
  // how many); without one they are reserved as they come.
  maxSequences_ = options.sequences > 0   ? options.sequences
                  : budget == 0           ? INT_MAX
                  : options.sequences < 0 ? 0
                                          : 1;
  if (options.maxContext > c.max_positions()) {
    error = path + ": a context of " + std::to_string(options.maxContext) +
            " tokens is past the model's trained length of " +
            std::to_string(c.max_positions());
    return false;
  }
  if (c.head_dim() % 32 != 0) {
    error = path + ": head_dim " + std::to_string(c.head_dim()) +
            " is not a multiple of 32, which the attention kernels need";
    return false;
  }
  if (!readKvLayers(options.kvType, error)) {
    error = path + ": " + error;
    return false;
  }
  // Each layer's expert tensors, for the route-ahead prefetch and the cache,
  // and its route-ahead step's index (whose router the layer before guesses
  // with; an index, as a budget moves the model into its own image).
  moeWeights_.assign(c.num_layers(), {});
  dispatchOf_.assign(c.num_layers(), -1);
  for (uint32_t i = 0; i < m->steps()->size(); ++i) {
    const model::Step *s = m->steps()->Get(i);
    if (s->op() == model::Op::Dispatch && s->layer() >= 0 &&
        s->layer() < c.num_layers() && s->weights() &&
        s->weights()->size() > 0 && s->ints() && s->ints()->size() >= 2)
      dispatchOf_[s->layer()] = static_cast<int>(i);
    if (s->op() == model::Op::Moe && s->layer() >= 0 && s->weights()) {
      for (int32_t w : *s->weights())
        moeWeights_[s->layer()].push_back(w);
      if (!checkMoeLayouts(s, error))
        return false;
    }
  }
  // Ring KV caches were sized for chunks of at most the planned batch.
  int maxBatch = std::max(1, options.maxBatch);
  if (m->max_batch() > 0)
    maxBatch = std::min(maxBatch, m->max_batch());
  if (budget > 0) {
    if (!planBudget(budget, options.maxContext, maxBatch, error))
      return false;
  } else {
    // The context defaults to the model's trained length: its KV cache is
    // reserved, and a page is touched only when a position fills it.
    maxContext_ =
        options.maxContext > 0 ? options.maxContext : c.max_positions();
    maxBatch_ = maxBatch;
    // Every weight resident: in a private copy in huge pages where the OS
    // has them (ModelFile::copyToHugePages says why), else the file's own
    // pages, read in now.
    if (options.populate) {
      const bool inHugePages =
          !options.sharedMapping && file_.copyToHugePages();
      if (!inHugePages)
        file_.populate();
    }
  }
  // The plan may have moved (into a copy of the file): from here on, read it
  // again (m, config()), never through the references taken before.
  m = file_.model();
  // The activation buffers, charged as rows are first written: the logits
  // buffer for 256 rows is ~148 MiB for a 151936-word vocabulary, of which a
  // decoded token writes one row.
  uint64_t bufferBytes = 0;
  for (const model::Buffer *b : *m->buffers())
    bufferBytes += static_cast<uint64_t>(b->width()) * maxBatch_ * 4;
  if (!bufferArena_.reserve(bufferBytes)) {
    error = path + ": cannot reserve the activation buffers";
    return false;
  }
  bufs_.clear();
  uint64_t at = 0;
  for (const model::Buffer *b : *m->buffers()) {
    bufs_.push_back(bufferArena_.data() + at);
    at += static_cast<uint64_t>(b->width()) * maxBatch_ * 4;
  }
  if (!initSequence(own_, error)) {
    error = path + ": " + error;
    return false;
  }
  ropeRows_ = 0; // the RoPE tables grow as positions are reached (ropeTo)
  // The tail: the steps after the last per-layer step. Buffers written before
  // it are the ones whose last row the tail may need.
  const auto &steps = *m->steps();
  tailStart_ = static_cast<int>(steps.size());
  for (size_t i = 0; i < steps.size(); ++i)
    if (steps.Get(i)->layer() >= 0)
      tailStart_ = static_cast<int>(i) + 1;
  populated_ = options.populate && budget == 0;
  profiling_ = options.profile;
  if (budget > 0 && !initExpertCache(error))
    return false;
  producedBefore_.assign(bufs_.size(), false);
  for (int i = 0; i < tailStart_; ++i)
    for (int32_t b : *steps.Get(i)->outputs())
      producedBefore_[b] = true;
  return true;
}

bool Runtime::readKvLayers(int kvType, std::string &error) {
  // As planned (st-kv-plan): a ring of kv_slots on sliding-window layers, the
  // whole context on the others, in the planned element type unless the
  // options name another.
  const model::Config &c = config();
  kvLayers_.assign(c.num_layers(), KvLayerPlan());
  for (const model::Step *s : *file_.model()->steps()) {
    if (s->op() != model::Op::Attention || !s->ints() || s->layer() < 0)
      continue;
    KvLayerPlan &l = kvLayers_[s->layer()];
    if (s->ints()->size() > 3)
      l.window = static_cast<int>(s->ints()->Get(3));
    if (s->ints()->size() > 4 && s->ints()->Get(4) > 0) {
      l.ring = true;
      l.slots = static_cast<int>(s->ints()->Get(4));
    }
    if (s->ints()->size() > 5) {
      const int64_t t = s->ints()->Get(5);
      if (t < 0 || t > static_cast<int64_t>(model::KvType::MAX)) {
        error = "layer " + std::to_string(s->layer()) +
                " names KV cache type " + std::to_string(t) +
                ", which this runtime does not know";
        return false;
      }
      l.type = static_cast<model::KvType>(t);
    }
    if (kvType >= 0)
      l.type = static_cast<model::KvType>(kvType);
    kvType_ = l.type;
  }
  if (const std::string k = missingAttentionKernel(kvType_, c.head_dim());
      !k.empty()) {
    error = std::string("a ") + kvTypeName(kvType_) +
            " KV cache needs the kernel " + k +
            ", which this binary was not linked with (compile with --kv-type " +
            kvTypeName(kvType_) + ")";
    return false;
  }
  return true;
}

std::vector<KvLayerPlan> Runtime::kvLayers(int context) const {
  std::vector<KvLayerPlan> layers = kvLayers_;
  for (KvLayerPlan &l : layers)
    if (!l.ring || l.slots >= context) {
      l.ring = false; // a ring as long as the context is the whole context
      l.slots = context;
    }
  return layers;
}

void Runtime::ropeTo(int positions) {
  if (positions <= ropeRows_)
    return;
  // In double precision: angle = pos * theta^(-2j/d).
  const model::Config &c = config();
  const int half = c.head_dim() / 2;
  cos_.resize(static_cast<size_t>(positions) * half);
  sin_.resize(cos_.size());
  for (int p = ropeRows_; p < positions; ++p)
    for (int j = 0; j < half; ++j) {
      double angle = p * std::pow(c.rope_theta(), -2.0 * j / c.head_dim());
      cos_[static_cast<size_t>(p) * half + j] =
          static_cast<float>(std::cos(angle));
      sin_[static_cast<size_t>(p) * half + j] =
          static_cast<float>(std::sin(angle));
    }
  ropeRows_ = positions;
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

bool Runtime::initSequence(Sequence &s, std::string &error) {
  const model::Config &c = config();
  s.pos_ = 0;
  s.lastLogits_.assign(c.vocab_size(), 0.0f);
  return s.kv_.init(kvLayers(maxContext_), c.num_kv_heads(), c.head_dim(),
                    maxContext_, error);
}

std::unique_ptr<Sequence> Runtime::newSequence(std::string &error) {
  // Counted before the cache is made, so two threads cannot both take the
  // last place.
  if (++liveSequences_ > maxSequences_) {
    --liveSequences_;
    error = file_.path() + ": " + std::to_string(maxSequences_) +
            " sequences exist already, as many as the model was loaded for "
            "(its memory plan holds a KV cache for each: "
            "RuntimeOptions::sequences, stc_options.max_sequences)";
    return nullptr;
  }
  auto s = std::make_unique<Sequence>();
  s->live_ = &liveSequences_;
  if (!initSequence(*s, error)) {
    error = file_.path() + ": " + error;
    return nullptr; // (its destructor gives the place back)
  }
  return s;
}

void Runtime::reset(Sequence &s) {
  s.pos_ = 0;
  s.kv_.forgetFrom(0);
}

bool Runtime::rewind(Sequence &s, int n, std::string &error) {
  if (n < 0 || n > s.pos_) {
    error = "cannot rewind to " + std::to_string(n) + " tokens: the context " +
            "holds " + std::to_string(s.pos_);
    return false;
  }
  // Position n attends to the keys in (n - window, n): on a ring, those must
  // not have been overwritten by the positions being forgotten.
  std::string why;
  if (!s.kv_.holdsWindowBefore(n, why)) {
    error = "cannot rewind to " + std::to_string(n) + " tokens: " + why;
    return false;
  }
  s.kv_.forgetFrom(n);
  s.pos_ = n;
  return true;
}

uint64_t Runtime::kvBytesPerToken() const {
  const model::Config &c = config();
  uint64_t total = 0;
  const KvCache &kv = own_.kv_;
  for (int l = 0; l < kv.numLayers(); ++l)
    if (!kv.layer(l).ring)
      total +=
          2 * c.num_kv_heads() * kvRowBytes(kv.layer(l).type, c.head_dim());
  return total;
}

uint64_t Runtime::kvRingBytes() const {
  const model::Config &c = config();
  uint64_t total = 0;
  const KvCache &kv = own_.kv_;
  for (int l = 0; l < kv.numLayers(); ++l)
    if (kv.layer(l).ring)
      total += 2ull * c.num_kv_heads() *
               kvRowBytes(kv.layer(l).type, c.head_dim()) * kv.layer(l).slots;
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
      else if (s->op() == model::Op::Moe) // a matrix, not its page padding
        total += tensorBytes(t->dtype(), t->layout(), t->shape()->data() + 1,
                             t->shape()->size() - 1, nullptr) *
                 config().top_k();
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
    for (int t = 0; t < n; ++t) {
      float *row = x + static_cast<size_t>(t) * table.cols;
      if (table.t != lookupOnly_)
        embedRow(table, ids[t], row);
      else if (!embedRowFromStorage(table, ids[t], row, error))
        return false;
    }
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
    if (!routeAhead(s, f32(in(0)), n, f32(outb(0)), i32(outb(1)), error))
      return false;
    double t = seconds();
    if (!prefetchExperts(s, f32(in(0)), i32(outb(1)), n, error))
      return false;
    chargePhase("dispatch: expert prefetch", t, "dispatch");
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
    HBuf hc(cos_.data(), halide_type_float, 32, {{half, 1}, {ropeRows_, half}});
    HBuf hs(sin_.data(), halide_type_float, 32, {{half, 1}, {ropeRows_, half}});
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

} // namespace stc::rt
