#include "TokenizerImport.h"

#include "ByteLevel.h"
#include "FileIO.h"
#include "Gguf.h"
#include "Json.h"
#include "PreTokenizer.h"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

namespace stc {

const char *const kQwen2SplitRegex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

namespace {

using rt::TokenKind;

constexpr uint64_t kMaxTokenizerFile = 256ull << 20;

// Builds TokenizerData from tokens given as (id, text, kind), where a Normal
// token's text is in the byte-level alphabet and an added token's is raw.
class Builder {
public:
  // vocabSize 0: as many ids as the tokenizer names.
  Builder(std::string where, int64_t vocabSize)
      : where_(std::move(where)), vocab_(vocabSize), grow_(vocabSize == 0) {
    d_.tokens.assign(vocab_, std::string());
    d_.kinds.assign(vocab_, TokenKind::Unused);
  }

  Status add(int64_t id, const std::string &text, TokenKind kind,
             const std::string &entry) {
    if (grow_ && id >= 0 && id < (1 << 24) && id >= vocab_) {
      vocab_ = id + 1;
      d_.tokens.resize(vocab_);
      d_.kinds.resize(vocab_, TokenKind::Unused);
    }
    if (id < 0 || id >= vocab_)
      return Status::error(
          where_ + ": " + entry + " has id " + std::to_string(id) +
          ", outside the model's vocab_size " + std::to_string(vocab_));
    std::string bytes = text;
    if (kind == TokenKind::Normal && !byteLevelDecode(text, bytes))
      return Status::error(where_ + ": " + entry + " ('" + text +
                           "') is not written in the byte-level alphabet");
    if (kind == TokenKind::Unused)
      bytes.clear();
    else if (bytes.empty())
      return Status::error(where_ + ": " + entry + " is empty");
    if (seen_.count(id)) {
      // An added token repeated (tokenizer.json and tokenizer_config.json list
      // the same ones) is fine when it agrees.
      if (d_.tokens[id] == bytes && d_.kinds[id] == kind)
        return Status::success();
      return Status::error(where_ + ": " + entry + " reuses id " +
                           std::to_string(id) + " of another token");
    }
    seen_.insert(id);
    d_.tokens[id] = bytes;
    d_.kinds[id] = kind;
    if (kind == TokenKind::Normal)
      byText_[text] = static_cast<int32_t>(id);
    return Status::success();
  }

  // A merge of two tokens written in the alphabet.
  Status merge(const std::string &a, const std::string &b, size_t rank) {
    auto ia = byText_.find(a), ib = byText_.find(b), ic = byText_.find(a + b);
    const std::string entry =
        "merge " + std::to_string(rank) + " ('" + a + " " + b + "')";
    if (ia == byText_.end() || ib == byText_.end())
      return Status::error(where_ + ": " + entry +
                           " names the unknown token '" +
                           (ia == byText_.end() ? a : b) + "'");
    if (ic == byText_.end())
      return Status::error(where_ + ": " + entry + " makes '" + a + b +
                           "', which is not in the vocabulary");
    d_.merges.push_back({ia->second, ib->second, ic->second});
    return Status::success();
  }

  int32_t idOf(const std::string &raw) const {
    for (size_t i = 0; i < d_.tokens.size(); ++i)
      if (d_.kinds[i] != TokenKind::Unused && d_.tokens[i] == raw)
        return static_cast<int32_t>(i);
    return -1;
  }

  void addEos(int64_t id) {
    if (id >= 0 && id < vocab_ &&
        std::find(d_.eos.begin(), d_.eos.end(), id) == d_.eos.end())
      d_.eos.push_back(static_cast<int32_t>(id));
  }

  // The end-of-turn tokens every Qwen2 chat ends with, when present; then a
  // check of the whole table through the runtime's own rules.
  Status finish(rt::TokenizerData &out) {
    for (const char *t : {"<|im_end|>", "<|endoftext|>"})
      addEos(idOf(t));
    std::sort(d_.eos.begin(), d_.eos.end());
    rt::Tokenizer check;
    std::string error;
    if (!check.init(d_, where_, error))
      return Status::error(error);
    out = std::move(d_);
    return Status::success();
  }

