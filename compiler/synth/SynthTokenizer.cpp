#include "synth/SynthTokenizer.h"

#include "formats/ByteLevel.h"
#include "formats/FileIO.h"
#include "formats/Json.h"
#include "formats/TokenizerImport.h"

#include "PreTokenizer.h"
#include "Unicode.h"

#include <algorithm>
#include <map>
#include <unordered_map>

namespace stc {

namespace {

// The corpus, embedded by CMake (corpus/corpus.txt).
const char kCorpus[] =
#include "compiler/synth/corpus.inc"
    ;
// FNV-1a of corpus.txt: a changed corpus changes every synthetic tokenizer,
// so it has to be deliberate (update this with the corpus).
constexpr uint64_t kCorpusFnv1a = 0x2018756ef0c5257eull;

uint64_t fnv1a(const std::string &s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s)
    h = (h ^ c) * 0x100000001b3ull;
  return h;
}

uint64_t splitmix(uint64_t &state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Whether `bytes` is whole UTF-8 letters, after an optional leading space.
bool isWordToken(const std::string &bytes) {
  std::vector<uint32_t> cps, offsets;
  size_t bad = 0;
  if (!rt::unicode::decodeUtf8(bytes, cps, offsets, bad) || cps.empty())
    return false;
  for (size_t i = cps[0] == ' ' ? 1 : 0; i < cps.size(); ++i)
    if (!(rt::unicode::classOf(cps[i]) & rt::unicode::kLetter))
      return false;
  return cps.size() > (cps[0] == ' ' ? 1u : 0u);
}

const char *const kChatMl =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' "
    "+ message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if "
    "add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

} // namespace

void synthSpecialIds(int64_t vocabSize, int64_t &endOfText, int64_t &imStart,
                     int64_t &imEnd) {
  // Qwen's ids where the vocab is Qwen's size, else the top three ids.
  endOfText = vocabSize >= 151936 ? 151643 : vocabSize - 3;
  imStart = endOfText + 1;
  imEnd = endOfText + 2;
}

Status synthTokenizer(const ModelConfig &c, rt::TokenizerData &out) {
  const std::string corpus = kCorpus;
  if (fnv1a(corpus) != kCorpusFnv1a) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "0x%016llx",
                  static_cast<unsigned long long>(fnv1a(corpus)));
    return Status::error(std::string("synth: the embedded corpus's checksum "
                                     "is ") +
                         buf + ", not the one SynthTokenizer.cpp expects");
  }
  int64_t eot, imStart, imEnd;
  synthSpecialIds(c.vocabSize, eot, imStart, imEnd);
  if (eot < 256)
    return Status::error("synth: a vocab of " + std::to_string(c.vocabSize) +
                         " cannot hold the 256 byte tokens and 3 specials");
  rt::TokenizerData d;
  d.semantics = rt::TokenizerSemantics::HuggingFace;
  d.nfc = true;
  d.pre = "qwen2";
  // The byte tokens in the order of their byte-level characters (as GPT-2's
  // and Qwen's vocabularies begin: "!" is id 0).
  std::vector<std::pair<uint32_t, int>> order;
  for (int b = 0; b < 256; ++b)
    order.emplace_back(byteLevelAlphabet()[b], b);
  std::sort(order.begin(), order.end());
  std::unordered_map<std::string, int32_t> byBytes;
  auto addToken = [&](const std::string &bytes) {
    d.tokens.push_back(bytes);
    d.kinds.push_back(rt::TokenKind::Normal);
    byBytes[bytes] = static_cast<int32_t>(d.tokens.size() - 1);
    return static_cast<int32_t>(d.tokens.size() - 1);
  };
  for (const auto &o : order)
    addToken(std::string(1, static_cast<char>(o.second)));

  // Words of the corpus (its pieces under the split) with their counts, each
  // as a list of token ids.
  std::map<std::string, int> counts;
  {
    std::vector<uint32_t> cps, offsets;
    size_t bad = 0;
    rt::unicode::decodeUtf8(corpus, cps, offsets, bad);
    std::vector<std::pair<uint32_t, uint32_t>> pieces;
    rt::splitQwen2(cps, pieces);
    for (const auto &p : pieces)
      ++counts[corpus.substr(offsets[p.first],
                             offsets[p.second] - offsets[p.first])];
  }
  std::vector<std::pair<std::vector<int32_t>, int>> words;
  for (const auto &w : counts) {
    std::vector<int32_t> ids;
    for (unsigned char ch : w.first)
      ids.push_back(byBytes[std::string(1, static_cast<char>(ch))]);
    words.emplace_back(ids, w.second);
  }
  auto merge = [&](int32_t a, int32_t b) {
    const std::string bytes = d.tokens[a] + d.tokens[b];
    auto it = byBytes.find(bytes);
    const int32_t m = it != byBytes.end() ? it->second : addToken(bytes);
    d.merges.push_back({a, b, m});
    return m;
  };
  // Learned merges: the most frequent adjacent pair (ties: the smallest ids)
  // while some pair occurs twice.
  while (static_cast<int64_t>(d.tokens.size()) < eot) {
    std::map<std::pair<int32_t, int32_t>, int> pairs;
    for (const auto &w : words)
      for (size_t i = 0; i + 1 < w.first.size(); ++i)
        pairs[{w.first[i], w.first[i + 1]}] += w.second;
    std::pair<int32_t, int32_t> best{-1, -1};
    int bestCount = 1;
    for (const auto &p : pairs)
      if (p.second > bestCount) {
        best = p.first;
        bestCount = p.second;
      }
    if (best.first < 0)
      break;
    const int32_t m = merge(best.first, best.second);
    for (auto &w : words) {
      std::vector<int32_t> next;
      for (size_t i = 0; i < w.first.size(); ++i) {
        if (i + 1 < w.first.size() && w.first[i] == best.first &&
            w.first[i + 1] == best.second) {
          next.push_back(m);
          ++i;
        } else {
          next.push_back(w.first[i]);
        }
      }
      w.first.swap(next);
    }
  }
  // The fill rule, once the corpus has no pair left twice: join two
  // pseudo-random word tokens (letters, the first perhaps after a space; the
  // second without one) into a new one of at most 24 bytes, from a fixed seed.
  std::vector<int32_t> firsts, seconds;
  for (int32_t id = 0; id < static_cast<int32_t>(d.tokens.size()); ++id)
    if (isWordToken(d.tokens[id])) {
      firsts.push_back(id);
      if (d.tokens[id][0] != ' ')
        seconds.push_back(id);
    }
  uint64_t state = 0x5354435f544f4bull; // "STC_TOK"
  size_t misses = 0;
  while (static_cast<int64_t>(d.tokens.size()) < eot) {
    if (firsts.empty() || seconds.empty() || ++misses > 1000000)
      return Status::error("synth: the fill rule ran out of new tokens at " +
                           std::to_string(d.tokens.size()));
    const int32_t a = firsts[splitmix(state) % firsts.size()];
    const int32_t b = seconds[splitmix(state) % seconds.size()];
    const std::string bytes = d.tokens[a] + d.tokens[b];
    if (bytes.size() > 24 || byBytes.count(bytes))
      continue;
    misses = 0;
    const int32_t m = merge(a, b);
    firsts.push_back(m);
    if (bytes[0] != ' ')
      seconds.push_back(m);
  }
  // Specials, then unused padding rows up to vocab_size.
  for (const char *s : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    d.tokens.push_back(s);
    d.kinds.push_back(rt::TokenKind::Control);
  }
  d.tokens.resize(c.vocabSize);
  d.kinds.resize(c.vocabSize, rt::TokenKind::Unused);
  d.bos = static_cast<int32_t>(eot);
  d.pad = static_cast<int32_t>(eot);
  d.eos = {static_cast<int32_t>(eot), static_cast<int32_t>(imEnd)};
  d.chatTemplate = kChatMl;
  // The model card's sampling (spec section 4).
  d.temperature = 0.6f;
  d.topK = 20;
  d.topP = 0.95f;
  rt::Tokenizer check;
  std::string error;
  if (!check.init(d, "synth", error))
    return Status::error(error);
  out = std::move(d);
  return Status::success();
}

