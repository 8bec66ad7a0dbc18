// Grammar: what constrained decoding holds the output to: a context-free
// grammar over bytes (rules of alternatives of items: literal text, byte
// classes, a JSON string's body, references to rules, each repeated between
// min and max times), built from a JSON schema (JsonSchema.cpp) or by hand
// (a tool call's wrapper). GrammarMatcher (Matcher.cpp) runs it as a
// pushdown automaton over the bytes of the tokens sampled, and gives the mask
// of the vocabulary's tokens that can come next.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace stc::rt::grammar {

// A set of bytes.
struct ByteSet {
  std::array<uint64_t, 4> bits{};
  void add(int lo, int hi) {
    for (int c = lo; c <= hi; ++c)
      bits[c >> 6] |= uint64_t(1) << (c & 63);
  }
  bool has(uint8_t c) const { return bits[c >> 6] >> (c & 63) & 1; }
};

struct Item {
  enum Kind : uint8_t {
    Literal,    // the bytes of `text`
    Class,      // one byte of `set`
    StringBody, // a JSON string's characters up to (not with) the closing
                // quote: escapes, well-formed UTF-8, between minLength and
                // maxLength characters; not one of `except` (property names
                // declared elsewhere in the object)
    Rule,       // rule `rule`
  };
  Kind kind = Literal;
  std::string text;
  ByteSet set;
  int rule = -1;
  uint32_t minLength = 0, maxLength = UINT32_MAX;
  std::vector<std::string> except;
  // Repetitions: this many at least, at most (max UINT32_MAX: unbounded).
  uint32_t min = 1, max = 1;
};

using Sequence = std::vector<Item>;

struct Rule {
  std::string name; // for errors and dumps
  std::vector<Sequence> alternatives;
};

struct Grammar {
  std::vector<Rule> rules;
  int root = 0;
  int add(std::string name) {
    rules.push_back({std::move(name), {}});
    return static_cast<int>(rules.size()) - 1;
  }
};

// Items to build sequences with.
inline Item literal(std::string text) {
  Item i;
  i.kind = Item::Literal;
  i.text = std::move(text);
  return i;
}
inline Item ruleRef(int rule, uint32_t min = 1, uint32_t max = 1) {
  Item i;
  i.kind = Item::Rule;
  i.rule = rule;
  i.min = min;
  i.max = max;
  return i;
}
inline Item byteClass(ByteSet set, uint32_t min = 1, uint32_t max = 1) {
  Item i;
  i.kind = Item::Class;
  i.set = set;
  i.min = min;
  i.max = max;
  return i;
}

// The grammar of JSON text `schema` (a JSON Schema, draft 7's keywords that
// a grammar can hold exactly: type, properties, required,
// additionalProperties, items (a schema or a tuple), additionalItems,
// minItems, maxItems, enum, const, anyOf, allOf of one, $ref to #, #/$defs/
// and #/definitions/, minLength, maxLength; annotations ignored). Objects are
// written with their properties in the schema's order (declared ones first,
// then others where additionalProperties allows), without whitespace
// outside strings, integers without a fraction. False with the unsupported
// keyword named.
bool schemaGrammar(const std::string &schema, Grammar &out, std::string &error);
// Any JSON value, or (objectOnly) any JSON object: response_format
// json_object.
Grammar anyJson(bool objectOnly);
// `begin` JSON(schema) `end`, then up to maxRepeats - 1 more of them, each
// after a newline: a tool call's wrapper (Hermes/Qwen: "<tool_call>\n" ...
// "\n</tool_call>").
bool taggedSchemaGrammar(const std::string &schema, const std::string &begin,
                         const std::string &end, int maxRepeats, Grammar &out,
                         std::string &error);

} // namespace stc::rt::grammar
