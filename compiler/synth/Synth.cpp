#include "Synth.h"

#include "formats/Checkpoint.h"
#include "formats/FileIO.h"
#include "formats/Gguf.h"
#include "formats/Json.h"
#include "formats/Safetensors.h"
#include "synth/ActivationSparsity.h"
#include "synth/SynthTokenizer.h"
#include "synth/SynthValues.h"

#include <cmath>
#include <cstdio>
#include <vector>

namespace stc {

Status synthPresetConfig(const std::string &preset, ModelConfig &c) {
  c = ModelConfig();
  c.convention = Convention::HF;
  if (preset == "tiny" || preset == "tiny-swa") {
    c.hiddenSize = 128;
    c.numHeads = 4;
    c.headDim = 32;
    c.vocabSize = 512;
    c.numExperts = 8;
    c.topK = 2;
    c.expertFfn = 64;
    c.ropeTheta =
        10000.0; // a small base so short test sequences rotate every pair
    c.maxPositions = 4096;
    // The synthetic tokenizer's specials sit at the top of the vocab:
    // <|endoftext|> (bos, eos) 509, <|im_start|> 510, <|im_end|> (eos) 511.
    c.bosTokenId = 509;
    c.eosTokenIds = {509, 511};
    if (preset == "tiny") {
      c.numLayers = 3;
      c.numKVHeads = 2;
      c.weighting = RouterWeighting::Sigmoid;
      c.tieWordEmbeddings = false;
      c.ropeLayout.assign(3, 1);
      c.swaLayout.assign(3, 0);
      c.slidingWindow = 4096;
    } else {
      // Mixed on purpose: NoPE+global, RoPE+SWA, and RoPE+global and
      // NoPE+SWA-free layers, with a window small enough that a 20-token test
      // sequence crosses it.
      c.numLayers = 6;
      c.numKVHeads = 1;
      c.weighting = RouterWeighting::Softmax;
      c.tieWordEmbeddings = true;
      c.ropeLayout = {0, 1, 1, 1, 0, 1};
      c.swaLayout = {0, 1, 1, 0, 0, 1};
      c.slidingWindow = 8;
    }
  } else if (preset == "tiny-k") {
    // Every row a multiple of 256, so each K type (and IQ4_XS) encodes every
    // matrix: hidden, attention width and expert FFN 256.
    c.numLayers = 2;
    c.hiddenSize = 256;
    c.numHeads = 2;
    c.numKVHeads = 1;
    c.headDim = 128;
    c.vocabSize = 512;
    c.numExperts = 4;
    c.topK = 2;
    c.expertFfn = 256;
    c.ropeTheta = 10000.0;
    c.maxPositions = 4096;
    c.bosTokenId = 509;
    c.eosTokenIds = {509, 511};
    c.weighting = RouterWeighting::Softmax;
    c.tieWordEmbeddings = false;
    c.ropeLayout = {0, 1};
    c.swaLayout = {0, 0};
    c.slidingWindow = 4096;
  } else if (preset == "tiny-long") {
    // The 21B's attention plan (NoPE + global attention at i % 4 == 0, RoPE +
    // a 4096-token sliding window elsewhere) at tiny size, trained to 8192
    // positions: long contexts past the window stay cheap for the reference.
    c.numLayers = 4;
    c.hiddenSize = 64;
    c.numHeads = 2;
    c.numKVHeads = 1;
    c.headDim = 32;
    c.vocabSize = 512;
    c.numExperts = 4;
    c.topK = 2;
    c.expertFfn = 32;
    c.ropeTheta = 10000.0;
    c.maxPositions = 8192;
    c.bosTokenId = 509;
    c.eosTokenIds = {509, 511};
    c.weighting = RouterWeighting::Softmax;
    c.tieWordEmbeddings = true;
    c.ropeLayout = {0, 1, 1, 1};
    c.swaLayout = {0, 1, 1, 1};
    c.slidingWindow = 4096;
  } else if (preset == "4b") {
    c.numLayers = 32;
    c.hiddenSize = 1536;
    c.numHeads = 12;
    c.numKVHeads = 2;
    c.headDim = 128;
    c.vocabSize = 151936;
    c.numExperts = 32;
    c.topK = 4;
    c.expertFfn = 768;
    c.weighting = RouterWeighting::Sigmoid;
    c.ropeTheta = 1.5e6;
    c.maxPositions = 32768;
    c.ropeLayout.assign(32, 1);
    c.swaLayout.assign(32, 0);
    c.slidingWindow = 4096;
    c.tieWordEmbeddings = true;
    c.bosTokenId = 151643;
    c.eosTokenIds = {151643, 151645};
  } else if (preset == "21b") {
    c.numLayers = 52;
    c.hiddenSize = 2560;
    c.numHeads = 28;
    c.numKVHeads = 4;
    c.headDim = 128;
    c.vocabSize = 151936;
    c.numExperts = 64;
    c.topK = 6;
    c.expertFfn = 768;
    c.weighting = RouterWeighting::Sigmoid;
    c.ropeTheta = 1.5e6;
    c.maxPositions = 16384;
    c.slidingWindow = 4096;
    for (int i = 0; i < 52; ++i) {
      c.ropeLayout.push_back(i % 4 != 0);
      c.swaLayout.push_back(i % 4 != 0);
    }
    c.tieWordEmbeddings = false;
    c.bosTokenId = 151643;
    c.eosTokenIds = {151643, 151645};
  } else {
    return Status::error(
        "unknown preset '" + preset +
        "' (expected tiny, tiny-swa, tiny-k, tiny-long, 4b or 21b)");
  }
  return c.validate("preset " + preset);
}

// Untied presets need a head; the real 4B checkpoint also ships lm_head.weight
// although it ties the embeddings, so the 4b preset does too (with the
// embedding's values).
bool synthPresetHasLmHead(const std::string &preset) {
  ModelConfig c;
  return synthPresetConfig(preset, c).ok() &&
         (!c.tieWordEmbeddings || preset == "4b");
}

namespace {

// llama-quantize's type for one tensor of a mix: llama_tensor_get_type in
// llama.cpp's src/llama-quant.cpp (v0.5.0) for what SmallThinker is (not
// Falcon, not 8 experts, no imatrix), its branches for Q4_K_M, Q3_K_M and
// Q4_0. `cols` is the row length (ggml's ne[0]).
DType mixedDType(const WeightSpec &w, int64_t cols, int layers,
                 const std::string &mix, bool hasOutput) {
  const DType base = mix == "q4_k_m"   ? DType::Q4_K
                     : mix == "q3_k_m" ? DType::Q3_K
                                       : DType::Q4_0;
  const int n = layers, i = w.layer;
  auto moreBits = [&] {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
  };
  auto has = [&](const char *part) {
    return w.name.find(part) != std::string::npos;
  };
  // The head (or the tied embedding that serves as one).
  if (w.name == "output" || (!hasOutput && w.name == "token_embd"))
    return cols % 256 != 0 ? DType::Q8_0 : DType::Q6_K;
  if (has("attn_v")) {
    if (mix == "q3_k_m")
      return i < 2 ? DType::Q5_K : DType::Q4_K;
    return mix == "q4_k_m" && moreBits() ? DType::Q6_K : base;
  }
  if (has("ffn_down")) {
    if (mix == "q3_k_m")
      return i < n / 16 ? DType::Q5_K : DType::Q4_K;
    return mix == "q4_k_m" && moreBits() ? DType::Q6_K : base;
  }
  if (has("attn_output") && mix == "q3_k_m")
    return DType::Q4_K;
  return base;
}

// llama-quantize's type for a row the chosen block type cannot encode
// (convert_incompatible_tensor), or f16 when that cannot either.
DType fallbackDType(DType t, int64_t cols) {
  DType f = DType::F16;
  switch (t) {
  case DType::Q2_K:
  case DType::Q3_K:
  case DType::IQ4_XS:
    f = DType::IQ4_NL;
    break;
  case DType::Q4_K:
    f = DType::Q5_0;
    break;
  case DType::Q5_K:
    f = DType::Q5_1;
    break;
  case DType::Q6_K:
    f = DType::Q8_0;
    break;
  default:
    break;
  }
  return cols % blockElements(f) == 0 ? f : DType::F16;
}

// The dtype --dtype or --mix chooses for a GGUF weight, before any fallback:
// 1-D norms and the router stay f32 (llama.cpp's quantize keeps them so).
// `cols` is the stored row length (ne[0]).
DType chosenDType(const WeightSpec &w, const SynthOptions &o,
                  const ModelConfig &c, bool hasOutput, int64_t cols) {
  bool keepF32 =
      w.shape.size() == 1 || w.name.find("ffn_gate_inp") != std::string::npos;
  if (keepF32)
    return DType::F32;
  return o.mix.empty() ? o.dtype
                       : mixedDType(w, cols, static_cast<int>(c.numLayers),
                                    o.mix, hasOutput);
}

// Generates elements [begin, begin + count) of `w` and hands them, converted to
// `dt`, to `sink` in chunks of at most 1 Mi elements.
template <typename Sink>
Status generate(const SynthOptions &o, const ModelConfig &c,
                const SparsityPlan &plan, const WeightSpec &w, DType dt,
                uint64_t begin, uint64_t count, Sink &&sink) {
  constexpr uint64_t kChunk = 1u << 20; // a multiple of the 32-element block
  std::vector<float> vals;
  std::vector<uint8_t> bytes;
  for (uint64_t done = 0; done < count; done += kChunk) {
    uint64_t n = std::min(kChunk, count - done);
    vals.resize(n);
    synthValues(o.seed, w, c.tieWordEmbeddings, plan, begin + done, n,
                vals.data());
    uint64_t nb;
    dtypeBytes(dt, n, nb);
    bytes.resize(nb);
    quantize(dt, vals.data(), bytes.data(), n);
    STC_TRY(sink(bytes.data(), nb));
  }
  return Status::success();
}

uint64_t product(const std::vector<int64_t> &s) {
  uint64_t n = 1;
  for (int64_t d : s)
    n *= static_cast<uint64_t>(d);
  return n;
}

std::string configJson(const ModelConfig &c, DType dtype) {
  auto list = [](const std::vector<int> &v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i)
      s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "]";
  };
  char theta[64], eps[64];
  std::snprintf(theta, sizeof(theta), "%.17g", c.ropeTheta);
  std::snprintf(eps, sizeof(eps), "%.17g", c.rmsNormEps);
  std::string eos = "[";
  for (size_t i = 0; i < c.eosTokenIds.size(); ++i)
    eos += (i ? ", " : "") + std::to_string(c.eosTokenIds[i]);
  eos += "]";
  const char *torchDtype = dtype == DType::BF16  ? "bfloat16"
                           : dtype == DType::F16 ? "float16"
                                                 : "float32";
  std::string s = "{\n";
  s += "  \"architectures\": [\"SmallThinkerForCausalLM\"],\n";
  s += "  \"model_type\": \"smallthinker\",\n";
  s += "  \"num_hidden_layers\": " + std::to_string(c.numLayers) + ",\n";
  s += "  \"hidden_size\": " + std::to_string(c.hiddenSize) + ",\n";
  s += "  \"num_attention_heads\": " + std::to_string(c.numHeads) + ",\n";
  s += "  \"num_key_value_heads\": " + std::to_string(c.numKVHeads) + ",\n";
  s += "  \"head_dim\": " + std::to_string(c.headDim) + ",\n";
  s += "  \"vocab_size\": " + std::to_string(c.vocabSize) + ",\n";
  s += "  \"moe_num_primary_experts\": " + std::to_string(c.numExperts) + ",\n";
  s +=
      "  \"moe_num_active_primary_experts\": " + std::to_string(c.topK) + ",\n";
  s += "  \"moe_ffn_hidden_size\": " + std::to_string(c.expertFfn) + ",\n";
  // Like the real 4B config, sigmoid weighting is expressed by leaving the key
  // out.
  if (c.weighting == RouterWeighting::Softmax)
    s += "  \"moe_primary_router_apply_softmax\": true,\n";
  s += "  \"norm_topk_prob\": true,\n";
  s += "  \"rope_theta\": " + std::string(theta) + ",\n";
  s += "  \"rope_scaling\": null,\n";
  s += "  \"rms_norm_eps\": " + std::string(eps) + ",\n";
  s += "  \"max_position_embeddings\": " + std::to_string(c.maxPositions) +
       ",\n";
  s += "  \"rope_layout\": " + list(c.ropeLayout) + ",\n";
  s += "  \"sliding_window_layout\": " + list(c.swaLayout) + ",\n";
  s += "  \"sliding_window_size\": " + std::to_string(c.slidingWindow) + ",\n";
  s += "  \"tie_word_embeddings\": " +
       std::string(c.tieWordEmbeddings ? "true" : "false") + ",\n";
  s += "  \"bos_token_id\": " + std::to_string(c.bosTokenId) + ",\n";
  s += "  \"eos_token_id\": " + eos + ",\n";
  s += "  \"torch_dtype\": \"" + std::string(torchDtype) + "\",\n";
  s += "  \"use_cache\": false\n";
  s += "}\n";
  return s;
}

// One tensor of the HF layout: a whole weight, or one expert's slice of a
// stacked one.
struct HfTensor {
  const WeightSpec *spec;
  std::string name;
  std::vector<int64_t> shape;
  uint64_t begin, count; // range of the canonical weight's elements
  uint64_t nbytes;
};

Status writeHF(const SynthOptions &o, const ModelConfig &c,
               const SparsityPlan &plan) {
  if (isQuantized(o.dtype))
    return Status::error("--dtype " + std::string(dtypeName(o.dtype)) +
                         " is not a safetensors dtype; use f32, f16 or bf16 "
                         "for --format hf");
  if (o.shards < 1 || o.shards > 1000)
    return Status::error("--shards must be between 1 and 1000");
  std::vector<WeightSpec> specs =
      expectedWeights(c, synthPresetHasLmHead(o.preset));
  std::vector<HfTensor> tensors;
  uint64_t total = 0;
  for (const WeightSpec &w : specs) {
    if (!w.stackedExperts) {
      uint64_t n = product(w.shape), nb;
      dtypeBytes(o.dtype, n, nb);
      tensors.push_back({&w, w.hfName, w.shape, 0, n, nb});
      total += nb;
      continue;
    }
    std::vector<int64_t> slice(w.shape.begin() + 1, w.shape.end());
    uint64_t n = product(slice), nb;
    dtypeBytes(o.dtype, n, nb);
    for (int64_t e = 0; e < w.shape[0]; ++e) {
      std::string name = w.hfName;
      name.replace(name.find("{e}"), 3, std::to_string(e));
      tensors.push_back({&w, name, slice, e * n, n, nb});
      total += nb;
    }
  }
  STC_TRY(makeDirectories(o.output));
  if (o.tokenizerOnly) {
    rt::TokenizerData tokenizer;
    STC_TRY(synthTokenizer(c, tokenizer));
    return writeHfTokenizer(tokenizer, o.output);
  }

  // Shard boundaries: fill shard k until it holds its share of the bytes.
  int shards = o.shards;
  std::vector<int> shardOf(tensors.size());
  uint64_t acc = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    int s = static_cast<int>(acc * shards / (total ? total : 1));
    shardOf[i] = std::min(s, shards - 1);
    acc += tensors[i].nbytes;
  }
  auto shardName = [&](int s) {
    if (shards == 1)
      return std::string("model.safetensors");
    char buf[64];
    std::snprintf(buf, sizeof(buf), "model-%05d-of-%05d.safetensors", s + 1,
                  shards);
    return std::string(buf);
  };
  for (int s = 0; s < shards; ++s) {
    SafetensorsWriter writer;
    for (size_t i = 0; i < tensors.size(); ++i)
      if (shardOf[i] == s)
        writer.declare(tensors[i].name, o.dtype, tensors[i].shape);
    STC_TRY(writer.open(joinPath(o.output, shardName(s))));
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (shardOf[i] != s)
        continue;
      const HfTensor &t = tensors[i];
      STC_TRY(generate(
          o, c, plan, *t.spec, o.dtype, t.begin, t.count,
          [&](const void *p, uint64_t n) { return writer.write(p, n); }));
    }
    STC_TRY(writer.commit());
  }
  if (shards > 1) {
    std::string idx =
        "{\n  \"metadata\": {\"total_size\": " + std::to_string(total) +
        "},\n  \"weight_map\": {\n";
    for (size_t i = 0; i < tensors.size(); ++i) {
      idx += "    ";
      appendJsonString(idx, tensors[i].name);
      idx += ": ";
      appendJsonString(idx, shardName(shardOf[i]));
      idx += i + 1 < tensors.size() ? ",\n" : "\n";
    }
    idx += "  }\n}\n";
    AtomicOutputFile f;
    STC_TRY(f.open(joinPath(o.output, "model.safetensors.index.json")));
    STC_TRY(f.write(idx.data(), idx.size()));
    STC_TRY(f.commit());
  }
  rt::TokenizerData tokenizer;
  STC_TRY(synthTokenizer(c, tokenizer));
  STC_TRY(writeHfTokenizer(tokenizer, o.output));
  std::string cfg = configJson(c, o.dtype);
  AtomicOutputFile f;
  STC_TRY(f.open(joinPath(o.output, "config.json")));
  STC_TRY(f.write(cfg.data(), cfg.size()));
  return f.commit();
}

