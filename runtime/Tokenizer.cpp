#include "Tokenizer.h"

#include "PreTokenizer.h"
#include "Unicode.h"

#include <algorithm>
#include <cstdio>
#include <queue>
#include <unordered_map>

namespace stc::rt {

namespace {

uint64_t pairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) |
         static_cast<uint32_t>(b);
}

const std::string kNoPiece;

} // namespace

struct Tokenizer::Tables {
  // Merge lookup: (left, right) -> (rank, merged id).
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;
  int32_t byteToken[256];
  // Added tokens that text can name, by first byte, longest first.
  std::vector<int32_t> added[256];
  // For llama.cpp's partition: every matchable added token, longest first.
  std::vector<int32_t> addedByLength;
  std::unordered_map<std::string, int32_t> byText; // normal tokens
};

const char *semanticsName(TokenizerSemantics s) {
  return s == TokenizerSemantics::HuggingFace
             ? "Hugging Face tokenizers (NFC per tokenizer.json, added tokens "
               "matched in text)"
             : "llama.cpp (no normalizer, control tokens matched with special "
               "parsing)";
}

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

bool Tokenizer::init(TokenizerData data, const std::string &where,
                     std::string &error) {
  data_ = std::move(data);
  auto t = std::make_unique<Tables>();
  const int32_t V = static_cast<int32_t>(data_.tokens.size());
  if (V == 0 || data_.kinds.size() != data_.tokens.size()) {
    error = where + ": the tokenizer has no tokens, or not one kind per token";
    return false;
  }
  if (!knownPreTokenizer(data_.pre)) {
    error = where + ": unknown pre-tokenizer '" + data_.pre +
            "' (this runtime implements qwen2)";
    return false;
  }
  auto badId = [&](int32_t id) { return id < -1 || id >= V; };
  if (badId(data_.bos) || badId(data_.pad)) {
    error = where + ": special token id " +
            std::to_string(badId(data_.bos) ? data_.bos : data_.pad) +
            " is past the vocabulary of " + std::to_string(V);
    return false;
  }
  for (int32_t e : data_.eos)
    if (e < 0 || e >= V) {
      error = where + ": eos token id " + std::to_string(e) +
              " is past the vocabulary of " + std::to_string(V);
      return false;
    }
  std::fill(std::begin(t->byteToken), std::end(t->byteToken), -1);
  t->byText.reserve(V);
  for (int32_t id = 0; id < V; ++id) {
    const std::string &s = data_.tokens[id];
    const TokenKind k = data_.kinds[id];
    if (k == TokenKind::Unused)
      continue;
    if (s.empty()) {
      error = where + ": token " + std::to_string(id) + " is empty";
      return false;
    }
    if (k == TokenKind::Normal) {
      if (!t->byText.emplace(s, id).second) {
        error = where + ": tokens " + std::to_string(t->byText[s]) + " and " +
                std::to_string(id) + " have the same bytes";
        return false;
      }
      if (s.size() == 1)
        t->byteToken[static_cast<uint8_t>(s[0])] = id;
    } else {
      t->added[static_cast<uint8_t>(s[0])].push_back(id);
      t->addedByLength.push_back(id);
    }
  }
  for (int b = 0; b < 256; ++b)
    if (t->byteToken[b] < 0) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "0x%02X", b);
      error = where + ": no token for the byte " + hex +
              " (a byte-level BPE needs all 256)";
      return false;
    }
  auto longerFirst = [&](int32_t a, int32_t b) {
    return data_.tokens[a].size() > data_.tokens[b].size() ||
           (data_.tokens[a].size() == data_.tokens[b].size() && a < b);
  };
  for (auto &v : t->added)
    std::sort(v.begin(), v.end(), longerFirst);
  std::sort(t->addedByLength.begin(), t->addedByLength.end(), longerFirst);
  t->merges.reserve(data_.merges.size() * 2);
  for (size_t r = 0; r < data_.merges.size(); ++r) {
    const auto &m = data_.merges[r];
    for (int32_t id : m)
      if (id < 0 || id >= V || data_.kinds[id] != TokenKind::Normal) {
        error = where + ": merge " + std::to_string(r) + " names token " +
                std::to_string(id) + ", which is not a BPE token";
        return false;
      }
    if (data_.tokens[m[0]] + data_.tokens[m[1]] != data_.tokens[m[2]]) {
      error = where + ": merge " + std::to_string(r) +
              " does not join its two tokens into its result";
      return false;
    }
    // A repeated pair keeps its first (best) rank, as BPE does.
    t->merges.emplace(pairKey(m[0], m[1]),
                      std::make_pair(static_cast<int32_t>(r), m[2]));
  }
  t_ = std::move(t);
  return true;
}

