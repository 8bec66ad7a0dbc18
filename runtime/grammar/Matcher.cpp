// GrammarMatcher: the pushdown automaton, the vocabulary trie and the masks.
#include "grammar/Matcher.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <functional>

namespace stc::rt::grammar {

bool Frame::operator==(const Frame &o) const {
  return rule == o.rule && alt == o.alt && item == o.item && rep == o.rep &&
         pos == o.pos && chars == o.chars && live == o.live && mode == o.mode &&
         left == o.left;
}

TokenTrie::TokenTrie(const Tokenizer &tok) {
  const TokenizerData &d = tok.data();
  vocab_ = tok.size();
  pieces_.resize(vocab_);
  producible_.assign(vocab_, false);
  eos_ = d.eos;
  // The tokens in byte order, then the trie built by walking them.
  std::vector<int32_t> order;
  for (int32_t id = 0; id < vocab_; ++id) {
    pieces_[id] = d.tokens[id];
    const TokenKind k = d.kinds[id];
    if ((k == TokenKind::Normal || k == TokenKind::UserDefined) &&
        !pieces_[id].empty()) {
      producible_[id] = true;
      order.push_back(id);
      longest_ = std::max(longest_, static_cast<uint32_t>(pieces_[id].size()));
    }
  }
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return pieces_[a] < pieces_[b]; });
  // Nodes as a tree first (children lists), then flattened.
  struct Build {
    std::vector<std::pair<uint8_t, uint32_t>> kids;
    int32_t token = -1;
  };
  std::vector<Build> b(1);
  for (int32_t id : order) {
    uint32_t n = 0;
    for (unsigned char c : pieces_[id]) {
      auto &kids = b[n].kids;
      if (!kids.empty() && kids.back().first == c) {
        n = kids.back().second;
        continue;
      }
      b.push_back(Build());
      const uint32_t child = static_cast<uint32_t>(b.size() - 1);
      b[n].kids.emplace_back(c, child);
      n = child;
    }
    b[n].token = id;
  }
  nodes_.resize(b.size());
  for (size_t n = 0; n < b.size(); ++n) {
    nodes_[n].token = b[n].token;
    nodes_[n].firstChild = static_cast<uint32_t>(childByte_.size());
    nodes_[n].children = static_cast<uint32_t>(b[n].kids.size());
    for (const auto &k : b[n].kids) {
      childByte_.push_back(k.first);
      childNode_.push_back(k.second);
    }
  }
}

namespace {

constexpr uint32_t kUnbounded = UINT32_MAX;

const Item &itemOf(const Grammar &g, const Frame &f) {
  return g.rules[f.rule].alternatives[f.alt][f.item];
}

void nextItem(Frame &f) {
  ++f.item;
  f.rep = f.pos = f.chars = f.live = 0;
  f.mode = f.left = 0;
}

// Forgets what no longer decides anything (so that states repeat and their
// masks are found in the cache): repetitions past the bound that matters, a
// string body's length past its, its bytes once no excluded name is live.
void canonical(const Grammar &g, Frame &f) {
  if (f.item >= g.rules[f.rule].alternatives[f.alt].size())
    return;
  const Item &it = itemOf(g, f);
  const uint32_t repBound = it.max == kUnbounded ? it.min : it.max;
  f.rep = std::min(f.rep, repBound);
  if (it.kind == Item::StringBody) {
    const uint32_t charBound =
        it.maxLength == kUnbounded ? it.minLength : it.maxLength;
    f.chars = std::min(f.chars, charBound);
    if (f.live == 0)
      f.pos = f.chars > 0 || f.mode != 0 ? 1 : 0; // (started or not)
  }
}

// Whether a string body's bytes so far are one of its excluded names.
bool excluded(const Item &it, const Frame &f) {
  for (size_t i = 0; i < it.except.size() && i < 32; ++i)
    if ((f.live >> i & 1) && it.except[i].size() == f.pos)
      return true;
  return false;
}

struct Expander {
  const Grammar &g;
  std::vector<Stack> &out;
  bool accept = false;
  std::vector<std::string> seen;

  static std::string key(const Stack &s) {
    return std::string(reinterpret_cast<const char *>(s.data()),
                       s.size() * sizeof(Frame));
  }

