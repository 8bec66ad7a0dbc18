#include "Checkpoint.h"

#include "Gguf.h"
#include "Safetensors.h"

#include <algorithm>

namespace stc {

static std::string shapeText(const std::vector<int64_t> &s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i)
    t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

std::vector<WeightSpec> expectedWeights(const ModelConfig &c, bool withOutput) {
  const int64_t D = c.hiddenSize, Q = c.numHeads * c.headDim,
                KV = c.numKVHeads * c.headDim, E = c.numExperts,
                F = c.expertFfn, V = c.vocabSize;
  std::vector<WeightSpec> w;
  w.push_back({"token_embd", {V, D}, -1, false, "model.embed_tokens.weight"});
  for (int64_t i = 0; i < c.numLayers; ++i) {
    int l = static_cast<int>(i);
    std::string b = "blk." + std::to_string(i) + ".";
    std::string h = "model.layers." + std::to_string(i) + ".";
    std::string x = h + "block_sparse_moe.experts.{e}.";
    w.push_back({b + "attn_norm", {D}, l, false, h + "input_layernorm.weight"});
    w.push_back(
        {b + "attn_q", {Q, D}, l, false, h + "self_attn.q_proj.weight"});
    w.push_back(
        {b + "attn_k", {KV, D}, l, false, h + "self_attn.k_proj.weight"});
    w.push_back(
        {b + "attn_v", {KV, D}, l, false, h + "self_attn.v_proj.weight"});
    w.push_back(
        {b + "attn_output", {D, Q}, l, false, h + "self_attn.o_proj.weight"});
    w.push_back(
        {b + "ffn_norm", {D}, l, false, h + "post_attention_layernorm.weight"});
    w.push_back({b + "ffn_gate_inp",
                 {E, D},
                 l,
                 false,
                 h + "block_sparse_moe.primary_router.weight"});
    w.push_back({b + "ffn_gate_exps", {E, F, D}, l, true, x + "gate.weight"});
    w.push_back({b + "ffn_up_exps", {E, F, D}, l, true, x + "up.weight"});
    w.push_back({b + "ffn_down_exps", {E, D, F}, l, true, x + "down.weight"});
  }
  w.push_back({"output_norm", {D}, -1, false, "model.norm.weight"});
  if (withOutput)
    w.push_back({"output", {V, D}, -1, false, "lm_head.weight"});
  return w;
}

uint64_t WeightInfo::numElements() const {
  uint64_t n = 1;
  for (int64_t d : shape)
    n *= static_cast<uint64_t>(d);
  return n;
}

uint64_t WeightInfo::numBytes() const {
  uint64_t n = 0;
  for (const TensorExtent &e : extents)
    n += e.nbytes;
  return n;
}

Status Checkpoint::readAllF32(const std::string &name,
                              std::vector<float> &out) const {
  const WeightInfo *w = find(name);
  if (!w)
    return Status::error(path + ": weight '" + name + "' is missing");
  out.resize(w->numElements());
  return readF32(*w, 0, out.size(), out.data());
}

const WeightInfo *Checkpoint::find(const std::string &name) const {
  for (const WeightInfo &w : weights)
    if (w.name == name)
      return &w;
  return nullptr;
}

Status Checkpoint::open(const std::string &path, Checkpoint &out) {
  out = Checkpoint();
  out.path = path;
  if (isDirectory(path)) {
    out.format = CheckpointFormat::HF;
    return out.openHF(path);
  }
  if (!fileExists(path))
    return Status::error(path + ": no such file or directory");
  out.format = CheckpointFormat::GGUF;
  return out.openGGUF(path);
}

static std::string replaceExpert(const std::string &pattern, int64_t e) {
  std::string s = pattern;
  size_t p = s.find("{e}");
  return s.replace(p, 3, std::to_string(e));
}

Status Checkpoint::openHF(const std::string &dir) {
  std::string configPath = joinPath(dir, "config.json");
  if (!fileExists(configPath))
    return Status::error(dir + ": missing config.json (expected an HF "
                               "checkpoint folder)");
  STC_TRY(parseHfConfig(configPath, config));

  // Which files to read: the index's shards, or the single model.safetensors.
  std::vector<std::string> files;
  std::map<std::string, std::string> weightMap;
  std::string indexPath = joinPath(dir, "model.safetensors.index.json");
  if (fileExists(indexPath)) {
    STC_TRY(readSafetensorsIndex(indexPath, weightMap));
    for (const auto &kv : weightMap)
      if (std::find(files.begin(), files.end(), kv.second) == files.end())
        files.push_back(kv.second);
  } else if (fileExists(joinPath(dir, "model.safetensors"))) {
    files.push_back("model.safetensors");
  } else {
    return Status::error(dir + ": neither model.safetensors nor "
                               "model.safetensors.index.json found");
  }

  std::map<std::string, SafetensorsTensor> tensors;
  std::map<std::string, std::string> tensorFile;
  for (const std::string &name : files) {
    SafetensorsFile sf;
    STC_TRY(readSafetensorsHeader(joinPath(dir, name), sf));
    for (SafetensorsTensor &t : sf.tensors) {
      if (tensors.count(t.name))
        return Status::error(sf.path + ": tensor '" + t.name +
                             "' also appears in " + tensorFile[t.name]);
      if (!weightMap.empty()) {
        auto it = weightMap.find(t.name);
        if (it == weightMap.end() || it->second != name)
          return Status::error(sf.path + ": tensor '" + t.name +
                               "' is not listed for this shard in " +
                               indexPath);
      }
      tensorFile[t.name] = sf.path;
      tensors[t.name] = std::move(t);
    }
  }
  for (const auto &kv : weightMap)
    if (!tensors.count(kv.first))
      return Status::error(indexPath + ": tensor '" + kv.first +
                           "' is listed in " + kv.second +
                           " but that file does not contain it");

  lmHeadTied = config.tieWordEmbeddings;
  std::map<std::string, bool> used;
  for (const WeightSpec &spec : expectedWeights(config, !lmHeadTied)) {
    WeightInfo w;
    w.name = spec.name;
    w.shape = spec.shape;
    int64_t n = spec.stackedExperts ? spec.shape[0] : 1;
    std::vector<int64_t> sliceShape = spec.shape;
    if (spec.stackedExperts)
      sliceShape.erase(sliceShape.begin());
    for (int64_t e = 0; e < n; ++e) {
      std::string hf =
          spec.stackedExperts ? replaceExpert(spec.hfName, e) : spec.hfName;
      auto it = tensors.find(hf);
      if (it == tensors.end())
        return Status::error(dir + ": missing tensor '" + hf + "'");
      const SafetensorsTensor &t = it->second;
      if (t.shape != sliceShape)
        return Status::error(tensorFile[hf] + ": tensor '" + hf +
                             "' has shape " + shapeText(t.shape) +
                             ", expected " + shapeText(sliceShape));
      if (e == 0)
        w.dtype = t.dtype;
      else if (t.dtype != w.dtype)
        return Status::error(tensorFile[hf] + ": tensor '" + hf + "' is " +
                             dtypeName(t.dtype) + " but expert 0 is " +
                             dtypeName(w.dtype) +
                             "; stacked experts need one dtype");
      w.extents.push_back({tensorFile[hf], t.offset, t.nbytes, hf});
      used[hf] = true;
    }
    weights.push_back(std::move(w));
  }
  for (const auto &kv : tensors) {
    if (used.count(kv.first))
      continue;
    if (kv.first == "lm_head.weight" && lmHeadTied) {
      config.notes.push_back(
          "tie_word_embeddings is true: lm_head.weight is "
          "ignored and the head reads embed_tokens (HF rule)");
      continue;
    }
    return Status::error(tensorFile[kv.first] + ": unexpected tensor '" +
                         kv.first + "' (not part of a SmallThinker model)");
  }
  return Status::success();
}

Status Checkpoint::openGGUF(const std::string &path) {
  GgufFile gf;
  STC_TRY(readGgufHeader(path, gf));
  STC_TRY(parseGgufConfig(gf, config));
  std::map<std::string, const GgufTensor *> byName;
  for (const GgufTensor &t : gf.tensors) {
    if (byName.count(t.name))
      return Status::error(path + ": tensor '" + t.name + "' appears twice");
    byName[t.name] = &t;
  }
  lmHeadTied = byName.count("output.weight") == 0;
  size_t usedCount = 0;
  for (const WeightSpec &spec : expectedWeights(config, !lmHeadTied)) {
    std::string name = spec.name + ".weight";
    auto it = byName.find(name);
    if (it == byName.end())
      return Status::error(path + ": missing tensor '" + name + "'");
    const GgufTensor &t = *it->second;
    std::vector<int64_t> logical(t.ne.rbegin(), t.ne.rend());
    // PowerInfer's --transpose-down writes ffn_down_exps with ffn_up_exps'
    // ne (its engine's own test); told apart from llama.cpp's layout by shape
    // alone, which is ambiguous only when hidden and expert FFN sizes agree
    // (then the file is read as llama.cpp's).
    const bool transposed =
        spec.stackedExperts &&
        spec.name.find("ffn_down_exps") != std::string::npos &&
        spec.shape[1] != spec.shape[2] &&
        logical ==
            std::vector<int64_t>{spec.shape[0], spec.shape[2], spec.shape[1]};
    if (logical != spec.shape && !transposed) {
      std::vector<int64_t> ne(spec.shape.rbegin(), spec.shape.rend());
      std::vector<int64_t> got(t.ne.begin(), t.ne.end());
      return Status::error(path + ": tensor '" + name + "' has ne " +
                           shapeText(got) + ", expected " + shapeText(ne));
    }
    WeightInfo w;
    w.expertsTransposed = transposed;
    w.name = spec.name;
    w.shape = spec.shape;
    w.dtype = t.dtype;
    w.extents.push_back({path, t.offset, t.nbytes, name});
    weights.push_back(std::move(w));
    ++usedCount;
  }
  if (usedCount != gf.tensors.size()) {
    for (const GgufTensor &t : gf.tensors) {
      std::string base =
          t.name.size() > 7 ? t.name.substr(0, t.name.size() - 7) : t.name;
      if (find(base))
        continue;
      if (t.name == "lm_head_profiler.weight") {
        config.notes.push_back("lm_head_profiler.weight (PowerInfer's sparse "
                               "head predictor) is ignored");
        continue;
      }
      return Status::error(path + ": unexpected tensor '" + t.name +
                           "' (not part of a SmallThinker model)");
    }
  }
  return Status::success();
}

const InputFile *Checkpoint::file(const std::string &p, Status &st) const {
  // Readers on several threads (stc compile's calibration) share the table;
  // the files themselves are read with pread.
  std::lock_guard<std::mutex> lock(*filesMutex_);
  auto it = files_.find(p);
  if (it != files_.end())
    return it->second.get();
  auto f = std::make_unique<InputFile>();
  st = f->open(p);
  if (!st.ok())
    return nullptr;
  const InputFile *raw = f.get();
  files_[p] = std::move(f);
  return raw;
}

void untransposeExpert(DType t, const uint8_t *stored, int64_t rows,
                       int64_t cols, float *logical,
                       std::vector<float> &scratch) {
  scratch.resize(static_cast<size_t>(rows) * cols);
  dequantize(t, stored, scratch.data(), scratch.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      logical[c * rows + r] = scratch[r * cols + c];
}

Status Checkpoint::readTransposedF32(const WeightInfo &w, uint64_t begin,
                                     uint64_t count, float *out) const {
  // Whole experts: the file's rows run along the logical columns.
  const int64_t rows = w.shape[2], cols = w.shape[1]; // stored [F][D]
  const uint64_t per = static_cast<uint64_t>(rows) * cols;
  uint64_t expertBytes;
  dtypeBytes(w.dtype, per, expertBytes);
  const TensorExtent &ext = w.extents[0];
  Status st;
  const InputFile *f = file(ext.file, st);
  if (!f)
    return st;
  std::vector<uint8_t> buf(expertBytes);
  std::vector<float> logical(per), scratch;
  const std::string what = "tensor '" + ext.sourceName + "'";
  while (count > 0) {
    const uint64_t e = begin / per, at = begin % per;
    const uint64_t n = std::min(count, per - at);
    STC_TRY(f->read(ext.offset + e * expertBytes, buf.data(), expertBytes,
                    what.c_str()));
    untransposeExpert(w.dtype, buf.data(), rows, cols, logical.data(), scratch);
    std::copy(logical.begin() + at, logical.begin() + at + n, out);
    out += n;
    begin += n;
    count -= n;
  }
  return Status::success();
}

Status Checkpoint::readF32(const WeightInfo &w, uint64_t begin, uint64_t count,
                           float *out) const {
  uint64_t total = w.numElements();
  if (begin > total || count > total - begin)
    return Status::error(w.name + ": read of elements [" +
                         std::to_string(begin) + ", " +
                         std::to_string(begin + count) +
                         ") outside the tensor's " + std::to_string(total));
  if (w.expertsTransposed)
    return readTransposedF32(w, begin, count, out);
  const uint64_t unit = blockElements(w.dtype);
  if (begin % unit || count % unit)
    return Status::error(w.name + ": quantized reads must be block aligned");
  uint64_t perExtent = total / w.extents.size();
  std::vector<uint8_t> buf;
  while (count > 0) {
    uint64_t idx = begin / perExtent;
    uint64_t inExtent = begin % perExtent;
    uint64_t n = std::min(count, perExtent - inExtent);
    const TensorExtent &ext = w.extents[idx];
    uint64_t byteBegin, nbytes;
    dtypeBytes(w.dtype, inExtent, byteBegin);
    dtypeBytes(w.dtype, n, nbytes);
    Status st;
    const InputFile *f = file(ext.file, st);
    if (!f)
      return st;
    buf.resize(nbytes);
    std::string what = "tensor '" + ext.sourceName + "'";
    STC_TRY(f->read(ext.offset + byteBegin, buf.data(), nbytes, what.c_str()));
    dequantize(w.dtype, buf.data(), out, n);
    out += n;
    begin += n;
    count -= n;
  }
  return Status::success();
}

} // namespace stc
