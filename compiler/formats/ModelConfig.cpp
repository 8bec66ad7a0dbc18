#include "ModelConfig.h"

#include "FileIO.h"
#include "Json.h"

#include <cmath>

namespace stc {

Status ModelConfig::validate(const std::string &source) const {
  auto bad = [&](const std::string &what) {
    return Status::error(source + ": " + what);
  };
  struct Dim {
    const char *name;
    int64_t value;
  } dims[] = {{"num_hidden_layers", numLayers},
              {"hidden_size", hiddenSize},
              {"num_attention_heads", numHeads},
              {"num_key_value_heads", numKVHeads},
              {"head_dim", headDim},
              {"vocab_size", vocabSize},
              {"moe_num_primary_experts", numExperts},
              {"moe_num_active_primary_experts", topK},
              {"moe_ffn_hidden_size", expertFfn}};
  for (const Dim &d : dims)
    if (d.value <= 0 || d.value > kMaxDim)
      return bad(std::string(d.name) + " = " + std::to_string(d.value) +
                 ", expected 1.." + std::to_string(kMaxDim));
  if (numLayers > kMaxLayers)
    return bad("num_hidden_layers = " + std::to_string(numLayers) +
               " exceeds the limit of " + std::to_string(kMaxLayers));
  if (vocabSize > (int64_t(1) << 24))
    return bad("vocab_size = " + std::to_string(vocabSize) + " is implausible");
  if (numHeads % numKVHeads != 0)
    return bad("num_attention_heads (" + std::to_string(numHeads) +
               ") is not a multiple of num_key_value_heads (" +
               std::to_string(numKVHeads) + ")");
  if (topK > numExperts)
    return bad("moe_num_active_primary_experts (" + std::to_string(topK) +
               ") exceeds moe_num_primary_experts (" +
               std::to_string(numExperts) + ")");
  if (headDim % 2 != 0)
    return bad("head_dim = " + std::to_string(headDim) +
               " is odd; NEOX RoPE pairs element j with j + head_dim/2");
  if (static_cast<int64_t>(ropeLayout.size()) != numLayers)
    return bad("rope_layout has " + std::to_string(ropeLayout.size()) +
               " entries, expected one per layer (" +
               std::to_string(numLayers) + ")");
  if (static_cast<int64_t>(swaLayout.size()) != numLayers)
    return bad("sliding_window_layout has " + std::to_string(swaLayout.size()) +
               " entries, expected one per layer (" +
               std::to_string(numLayers) + ")");
  for (int64_t i = 0; i < numLayers; ++i) {
    if (ropeLayout[i] != 0 && ropeLayout[i] != 1)
      return bad("rope_layout[" + std::to_string(i) +
                 "] = " + std::to_string(ropeLayout[i]) + ", expected 0 or 1");
    if (swaLayout[i] != 0 && swaLayout[i] != 1)
      return bad("sliding_window_layout[" + std::to_string(i) +
                 "] = " + std::to_string(swaLayout[i]) + ", expected 0 or 1");
  }
  if (slidingWindow <= 0)
    return bad("sliding_window_size = " + std::to_string(slidingWindow) +
               ", expected a positive window");
  if (!(ropeTheta > 0) || !std::isfinite(ropeTheta))
    return bad("rope_theta must be a positive number");
  if (!(rmsNormEps > 0) || !std::isfinite(rmsNormEps))
    return bad("rms_norm_eps must be a positive number");
  return Status::success();
}

namespace {

// Typed access to config.json fields with errors that name the file and the
// field.
struct HfFields {
  const JsonValue &root;
  const std::string &path;