  // Whether entering alternative `alt` of `rule` from `s` would come back to
  // where `s` already entered it, with nothing taken since: the stack holds
  // that frame at its first item, and every frame above it is at its first
  // item too. Schema grammars cycle only through units (anyOf or $ref of an
  // enclosing schema: {"anyOf": [{"$ref": "#"}, ...]}), whose strings the
  // first entry gives already; expanding them again only stacked copies of
  // the same state up to the depth limit (hundreds of stacks a byte).
  static bool cycles(const Stack &s, int rule, size_t alt) {
    for (size_t i = s.size(); i-- > 0;) {
      const Frame &f = s[i];
      if (f.item != 0 || f.rep != 0)
        return false;
      if (f.rule == rule && f.alt == alt)
        return true;
    }
    return false;
  }

  // The stacks `s` reaches without a byte whose top takes one; `accept` when
  // one of them is empty (the grammar may end).
  void run(Stack s, int depth) {
    if (depth > 256 || s.size() > 256)
      return;
    if (s.empty()) {
      accept = true;
      return;
    }
    for (Frame &f : s)
      canonical(g, f);
    const std::string k = key(s);
    if (std::find(seen.begin(), seen.end(), k) != seen.end())
      return;
    seen.push_back(k);
    Frame &f = s.back();
    const Sequence &seq = g.rules[f.rule].alternatives[f.alt];
    if (f.item >= seq.size()) { // the alternative is done: the parent's
                                // rule item has one more repetition
      s.pop_back();
      if (s.empty()) {
        accept = true;
        return;
      }
      ++s.back().rep;
      run(std::move(s), depth + 1);
      return;
    }
    const Item &it = seq[f.item];
    switch (it.kind) {
    case Item::Rule: {
      if (f.rep >= it.min) {
        Stack t = s;
        nextItem(t.back());
        run(std::move(t), depth + 1);
      }
      if (f.rep < it.max)
        for (size_t a = 0; a < g.rules[it.rule].alternatives.size(); ++a) {
          if (cycles(s, it.rule, a))
            continue;
          Stack t = s;
          Frame c;
          c.rule = it.rule;
          c.alt = static_cast<uint16_t>(a);
          t.push_back(c);
          run(std::move(t), depth + 1);
        }
      return;
    }
    case Item::StringBody:
      if (f.mode == 0 && f.chars >= it.minLength && !excluded(it, f)) {
        Stack t = s;
        nextItem(t.back());
        run(std::move(t), depth + 1);
      }
      if (f.mode != 0 || f.chars < it.maxLength)
        out.push_back(std::move(s));
      return;
    case Item::Literal:
    case Item::Class:
      if (f.pos == 0 && f.rep >= it.min) {
        Stack t = s;
        nextItem(t.back());
        run(std::move(t), depth + 1);
      }
      if (f.pos > 0 || f.rep < it.max)
        out.push_back(std::move(s));
      return;
    }
  }
};

void updateLive(const Item &it, Frame &f, uint8_t c) {
  for (size_t i = 0; i < it.except.size() && i < 32; ++i)
    if ((f.live >> i & 1) && !(f.pos < it.except[i].size() &&
                               static_cast<uint8_t>(it.except[i][f.pos]) == c))
      f.live &= ~(1u << i);
}

// Frame f (at a terminal) takes byte c.
bool consumeFrame(const Grammar &g, Frame &f, uint8_t c) {
  const Item &it = itemOf(g, f);
  switch (it.kind) {
  case Item::Literal:
    if (static_cast<uint8_t>(it.text[f.pos]) != c)
      return false;
    if (++f.pos == it.text.size()) {
      f.pos = 0;
      ++f.rep;
    }
    return true;
  case Item::Class:
    if (!it.set.has(c))
      return false;
    ++f.rep;
    return true;
  case Item::StringBody:
    if (f.mode == 0 && f.chars == 0 && f.pos == 0)
      f.live = it.except.size() >= 32 ? ~0u : (1u << it.except.size()) - 1;
    switch (f.mode) {
    case 0:
      if (c == '"' || c < 0x20 || f.chars >= it.maxLength)
        return false;
      if (c == '\\') {
        f.mode = 1;
        f.live = 0; // an escaped name is not compared with the names
        ++f.pos;
        return true;
      }
      if (c >= 0x80) {
        if (c >= 0xC2 && c <= 0xDF)
          f.left = 1;
        else if (c >= 0xE0 && c <= 0xEF)
          f.left = 2;
        else if (c >= 0xF0 && c <= 0xF4)
          f.left = 3;
        else
          return false;
        f.mode = 3;
      }
      ++f.chars;
      updateLive(it, f, c);
      ++f.pos;
      return true;
    case 1:
      if (c == 'u') {
        f.mode = 2;
        f.left = 4;
      } else if (std::strchr("\"\\/bfnrt", c) && c != 0) {
        f.mode = 0;
        ++f.chars;
      } else {
        return false;
      }
      ++f.pos;
      return true;
    case 2:
      if (!std::isxdigit(c))
        return false;
      if (--f.left == 0) {
        f.mode = 0;
        ++f.chars;
      }
      ++f.pos;
      return true;
    default: // a UTF-8 continuation byte
      if (c < 0x80 || c > 0xBF)
        return false;
      updateLive(it, f, c);
      if (--f.left == 0)
        f.mode = 0;
      ++f.pos;
      return true;
    }
  case Item::Rule:
    break;
  }
  return false;
}

// The top of `s` (a terminal) takes byte c.
bool consume(const Grammar &g, Stack &s, uint8_t c) {
  return consumeFrame(g, s.back(), c);
}

void dedupe(std::vector<Stack> &v) {
  std::sort(v.begin(), v.end(), [](const Stack &a, const Stack &b) {
    return Expander::key(a) < Expander::key(b);
  });
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

// The states after byte c; `accept` whether `from` may end the grammar.
std::vector<Stack> step(const Grammar &g, const std::vector<Stack> &from,
                        uint8_t c, bool *accept = nullptr) {
  std::vector<Stack> ready;
  Expander e{g, ready};
  for (const Stack &s : from)
    e.run(s, 0);
  if (accept)
    *accept = e.accept;
  std::vector<Stack> out;
  for (Stack &s : ready)
    if (consume(g, s, c)) {
      for (Frame &f : s)
        canonical(g, f);
      out.push_back(std::move(s));
    }
  dedupe(out);
  return out;
}

bool accepts(const Grammar &g, const std::vector<Stack> &from, bool &any) {
  std::vector<Stack> ready;
  Expander e{g, ready};
  for (const Stack &s : from)
    e.run(s, 0);
  any = !ready.empty();
  return e.accept;
}

std::string stateKey(const std::vector<Stack> &states) {
  std::string k;
  for (const Stack &s : states)
    k += Expander::key(s) + '|';
  return k;
}

// The key of the mask of `states`: their key with each string body's
// character count replaced by a representative of the counts that allow the
// same tokens. A token adds at most `longest` characters, so while the count
// is more than that below minLength (no token can close the string) or, once
// at minLength, more than that below maxLength (no token can pass it), the
// exact count changes no token's fate. Without this a string with a long
// minLength made every token a new state, and every mask a walk of the
// vocabulary.
std::string maskKey(const Grammar &g, std::vector<Stack> states,
                    uint32_t longest) {
  for (Stack &s : states)
    for (Frame &f : s) {
      if (f.item >= g.rules[f.rule].alternatives[f.alt].size())
        continue;
      const Item &it = g.rules[f.rule].alternatives[f.alt][f.item];
      if (it.kind != Item::StringBody || f.live != 0)
        continue;
      const uint64_t c = f.chars, lo = it.minLength, hi = it.maxLength;
      if (c + longest < lo)
        f.chars = static_cast<uint32_t>(lo - longest - 1);
      else if (c >= lo && c + longest < hi)
        f.chars = static_cast<uint32_t>(lo);
    }
  return stateKey(states);
}

} // namespace

GrammarMatcher::GrammarMatcher(std::shared_ptr<CompiledGrammar> g)
    : g_(std::move(g)) {
  Stack s;
  Frame f;
  f.rule = g_->grammar.root;
  for (size_t a = 0; a < g_->grammar.rules[f.rule].alternatives.size(); ++a) {
    f.alt = static_cast<uint16_t>(a);
    states_.push_back(Stack{f});
  }
}

bool GrammarMatcher::canEnd() const {
  bool any;
  return accepts(g_->grammar, states_, any);
}

bool GrammarMatcher::mustEnd() const {
  bool any;
  return accepts(g_->grammar, states_, any) && !any;
}

namespace {

// The mask's walk of the trie below `node` from the one stack `s` whose top
// is inside a JSON string (the vocabulary's tokens are mostly string text):
// a byte other than the closing quote only moves the top frame, as step()
// would move it (a string body is followed by its closing '"', which no
// other byte matches), so the walk updates that frame in place instead of
// building states per trie node. The closing quote, and what follows it, go
// through step() and the general walk (`general`).
struct StringWalk {
  const Grammar &g;
  const TokenTrie &trie;
  std::vector<uint64_t> &bits;
  bool &any;
  std::function<void(uint32_t, std::vector<Stack>)> general;