  rt::TokenizerData &data() { return d_; }
  const std::string &where() const { return where_; }

private:
  std::string where_;
  int64_t vocab_;
  bool grow_;
  rt::TokenizerData d_;
  std::set<int64_t> seen_;
  std::unordered_map<std::string, int32_t> byText_;
};

Status readJsonFile(const std::string &path, JsonValue &out) {
  std::string text;
  STC_TRY(readSmallFile(path, kMaxTokenizerFile, text));
  return parseJson(text, path, out);
}

std::string typeOf(const JsonValue *v) {
  const JsonValue *t = v && v->isObject() ? v->get("type") : nullptr;
  return t && t->isString() ? t->string : "";
}

Status checkHfPipeline(const JsonValue &root, const std::string &path,
                       rt::TokenizerData &d) {
  const JsonValue *norm = root.get("normalizer");
  if (norm && !norm->isNull()) {
    const JsonValue *one = norm;
    if (typeOf(norm) == "Sequence") {
      const JsonValue *list = norm->get("normalizers");
      if (!list || !list->isArray() || list->array.size() != 1)
        return Status::error(path + ": normalizer: a Sequence other than [NFC] "
                                    "(stc implements NFC or none)");
      one = &list->array[0];
    }
    if (typeOf(one) != "NFC")
      return Status::error(path + ": normalizer '" + typeOf(one) +
                           "' (stc implements NFC or none)");
    d.nfc = true;
  }
  // The pre-tokenizer must be Qwen2's: Split(regex, Isolated), ByteLevel.
  const JsonValue *pre = root.get("pre_tokenizer");
  const JsonValue *list = pre ? pre->get("pretokenizers") : nullptr;
  bool qwen2 = typeOf(pre) == "Sequence" && list && list->isArray() &&
               list->array.size() == 2;
  if (qwen2) {
    const JsonValue &split = list->array[0], &bytes = list->array[1];
    const JsonValue *pattern = split.get("pattern");
    const JsonValue *regex = pattern ? pattern->get("Regex") : nullptr;
    const JsonValue *behavior = split.get("behavior");
    const JsonValue *invert = split.get("invert");
    const JsonValue *useRegex = bytes.get("use_regex");
    const JsonValue *prefix = bytes.get("add_prefix_space");
    qwen2 = typeOf(&split) == "Split" && regex && regex->isString() &&
            regex->string == kQwen2SplitRegex && behavior &&
            behavior->isString() && behavior->string == "Isolated" &&
            (!invert || (invert->isBool() && !invert->boolean)) &&
            typeOf(&bytes) == "ByteLevel" && useRegex && useRegex->isBool() &&
            !useRegex->boolean &&
            (!prefix || (prefix->isBool() && !prefix->boolean));
  }
  if (!qwen2)
    return Status::error(path +
                         ": pre_tokenizer is not Qwen2's (a Split with the "
                         "qwen2 regex, Isolated, then ByteLevel without "
                         "regex or prefix space); stc implements that one");
  const JsonValue *dec = root.get("decoder");
  if (dec && !dec->isNull() && typeOf(dec) != "ByteLevel")
    return Status::error(path + ": decoder '" + typeOf(dec) +
                         "' (stc implements ByteLevel)");
  const JsonValue *post = root.get("post_processor");
  if (post && !post->isNull() && typeOf(post) != "ByteLevel")
    return Status::error(path + ": post_processor '" + typeOf(post) +
                         "' (stc implements ByteLevel, which adds no tokens)");
  return Status::success();
}

// One added token ({content, special, lstrip, rstrip, single_word,
// normalized}) of tokenizer.json's added_tokens or tokenizer_config.json's
// added_tokens_decoder.
Status addAddedToken(Builder &b, int64_t id, const JsonValue &t,
                     const std::string &path, const std::string &entry) {
  const JsonValue *content = t.get("content");
  if (!content || !content->isString())
    return Status::error(path + ": " + entry + " has no string 'content'");
  for (const char *flag : {"lstrip", "rstrip", "single_word"}) {
    const JsonValue *f = t.get(flag);
    if (f && f->isBool() && f->boolean)
      return Status::error(path + ": " + entry + " ('" + content->string +
                           "') sets " + flag +
                           ", which stc does not implement");
  }
  const JsonValue *special = t.get("special");
  const bool isSpecial = special && special->isBool() && special->boolean;
  const JsonValue *normalized = t.get("normalized");
  // HF's default is normalized = !special.
  const bool isNormalized =
      normalized && normalized->isBool() ? normalized->boolean : !isSpecial;
  if (isNormalized && b.data().nfc)
    return Status::error(path + ": " + entry + " ('" + content->string +
                         "') is matched after normalization, which stc does "
                         "not implement (only normalized: false)");
  return b.add(id, content->string,
               isSpecial ? TokenKind::Control : TokenKind::UserDefined,
               entry + " ('" + content->string + "')");
}

Status readHfModel(Builder &b, const JsonValue &model,
                   const std::string &path) {
  if (typeOf(&model) != "BPE")
    return Status::error(path + ": model type '" + typeOf(&model) +
                         "' (stc implements byte-level BPE)");
  const JsonValue *fallback = model.get("byte_fallback");
  if (fallback && fallback->isBool() && fallback->boolean)
    return Status::error(path + ": model.byte_fallback is true (stc implements "
                                "byte-level BPE without fallback)");
  for (const char *k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const JsonValue *v = model.get(k);
    if (v && v->isString() && !v->string.empty())
      return Status::error(path + ": model." + k + " is '" + v->string +
                           "' (stc implements none)");
  }
  const JsonValue *ignore = model.get("ignore_merges");
  b.data().ignoreMerges = ignore && ignore->isBool() && ignore->boolean;
  const JsonValue *vocab = model.get("vocab");
  const JsonValue *merges = model.get("merges");
  if (!vocab || !vocab->isObject() || !merges || !merges->isArray())
    return Status::error(path + ": model has no 'vocab' object or 'merges' "
                                "array");
  for (const auto &kv : vocab->object) {
    if (!kv.second.isInteger)
      return Status::error(path + ": vocab entry '" + kv.first +
                           "' has no integer id");
    STC_TRY(b.add(kv.second.integer, kv.first, TokenKind::Normal,
                  "vocab entry " + std::to_string(kv.second.integer)));
  }
  for (size_t r = 0; r < merges->array.size(); ++r) {
    const JsonValue &m = merges->array[r];
    std::string left, right;
    if (m.isString()) { // "a b"
      const size_t sp = m.string.find(' ');
      if (sp == std::string::npos ||
          m.string.find(' ', sp + 1) != std::string::npos)
        return Status::error(path + ": merge " + std::to_string(r) + " ('" +
                             m.string + "') is not two tokens and a space");
      left = m.string.substr(0, sp);
      right = m.string.substr(sp + 1);
    } else if (m.isArray() && m.array.size() == 2 && m.array[0].isString() &&
               m.array[1].isString()) { // ["a", "b"]
      left = m.array[0].string;
      right = m.array[1].string;
    } else {
      return Status::error(path + ": merge " + std::to_string(r) +
                           " is neither \"a b\" nor [\"a\", \"b\"]");
    }
    STC_TRY(b.merge(left, right, r));
  }
  return Status::success();
}

Status readVocabAndMerges(Builder &b, const std::string &dir) {
  const std::string vocabPath = joinPath(dir, "vocab.json");
  JsonValue vocab;
  STC_TRY(readJsonFile(vocabPath, vocab));
  if (!vocab.isObject())
    return Status::error(vocabPath + ": not a JSON object of token -> id");
  for (const auto &kv : vocab.object) {
    if (!kv.second.isInteger)
      return Status::error(vocabPath + ": entry '" + kv.first +
                           "' has no integer id");
    STC_TRY(b.add(kv.second.integer, kv.first, TokenKind::Normal,
                  "entry " + std::to_string(kv.second.integer)));
  }
  const std::string mergesPath = joinPath(dir, "merges.txt");
  std::string text;
  STC_TRY(readSmallFile(mergesPath, kMaxTokenizerFile, text));
  size_t rank = 0, lineNo = 0;
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos)
      end = text.size();
    std::string line = text.substr(at, end - at);
    at = end + 1;
    ++lineNo;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.empty() || (lineNo == 1 && line.rfind("#version", 0) == 0))
      continue;
    const size_t sp = line.find(' ');
    if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
      return Status::error(mergesPath + ": line " + std::to_string(lineNo) +
                           " is not two tokens and a space");
    STC_TRY(b.merge(line.substr(0, sp), line.substr(sp + 1), rank++));
  }
  return Status::success();
}

