#include "KernelSet.h"

#include <algorithm>

namespace stc::rt {

namespace {

const char *suffix(model::DType t) {
  switch (t) {
  case model::DType::Q4_0:
    return "q4_0";
  case model::DType::Q4_K:
    return "q4_k";
  case model::DType::Q5_K:
    return "q5_k";
  case model::DType::Q6_K:
    return "q6_k";
  case model::DType::Q3_K:
    return "q3_k";
  default:
    return "q8_0";
  }
}

} // namespace

std::vector<std::string> attentionKernels(model::KvType type, int headDim) {
  const std::string base = std::string("stc_attention_") + kvTypeName(type);
  if (headDim != 128)
    return {base};
  return {base + "_hd128", base + "_hd128_tile"};
}

std::vector<std::string> kernelsFor(const model::Model &m) {
  std::vector<std::string> out = {"stc_rms_norm", "stc_rope_neox"};
  auto add = [&](const std::string &k) {
    if (std::find(out.begin(), out.end(), k) == out.end())
      out.push_back(k);
  };
  for (const model::Step *s : *m.steps()) {
    if (s->op() == model::Op::Attention) {
      const auto *ints = s->ints();
      const auto type = ints && ints->size() > 5
                            ? static_cast<model::KvType>(ints->Get(5))
                            : model::KvType::F32;
      for (const std::string &k :
           attentionKernels(type, m.config()->head_dim()))
        add(k);
    }
    if (!s->weights() || s->op() == model::Op::Embed ||
        s->op() == model::Op::RmsNorm)
      continue;
    for (int32_t i : *s->weights()) {
      const model::Tensor *t = m.tensors()->Get(i);
      const model::DType d = t->dtype();
      const bool quant =
          d == model::DType::Q4_0 || d == model::DType::Q8_0 || isKQuant(d);
      if (!quant) { // f32 (the router at least) or f16 matrices
        add(d == model::DType::F16 ? "stc_gemm_f16" : "stc_gemm_f32");
        continue;
      }
      // PowerInfer's down: its own kernel, dense and sparse alike.
      if (t->layout() == model::Layout::NeuronRows) {
        add(std::string("stc_down_rows_") + suffix(d));
        continue;
      }
      // Any int8 matmul quantizes its activations and may run as a plain gemm
      // (prefill, experts through the cache).
      add("stc_quantize_q8");
      add(std::string("stc_gemm_") + suffix(d));
      // One K-quant kernel serves 2-D matrices and stacked experts alike.
      if (s->op() == model::Op::Moe && !isKQuant(d)) {
        add(std::string("stc_gemm_experts_") + suffix(d));
        if (t->layout() == model::Layout::Blocks16)
          add(std::string("stc_sparse_up_") + suffix(d));
        if (t->layout() == model::Layout::Transposed)
          add(std::string("stc_sparse_down_") + suffix(d));
      }
    }
  }
  return out;
}

} // namespace stc::rt
