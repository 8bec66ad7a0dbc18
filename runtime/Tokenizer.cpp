#include "Tokenizer.h"

#include "PreTokenizer.h"
#include "Unicode.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <queue>

namespace stc::rt {

namespace {

uint64_t pairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) |
         static_cast<uint32_t>(b);
}

const std::string kNoPiece;

size_t hashBytes(const char *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull; // FNV-1a
  for (size_t i = 0; i < n; ++i)
    h = (h ^ static_cast<uint8_t>(p[i])) * 0x100000001b3ull;
  return static_cast<size_t>(h ^ (h >> 29));
}

size_t hashPair(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  return static_cast<size_t>(k ^ (k >> 33));
}

size_t tableSize(size_t entries) {
  size_t n = 16;
  while (n < entries * 2)
    n *= 2;
  return n;
}

// The merge ranks: (left, right) -> (rank, merged id), open addressing in flat
// arrays (a node-based map costs a heap block per merge: most of the load
// time at 151k merges).
class MergeTable {
public:
  void reserve(size_t n) {
    keys_.assign(tableSize(n), kEmpty);
    vals_.resize(keys_.size());
  }
  // Keeps the first value of a repeated key (the best rank).
  void insert(uint64_t key, int32_t rank, int32_t merged) {
    for (size_t i = hashPair(key) & (keys_.size() - 1);;
         i = (i + 1) & (keys_.size() - 1)) {
      if (keys_[i] == key)
        return;
      if (keys_[i] == kEmpty) {
        keys_[i] = key;
        vals_[i] = {rank, merged};
        return;
      }
    }
  }
  const std::pair<int32_t, int32_t> *find(uint64_t key) const {
    for (size_t i = hashPair(key) & (keys_.size() - 1);;
         i = (i + 1) & (keys_.size() - 1)) {
      if (keys_[i] == key)
        return &vals_[i];
      if (keys_[i] == kEmpty)
        return nullptr;
    }
  }

private:
  static constexpr uint64_t kEmpty = ~0ull; // ids are below 2^31
  std::vector<uint64_t> keys_;
  std::vector<std::pair<int32_t, int32_t>> vals_;
};

} // namespace