// A token named in tokenizer_config.json: "text" or {"content": "text"}.
std::string tokenText(const JsonValue *v) {
  if (!v)
    return "";
  if (v->isString())
    return v->string;
  const JsonValue *c = v->isObject() ? v->get("content") : nullptr;
  return c && c->isString() ? c->string : "";
}

// Where a tokenizer is read from, and what the model's config says of it.
struct Source {
  std::string path;
  int64_t vocabSize = 0; // 0: no model (a tokenizer alone)
  int64_t bos = -1;
  std::vector<int64_t> eos;
};

Status importHf(const Source &ckpt, rt::TokenizerData &out, bool &found) {
  const std::string dir = ckpt.path;
  const std::string tokPath = joinPath(dir, "tokenizer.json");
  const bool hasJson = fileExists(tokPath);
  const bool hasVocab = fileExists(joinPath(dir, "vocab.json")) &&
                        fileExists(joinPath(dir, "merges.txt"));
  found = hasJson || hasVocab;
  if (!found)
    return Status::success();
  Builder b(hasJson ? tokPath : joinPath(dir, "vocab.json"), ckpt.vocabSize);
  b.data().semantics = rt::TokenizerSemantics::HuggingFace;
  JsonValue config;
  const std::string configPath = joinPath(dir, "tokenizer_config.json");
  const bool hasConfig = fileExists(configPath);
  if (hasConfig) {
    STC_TRY(readJsonFile(configPath, config));
    if (!config.isObject())
      return Status::error(configPath + ": not a JSON object");
  }
  if (hasJson) {
    JsonValue root;
    STC_TRY(readJsonFile(tokPath, root));
    if (!root.isObject() || !root.get("model"))
      return Status::error(tokPath + ": not a tokenizer (no 'model')");
    STC_TRY(checkHfPipeline(root, tokPath, b.data()));
    STC_TRY(readHfModel(b, *root.get("model"), tokPath));
    if (const JsonValue *added = root.get("added_tokens")) {
      if (!added->isArray())
        return Status::error(tokPath + ": added_tokens is not an array");
      for (size_t i = 0; i < added->array.size(); ++i) {
        const JsonValue *id = added->array[i].get("id");
        if (!id || !id->isInteger)
          return Status::error(tokPath + ": added_tokens[" + std::to_string(i) +
                               "] has no integer id");
        STC_TRY(addAddedToken(b, id->integer, added->array[i], tokPath,
                              "added_tokens[" + std::to_string(i) + "]"));
      }
    }
  } else {
    // The slow Qwen2Tokenizer's files: NFC and the qwen2 split are implied.
    b.data().nfc = true;
    STC_TRY(readVocabAndMerges(b, dir));
  }
  if (hasConfig) {
    if (const JsonValue *dec = config.get("added_tokens_decoder")) {
      if (!dec->isObject())
        return Status::error(configPath +
                             ": added_tokens_decoder is not an object");
      for (const auto &kv : dec->object) {
        char *end = nullptr;
        const long long id = std::strtoll(kv.first.c_str(), &end, 10);
        if (kv.first.empty() || *end != '\0' || !kv.second.isObject())
          return Status::error(configPath + ": added_tokens_decoder entry '" +
                               kv.first + "' is not an id and a token");
        STC_TRY(addAddedToken(b, id, kv.second, configPath,
                              "added_tokens_decoder entry " + kv.first));
      }
    }
    const JsonValue *tmpl = config.get("chat_template");
    if (tmpl && tmpl->isString()) {
      b.data().chatTemplate = tmpl->string;
    } else if (tmpl && tmpl->isArray()) { // [{name, template}]: the default
      for (const JsonValue &t : tmpl->array) {
        const JsonValue *name = t.get("name"), *text = t.get("template");
        if (name && name->isString() && name->string == "default" && text &&
            text->isString())
          b.data().chatTemplate = text->string;
      }
    }
    const JsonValue *addBos = config.get("add_bos_token");
    b.data().addBos = addBos && addBos->isBool() && addBos->boolean;
  }
  // Newer checkpoints keep the template in its own file, which then wins (as
  // transformers loads it).
  const std::string jinjaPath = joinPath(dir, "chat_template.jinja");
  if (fileExists(jinjaPath))
    STC_TRY(readSmallFile(jinjaPath, 16u << 20, b.data().chatTemplate));
  // The ids the config names, then every other source of eos ids.
  b.data().bos = static_cast<int32_t>(ckpt.bos);
  for (int64_t e : ckpt.eos)
    b.addEos(e);
  if (hasConfig) {
    const std::string eos = tokenText(config.get("eos_token"));
    if (!eos.empty()) {
      const int32_t id = b.idOf(eos);
      if (id < 0)
        return Status::error(configPath + ": eos_token '" + eos +
                             "' is not a token");
      b.addEos(id);
    }
    const std::string pad = tokenText(config.get("pad_token"));
    if (!pad.empty())
      b.data().pad = b.idOf(pad);
  }
  const std::string genPath = joinPath(dir, "generation_config.json");
  if (fileExists(genPath)) {
    JsonValue gen;
    STC_TRY(readJsonFile(genPath, gen));
    if (const JsonValue *eos = gen.get("eos_token_id")) {
      if (eos->isInteger)
        b.addEos(eos->integer);
      for (const JsonValue &e : eos->array)
        if (e.isInteger)
          b.addEos(e.integer);
    }
    if (const JsonValue *bos = gen.get("bos_token_id"); bos && bos->isInteger)
      b.data().bos = static_cast<int32_t>(bos->integer);
    if (const JsonValue *pad = gen.get("pad_token_id"); pad && pad->isInteger)
      b.data().pad = static_cast<int32_t>(pad->integer);
    auto number = [&](const char *key, float &v) {
      const JsonValue *x = gen.get(key);
      if (x && x->isNumber())
        v = static_cast<float>(x->number);
    };
    number("temperature", b.data().temperature);
    number("top_p", b.data().topP);
    if (const JsonValue *k = gen.get("top_k"); k && k->isInteger)
      b.data().topK = static_cast<int32_t>(k->integer);
  }
  return b.finish(out);
}

