// Value: what a chat template computes with, as Python and Jinja see it:
// undefined, None, booleans, integers, floats, strings, lists, dicts (ordered,
// string keys: JSON's objects keep their order, as `tojson` of a tool's schema
// must) and callables (macros, bound methods, `loop.cycle`). Lists and dicts
// are shared by reference, as Python's are (a namespace is a dict that `set`
// may assign into). JSON text parses into a Value and a Value writes JSON as
// Python's json.dumps does.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace stc::rt::tmpl {

struct Value;
using List = std::vector<Value>;

struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  bool isNamespace = false; // namespace(): `set ns.x = ...` assigns into it
  const Value *find(const std::string &key) const;
  Value *find(const std::string &key);
  void set(const std::string &key, Value v);
};

// A call: positional and keyword arguments; returns false with `error`.
struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  const Value *get(size_t index, const char *name) const;
};
using Function = std::function<bool(const Args &, Value &, std::string &)>;

enum class Kind : uint8_t {
  Undefined,
  None,
  Bool,
  Int,
  Float,
  String,
  List,
  Dict,
  Function
};

struct Value {
  Kind kind = Kind::Undefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s; // a string; for undefined, what was looked up (errors)
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;
  std::shared_ptr<Function> fn;

  static Value undefined(std::string what = "") {
    Value v;
    v.s = std::move(what);
    return v;
  }
  static Value none() { return withKind(Kind::None); }
  static Value boolean(bool x) {
    Value v = withKind(Kind::Bool);
    v.b = x;
    return v;
  }
  static Value integer(int64_t x) {
    Value v = withKind(Kind::Int);
    v.i = x;
    return v;
  }
  static Value number(double x) {
    Value v = withKind(Kind::Float);
    v.f = x;
    return v;
  }
  static Value string(std::string x) {
    Value v = withKind(Kind::String);
    v.s = std::move(x);
    return v;
  }
  static Value newList(List items = {}) {
    Value v = withKind(Kind::List);
    v.list = std::make_shared<List>(std::move(items));
    return v;
  }
  static Value newDict() {
    Value v = withKind(Kind::Dict);
    v.dict = std::make_shared<Dict>();
    return v;
  }
  static Value function(Function f) {
    Value v = withKind(Kind::Function);
    v.fn = std::make_shared<Function>(std::move(f));
    return v;
  }

  bool isUndefined() const { return kind == Kind::Undefined; }
  bool isNumber() const { return kind == Kind::Int || kind == Kind::Float; }
  double asDouble() const { return kind == Kind::Float ? f : double(i); }

private:
  static Value withKind(Kind k) {
    Value v;
    v.kind = k;
    return v;
  }
};

// Python's bool(v) (undefined is false).
bool truthy(const Value &v);
// Python's str(v) as Jinja prints it: None, True, 1.5, ['a', 1], {'k': 'v'};
// undefined prints nothing.
std::string str(const Value &v);
// Python's repr(v).
std::string repr(const Value &v);
// Jinja's type name for errors: 'dict object', 'list object', ...
std::string typeName(const Value &v);
// Python's ==.
bool equal(const Value &a, const Value &b);
// Python's <, or false with `error` for values it cannot order.
bool less(const Value &a, const Value &b, bool &out, std::string &error);
// Python's repr of a float (the shortest text that reads back to it).
std::string floatRepr(double x);

// JSON text into a Value (objects keep their key order); false with the byte
// offset and what was expected.
bool parseJson(const std::string &text, Value &out, std::string &error);
// json.dumps(v, ensure_ascii, indent (< 0: None), separators, sort_keys) as
// Python writes it; false for a value JSON cannot hold (undefined, a
// function, a float that is not finite stays Python's NaN/Infinity).
struct JsonStyle {
  bool ensureAscii = false;                // transformers' tojson passes False
  int indent = -1;                         // -1: None
  std::string itemSeparator, keySeparator; // empty: Python's defaults
  bool sortKeys = false;
};
bool dumpJson(const Value &v, const JsonStyle &style, std::string &out,
              std::string &error);

} // namespace stc::rt::tmpl