  static bool applies(const Grammar &g, const std::vector<Stack> &states) {
    if (states.size() != 1 || states[0].empty())
      return false;
    const Frame &f = states[0].back();
    const Sequence &seq = g.rules[f.rule].alternatives[f.alt];
    return f.item + 1u < seq.size() && seq[f.item].kind == Item::StringBody &&
           seq[f.item + 1].kind == Item::Literal &&
           !seq[f.item + 1].text.empty() && seq[f.item + 1].text[0] == '"';
  }

  void walk(uint32_t node, Stack &s) {
    const Frame saved = s.back();
    const Item &it = itemOf(g, saved);
    const TokenTrie::Node &n = trie.nodes()[node];
    for (uint32_t k = n.firstChild; k < n.firstChild + n.children; ++k) {
      const uint8_t c = trie.childByte(k);
      const uint32_t child = trie.childNode(k);
      if (c == '"') {
        std::vector<Stack> next = step(g, {s}, c);
        if (next.empty())
          continue;
        mark(child);
        if (trie.nodes()[child].children > 0)
          general(child, std::move(next));
        continue;
      }
      Frame f = saved;
      if (!(f.mode != 0 || f.chars < it.maxLength) || !consumeFrame(g, f, c))
        continue;
      canonical(g, f);
      mark(child);
      if (trie.nodes()[child].children > 0) {
        s.back() = f;
        walk(child, s);
        s.back() = saved;
      }
    }
  }

