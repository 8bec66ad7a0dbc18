#include "Runtime.h"

#include "CpuFeatures.h"
#include "Half.h"
#include "Kernels.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <sys/mman.h>
#include <thread>
#include <unistd.h>

namespace stc::rt {

namespace {

// Halide's default error handler prints and aborts; keep the message instead so
// the failing step can report it as an error.
thread_local std::string halideErrorText;

bool isQuant(model::DType t) {
  return t == model::DType::Q4_0 || t == model::DType::Q8_0;
}

double seconds() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
void onHalideError(void *, const char *msg) { halideErrorText = msg; }

std::string kernelError(const std::string &what) {
  std::string m = what + ": " + halideErrorText;
  while (!m.empty() && (m.back() == '\n' || m.back() == ' '))
    m.pop_back();
  return m;
}

uint16_t loadU16(const uint8_t *p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

int quads(model::DType t) { return t == model::DType::Q4_0 ? 4 : 8; }

} // namespace

Runtime::~Runtime() {
  if (pool_)
    ThreadPool::install(nullptr); // Halide's kernels must not call a freed pool
}

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
  if (budget == 0 && options.populate)
    file_.populate();
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
  halide_set_error_handler(onHalideError);
  const model::Config &c = config();
  int threads = options.threads > 0
                    ? options.threads
                    : static_cast<int>(std::thread::hardware_concurrency());
  threads_ = std::max(1, threads);
  pool_ = std::make_unique<ThreadPool>(threads_);
  ThreadPool::install(pool_.get());
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
  // KV caches as planned (st-kv-plan): a ring of kv_slots on sliding-window
  // layers, the whole context on the others.
  const size_t kvWidth = static_cast<size_t>(c.num_kv_heads()) * c.head_dim();
  kvSlots_.assign(c.num_layers(), maxContext_);
  for (const model::Step *s : *m->steps())
    if (s->op() == model::Op::Attention && s->ints() && s->ints()->size() > 4 &&
        s->ints()->Get(4) > 0 && s->layer() >= 0)
      kvSlots_[s->layer()] =
          static_cast<int>(std::min<int64_t>(s->ints()->Get(4), maxContext_));
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

void Runtime::embedRow(const Weight &w, int64_t row, float *out) const {
  const int64_t K = w.cols;
  switch (w.t->dtype()) {
  case model::DType::F32:
    std::memcpy(out, w.data + row * K * 4, K * 4);
    return;
  case model::DType::F16:
    for (int64_t k = 0; k < K; ++k)
      out[k] = halfToFloat(loadU16(w.data + (row * K + k) * 2));
    return;
  default:
    break;
  }
  // Rows16: gather the row's bytes out of its group's tiles.
  const int Q = quads(w.t->dtype());
  const int64_t B = K / 32, g = row / 16, l = row % 16;
  const int64_t tileBytes = Q * 64, G = w.rows / 16;
  const uint8_t *tiles = w.data;
  const uint8_t *scales = w.data + G * B * tileBytes;
  for (int64_t b = 0; b < B; ++b) {
    const uint8_t *tile = tiles + (g * B + b) * tileBytes;
    float d = halfToFloat(loadU16(scales + ((g * B + b) * 16 + l) * 2));
    for (int j = 0; j < Q; ++j)
      for (int r = 0; r < 4; ++r) {
        uint8_t byte = tile[j * 64 + l * 4 + r];
        if (Q == 4) {
          out[b * 32 + 4 * j + r] = d * ((byte & 15) - 8);
          out[b * 32 + 16 + 4 * j + r] = d * ((byte >> 4) - 8);
        } else {
          out[b * 32 + 4 * j + r] = d * (static_cast<int>(byte) - 128);
        }
      }
  }
}

int32_t Runtime::groupsPerTask(int32_t groups) const {
  // About four tasks per thread: large enough to stream, small enough to
  // balance.
  return std::max<int32_t>(1, (groups + 4 * threads_ - 1) / (4 * threads_));
}

bool Runtime::quantizeRows(const float *x, int n, int32_t K,
                           std::string &error) {
  const int32_t B = K / 32;
  qx_.resize(static_cast<size_t>(n) * K);
  dx_.resize(static_cast<size_t>(n) * B);
  sx_.resize(dx_.size());
  HBuf hx(x, halide_type_float, 32, {{K, 1}, {n, K}});
  HBuf hqx(qx_.data(), halide_type_int, 8, {{K, 1}, {n, K}});
  HBuf hdx(dx_.data(), halide_type_float, 32, {{B, 1}, {n, B}});
  HBuf hsx(sx_.data(), halide_type_float, 32, {{B, 1}, {n, B}});
  if (stc_quantize_q8(hx.get(), hqx.get(), hdx.get(), hsx.get()) != 0) {
    error = kernelError("quantize_q8 kernel failed");
    return false;
  }
  return true;
}

bool Runtime::expertsGemm(int tensor, const int32_t *idx, int slots,
                          bool sharedInput, float *y, std::string &error) {
  Weight w = weight(tensor);
  const int32_t K = static_cast<int32_t>(w.cols),
                N = static_cast<int32_t>(w.rows);
  const int32_t B = K / 32, G = N / 16, Q = quads(w.t->dtype());
  const int32_t E = static_cast<int32_t>(w.t->shape()->Get(0));
  const int32_t tile = Q * 64;
  const int32_t stride = static_cast<int32_t>(w.t->expert_stride());
  // Every slot reads row 0 of the quantized input when they share it (stride
  // 0).
  const int32_t rowK = sharedInput ? 0 : K, rowB = sharedInput ? 0 : B;
  HBuf hw(w.data, halide_type_uint, 8,
          {{4, 1}, {16, 4}, {Q, 64}, {B, tile}, {G, tile * B}, {E, stride}});
  HBuf hsw(w.data + static_cast<int64_t>(G) * B * tile, halide_type_uint, 16,
           {{16, 1}, {B, 16}, {G, 16 * B}, {E, stride / 2}});
  HBuf hidx(idx, halide_type_int, 32, {{slots, 1}});
  HBuf hqx(qx_.data(), halide_type_int, 8, {{K, 1}, {slots, rowK}});
  HBuf hdx(dx_.data(), halide_type_float, 32, {{B, 1}, {slots, rowB}});
  HBuf hsx(sx_.data(), halide_type_float, 32, {{B, 1}, {slots, rowB}});
  HBuf hy(y, halide_type_float, 32, {{16, 1}, {G, 16}, {slots, N}});
  int rc = w.t->dtype() == model::DType::Q4_0
               ? stc_gemm_experts_q4_0(hw.get(), hsw.get(), hidx.get(),
                                       hqx.get(), hdx.get(), hsx.get(),
                                       groupsPerTask(G), hy.get())
               : stc_gemm_experts_q8_0(hw.get(), hsw.get(), hidx.get(),
                                       hqx.get(), hdx.get(), hsx.get(),
                                       groupsPerTask(G), hy.get());
  if (rc != 0) {
    error = kernelError("expert gemm kernel failed on tensor '" +
                        w.t->name()->str() + "'");
    return false;
  }
  return true;
}

bool Runtime::gemm(const float *x, int n, const Weight &w, float *y,
                   std::string &error) {
  const int32_t K = static_cast<int32_t>(w.cols),
                N = static_cast<int32_t>(w.rows);
  int rc = 0;
  switch (w.t->dtype()) {
  case model::DType::F32:
  case model::DType::F16: {
    HBuf hw(w.data, halide_type_float,
            w.t->dtype() == model::DType::F32 ? 32 : 16, {{K, 1}, {N, K}});
    HBuf hx(x, halide_type_float, 32, {{K, 1}, {n, K}});
    HBuf hy(y, halide_type_float, 32, {{N, 1}, {n, N}});
    rc = w.t->dtype() == model::DType::F32
             ? stc_gemm_f32(hw.get(), hx.get(), hy.get())
             : stc_gemm_f16(hw.get(), hx.get(), hy.get());
    break;
  }
  case model::DType::Q8_0:
  case model::DType::Q4_0: {
    // Quantize the activations once per call; every row of W reuses them.
    const int32_t B = K / 32, G = N / 16, Q = quads(w.t->dtype());
    if (!quantizeRows(x, n, K, error))
      return false;
    HBuf hqx(qx_.data(), halide_type_int, 8, {{K, 1}, {n, K}});
    HBuf hdx(dx_.data(), halide_type_float, 32, {{B, 1}, {n, B}});
    HBuf hsx(sx_.data(), halide_type_float, 32, {{B, 1}, {n, B}});
    const int32_t tile = Q * 64;
    HBuf hw(w.data, halide_type_uint, 8,
            {{4, 1}, {16, 4}, {Q, 64}, {B, tile}, {G, tile * B}});
    HBuf hsw(w.data + static_cast<int64_t>(G) * B * tile, halide_type_uint, 16,
             {{16, 1}, {B, 16}, {G, 16 * B}});
    HBuf hy(y, halide_type_float, 32, {{16, 1}, {G, 16}, {n, N}});
    const int32_t perTask = groupsPerTask(G);
    rc = w.t->dtype() == model::DType::Q4_0
             ? stc_gemm_q4_0(hw.get(), hsw.get(), hqx.get(), hdx.get(),
                             hsx.get(), perTask, hy.get())
             : stc_gemm_q8_0(hw.get(), hsw.get(), hqx.get(), hdx.get(),
                             hsx.get(), perTask, hy.get());
    break;
  }
  default:
    error = "tensor '" + w.t->name()->str() + "' has a dtype no kernel reads";
    return false;
  }
  if (rc != 0) {
    error = kernelError("gemm kernel failed on tensor '" + w.t->name()->str() +
                        "'");
    return false;
  }
  return true;
}

bool Runtime::attention(const model::Step *s, int n, std::string &error) {
  const auto &ints = *s->ints();
  const int32_t H = static_cast<int32_t>(ints[0]),
                KV = static_cast<int32_t>(ints[1]),
                hd = static_cast<int32_t>(ints[2]),
                window = static_cast<int32_t>(ints[3]);
  const int layer = s->layer();
  const float *q = f32(s->inputs()->Get(0));
  const float *k = f32(s->inputs()->Get(1));
  const float *v = f32(s->inputs()->Get(2));
  float *out = f32(s->outputs()->Get(0));
  const size_t kvw = static_cast<size_t>(KV) * hd;
  // Append this chunk's keys (after RoPE) and values: position p goes to slot
  // p mod slots, which for a full cache is p itself.
  const int slots = kvSlots_[layer];
  for (int t = 0; t < n; ++t) {
    const int p = pos_ + t, slot = p % slots;
    std::memcpy(&kcache_[layer][slot * kvw], k + t * kvw, kvw * 4);
    std::memcpy(&vcache_[layer][slot * kvw], v + t * kvw, kvw * 4);
    kpos_[layer][slot] = p;
  }
  const int32_t keys = std::min(pos_ + n, slots);
  HBuf hq(q, halide_type_float, 32, {{hd, 1}, {H, hd}, {n, H * hd}});
  HBuf hk(kcache_[layer].data(), halide_type_float, 32,
          {{hd, 1}, {KV, hd}, {keys, static_cast<int32_t>(kvw)}});
  HBuf hv(vcache_[layer].data(), halide_type_float, 32,
          {{hd, 1}, {KV, hd}, {keys, static_cast<int32_t>(kvw)}});
  HBuf hp(kpos_[layer].data(), halide_type_int, 32, {{keys, 1}});
  HBuf ho(out, halide_type_float, 32, {{hd, 1}, {H, hd}, {n, H * hd}});
  int rc = stc_attention(hq.get(), hk.get(), hv.get(), hp.get(), pos_, window,
                         1.0f / std::sqrt(static_cast<float>(hd)), ho.get());
  if (rc != 0) {
    error = kernelError("attention kernel failed in layer " +
                        std::to_string(layer));
    return false;
  }
  return true;
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
  return weight(s->weights()->Get(2)).t->layout() == model::Layout::Transposed
             ? sparseMoe(s, n, error)
             : denseMoe(s, n, error);
}

bool Runtime::forEachExpert(
    const model::Step *s, int n,
    const std::function<bool(int, const std::vector<int> &, const Weight *)>
        &body,
    std::string &error) {
  const model::Config &c = config();
  const int K = c.top_k(), D = c.hidden_size(), E = c.num_experts();
  const float *x = f32(s->inputs()->Get(0));
  const int32_t *idx = i32(s->inputs()->Get(2));
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
  return true;
}

bool Runtime::denseMoe(const model::Step *s, int n, std::string &error) {
  const model::Config &c = config();
  const int K = c.top_k(), D = c.hidden_size(), F = c.expert_ffn();
  const float *x = f32(s->inputs()->Get(0));
  const float *wts = f32(s->inputs()->Get(1));
  const int32_t *idx = i32(s->inputs()->Get(2));
  float *out = f32(s->outputs()->Get(0));
  auto quantized = [&](int i) {
    return isQuant(weight(s->weights()->Get(i)).t->dtype());
  };
  if (n == 1 && !cache_ && quantized(0) && quantized(1) && quantized(2)) {
    // Decode: the k selected experts in one call per projection; gate and up
    // share the token's quantized input.
    double t = seconds();
    moeG_.resize(static_cast<size_t>(K) * F);
    moeU_.resize(moeG_.size());
    moeY_.resize(static_cast<size_t>(K) * D);
    if (!quantizeRows(x, 1, D, error) ||
        !expertsGemm(s->weights()->Get(0), idx, K, true, moeG_.data(), error))
      return false;
    chargePhase("moe gate", t, n);
    if (!expertsGemm(s->weights()->Get(1), idx, K, true, moeU_.data(), error))
      return false;
    chargePhase("moe up (all rows)", t, n);
    uint64_t dead = 0;
    for (size_t i = 0; i < moeG_.size(); ++i) { // ReGLU: relu(gate) * up
      dead += moeG_[i] <= 0.0f;
      moeG_[i] = std::max(moeG_[i], 0.0f) * moeU_[i];
    }
    // The ReLU sparsity a sparse ReGLU would exploit: neurons whose up and down
    // rows contribute nothing for this token.
    deadNeurons_ += dead;
    expertNeurons_ += moeG_.size();
    if (!quantizeRows(moeG_.data(), K, F, error) ||
        !expertsGemm(s->weights()->Get(2), idx, K, false, moeY_.data(), error))
      return false;
    for (int j = 0; j < K; ++j)
      for (int d = 0; d < D; ++d)
        out[d] += wts[j] * moeY_[static_cast<size_t>(j) * D + d];
    chargePhase("moe down (all rows)", t, n);
    return true;
  }
  // Prefill (and the expert cache): each expert once for all its tokens.
  return forEachExpert(
      s, n,
      [&](int, const std::vector<int> &slots, const Weight *mats) {
        const int m = static_cast<int>(slots.size());
        moeG_.resize(static_cast<size_t>(m) * F);
        moeU_.resize(moeG_.size());
        moeY_.resize(moeX_.size());
        if (!gemm(moeX_.data(), m, mats[0], moeG_.data(), error) ||
            !gemm(moeX_.data(), m, mats[1], moeU_.data(), error))
          return false;
        for (size_t i = 0; i < moeG_.size(); ++i) // ReGLU: relu(gate) * up
          moeG_[i] = std::max(moeG_[i], 0.0f) * moeU_[i];
        if (!gemm(moeG_.data(), m, mats[2], moeY_.data(), error))
          return false;
        for (int i = 0; i < m; ++i) {
          const int slot = slots[i];
          float *o = out + static_cast<size_t>(slot / K) * D;
          const float *y = &moeY_[static_cast<size_t>(i) * D];
          for (int d = 0; d < D; ++d)
            o[d] += wts[slot] * y[d];
        }
        return true;
      },
      error);
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
  const bool sparse = t[2]->layout() == model::Layout::Transposed;
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
  if (!layoutOk(t[0], false) || !layoutOk(t[1], sparse) ||
      !layoutOk(t[2], sparse)) {
    error = where +
            " has expert tensors in layouts no MoE kernel reads (dense: rows16 "
            "or f32 row-major; sparse ReGLU: blocks16 or f32 up, transposed "
            "down with D a multiple of 64 when quantized)";
    return false;
  }
  sparse_ = sparse_ || sparse;
  return true;
}

void Runtime::chargePhase(const char *kind, double &since, int n) {
  if (!profiling_ || n != 1)
    return;
  double t = seconds();
  profile_[kind] += t - since;
  profile_["moe (other)"] -= t - since;
  since = t;
}

bool Runtime::sparseUp(const Weight &up, int experts, const int32_t *ent,
                       int count, const float *x, float *u,
                       std::string &error) {
  const int32_t D = static_cast<int32_t>(up.cols),
                F = static_cast<int32_t>(up.rows);
  if (up.t->dtype() == model::DType::F32) {
    // The exact path (f32 weights): plain loops.
    for (int i = 0; i < count; ++i) {
      const float *w = reinterpret_cast<const float *>(
                           up.data + ent[3 * i] * up.t->expert_stride()) +
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
  const int32_t stride = static_cast<int32_t>(up.t->expert_stride());
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
  const uint64_t address = reinterpret_cast<uintptr_t>(hw.buf.host),
                 scales = reinterpret_cast<uintptr_t>(hsw.buf.host);
  int rc = up.t->dtype() == model::DType::Q4_0
               ? stc_sparse_up_q4_0(hw.get(), hsw.get(), hent.get(), hqx.get(),
                                    hdx.get(), hsx.get(), perTask, address,
                                    scales, hu.get())
               : stc_sparse_up_q8_0(hw.get(), hsw.get(), hent.get(), hqx.get(),
                                    hdx.get(), hsx.get(), perTask, address,
                                    scales, hu.get());
  if (rc != 0) {
    error = kernelError("sparse up kernel failed on tensor '" +
                        up.t->name()->str() + "'");
    return false;
  }
  return true;
}

bool Runtime::sparseDown(const Weight &down, const float *act, int row,
                         float *y, std::string &error) {
  // Logical [D, F] (one expert), stored [F][D].
  const int32_t D = static_cast<int32_t>(down.rows),
                F = static_cast<int32_t>(down.cols);
  if (down.t->dtype() == model::DType::F32) {
    std::fill(y, y + D, 0.0f);
    for (int32_t f = 0; f < F; ++f) {
      if (act[f] == 0.0f)
        continue;
      const float *w = reinterpret_cast<const float *>(down.data) +
                       static_cast<size_t>(f) * D;
      for (int32_t d = 0; d < D; ++d)
        y[d] += act[f] * w[d];
    }
    return true;
  }
  // The live neurons, block by block.
  const int32_t G = F / 32;
  sparseLive_.clear();
  sparseFirst_.resize(G + 1);
  sparseLive_.resize(F + 1);
  int32_t live = 0;
  for (int32_t g = 0; g < G; ++g) {
    sparseFirst_[g] = live;
    for (int32_t f = 32 * g; f < 32 * g + 32; ++f) { // branch-free
      sparseLive_[live] = f;
      live += act[f] != 0.0f;
    }
  }
  sparseFirst_[G] = live;
  sparseLive_.resize(live);
  if (sparseLive_.empty()) {
    std::fill(y, y + D, 0.0f);
    return true;
  }
  const bool q4 = down.t->dtype() == model::DType::Q4_0;
  const int32_t chunkBytes = q4 ? 32 : 64, C = D / 64;
  HBuf hw(down.data, halide_type_uint, 8,
          {{chunkBytes, 1}, {C, chunkBytes}, {F, C * chunkBytes}});
  HBuf hsw(down.data + static_cast<int64_t>(F) * C * chunkBytes,
           halide_type_uint, 16, {{D, 1}, {F / 32, D}});
  HBuf hqa(qx_.data() + static_cast<size_t>(row) * F, halide_type_int, 8,
           {{F, 1}});
  HBuf hda(dx_.data() + static_cast<size_t>(row) * (F / 32), halide_type_float,
           32, {{F / 32, 1}});
  HBuf hlive(sparseLive_.data(), halide_type_int, 32,
             {{static_cast<int32_t>(sparseLive_.size()), 1}});
  HBuf hfirst(sparseFirst_.data(), halide_type_int, 32, {{G + 1, 1}});
  HBuf hy(y, halide_type_float, 32, {{32, 1}, {2, 32}, {C, 64}});
  // One slice of the outputs per thread (the last slice shifts inwards when
  // the threads do not divide the chunks).
  const int32_t perTask = (C + threads_ - 1) / threads_;
  const uint64_t address = reinterpret_cast<uintptr_t>(down.data),
                 scales = reinterpret_cast<uintptr_t>(hsw.buf.host);
  int rc = q4 ? stc_sparse_down_q4_0(hw.get(), hsw.get(), hqa.get(), hda.get(),
                                     hlive.get(), hfirst.get(), perTask,
                                     address, scales, hy.get())
              : stc_sparse_down_q8_0(hw.get(), hsw.get(), hqa.get(), hda.get(),
                                     hlive.get(), hfirst.get(), perTask,
                                     address, scales, hy.get());
  if (rc != 0) {
    error = kernelError("sparse down kernel failed on tensor '" +
                        down.t->name()->str() + "'");
    return false;
  }
  return true;
}

bool Runtime::sparseMoe(const model::Step *s, int n, std::string &error) {
  const model::Config &c = config();
  const int K = c.top_k(), D = c.hidden_size(), F = c.expert_ffn(),
            E = c.num_experts();
  const float *x = f32(s->inputs()->Get(0));
  const float *wts = f32(s->inputs()->Get(1));
  const int32_t *idx = i32(s->inputs()->Get(2));
  float *out = f32(s->outputs()->Get(0));
  Weight gate = weight(s->weights()->Get(0)), up = weight(s->weights()->Get(1)),
         down = weight(s->weights()->Get(2));
  // Bytes of one neuron's up row (with its scales) and down row (the down
  // scales are shared by 32 neurons and always read): what a dead neuron saves.
  const uint64_t upRow =
      isQuant(up.t->dtype())
          ? blocks16Tiles(D) * (quads(up.t->dtype()) * 64 + 32)
          : static_cast<uint64_t>(D) * 4;
  const uint64_t downRow = down.t->dtype() == model::DType::Q4_0   ? D / 2
                           : down.t->dtype() == model::DType::Q8_0 ? D
                                                                   : D * 4ull;
  const uint64_t neuronBytes = upRow + downRow;
  sparseNeuronBytes_ = neuronBytes;
  uint64_t dead = 0;
  moeY_.resize(D);
  auto phase = [&](const char *kind, double &since) {
    chargePhase(kind, since, n);
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
  // for the dead ones, and its Q8_0 rounding in qx_ (quantized down weights).
  auto activations = [&](int rows) {
    moeU_.assign(static_cast<size_t>(rows) * F, 0.0f);
    for (int r = 0; r < rows; ++r)
      for (int i = rowStart[r]; i < rowStart[r + 1]; ++i) {
        const size_t at = static_cast<size_t>(r) * F +
                          sparseUpEnt_[static_cast<size_t>(i) * 3 + 1];
        moeU_[at] = moeG_[at] * sparseU_[i];
      }
    return !isQuant(down.t->dtype()) ||
           quantizeRows(moeU_.data(), rows, F, error);
  };
  if (n == 1 && !cache_ && isQuant(gate.t->dtype()) && isQuant(up.t->dtype())) {
    // Decode: the k experts' gates in one call, one up call over the live
    // neurons of all k, then one down call per expert.
    double t = seconds();
    moeG_.resize(static_cast<size_t>(K) * F);
    if (!quantizeRows(x, 1, D, error) ||
        !expertsGemm(s->weights()->Get(0), idx, K, true, moeG_.data(), error))
      return false;
    phase("moe gate", t);
    const int live = listLive(
        K, [&](int j) { return idx[j]; }, [](int) { return 0; });
    sparseU_.resize(live);
    phase("moe live list", t);
    if (live > 0 &&
        !sparseUp(up, E, sparseUpEnt_.data(), live, x, sparseU_.data(), error))
      return false;
    phase("moe up (live rows)", t);
    if (!activations(K))
      return false;
    phase("moe down prep", t);
    for (int j = 0; j < K; ++j) {
      if (!sparseDown(weight(s->weights()->Get(2), idx[j]),
                      &moeU_[static_cast<size_t>(j) * F], j, moeY_.data(),
                      error))
        return false;
      for (int d = 0; d < D; ++d)
        out[d] += wts[j] * moeY_[d];
    }
    phase("moe down (live rows)", t);
  } else {
    // Prefill, f32 weights and the expert cache: each expert once for all its
    // tokens.
    bool ok = forEachExpert(
        s, n,
        [&](int, const std::vector<int> &slots, const Weight *mats) {
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
          if (live > 0 && !sparseUp(mats[1], 1, sparseUpEnt_.data(), live,
                                    moeX_.data(), sparseU_.data(), error))
            return false;
          if (!activations(m))
            return false;
          for (int i = 0; i < m; ++i) {
            if (!sparseDown(mats[2], &moeU_[static_cast<size_t>(i) * F], i,
                            moeY_.data(), error))
              return false;
            const int slot = slots[i];
            float *o = out + static_cast<size_t>(slot / K) * D;
            for (int d = 0; d < D; ++d)
              o[d] += wts[slot] * moeY_[d];
          }
          return true;
        },
        error);
    if (!ok)
      return false;
  }
  if (n == 1) {
    deadNeurons_ += dead;
    expertNeurons_ += static_cast<uint64_t>(K) * F;
    skippedBytes_ += dead * neuronBytes;
  }
  return true;
}

bool Runtime::initExpertCache(uint64_t budget, bool expertsFromStorage,
                              std::string &error) {
  const model::Model *m = file_.model();
  const model::Config &c = config();
  std::vector<bool> isExpert(m->tensors()->size(), false);
  for (const std::vector<int> &layer : moeWeights_)
    for (int t : layer)
      isExpert[t] = true;
  uint64_t dense = 0;
  for (size_t i = 0; i < isExpert.size(); ++i)
    if (!isExpert[i])
      dense += m->tensors()->Get(i)->size();
  // What this process holds besides weights: activation buffers, KV caches,
  // RoPE tables, and a fixed reserve for code, libraries, stacks and the heap.
  constexpr uint64_t kReserve = 48ull << 20;
  uint64_t overhead = kReserve + (cos_.size() + sin_.size()) * 4;
  for (const std::vector<uint8_t> &b : bufs_)
    overhead += b.size();
  for (size_t l = 0; l < kcache_.size(); ++l)
    overhead +=
        (kcache_[l].size() + vcache_[l].size()) * 4 + kpos_[l].size() * 4;
  const uint64_t slotBytes = ExpertCache::slotBytes(file_, moeWeights_);
  const uint64_t minimum = dense + overhead + slotBytes * c.top_k();
  if (slotBytes == 0 || budget < minimum) {
    char buf[256];
    std::snprintf(buf, sizeof(buf),
                  "memory budget %.1f MiB is below the minimum %.1f MiB: dense "
                  "weights %.1f MiB, buffers and KV %.1f MiB, one layer's %d "
                  "active experts %.1f MiB",
                  budget / 1048576.0, minimum / 1048576.0, dense / 1048576.0,
                  overhead / 1048576.0, c.top_k(),
                  slotBytes * c.top_k() / 1048576.0);
    error = file_.path() + ": " + buf;
    return false;
  }
  uint64_t slots = (budget - dense - overhead) / slotBytes;
  slots = std::min<uint64_t>(slots, static_cast<uint64_t>(c.num_layers()) *
                                        c.num_experts());
  if (expertsFromStorage && !file_.readFromStorage(error))
    return false;
  cache_ = std::make_unique<ExpertCache>();
  return cache_->init(file_, moeWeights_, c.num_experts(), slots, error);
}

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

void Runtime::prefetchExperts(int layer, const int32_t *idx, int count) {
  if (layer < 0 || layer >= static_cast<int>(moeWeights_.size()))
    return;
  if (cache_) {
    // Under a budget: queue the reads of the missing ones on the cache's I/O
    // thread, which runs them while attention computes.
    cache_->prefetch(layer, idx, count);
    return;
  }
  if (populated_)
    return; // resident weights: nothing to fetch
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
}

namespace {

const char *opKind(const model::Step *s, const model::Tensor *w) {
  switch (s->op()) {
  case model::Op::Embed:
    return "embed";
  case model::Op::RmsNorm:
    return "rms_norm";
  case model::Op::Gemm:
    switch (w ? w->dtype() : model::DType::F32) {
    case model::DType::Q4_0:
      return "gemm q4_0";
    case model::DType::Q8_0:
      return "gemm q8_0";
    case model::DType::F16:
      return "gemm f16";
    default:
      return "gemm f32";
    }
  case model::Op::Route:
    return "route";
  case model::Op::Rope:
    return "rope";
  case model::Op::Attention:
    return "attention";
  case model::Op::Moe:
    return "moe (other)";
  case model::Op::Add:
    return "add";
  case model::Op::Dispatch:
    return "dispatch";
  }
  return "?";
}

} // namespace

void Runtime::charge(const char *kind, double start, int n) {
  if (profiling_ && n == 1)
    profile_[kind] += seconds() - start;
}

bool Runtime::step(const model::Step *s, int n, std::string &error) {
  if (!profiling_ || n != 1)
    return runStep(s, n, error);
  const double start = seconds();
  bool ok = runStep(s, n, error);
  const model::Tensor *w =
      s->weights() && s->weights()->size() > 0
          ? file_.model()->tensors()->Get(s->weights()->Get(0))
          : nullptr;
  charge(opKind(s, w), start, n);
  return ok;
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
    HBuf hx(f32(in(0)), halide_type_float, 32, {{hd, 1}, {H, hd}, {n, H * hd}});
    HBuf hp(i32(in(1)), halide_type_int, 32, {{n, 1}});
    HBuf hc(cos_.data(), halide_type_float, 32,
            {{hd / 2, 1}, {maxContext_, hd / 2}});
    HBuf hs(sin_.data(), halide_type_float, 32,
            {{hd / 2, 1}, {maxContext_, hd / 2}});
    HBuf hy(f32(outb(0)), halide_type_float, 32,
            {{hd, 1}, {H, hd}, {n, H * hd}});
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