Status writeGGUF(const SynthOptions &o, const ModelConfig &c,
                 const SparsityPlan &plan) {
  GgufWriter w;
  const std::string a = "smallthinker.";
  w.addMetadata("general.architecture", GgufValue::ofString("smallthinker"));
  w.addMetadata("general.name",
                GgufValue::ofString("stc synthetic " + o.preset));
  w.addMetadata("general.alignment", GgufValue::ofU32(32));
  w.addMetadata(a + "block_count", GgufValue::ofU32(c.numLayers));
  w.addMetadata(a + "context_length", GgufValue::ofU32(c.maxPositions));
  w.addMetadata(a + "embedding_length", GgufValue::ofU32(c.hiddenSize));
  w.addMetadata(a + "feed_forward_length", GgufValue::ofU32(c.expertFfn));
  w.addMetadata(a + "expert_feed_forward_length",
                GgufValue::ofU32(c.expertFfn));
  w.addMetadata(a + "attention.head_count", GgufValue::ofU32(c.numHeads));
  w.addMetadata(a + "attention.head_count_kv", GgufValue::ofU32(c.numKVHeads));
  w.addMetadata(a + "attention.key_length", GgufValue::ofU32(c.headDim));
  w.addMetadata(a + "attention.value_length", GgufValue::ofU32(c.headDim));
  w.addMetadata(a + "rope.freq_base", GgufValue::ofF32(c.ropeTheta));
  w.addMetadata(a + "attention.layer_norm_rms_epsilon",
                GgufValue::ofF32(c.rmsNormEps));
  w.addMetadata(a + "vocab_size", GgufValue::ofU32(c.vocabSize));
  w.addMetadata(a + "expert_count", GgufValue::ofU32(c.numExperts));
  w.addMetadata(a + "expert_used_count", GgufValue::ofU32(c.topK));
  w.addMetadata(
      a + "expert_gating_func",
      GgufValue::ofU32(c.weighting == RouterWeighting::Softmax ? 1 : 2));
  bool anySwa = false;
  for (int s : c.swaLayout)
    anySwa |= s != 0;
  if (anySwa) // the converter writes the key only when some layer slides
    w.addMetadata(a + "attention.sliding_window",
                  GgufValue::ofU32(c.slidingWindow));
  if (!o.omitLayoutKeys) {
    std::vector<int32_t> rope(c.ropeLayout.begin(), c.ropeLayout.end());
    std::vector<int32_t> swa(c.swaLayout.begin(), c.swaLayout.end());
    w.addMetadata(a + "rope_layout", GgufValue::ofI32Array(rope));
    w.addMetadata(a + "sliding_window_layout", GgufValue::ofI32Array(swa));
  }
  rt::TokenizerData tokenizer;
  STC_TRY(synthTokenizer(c, tokenizer));
  addGgufTokenizer(tokenizer, w);
  w.addMetadata("tokenizer.ggml.bos_token_id", GgufValue::ofU32(c.bosTokenId));
  if (!c.eosTokenIds.empty())
    w.addMetadata("tokenizer.ggml.eos_token_id",
                  GgufValue::ofU32(c.eosTokenIds.front()));

  std::vector<WeightSpec> specs =
      expectedWeights(c, synthPresetHasLmHead(o.preset));
  if (o.tokenizerOnly)
    specs.clear();
  // PowerInfer's converter (--transpose-down all) stores each expert's down
  // matrix transposed: ne [D, F, E] like ffn_up_exps.
  auto transposed = [&](const WeightSpec &s) {
    return o.transposeDown && s.stackedExperts &&
           s.name.find("ffn_down_exps") != std::string::npos;
  };
  bool hasOutput = false;
  for (const WeightSpec &s : specs)
    hasOutput = hasOutput || s.name == "output";
  // Row length as stored (ggml's ne[0]).
  auto rowOf = [&](const WeightSpec &s) {
    return transposed(s) ? s.shape[s.shape.size() - 2] : s.shape.back();
  };
  std::vector<DType> types;
  for (const WeightSpec &s : specs) {
    std::vector<uint64_t> ne(s.shape.rbegin(), s.shape.rend());
    if (transposed(s))
      std::swap(ne[0], ne[1]);
    const int64_t cols = rowOf(s);
    const DType chosen = chosenDType(s, o, c, hasOutput, cols);
    DType dt = chosen;
    if (cols % blockElements(chosen) != 0) { // always encodable (f16 at worst)
      dt = fallbackDType(chosen, cols);
      if (o.note)
        o.note("tensor " + s.name + ": rows of " + std::to_string(cols) +
               " elements do not fill " + dtypeName(chosen) +
               " blocks; stored as " + dtypeName(dt) +
               " (llama-quantize's fallback)");
    }
    types.push_back(dt);
    w.declare(s.name + ".weight", dt, ne);
  }
  STC_TRY(w.open(o.output));
  for (size_t i = 0; i < specs.size(); ++i) {
    STC_TRY(w.beginTensor(i));
    const WeightSpec &s = specs[i];
    const DType dt = types[i];
    if (!transposed(s)) {
      STC_TRY(
          generate(o, c, plan, s, dt, 0, product(s.shape),
                   [&](const void *p, uint64_t n) { return w.write(p, n); }));
      continue;
    }
    // The same values as the untransposed file, expert by expert.
    const int64_t D = s.shape[1], F = s.shape[2];
    std::vector<float> logical, stored(static_cast<size_t>(D) * F);
    std::vector<uint8_t> bytes;
    for (int64_t e = 0; e < s.shape[0]; ++e) {
      logical.clear();
      STC_TRY(generate(o, c, plan, s, DType::F32, e * D * F, D * F,
                       [&](const void *p, uint64_t n) {
                         const auto *f = static_cast<const float *>(p);
                         logical.insert(logical.end(), f, f + n / 4);
                         return Status::success();
                       }));
      for (int64_t d = 0; d < D; ++d)
        for (int64_t f = 0; f < F; ++f)
          stored[f * D + d] = logical[d * F + f];
      uint64_t nb;
      dtypeBytes(dt, stored.size(), nb);
      bytes.resize(nb);
      quantize(dt, stored.data(), bytes.data(), stored.size());
      STC_TRY(w.write(bytes.data(), bytes.size()));
    }
  }
  return w.commit();
}

} // namespace