struct Tokenizer::Tables {
  MergeTable merges;
  int32_t byteToken[256];
  // Added tokens that text can name, by first byte, longest first.
  std::vector<int32_t> added[256];
  // For llama.cpp's partition: every matchable added token, longest first.
  std::vector<int32_t> addedByLength;
  // Normal tokens by their bytes: ids in open addressing (-1 empty).
  std::vector<int32_t> byText;
  int32_t findText(const std::vector<std::string> &tokens, const char *p,
                   size_t n) const {
    for (size_t i = hashBytes(p, n) & (byText.size() - 1);;
         i = (i + 1) & (byText.size() - 1)) {
      const int32_t id = byText[i];
      if (id < 0)
        return -1;
      if (tokens[id].size() == n && std::memcmp(tokens[id].data(), p, n) == 0)
        return id;
    }
  }
  // Adds `id` unless a token with its bytes is there; returns that one's id or
  // -1.
  int32_t addText(const std::vector<std::string> &tokens, int32_t id) {
    const std::string &s = tokens[id];
    for (size_t i = hashBytes(s.data(), s.size()) & (byText.size() - 1);;
         i = (i + 1) & (byText.size() - 1)) {
      if (byText[i] < 0) {
        byText[i] = id;
        return -1;
      }
      if (tokens[byText[i]] == s)
        return byText[i];
    }
  }
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
  t->byText.assign(tableSize(V), -1);
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
      if (const int32_t other = t->addText(data_.tokens, id); other >= 0) {
        error = where + ": tokens " + std::to_string(other) + " and " +
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
  t->merges.reserve(data_.merges.size());
  for (size_t r = 0; r < data_.merges.size(); ++r) {
    const auto &m = data_.merges[r];
    for (int32_t id : m)
      if (id < 0 || id >= V || data_.kinds[id] != TokenKind::Normal) {
        error = where + ": merge " + std::to_string(r) + " names token " +
                std::to_string(id) + ", which is not a BPE token";
        return false;
      }
    const std::string &a = data_.tokens[m[0]], &b = data_.tokens[m[1]],
                      &joined = data_.tokens[m[2]];
    if (joined.size() != a.size() + b.size() ||
        joined.compare(0, a.size(), a) != 0 ||
        joined.compare(a.size(), b.size(), b) != 0) {
      error = where + ": merge " + std::to_string(r) +
              " does not join its two tokens into its result";
      return false;
    }
    // A repeated pair keeps its first (best) rank, as BPE does.
    t->merges.insert(pairKey(m[0], m[1]), static_cast<int32_t>(r), m[2]);
  }
  t_ = std::move(t);
  return true;
}

const std::string &Tokenizer::piece(int32_t id) const {
  return id >= 0 && id < size() ? data_.tokens[id] : kNoPiece;
}

int32_t Tokenizer::find(const std::string &text) const {
  if (int32_t id = t_->findText(data_.tokens, text.data(), text.size());
      id >= 0)
    return id;
  for (int32_t id : t_->addedByLength)
    if (data_.tokens[id] == text)
      return id;
  return -1;
}

bool Tokenizer::isEos(int32_t id) const {
  return std::find(data_.eos.begin(), data_.eos.end(), id) != data_.eos.end();
}

std::vector<std::string> Tokenizer::addedTokens() const {
  std::vector<std::string> out;
  for (int32_t id : t_->addedByLength)
    out.push_back(data_.tokens[id]);
  return out;
}

void Tokenizer::splitSpecial(
    const std::string &text, bool parseSpecial,
    const std::vector<bool> *blocked,
    std::vector<std::pair<std::string, int32_t>> &out) const {
  auto matchable = [&](int32_t id) {
    return parseSpecial || data_.kinds[id] == TokenKind::UserDefined;
  };
  auto free = [&](size_t at) { return !blocked || !(*blocked)[at]; };
  out.clear();
  if (data_.semantics == TokenizerSemantics::HuggingFace) {
    // Leftmost-longest, in one pass over the text.
    size_t plain = 0;
    for (size_t i = 0; i < text.size();) {
      int32_t hit = -1;
      if (free(i))
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
  // fragment at its occurrences. Fragments as (start, end, id) of `text`.
  struct Fragment {
    size_t start, end;
    int32_t id;
  };
  std::vector<Fragment> frags{{0, text.size(), -1}}, next;
  for (int32_t id : t_->addedByLength) {
    if (!matchable(id))
      continue;
    const std::string &s = data_.tokens[id];
    next.clear();
    for (const Fragment &f : frags) {
      if (f.id >= 0) {
        next.push_back(f);
        continue;
      }
      size_t from = f.start;
      for (size_t look = f.start;;) {
        const size_t at = text.find(s, look);
        if (at == std::string::npos || at + s.size() > f.end)
          break;
        if (!free(at)) {
          look = at + 1;
          continue;
        }
        if (at > from)
          next.push_back({from, at, -1});
        next.push_back({at, at + s.size(), id});
        from = look = at + s.size();
      }
      if (from < f.end)
        next.push_back({from, f.end, -1});
    }
    frags.swap(next);
  }
  for (const Fragment &f : frags)
    out.emplace_back(f.id >= 0 ? std::string()
                               : text.substr(f.start, f.end - f.start),
                     f.id);
}

void Tokenizer::bpe(const std::string &piece, std::vector<int32_t> &ids) const {
  if (data_.ignoreMerges) {
    if (int32_t id = t_->findText(data_.tokens, piece.data(), piece.size());
        id >= 0) {
      ids.push_back(id);
      return;
    }
  }
  const int n = static_cast<int>(piece.size());
  if (n == 1) {
    ids.push_back(t_->byteToken[static_cast<uint8_t>(piece[0])]);
    return;
  }
  if (n <= 16) {
    // Short pieces (nearly all): the same merges by a scan for the
    // lowest-ranked pair (the leftmost of equal ranks), without allocating.
    int32_t sym[16] = {}, rank[16] = {}, merged[16] = {};
    int count = n;
    for (int i = 0; i < n; ++i)
      sym[i] = t_->byteToken[static_cast<uint8_t>(piece[i])];
    auto look = [&](int i) {
      const auto *m = t_->merges.find(pairKey(sym[i], sym[i + 1]));
      rank[i] = m ? m->first : INT32_MAX;
      merged[i] = m ? m->second : -1;
    };
    for (int i = 0; i + 1 < count; ++i)
      look(i);
    while (count > 1) {
      int best = 0;
      for (int i = 1; i + 1 < count; ++i)
        if (rank[i] < rank[best])
          best = i;
      if (rank[best] == INT32_MAX)
        break;
      sym[best] = merged[best];
      for (int i = best + 1; i + 1 < count; ++i) {
        sym[i] = sym[i + 1];
        rank[i] = rank[i + 1];
        merged[i] = merged[i + 1];
      }
      --count;
      if (best > 0)
        look(best - 1);
      if (best + 1 < count)
        look(best);
    }
    ids.insert(ids.end(), sym, sym + count);
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
    if (const auto *m = t_->merges.find(pairKey(sym[i], sym[next[i]])))
      heap.push({m->first, i, sym[i], sym[next[i]]});
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
    sym[c.pos] = t_->merges.find(pairKey(c.left, c.right))->second;
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
                       std::vector<int32_t> &ids, std::string &error,
                       const std::vector<bool> *blocked) const {
  std::vector<uint32_t> cps, offsets;
  size_t bad = 0;
  if (!unicode::decodeUtf8(text, cps, offsets, bad)) {
    error = "the text is not valid UTF-8 at byte " + std::to_string(bad);
    return false;
  }
  if (data_.addBos && data_.bos >= 0)
    ids.push_back(data_.bos);
  std::vector<std::pair<std::string, int32_t>> fragments;
  splitSpecial(text, parseSpecial, blocked, fragments);
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
