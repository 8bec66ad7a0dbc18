#include "Runtime.h"

#include "CpuFeatures.h"
#include "Half.h"
#include "Kernels.h"

#include <algorithm>
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
    if (s->op() == model::Op::Moe && s->layer() >= 0 && s->weights())
      for (int32_t w : *s->weights())
        moeWeights_[s->layer()].push_back(w);
  populated_ = options.populate && budget == 0;
  if (budget > 0 && !initExpertCache(budget, error))
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
  const int K = c.top_k(), D = c.hidden_size(), F = c.expert_ffn(),
            E = c.num_experts();
  const float *x = f32(s->inputs()->Get(0));
  const float *wts = f32(s->inputs()->Get(1));
  const int32_t *idx = i32(s->inputs()->Get(2));
  float *out = f32(s->outputs()->Get(0));
  std::fill(out, out + static_cast<size_t>(n) * D, 0.0f);
  auto quantized = [&](int i) {
    model::DType t = weight(s->weights()->Get(i)).t->dtype();
    return t == model::DType::Q4_0 || t == model::DType::Q8_0;
  };
  if (n == 1 && !cache_ && quantized(0) && quantized(1) && quantized(2)) {
    // Decode: the k selected experts in one call per projection; gate and up
    // share the token's quantized input.
    for (int j = 0; j < K; ++j)
      if (idx[j] < 0 || idx[j] >= E) {
        error = "router produced expert " + std::to_string(idx[j]);
        return false;
      }
    moeG_.resize(static_cast<size_t>(K) * F);
    moeU_.resize(moeG_.size());
    moeY_.resize(static_cast<size_t>(K) * D);
    if (!quantizeRows(x, 1, D, error) ||
        !expertsGemm(s->weights()->Get(0), idx, K, true, moeG_.data(), error) ||
        !expertsGemm(s->weights()->Get(1), idx, K, true, moeU_.data(), error))
      return false;
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
    return true;
  }
  // Prefill (and the expert cache): group the (token, slot) pairs by expert, so
  // each expert's weights are read once for all its tokens.
  std::vector<std::vector<int>> slots(E);
  for (int t = 0; t < n; ++t)
    for (int j = 0; j < K; ++j) {
      int e = idx[t * K + j];
      if (e < 0 || e >= E) {
        error = "router produced expert " + std::to_string(e);
        return false;
      }
      slots[e].push_back(t * K + j);
    }
  for (int e = 0; e < E; ++e) {
    const int m = static_cast<int>(slots[e].size());
    if (m == 0)
      continue;
    moeX_.resize(static_cast<size_t>(m) * D);
    moeG_.resize(static_cast<size_t>(m) * F);
    moeU_.resize(moeG_.size());
    moeY_.resize(moeX_.size());
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
    if (!gemm(moeX_.data(), m, mats[0], moeG_.data(), error) ||
        !gemm(moeX_.data(), m, mats[1], moeU_.data(), error))
      return false;
    for (size_t i = 0; i < moeG_.size(); ++i) // ReGLU: relu(gate) * up
      moeG_[i] = std::max(moeG_[i], 0.0f) * moeU_[i];
    if (!gemm(moeG_.data(), m, mats[2], moeY_.data(), error))
      return false;
    for (int i = 0; i < m; ++i) {
      const int slot = slots[e][i];
      const float wgt = wts[slot];
      float *o = out + static_cast<size_t>(slot / K) * D;
      const float *y = &moeY_[static_cast<size_t>(i) * D];
      for (int d = 0; d < D; ++d)
        o[d] += wgt * y[d];
    }
  }
  return true;
}

bool Runtime::initExpertCache(uint64_t budget, std::string &error) {
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
  if (populated_ || layer < 0 || layer >= static_cast<int>(moeWeights_.size()))
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

bool Runtime::step(const model::Step *s, int n, std::string &error) {
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
