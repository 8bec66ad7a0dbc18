// GrammarMatcher: a Grammar run as a pushdown automaton over the bytes of the
// tokens sampled, and the mask of the tokens that may come next. The
// automaton's state is a set of stacks (alternatives not yet decided); a
// token is allowed when its bytes lead some stack on. The mask of a state is
// found by walking the vocabulary's byte trie from it (a branch is dropped at
// the first byte no stack takes) and kept in the grammar's cache, keyed by
// the state: the states a JSON value passes through repeat (a string's body,
// a separator, a number's digits), so after the first few tokens a mask is a
// lookup (the XGrammar idea, computed on first use).
#pragma once

#include "Tokenizer.h"
#include "grammar/Grammar.h"

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace stc::rt::grammar {

// The vocabulary as a byte trie: the tokens a grammar may produce (normal and
// user-defined ones; control tokens never, eos apart).
class TokenTrie {
public:
  explicit TokenTrie(const Tokenizer &tokenizer);
  struct Node {
    uint32_t firstChild = 0, children = 0; // into childByte_/childNode_
    int32_t token = -1;                    // the token ending here
  };
  const std::vector<Node> &nodes() const { return nodes_; }
  uint8_t childByte(uint32_t i) const { return childByte_[i]; }
  uint32_t childNode(uint32_t i) const { return childNode_[i]; }
  int32_t vocab() const { return vocab_; }
  const std::vector<int32_t> &eos() const { return eos_; }
  const std::string &bytes(int32_t token) const { return pieces_[token]; }
  bool producible(int32_t token) const { return producible_[token]; }
  // The longest producible token's bytes: the most characters one token
  // can add to a string.
  uint32_t longest() const { return longest_; }

private:
  std::vector<Node> nodes_;
  std::vector<uint8_t> childByte_;
  std::vector<uint32_t> childNode_;
  std::vector<std::string> pieces_;
  std::vector<bool> producible_;
  std::vector<int32_t> eos_;
  int32_t vocab_ = 0;
  uint32_t longest_ = 0;
};

// One position in the grammar: a rule's alternative, the item in it, the
// repetitions of that item done, and the progress inside the item.
struct Frame {
  int32_t rule = 0;
  uint16_t alt = 0, item = 0;
  uint32_t rep = 0;
  uint32_t pos = 0;   // a literal's bytes matched; a string body's bytes
  uint32_t chars = 0; // a string body's characters
  uint32_t live = 0;  // a string body: the excluded names it still equals
                      // a prefix of (bit i: except[i])
  uint8_t mode = 0;   // a string body: 0 between characters, 1 after '\',
                      // 2 in \uXXXX, 3 in a UTF-8 sequence
  uint8_t left = 0;   // hex digits or continuation bytes to come
  uint16_t pad = 0;   // (no uninitialized bytes: states are compared and
                      // hashed as bytes)
  bool operator==(const Frame &o) const;
};
using Stack = std::vector<Frame>;

// A compiled grammar with its mask cache; shared by the matchers of the
// requests that use it (one thread at a time).
class CompiledGrammar {
public:
  CompiledGrammar(Grammar g, std::shared_ptr<const TokenTrie> trie)
      : grammar(std::move(g)), trie(std::move(trie)) {}
  const Grammar grammar;
  const std::shared_ptr<const TokenTrie> trie;
  // Masks by state (a bit per token: 19 KiB for a 151936-token vocabulary),
  // computed on first use; cleared when kMaxMasks is reached.
  std::unordered_map<std::string, std::vector<uint64_t>> masks;
  static constexpr size_t kMaxMasks = 256;
  uint64_t maskHits = 0, maskMisses = 0;
};

class GrammarMatcher {
public:
  explicit GrammarMatcher(std::shared_ptr<CompiledGrammar> g);
  // The tokens allowed next, a bit each (eos allowed when the grammar may
  // end here); null when nothing can follow (the state is dead).
  const std::vector<uint64_t> *mask();
  // Takes a sampled token: false when the grammar does not allow it (the
  // state is then unchanged).
  bool accept(int32_t token);
  // The grammar may end here / must (nothing else can follow).
  bool canEnd() const;
  bool mustEnd() const;
  // The eos a dead state ends with.
  int32_t eos() const {
    return g_->trie->eos().empty() ? 0 : g_->trie->eos()[0];
  }
  // The whole of `bytes` taken from the current state: false when the
  // grammar does not allow it (for tests and the tool-call wrapper).
  bool acceptBytes(const std::string &bytes);

private:
  std::shared_ptr<CompiledGrammar> g_;
  std::vector<Stack> states_; // not expanded
  std::vector<uint64_t> scratch_;
};

} // namespace stc::rt::grammar