namespace {

Status writeText(const std::string &path, const std::string &text) {
  AtomicOutputFile f;
  STC_TRY(f.open(path));
  STC_TRY(f.write(text.data(), text.size()));
  return f.commit();
}

std::string quoted(const std::string &s) {
  std::string out;
  appendJsonString(out, s);
  return out;
}

} // namespace

Status writeHfTokenizer(const rt::TokenizerData &t, const std::string &dir) {
  // tokenizer.json as Qwen2's is laid out (merges as "a b" strings).
  std::string added, vocab, merges, decoder;
  for (size_t id = 0; id < t.tokens.size(); ++id) {
    if (t.kinds[id] == rt::TokenKind::Unused)
      continue;
    if (t.kinds[id] == rt::TokenKind::Normal) {
      vocab += (vocab.empty() ? "\n    " : ",\n    ") +
               quoted(byteLevelEncode(t.tokens[id])) + ": " +
               std::to_string(id);
      continue;
    }
    const bool special = t.kinds[id] == rt::TokenKind::Control;
    const std::string flags =
        std::string("\"single_word\": false, \"lstrip\": false, \"rstrip\": "
                    "false, \"normalized\": false, \"special\": ") +
        (special ? "true" : "false");
    added += (added.empty() ? "\n    " : ",\n    ") + std::string("{\"id\": ") +
             std::to_string(id) + ", \"content\": " + quoted(t.tokens[id]) +
             ", " + flags + "}";
    decoder += (decoder.empty() ? "\n    " : ",\n    ") +
               quoted(std::to_string(id)) +
               ": {\"content\": " + quoted(t.tokens[id]) + ", " + flags + "}";
  }
  for (const auto &m : t.merges)
    merges += (merges.empty() ? "\n    " : ",\n    ") +
              quoted(byteLevelEncode(t.tokens[m[0]]) + " " +
                     byteLevelEncode(t.tokens[m[1]]));
  const std::string byteLevel =
      "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
      "\"trim_offsets\": false, \"use_regex\": false}";
  std::string json =
      "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": "
      "null,\n  \"added_tokens\": [" +
      added + "\n  ],\n  \"normalizer\": {\"type\": \"NFC\"},\n" +
      "  \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [\n" +
      "    {\"type\": \"Split\", \"pattern\": {\"Regex\": " +
      quoted(kQwen2SplitRegex) +
      "}, \"behavior\": \"Isolated\", \"invert\": false},\n    " + byteLevel +
      "\n  ]},\n  \"post_processor\": " + byteLevel +
      ",\n  \"decoder\": " + byteLevel +
      ",\n  \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": "
      "null, \"continuing_subword_prefix\": \"\", \"end_of_word_suffix\": "
      "\"\", \"fuse_unk\": false, \"byte_fallback\": false, "
      "\"ignore_merges\": false,\n  \"vocab\": {" +
      vocab + "\n  },\n  \"merges\": [" + merges + "\n  ]}\n}\n";
  STC_TRY(writeText(joinPath(dir, "tokenizer.json"), json));

  auto text = [&](int32_t id) {
    return id >= 0 ? quoted(t.tokens[id]) : std::string("null");
  };
  const int32_t imEnd = t.eos.empty() ? -1 : t.eos.back();
  std::string config =
      "{\n  \"add_bos_token\": false,\n  \"add_prefix_space\": false,\n"
      "  \"added_tokens_decoder\": {" +
      decoder + "\n  },\n  \"bos_token\": null,\n  \"chat_template\": " +
      quoted(t.chatTemplate) +
      ",\n  \"clean_up_tokenization_spaces\": false,\n  \"eos_token\": " +
      text(imEnd) +
      ",\n  \"errors\": \"replace\",\n  \"pad_token\": " + text(t.pad) +
      ",\n  \"split_special_tokens\": false,\n  \"tokenizer_class\": "
      "\"Qwen2Tokenizer\",\n  \"unk_token\": null\n}\n";
  STC_TRY(writeText(joinPath(dir, "tokenizer_config.json"), config));

  std::string eos;
  for (int32_t e : t.eos)
    eos += (eos.empty() ? "" : ", ") + std::to_string(e);
  char sampling[160];
  std::snprintf(sampling, sizeof(sampling),
                "  \"do_sample\": true,\n  \"temperature\": %g,\n  \"top_k\": "
                "%d,\n  \"top_p\": %g\n",
                t.temperature, t.topK, t.topP);
  std::string gen = "{\n  \"bos_token_id\": " + std::to_string(t.bos) +
                    ",\n  \"eos_token_id\": [" + eos +
                    "],\n  \"pad_token_id\": " + std::to_string(t.pad) + ",\n" +
                    sampling + "}\n";
  return writeText(joinPath(dir, "generation_config.json"), gen);
}