  Status requireInt(const char *key, int64_t &out) const {
    const JsonValue *v = root.get(key);
    if (!v)
      return Status::error(path + ": missing required field '" + key + "'");
    return toInt(key, *v, out);
  }
  Status optionalInt(const char *key, int64_t &out) const {
    const JsonValue *v = root.get(key);
    if (!v || v->isNull())
      return Status::success();
    return toInt(key, *v, out);
  }
  Status toInt(const char *key, const JsonValue &v, int64_t &out) const {
    if (!v.isNumber() || !v.isInteger)
      return Status::error(path + ": field '" + key + "' is " +
                           JsonValue::kindName(v.kind) +
                           ", expected an integer");
    out = v.integer;
    return Status::success();
  }
  Status optionalNumber(const char *key, double &out) const {
    const JsonValue *v = root.get(key);
    if (!v || v->isNull())
      return Status::success();
    if (!v->isNumber())
      return Status::error(path + ": field '" + key + "' is " +
                           JsonValue::kindName(v->kind) +
                           ", expected a number");
    out = v->number;
    return Status::success();
  }
  Status optionalBool(const char *key, bool &out, bool &present) const {
    const JsonValue *v = root.get(key);
    present = v && !v->isNull();
    if (!present)
      return Status::success();
    if (!v->isBool())
      return Status::error(path + ": field '" + key + "' is " +
                           JsonValue::kindName(v->kind) +
                           ", expected a boolean");
    out = v->boolean;
    return Status::success();
  }
  Status optionalIntList(const char *key, std::vector<int> &out,
                         bool &present) const {
    const JsonValue *v = root.get(key);
    present = v && !v->isNull();
    if (!present)
      return Status::success();
    if (!v->isArray())
      return Status::error(path + ": field '" + key + "' is " +
                           JsonValue::kindName(v->kind) + ", expected a list");
    if (static_cast<int64_t>(v->array.size()) > kMaxLayers)
      return Status::error(path + ": field '" + key + "' has " +
                           std::to_string(v->array.size()) +
                           " entries, more than " + std::to_string(kMaxLayers) +
                           " layers");
    out.clear();
    for (const JsonValue &e : v->array) {
      if (!e.isInteger)
        return Status::error(path + ": field '" + key + "' must hold integers");
      out.push_back(static_cast<int>(e.integer));
    }
    return Status::success();
  }
};

} // namespace

Status parseHfConfig(const std::string &path, ModelConfig &out) {
  out = ModelConfig();
  out.convention = Convention::HF;
  std::string text;
  STC_TRY(readSmallFile(path, 16u << 20, text));
  JsonValue root;
  STC_TRY(parseJson(text, path, root));
  if (!root.isObject())
    return Status::error(path + ": expected a JSON object");
  HfFields f{root, path};
  if (const JsonValue *mt = root.get("model_type")) {
    if (!mt->isString() || mt->string != "smallthinker")
      return Status::error(path + ": model_type is '" +
                           (mt->isString() ? mt->string : std::string("?")) +
                           "', expected 'smallthinker'");
  }
  STC_TRY(f.requireInt("num_hidden_layers", out.numLayers));
  STC_TRY(f.requireInt("hidden_size", out.hiddenSize));
  STC_TRY(f.requireInt("num_attention_heads", out.numHeads));
  STC_TRY(f.requireInt("num_key_value_heads", out.numKVHeads));
  STC_TRY(f.requireInt("vocab_size", out.vocabSize));
  STC_TRY(f.requireInt("moe_num_primary_experts", out.numExperts));
  STC_TRY(f.requireInt("moe_num_active_primary_experts", out.topK));
  STC_TRY(f.requireInt("moe_ffn_hidden_size", out.expertFfn));
  out.headDim = 0;
  STC_TRY(f.optionalInt("head_dim", out.headDim));
  if (out.headDim == 0 && out.numHeads > 0) {
    out.headDim = out.hiddenSize / out.numHeads;
    out.notes.push_back("head_dim absent: using hidden_size / "
                        "num_attention_heads = " +
                        std::to_string(out.headDim));
  }
  if (!root.get("rope_theta"))
    out.notes.push_back(
        "rope_theta absent: using the config class default 1e6");
  STC_TRY(f.optionalNumber("rope_theta", out.ropeTheta));
  STC_TRY(f.optionalNumber("rms_norm_eps", out.rmsNormEps));
  STC_TRY(f.optionalInt("max_position_embeddings", out.maxPositions));
  if (const JsonValue *rs = root.get("rope_scaling"); rs && !rs->isNull())
    return Status::error(path +
                         ": rope_scaling is set; stc implements only the "
                         "default RoPE (rope_scaling: null)");
  bool softmax = false, present = false;
  STC_TRY(f.optionalBool("moe_primary_router_apply_softmax", softmax, present));
  out.weighting = softmax ? RouterWeighting::Softmax : RouterWeighting::Sigmoid;
  bool tie = true;
  STC_TRY(f.optionalBool("tie_word_embeddings", tie, present));
  out.tieWordEmbeddings = tie;
  STC_TRY(f.optionalInt("sliding_window_size", out.slidingWindow));
  bool haveRope = false, haveSwa = false;
  STC_TRY(f.optionalIntList("rope_layout", out.ropeLayout, haveRope));
  STC_TRY(f.optionalIntList("sliding_window_layout", out.swaLayout, haveSwa));
  if (out.numLayers > 0 && out.numLayers <= kMaxLayers) {
    if (!haveRope)
      out.ropeLayout.assign(out.numLayers, 1);
    if (!haveSwa)
      out.swaLayout.assign(out.numLayers, 0);
  }
  STC_TRY(f.optionalInt("bos_token_id", out.bosTokenId));
  if (const JsonValue *eos = root.get("eos_token_id")) {
    if (eos->isInteger)
      out.eosTokenIds.push_back(eos->integer);
    else if (eos->isArray())
      for (const JsonValue &e : eos->array)
        if (e.isInteger)
          out.eosTokenIds.push_back(e.integer);
  }
  return out.validate(path);
}

namespace {

struct GgufFields {
  const GgufFile &file;
  std::string prefix = "smallthinker.";