Status importGguf(const Source &ckpt, rt::TokenizerData &out, bool &found) {
  GgufFile g;
  STC_TRY(readGgufHeader(ckpt.path, g));
  const GgufValue *model = g.find("tokenizer.ggml.model");
  found = model != nullptr;
  if (!found)
    return Status::success();
  const std::string &path = ckpt.path;
  if (model->type != GgufType::STRING || model->str != "gpt2")
    return Status::error(path + ": tokenizer.ggml.model is '" + model->str +
                         "' (stc implements gpt2, byte-level BPE)");
  const GgufValue *pre = g.find("tokenizer.ggml.pre");
  const std::string preName =
      pre && pre->type == GgufType::STRING ? pre->str : "";
  if (!rt::knownPreTokenizer(preName))
    return Status::error(path + ": tokenizer.ggml.pre is '" + preName +
                         "' (stc implements qwen2)");
  auto stringArray = [&](const char *key, const GgufValue *&v) {
    v = g.find(key);
    if (!v || v->type != GgufType::ARRAY || v->arrayType != GgufType::STRING)
      return Status::error(path + ": " + key +
                           " is missing or not an array "
                           "of strings");
    return Status::success();
  };
  const GgufValue *tokens = nullptr, *merges = nullptr;
  STC_TRY(stringArray("tokenizer.ggml.tokens", tokens));
  STC_TRY(stringArray("tokenizer.ggml.merges", merges));
  const GgufValue *types = g.find("tokenizer.ggml.token_type");
  if (types && (types->type != GgufType::ARRAY ||
                types->array.size() != tokens->array.size()))
    return Status::error(path + ": tokenizer.ggml.token_type is not one "
                                "integer per token");
  Builder b(path, ckpt.vocabSize);
  b.data().semantics = rt::TokenizerSemantics::LlamaCpp;
  b.data().pre = preName;
  for (size_t i = 0; i < tokens->array.size(); ++i) {
    int64_t type = 1;
    if (types && !types->array[i].asInt(type))
      return Status::error(path + ": tokenizer.ggml.token_type[" +
                           std::to_string(i) + "] is not an integer");
    TokenKind kind;
    switch (type) {
    case 1:
      kind = TokenKind::Normal;
      break;
    case 3:
      kind = TokenKind::Control;
      break;
    case 4:
      kind = TokenKind::UserDefined;
      break;
    case 5:
      kind = TokenKind::Unused;
      break;
    default:
      return Status::error(path + ": token " + std::to_string(i) +
                           " has the token type " + std::to_string(type) +
                           " (a gpt2 vocabulary has 1, 3, 4 or 5)");
    }
    STC_TRY(b.add(static_cast<int64_t>(i), tokens->array[i].str, kind,
                  "tokenizer.ggml.tokens[" + std::to_string(i) + "]"));
  }
  for (size_t r = 0; r < merges->array.size(); ++r) {
    const std::string &m = merges->array[r].str;
    const size_t sp = m.find(' ');
    if (sp == std::string::npos || m.find(' ', sp + 1) != std::string::npos)
      return Status::error(path + ": tokenizer.ggml.merges[" +
                           std::to_string(r) + "] ('" + m +
                           "') is not two tokens and a space");
    STC_TRY(b.merge(m.substr(0, sp), m.substr(sp + 1), r));
  }
  auto intKey = [&](const char *key, int32_t &v) {
    if (const GgufValue *x = g.find(key)) {
      int64_t i = 0;
      if (x->asInt(i))
        v = static_cast<int32_t>(i);
    }
  };
  intKey("tokenizer.ggml.bos_token_id", b.data().bos);
  intKey("tokenizer.ggml.padding_token_id", b.data().pad);
  for (const char *key :
       {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"}) {
    int32_t id = -1;
    intKey(key, id);
    b.addEos(id);
  }
  for (int64_t e : ckpt.eos)
    b.addEos(e);
  if (const GgufValue *add = g.find("tokenizer.ggml.add_bos_token"))
    b.data().addBos = add->type == GgufType::BOOL && add->u != 0;
  if (const GgufValue *t = g.find("tokenizer.chat_template");
      t && t->type == GgufType::STRING)
    b.data().chatTemplate = t->str;
  return b.finish(out);
}

} // namespace

Status importTokenizer(const Checkpoint &ckpt, rt::TokenizerData &out,
                       bool &found) {
  Source s{ckpt.path, ckpt.config.vocabSize, ckpt.config.bosTokenId,
           ckpt.config.eosTokenIds};
  return ckpt.format == CheckpointFormat::GGUF ? importGguf(s, out, found)
                                               : importHf(s, out, found);
}

Status importTokenizerAlone(const std::string &path, rt::TokenizerData &out,
                            bool &found) {
  Source s{path};
  return isDirectory(path) ? importHf(s, out, found)
                           : importGguf(s, out, found);
}

} // namespace stc