void addGgufTokenizer(const rt::TokenizerData &t, GgufWriter &w) {
  std::vector<std::string> tokens, merges;
  std::vector<int32_t> types;
  for (size_t id = 0; id < t.tokens.size(); ++id) {
    switch (t.kinds[id]) {
    case rt::TokenKind::Normal:
      tokens.push_back(byteLevelEncode(t.tokens[id]));
      types.push_back(1);
      break;
    case rt::TokenKind::Control:
      tokens.push_back(t.tokens[id]);
      types.push_back(3);
      break;
    case rt::TokenKind::UserDefined:
      tokens.push_back(t.tokens[id]);
      types.push_back(4);
      break;
    case rt::TokenKind::Unused: // as llama.cpp's converter names padding rows
      tokens.push_back("[PAD" + std::to_string(id) + "]");
      types.push_back(5);
      break;
    }
  }
  for (const auto &m : t.merges)
    merges.push_back(byteLevelEncode(t.tokens[m[0]]) + " " +
                     byteLevelEncode(t.tokens[m[1]]));
  w.addMetadata("tokenizer.ggml.model", GgufValue::ofString("gpt2"));
  w.addMetadata("tokenizer.ggml.pre", GgufValue::ofString(t.pre));
  w.addMetadata("tokenizer.ggml.tokens", GgufValue::ofStringArray(tokens));
  w.addMetadata("tokenizer.ggml.token_type", GgufValue::ofI32Array(types));
  w.addMetadata("tokenizer.ggml.merges", GgufValue::ofStringArray(merges));
  w.addMetadata("tokenizer.ggml.padding_token_id", GgufValue::ofU32(t.pad));
  w.addMetadata("tokenizer.ggml.add_bos_token", GgufValue::ofBool(t.addBos));
  w.addMetadata("tokenizer.chat_template", GgufValue::ofString(t.chatTemplate));
}

} // namespace stc