const std::string &Tokenizer::piece(int32_t id) const {
  return id >= 0 && id < size() ? data_.tokens[id] : kNoPiece;
}

int32_t Tokenizer::find(const std::string &text) const {
  auto it = t_->byText.find(text);
  if (it != t_->byText.end())
    return it->second;
  for (int32_t id : t_->addedByLength)
    if (data_.tokens[id] == text)
      return id;
  return -1;
}

bool Tokenizer::isEos(int32_t id) const {
  return std::find(data_.eos.begin(), data_.eos.end(), id) != data_.eos.end();
}

void Tokenizer::splitSpecial(
    const std::string &text, bool parseSpecial,
    std::vector<std::pair<std::string, int32_t>> &out) const {
  auto matchable = [&](int32_t id) {
    return parseSpecial || data_.kinds[id] == TokenKind::UserDefined;
  };
  out.clear();
  if (data_.semantics == TokenizerSemantics::HuggingFace) {
    // Leftmost-longest, in one pass over the text.
    size_t plain = 0;
    for (size_t i = 0; i < text.size();) {
      int32_t hit = -1;
      for (int32_t id : t_->added[static_cast<uint8_t>(text[i])]) {
        const std::string &s = data_.tokens[id];
        if (matchable(id) && text.compare(i, s.size(), s) == 0) {
          hit = id;
          break;
        }
      }
      if (hit < 0) {
        ++i;
        continue;
      }
      if (i > plain)
        out.emplace_back(text.substr(plain, i - plain), -1);
      out.emplace_back(std::string(), hit);
      i += data_.tokens[hit].size();
      plain = i;
    }
    if (plain < text.size())
      out.emplace_back(text.substr(plain), -1);
    return;
  }
  // llama.cpp: each special token in turn, longest first, cuts every plain
  // fragment at its occurrences.
  out.emplace_back(text, -1);
  for (int32_t id : t_->addedByLength) {
    if (!matchable(id))
      continue;
    const std::string &s = data_.tokens[id];
    std::vector<std::pair<std::string, int32_t>> next;
    for (auto &f : out) {
      if (f.second >= 0 || f.first.find(s) == std::string::npos) {
        next.push_back(std::move(f));
        continue;
      }
      size_t from = 0;
      for (size_t at; (at = f.first.find(s, from)) != std::string::npos;
           from = at + s.size()) {
        if (at > from)
          next.emplace_back(f.first.substr(from, at - from), -1);
        next.emplace_back(std::string(), id);
      }
      if (from < f.first.size())
        next.emplace_back(f.first.substr(from), -1);
    }
    out.swap(next);
  }
}