Status writeSynthCheckpoint(const SynthOptions &o) {
  ModelConfig c;
  STC_TRY(synthPresetConfig(o.preset, c));
  if (o.layers < 0)
    return Status::error("--layers must be positive");
  if (o.layers > 0) {
    if (o.layers > c.numLayers)
      return Status::error("--layers " + std::to_string(o.layers) +
                           " exceeds the preset's " +
                           std::to_string(c.numLayers) + " layers");
    c.numLayers = o.layers;
    c.ropeLayout.resize(o.layers);
    c.swaLayout.resize(o.layers);
  }
  if (o.output.empty())
    return Status::error("synth needs an output path (-o)");
  if (!o.mix.empty() && o.mix != "q4_k_m" && o.mix != "q3_k_m" &&
      o.mix != "q4_0")
    return Status::error("unknown --mix '" + o.mix +
                         "' (expected q4_k_m, q3_k_m or q4_0)");
  if (!o.mix.empty() && o.format != "gguf")
    return Status::error("--mix applies to --format gguf only");
  if (o.format != "hf" && o.format != "gguf")
    return Status::error("unknown format '" + o.format +
                         "' (expected hf or gguf)");
  SparsityPlan plan;
  if (!o.activationSparsity.empty() && !o.tokenizerOnly) {
    SparsityTarget target;
    STC_TRY(parseSparsityTarget(o.activationSparsity, target));
    STC_TRY(planSparsity(o, c, target, plan));
  }
  if (o.format == "hf")
    return writeHF(o, c, plan);
  return writeGGUF(o, c, plan);
}

} // namespace stc
