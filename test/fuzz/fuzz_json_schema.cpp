// Fuzzes the JSON Schema compiler (a request's response_format or a tool's
// parameters, from any client of stc-serve) and, for a schema it accepts, the
// token automaton: a walk of up to 48 tokens over a small byte-level
// vocabulary, each step's token chosen among those the mask allows by a hash
// of the input, then the input itself fed as bytes. Errors are fine; crashes,
// hangs and unbounded memory are not.
#include "Tokenizer.h"
#include "grammar/Grammar.h"
#include "grammar/Matcher.h"

#include <memory>
#include <string>

namespace {

// Every byte, some JSON pieces, and an eos.
std::shared_ptr<const stc::rt::grammar::TokenTrie> vocabulary() {
  using namespace stc::rt;
  TokenizerData d;
  for (int b = 0; b < 256; ++b)
    d.tokens.push_back(std::string(1, static_cast<char>(b)));
  for (const char *piece :
       {"{\"", "\":", "\",\"", "\"}", "true", "false", "null", "12", "-0.5e3",
        "\\u00e9", "é", "[]", "{}", "],", "\":\"", "name", "arguments"})
    d.tokens.push_back(piece);
  d.kinds.assign(d.tokens.size(), TokenKind::Normal);
  d.tokens.push_back("<|im_end|>");
  d.kinds.push_back(TokenKind::Control);
  d.eos = {static_cast<int32_t>(d.tokens.size()) - 1};
  static Tokenizer tok;
  std::string error;
  if (!tok.init(d, "fuzz", error))
    __builtin_trap(); // (the vocabulary above is valid)
  return std::make_shared<grammar::TokenTrie>(tok);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  using namespace stc::rt::grammar;
  static const auto trie = vocabulary();
  const std::string input(reinterpret_cast<const char *>(data), size);
  Grammar g;
  std::string error;
  if (!schemaGrammar(input, g, error))
    return 0;
  auto compiled = std::make_shared<CompiledGrammar>(g, trie);
  GrammarMatcher m(compiled);
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : input)
    h = (h ^ c) * 1099511628211ull;
  for (int step = 0; step < 48; ++step) {
    const std::vector<uint64_t> *mask = m.mask();
    if (!mask)
      break;
    int allowed = 0;
    for (uint64_t w : *mask)
      allowed += __builtin_popcountll(w);
    if (allowed == 0)
      break;
    h = h * 6364136223846793005ull + 1442695040888963407ull;
    int pick = static_cast<int>((h >> 33) % allowed), token = -1;
    for (size_t w = 0; w < mask->size() && token < 0; ++w)
      for (int b = 0; b < 64; ++b)
        if (((*mask)[w] >> b & 1) && pick-- == 0) {
          token = static_cast<int>(w * 64 + b);
          break;
        }
    if (token < 0 || token == trie->eos()[0] || !m.accept(token))
      break;
  }
  GrammarMatcher again(compiled);
  (void)again.acceptBytes(input);
  return 0;
}