void Tokenizer::bpe(const std::string &piece, std::vector<int32_t> &ids) const {
  if (data_.ignoreMerges) {
    auto it = t_->byText.find(piece);
    if (it != t_->byText.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  const int n = static_cast<int>(piece.size());
  if (n == 1) {
    ids.push_back(t_->byteToken[static_cast<uint8_t>(piece[0])]);
    return;
  }
  // Symbols in a linked list; candidate merges in a heap by (rank, position),
  // so the lowest-ranked pair merges first and ties go to the leftmost.
  std::vector<int32_t> sym(n), prev(n), next(n);
  for (int i = 0; i < n; ++i) {
    sym[i] = t_->byteToken[static_cast<uint8_t>(piece[i])];
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Cand {
    int32_t rank, pos, left, right;
    bool operator>(const Cand &o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto consider = [&](int i) {
    if (i < 0 || next[i] < 0)
      return;
    auto it = t_->merges.find(pairKey(sym[i], sym[next[i]]));
    if (it != t_->merges.end())
      heap.push({it->second.first, i, sym[i], sym[next[i]]});
  };
  for (int i = 0; i + 1 < n; ++i)
    consider(i);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    // Stale: one side merged since this pair was queued.
    if (sym[c.pos] != c.left || next[c.pos] < 0 || sym[next[c.pos]] != c.right)
      continue;
    const int r = next[c.pos];
    sym[c.pos] = t_->merges.find(pairKey(c.left, c.right))->second.second;
    sym[r] = -1;
    next[c.pos] = next[r];
    if (next[r] >= 0)
      prev[next[r]] = c.pos;
    consider(prev[c.pos]);
    consider(c.pos);
  }
  for (int i = 0; i >= 0; i = next[i])
    ids.push_back(sym[i]);
}

bool Tokenizer::encode(const std::string &text, bool parseSpecial,
                       std::vector<int32_t> &ids, std::string &error) const {
  std::vector<uint32_t> cps, offsets;
  size_t bad = 0;
  if (!unicode::decodeUtf8(text, cps, offsets, bad)) {
    error = "the text is not valid UTF-8 at byte " + std::to_string(bad);
    return false;
  }
  if (data_.addBos && data_.bos >= 0)
    ids.push_back(data_.bos);
  std::vector<std::pair<std::string, int32_t>> fragments;
  splitSpecial(text, parseSpecial, fragments);
  std::vector<std::pair<uint32_t, uint32_t>> pieces;
  for (const auto &f : fragments) {
    if (f.second >= 0) {
      ids.push_back(f.second);
      continue;
    }
    const std::string plain = data_.nfc ? unicode::toNfc(f.first) : f.first;
    unicode::decodeUtf8(plain, cps, offsets, bad); // valid: checked above
    splitQwen2(cps, pieces);
    for (const auto &p : pieces)
      bpe(plain.substr(offsets[p.first], offsets[p.second] - offsets[p.first]),
          ids);
  }
  return true;
}

std::string toValidUtf8(const std::string &bytes) {
  std::string out;
  out.reserve(bytes.size());
  const auto *p = reinterpret_cast<const uint8_t *>(bytes.data());
  for (size_t i = 0; i < bytes.size();) {
    int prefix = 0;
    const int len =
        unicode::utf8SequenceLength(p + i, bytes.size() - i, prefix);
    if (len > 0) {
      out.append(bytes, i, len);
      i += len;
      continue;
    }
    out += "\xEF\xBF\xBD"; // U+FFFD for the maximal invalid (or cut) prefix
    if (len < 0)
      break;
    i += prefix;
  }
  return out;
}

std::string Tokenizer::decode(const int32_t *ids, size_t n) const {
  std::string bytes;
  for (size_t i = 0; i < n; ++i)
    bytes += piece(ids[i]);
  return toValidUtf8(bytes);
}

std::string Utf8Stream::push(const std::string &bytes) {
  pending_ += bytes;
  std::string out;
  const auto *p = reinterpret_cast<const uint8_t *>(pending_.data());
  size_t i = 0;
  while (i < pending_.size()) {
    int prefix = 0;
    const int len =
        unicode::utf8SequenceLength(p + i, pending_.size() - i, prefix);
    if (len < 0)
      break; // unfinished: wait for more bytes
    if (len > 0) {
      out.append(pending_, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      i += prefix;
    }
  }
  pending_.erase(0, i);
  return out;
}

std::string Utf8Stream::finish() {
  std::string out = pending_.empty() ? "" : toValidUtf8(pending_);
  pending_.clear();
  return out;
}

} // namespace stc::rt