  // The token that ends at trie node `child`, if one does, is allowed (the
  // general walk marks its tokens here too).
  void mark(uint32_t child) {
    const int32_t token = trie.nodes()[child].token;
    if (token >= 0) {
      bits[token >> 6] |= uint64_t(1) << (token & 63);
      any = true;
    }
  }
};

} // namespace

const std::vector<uint64_t> *GrammarMatcher::mask() {
  const std::string key =
      maskKey(g_->grammar, states_, std::max(g_->trie->longest(), 1u));
  auto it = g_->masks.find(key);
  if (it != g_->masks.end()) {
    ++g_->maskHits;
    return &it->second;
  }
  ++g_->maskMisses;
  const TokenTrie &trie = *g_->trie;
  const Grammar &gr = g_->grammar;
  std::vector<uint64_t> bits((trie.vocab() + 63) / 64, 0);
  bool any = false;
  // Depth first over the trie: a branch lives while some state takes its
  // bytes.
  struct Visit {
    uint32_t node;
    std::vector<Stack> states;
  };
  std::vector<Visit> todo;
  StringWalk strings{gr, trie, bits, any,
                     [&](uint32_t node, std::vector<Stack> states) {
                       todo.push_back({node, std::move(states)});
                     }};
  todo.push_back({0, states_});
  while (!todo.empty()) {
    Visit v = std::move(todo.back());
    todo.pop_back();
    if (StringWalk::applies(gr, v.states)) {
      strings.walk(v.node, v.states[0]);
      continue;
    }
    const TokenTrie::Node &n = trie.nodes()[v.node];
    for (uint32_t k = n.firstChild; k < n.firstChild + n.children; ++k) {
      std::vector<Stack> next = step(gr, v.states, trie.childByte(k));
      if (next.empty())
        continue;
      const uint32_t child = trie.childNode(k);
      strings.mark(child);
      if (trie.nodes()[child].children > 0)
        todo.push_back({child, std::move(next)});
    }
  }
  bool more;
  if (accepts(gr, states_, more))
    for (int32_t e : trie.eos()) {
      bits[e >> 6] |= uint64_t(1) << (e & 63);
      any = true;
    }
  if (!any)
    return nullptr;
  if (g_->masks.size() >= CompiledGrammar::kMaxMasks)
    g_->masks.clear();
  return &(g_->masks[key] = std::move(bits));
}

bool GrammarMatcher::acceptBytes(const std::string &bytes) {
  std::vector<Stack> s = states_;
  for (unsigned char c : bytes) {
    s = step(g_->grammar, s, c);
    if (s.empty())
      return false;
  }
  states_ = std::move(s);
  return true;
}

bool GrammarMatcher::accept(int32_t token) {
  const TokenTrie &trie = *g_->trie;
  if (token < 0 || token >= trie.vocab())
    return false;
  if (std::find(trie.eos().begin(), trie.eos().end(), token) !=
      trie.eos().end())
    return canEnd();
  if (!trie.producible(token))
    return false;
  return acceptBytes(trie.bytes(token));
}

} // namespace stc::rt::grammar
