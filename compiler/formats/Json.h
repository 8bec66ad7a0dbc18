// Json: a small strict JSON parser and writer for config.json and safetensors
// headers. Hand-written (rather than a dependency) so that every error carries
// the byte offset and so that nesting depth and sizes are bounded for hostile
// input.
#pragma once

#include "Status.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace stc {

class JsonValue {
public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0;
  bool isInteger = false; // written without fraction/exponent and fits int64
  int64_t integer = 0;
  std::string string;
  std::vector<JsonValue> array;
  std::vector<std::pair<std::string, JsonValue>> object; // in file order

  bool isNull() const { return kind == Kind::Null; }
  bool isObject() const { return kind == Kind::Object; }
  bool isArray() const { return kind == Kind::Array; }
  bool isString() const { return kind == Kind::String; }
  bool isNumber() const { return kind == Kind::Number; }
  bool isBool() const { return kind == Kind::Bool; }
  // Object member lookup; nullptr when absent or when this is not an object.
  const JsonValue *get(const std::string &key) const;
  static const char *kindName(Kind k);
};

// Parses `text`; `source` names the file for error messages.
Status parseJson(const std::string &text, const std::string &source,
                 JsonValue &out);

// Appends `s` as a JSON string literal (with quotes) to `out`.
void appendJsonString(std::string &out, const std::string &s);

} // namespace stc