  Status requireInt(const std::string &key, int64_t &out) const {
    const GgufValue *v = file.find(prefix + key);
    if (!v)
      return Status::error(file.path + ": missing metadata '" + prefix + key +
                           "'");
    if (!v->asInt(out))
      return Status::error(file.path + ": metadata '" + prefix + key + "' is " +
                           ggufTypeName(v->type) + ", expected an integer");
    return Status::success();
  }
  Status optionalInt(const std::string &key, int64_t &out,
                     bool *present = nullptr) const {
    const GgufValue *v = file.find(prefix + key);
    if (present)
      *present = v != nullptr;
    if (!v)
      return Status::success();
    return requireInt(key, out);
  }
  Status optionalNumber(const std::string &key, double &out,
                        bool *present = nullptr) const {
    const GgufValue *v = file.find(prefix + key);
    if (present)
      *present = v != nullptr;
    if (!v)
      return Status::success();
    if (!v->asDouble(out))
      return Status::error(file.path + ": metadata '" + prefix + key + "' is " +
                           ggufTypeName(v->type) + ", expected a number");
    return Status::success();
  }
  Status optionalLayout(const std::string &key, std::vector<int> &out,
                        bool &present) const {
    const GgufValue *v = file.find(prefix + key);
    present = v != nullptr;
    if (!v)
      return Status::success();
    if (v->type != GgufType::ARRAY)
      return Status::error(file.path + ": metadata '" + prefix + key + "' is " +
                           ggufTypeName(v->type) +
                           ", expected an array of integers");
    out.clear();
    for (const GgufValue &e : v->array) {
      int64_t x;
      if (!e.asInt(x))
        return Status::error(file.path + ": metadata '" + prefix + key +
                             "' must hold integers");
      out.push_back(static_cast<int>(x));
    }
    return Status::success();
  }
};

} // namespace

Status parseGgufConfig(const GgufFile &file, ModelConfig &out) {
  out = ModelConfig();
  out.convention = Convention::LlamaCpp;
  const GgufValue *arch = file.find("general.architecture");
  if (!arch || arch->type != GgufType::STRING)
    return Status::error(file.path +
                         ": missing metadata 'general.architecture'");
  if (arch->str != "smallthinker")
    return Status::error(file.path + ": general.architecture is '" + arch->str +
                         "', expected 'smallthinker'");
  GgufFields f{file};
  STC_TRY(f.requireInt("block_count", out.numLayers));
  STC_TRY(f.requireInt("embedding_length", out.hiddenSize));
  STC_TRY(f.requireInt("attention.head_count", out.numHeads));
  STC_TRY(f.requireInt("attention.head_count_kv", out.numKVHeads));
  STC_TRY(f.requireInt("expert_count", out.numExperts));
  STC_TRY(f.requireInt("expert_used_count", out.topK));
  STC_TRY(f.requireInt("expert_feed_forward_length", out.expertFfn));
  bool present = false;
  STC_TRY(f.optionalNumber("attention.layer_norm_rms_epsilon", out.rmsNormEps,
                           &present));
  if (!present)
    return Status::error(file.path + ": missing metadata "
                                     "'smallthinker.attention.layer_norm_rms_"
                                     "epsilon'");
  out.headDim = 0;
  STC_TRY(f.optionalInt("attention.key_length", out.headDim));
  if (out.headDim == 0 && out.numHeads > 0)
    out.headDim = out.hiddenSize / out.numHeads;
  int64_t valueLength = out.headDim;
  STC_TRY(f.optionalInt("attention.value_length", valueLength));
  if (valueLength != out.headDim)
    return Status::error(file.path + ": attention.value_length (" +
                         std::to_string(valueLength) +
                         ") differs from attention.key_length (" +
                         std::to_string(out.headDim) + ")");
  out.ropeTheta = 10000.0; // llama.cpp's default when rope.freq_base is absent
  STC_TRY(f.optionalNumber("rope.freq_base", out.ropeTheta, &present));
  if (!present)
    out.notes.push_back(
        "rope.freq_base absent: using llama.cpp's default 10000");
  STC_TRY(f.optionalInt("context_length", out.maxPositions));
  // vocab_size is optional in GGUF; the embedding's row count is the truth.
  out.vocabSize = 0;
  STC_TRY(f.optionalInt("vocab_size", out.vocabSize));
  if (out.vocabSize == 0) {
    for (const GgufTensor &t : file.tensors)
      if (t.name == "token_embd.weight" && t.ne.size() == 2)
        out.vocabSize = static_cast<int64_t>(t.ne[1]);
  }
  int64_t gating = 0;
  bool haveGating = false;
  STC_TRY(f.optionalInt("expert_gating_func", gating, &haveGating));
  if (!haveGating) {
    // llama.cpp's converter always writes the key; PowerInfer's omits it for
    // sigmoid models and its engine then takes the softmax branch (spec §3.2).
    // Follow PowerInfer, and say so: the weighting changes the logits (not the
    // selected experts).
    gating = 1;
    out.notes.push_back(
        "expert_gating_func absent: using softmax weighting, as "
        "PowerInfer's engine does for such files");
  }
  if (gating == 1)
    out.weighting = RouterWeighting::Softmax;
  else if (gating == 2)
    out.weighting = RouterWeighting::Sigmoid;
  else
    return Status::error(file.path + ": smallthinker.expert_gating_func = " +
                         std::to_string(gating) +
                         ", expected 1 (softmax) or 2 (sigmoid)");

  bool haveWindow = false;
  int64_t window = 0;
  STC_TRY(f.optionalInt("attention.sliding_window", window, &haveWindow));
  bool haveRope = false, haveSwa = false;
  STC_TRY(f.optionalLayout("rope_layout", out.ropeLayout, haveRope));
  STC_TRY(f.optionalLayout("sliding_window_layout", out.swaLayout, haveSwa));
  if (haveRope != haveSwa)
    return Status::error(file.path + ": smallthinker.rope_layout and "
                                     "smallthinker.sliding_window_layout must "
                                     "be given together");
  if (haveRope) {
    // stc's own extension keys carry the HF arrays verbatim, so a GGUF written
    // by stc keeps any layout; the window is the file's value.
    out.slidingWindow = haveWindow && window > 0 ? window : 4096;
  } else if (out.numLayers > 0 && out.numLayers <= kMaxLayers) {
    bool swa = haveWindow && window > 0;
    out.ropeLayout.assign(out.numLayers, 1);
    out.swaLayout.assign(out.numLayers, 0);
    if (swa) {
      // llama.cpp: SWA on il % 4 != 0, NoPE on il % 4 == 0, window pinned to
      // 4096.
      for (int64_t i = 0; i < out.numLayers; ++i) {
        out.swaLayout[i] = i % 4 != 0;
        out.ropeLayout[i] = i % 4 != 0;
      }
      if (window != 4096)
        out.notes.push_back(
            "attention.sliding_window = " + std::to_string(window) +
            ": llama.cpp pins the window to 4096, and so does stc");
      out.slidingWindow = 4096;
    }
  }
  if (const GgufValue *bos = file.find("tokenizer.ggml.bos_token_id"))
    bos->asInt(out.bosTokenId);
  if (const GgufValue *eos = file.find("tokenizer.ggml.eos_token_id")) {
    int64_t e;
    if (eos->asInt(e))
      out.eosTokenIds.push_back(e);
  }
  out.tieWordEmbeddings = true;
  for (const GgufTensor &t : file.tensors)
    if (t.name == "output.weight")
      out.tieWordEmbeddings = false;
  return out.validate(file.path);
}

} // namespace stc
