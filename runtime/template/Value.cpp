// Value: Python's truth, str, repr, == and < on template values, and JSON in
// (ordered objects) and out (Python's json.dumps).
#include "template/Value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace stc::rt::tmpl {

const Value *Dict::find(const std::string &key) const {
  for (const auto &kv : items)
    if (kv.first == key)
      return &kv.second;
  return nullptr;
}

Value *Dict::find(const std::string &key) {
  for (auto &kv : items)
    if (kv.first == key)
      return &kv.second;
  return nullptr;
}

void Dict::set(const std::string &key, Value v) {
  if (Value *old = find(key))
    *old = std::move(v);
  else
    items.emplace_back(key, std::move(v));
}

const Value *Args::get(size_t index, const char *name) const {
  if (name)
    for (const auto &kv : keyword)
      if (kv.first == name)
        return &kv.second;
  return index < positional.size() ? &positional[index] : nullptr;
}

bool truthy(const Value &v) {
  switch (v.kind) {
  case Kind::Undefined:
  case Kind::None:
    return false;
  case Kind::Bool:
    return v.b;
  case Kind::Int:
    return v.i != 0;
  case Kind::Float:
    return v.f != 0;
  case Kind::String:
    return !v.s.empty();
  case Kind::List:
    return !v.list->empty();
  case Kind::Dict:
    return !v.dict->items.empty();
  case Kind::Function:
    return true;
  }
  return false;
}

std::string floatRepr(double x) {
  if (std::isnan(x))
    return "nan";
  if (std::isinf(x))
    return x > 0 ? "inf" : "-inf";
  if (x == 0)
    return std::signbit(x) ? "-0.0" : "0.0";
  // The shortest digits that read back to x, then Python's layout: fixed
  // between 1e-4 and 1e16, else d.ddde+XX.
  char buf[40];
  for (int p = 1; p <= 17; ++p) {
    std::snprintf(buf, sizeof(buf), "%.*e", p - 1, x);
    if (std::strtod(buf, nullptr) == x)
      break;
  }
  std::string text = buf, digits;
  const bool negative = text[0] == '-';
  const size_t e = text.find('e');
  for (size_t k = negative ? 1 : 0; k < e; ++k)
    if (text[k] != '.')
      digits += text[k];
  const int exponent = std::atoi(text.c_str() + e + 1);
  while (digits.size() > 1 && digits.back() == '0')
    digits.pop_back();
  std::string out = negative ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    if (exponent >= 0) {
      const size_t whole = static_cast<size_t>(exponent) + 1;
      if (digits.size() <= whole)
        out += digits + std::string(whole - digits.size(), '0') + ".0";
      else
        out += digits.substr(0, whole) + "." + digits.substr(whole);
    } else {
      out += "0." + std::string(-exponent - 1, '0') + digits;
    }
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1)
      out += "." + digits.substr(1);
    const int a = std::abs(exponent);
    out += std::string("e") + (exponent < 0 ? "-" : "+") + (a < 10 ? "0" : "") +
           std::to_string(a);
  }
  return out;
}

namespace {

std::string stringRepr(const std::string &s) {
  const bool single =
      s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = single ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\' || c == q) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + q;
}

} // namespace

std::string repr(const Value &v) {
  switch (v.kind) {
  case Kind::String:
    return stringRepr(v.s);
  case Kind::List: {
    std::string out = "[";
    for (size_t k = 0; k < v.list->size(); ++k)
      out += (k ? ", " : "") + repr((*v.list)[k]);
    return out + "]";
  }
  case Kind::Dict: {
    std::string out = "{";
    for (size_t k = 0; k < v.dict->items.size(); ++k)
      out += (k ? ", " : "") + stringRepr(v.dict->items[k].first) + ": " +
             repr(v.dict->items[k].second);
    return out + "}";
  }
  default:
    return str(v);
  }
}

std::string str(const Value &v) {
  switch (v.kind) {
  case Kind::Undefined:
    return "";
  case Kind::None:
    return "None";
  case Kind::Bool:
    return v.b ? "True" : "False";
  case Kind::Int:
    return std::to_string(v.i);
  case Kind::Float:
    return floatRepr(v.f);
  case Kind::String:
    return v.s;
  case Kind::List:
  case Kind::Dict:
    return repr(v);
  case Kind::Function:
    return "<function>";
  }
  return "";
}

std::string typeName(const Value &v) {
  switch (v.kind) {
  case Kind::Undefined:
    return "undefined";
  case Kind::None:
    return "NoneType object";
  case Kind::Bool:
    return "bool object";
  case Kind::Int:
    return "int object";
  case Kind::Float:
    return "float object";
  case Kind::String:
    return "str object";
  case Kind::List:
    return "list object";
  case Kind::Dict:
    return v.dict->isNamespace ? "Namespace object" : "dict object";
  case Kind::Function:
    return "function";
  }
  return "?";
}

namespace {

bool numeric(const Value &v) {
  return v.kind == Kind::Int || v.kind == Kind::Float || v.kind == Kind::Bool;
}
double asNumber(const Value &v) {
  return v.kind == Kind::Bool ? (v.b ? 1.0 : 0.0) : v.asDouble();
}
int64_t asInt(const Value &v) { return v.kind == Kind::Bool ? v.b : v.i; }

} // namespace

bool equal(const Value &a, const Value &b) {
  if (numeric(a) && numeric(b)) {
    if (a.kind != Kind::Float && b.kind != Kind::Float)
      return asInt(a) == asInt(b);
    return asNumber(a) == asNumber(b);
  }
  if (a.kind != b.kind)
    return false;
  switch (a.kind) {
  case Kind::Undefined:
  case Kind::None:
    return true;
  case Kind::String:
    return a.s == b.s;
  case Kind::List:
    if (a.list->size() != b.list->size())
      return false;
    for (size_t k = 0; k < a.list->size(); ++k)
      if (!equal((*a.list)[k], (*b.list)[k]))
        return false;
    return true;
  case Kind::Dict:
    if (a.dict->items.size() != b.dict->items.size())
      return false;
    for (const auto &kv : a.dict->items) {
      const Value *other = b.dict->find(kv.first);
      if (!other || !equal(kv.second, *other))
        return false;
    }
    return true;
  case Kind::Function:
    return a.fn == b.fn;
  default:
    return false;
  }
}

bool less(const Value &a, const Value &b, bool &out, std::string &error) {
  if (numeric(a) && numeric(b)) {
    out = a.kind != Kind::Float && b.kind != Kind::Float
              ? asInt(a) < asInt(b)
              : asNumber(a) < asNumber(b);
    return true;
  }
  if (a.kind == Kind::String && b.kind == Kind::String) {
    out = a.s < b.s; // UTF-8 byte order is code point order
    return true;
  }
  if (a.kind == Kind::List && b.kind == Kind::List) {
    const List &x = *a.list, &y = *b.list;
    for (size_t k = 0; k < x.size() && k < y.size(); ++k) {
      if (equal(x[k], y[k]))
        continue;
      return less(x[k], y[k], out, error);
    }
    out = x.size() < y.size();
    return true;
  }
  error =
      "'<' is not supported between a " + typeName(a) + " and a " + typeName(b);
  return false;
}

// ---- JSON in ----

namespace {

struct JsonReader {
  const std::string &t;
  size_t p = 0;
  std::string error;

  bool fail(const std::string &what) {
    error = "at byte " + std::to_string(p) + ": " + what;
    return false;
  }
  void space() {
    while (p < t.size() &&
           (t[p] == ' ' || t[p] == '\t' || t[p] == '\n' || t[p] == '\r'))
      ++p;
  }
  bool literal(const char *word, Value v, Value &out) {
    const size_t n = std::strlen(word);
    if (t.compare(p, n, word) != 0)
      return fail("expected a JSON value");
    p += n;
    out = std::move(v);
    return true;
  }
  static void utf8(uint32_t c, std::string &out) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  bool hex4(uint32_t &c) {
    if (p + 4 > t.size())
      return fail("a \\u escape needs 4 hex digits");
    c = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = t[p++];
      c <<= 4;
      if (h >= '0' && h <= '9')
        c |= h - '0';
      else if (h >= 'a' && h <= 'f')
        c |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F')
        c |= h - 'A' + 10;
      else
        return fail("a \\u escape needs 4 hex digits");
    }
    return true;
  }
  bool string(std::string &out) {
    ++p; // "
    while (true) {
      if (p >= t.size())
        return fail("an unterminated string");
      const unsigned char c = t[p++];
      if (c == '"')
        return true;
      if (c < 0x20)
        return fail("a control character in a string");
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      if (p >= t.size())
        return fail("an unterminated string");
      const char e = t[p++];
      switch (e) {
      case '"':
      case '\\':
      case '/':
        out += e;
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        uint32_t cp;
        if (!hex4(cp))
          return false;
        if (cp >= 0xD800 && cp < 0xDC00 && t.compare(p, 2, "\\u") == 0) {
          const size_t at = p;
          p += 2;
          uint32_t low;
          if (!hex4(low))
            return false;
          if (low >= 0xDC00 && low < 0xE000)
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          else
            p = at; // a lone high surrogate, then another escape
        }
        utf8(cp, out);
        break;
      }
      default:
        --p;
        return fail(std::string("an unknown escape \\") + e);
      }
    }
  }
  bool number(Value &out) {
    const size_t start = p;
    if (t[p] == '-')
      ++p;
    bool isFloat = false;
    while (p < t.size() &&
           (std::isdigit(static_cast<unsigned char>(t[p])) || t[p] == '.' ||
            t[p] == 'e' || t[p] == 'E' || t[p] == '+' || t[p] == '-')) {
      isFloat = isFloat || t[p] == '.' || t[p] == 'e' || t[p] == 'E';
      ++p;
    }
    const std::string text = t.substr(start, p - start);
    char *end = nullptr;
    if (!isFloat) {
      errno = 0;
      const long long v = std::strtoll(text.c_str(), &end, 10);
      if (*end == '\0' && errno == 0 && !text.empty() && text != "-") {
        out = Value::integer(v);
        return true;
      }
    }
    const double d = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0') {
      p = start;
      return fail("a malformed number");
    }
    out = Value::number(d);
    return true;
  }
  bool value(Value &out, int depth) {
    if (depth > 512)
      return fail("nesting deeper than 512");
    space();
    if (p >= t.size())
      return fail("expected a JSON value, got the end");
    const char c = t[p];
    if (c == '{') {
      ++p;
      out = Value::newDict();
      space();
      if (p < t.size() && t[p] == '}') {
        ++p;
        return true;
      }
      while (true) {
        space();
        if (p >= t.size() || t[p] != '"')
          return fail("expected a string key");
        std::string key;
        if (!string(key))
          return false;
        space();
        if (p >= t.size() || t[p] != ':')
          return fail("expected ':'");
        ++p;
        Value v;
        if (!value(v, depth + 1))
          return false;
        out.dict->set(key, std::move(v));
        space();
        if (p < t.size() && t[p] == ',') {
          ++p;
          continue;
        }
        if (p < t.size() && t[p] == '}') {
          ++p;
          return true;
        }
        return fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      ++p;
      out = Value::newList();
      space();
      if (p < t.size() && t[p] == ']') {
        ++p;
        return true;
      }
      while (true) {
        Value v;
        if (!value(v, depth + 1))
          return false;
        out.list->push_back(std::move(v));
        space();
        if (p < t.size() && t[p] == ',') {
          ++p;
          continue;
        }
        if (p < t.size() && t[p] == ']') {
          ++p;
          return true;
        }
        return fail("expected ',' or ']'");
      }
    }
    if (c == '"') {
      std::string s;
      if (!string(s))
        return false;
      out = Value::string(std::move(s));
      return true;
    }
    if (c == 't')
      return literal("true", Value::boolean(true), out);
    if (c == 'f')
      return literal("false", Value::boolean(false), out);
    if (c == 'n')
      return literal("null", Value::none(), out);
    if (c == '-' || std::isdigit(static_cast<unsigned char>(c)))
      return number(out);
    return fail("expected a JSON value");
  }
};

} // namespace

bool parseJson(const std::string &text, Value &out, std::string &error) {
  JsonReader r{text};
  if (!r.value(out, 0)) {
    error = r.error;
    return false;
  }
  r.space();
  if (r.p != text.size()) {
    error = "at byte " + std::to_string(r.p) + ": text after the JSON value";
    return false;
  }
  return true;
}

// ---- JSON out ----

namespace {

void jsonString(const std::string &s, bool ascii, std::string &out) {
  out += '"';
  for (size_t k = 0; k < s.size(); ++k) {
    const unsigned char c = s[k];
    switch (c) {
    case '"':
      out += "\\\"";
      continue;
    case '\\':
      out += "\\\\";
      continue;
    case '\n':
      out += "\\n";
      continue;
    case '\r':
      out += "\\r";
      continue;
    case '\t':
      out += "\\t";
      continue;
    case '\b':
      out += "\\b";
      continue;
    case '\f':
      out += "\\f";
      continue;
    default:
      break;
    }
    char buf[16];
    if (c < 0x20) {
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else if (c < 0x80 || !ascii) {
      out += static_cast<char>(c);
    } else {
      // A UTF-8 sequence to \uXXXX (a surrogate pair past the BMP).
      uint32_t cp = 0;
      int more = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
      cp = c & (0x3F >> more);
      for (int m = 0; m < more && k + 1 < s.size(); ++m)
        cp = (cp << 6) | (static_cast<unsigned char>(s[++k]) & 0x3F);
      if (cp >= 0x10000) {
        cp -= 0x10000;
        std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", 0xD800 + (cp >> 10),
                      0xDC00 + (cp & 0x3FF));
      } else {
        std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
      }
      out += buf;
    }
  }
  out += '"';
}

bool dump(const Value &v, const JsonStyle &st, int level, std::string &out,
          std::string &error) {
  const std::string item = !st.itemSeparator.empty() ? st.itemSeparator
                           : st.indent >= 0          ? ","
                                                     : ", ";
  const std::string key = !st.keySeparator.empty() ? st.keySeparator : ": ";
  auto newline = [&](int depth) {
    if (st.indent >= 0)
      out += "\n" + std::string(static_cast<size_t>(st.indent) * depth, ' ');
  };
  switch (v.kind) {
  case Kind::None:
    out += "null";
    return true;
  case Kind::Bool:
    out += v.b ? "true" : "false";
    return true;
  case Kind::Int:
    out += std::to_string(v.i);
    return true;
  case Kind::Float:
    out += std::isnan(v.f)   ? "NaN"
           : std::isinf(v.f) ? (v.f > 0 ? "Infinity" : "-Infinity")
                             : floatRepr(v.f);
    return true;
  case Kind::String:
    jsonString(v.s, st.ensureAscii, out);
    return true;
  case Kind::List: {
    if (v.list->empty()) {
      out += "[]";
      return true;
    }
    out += '[';
    for (size_t k = 0; k < v.list->size(); ++k) {
      if (k)
        out += item;
      newline(level + 1);
      if (!dump((*v.list)[k], st, level + 1, out, error))
        return false;
    }
    newline(level);
    out += ']';
    return true;
  }
  case Kind::Dict: {
    if (v.dict->items.empty()) {
      out += "{}";
      return true;
    }
    std::vector<const std::pair<std::string, Value> *> items;
    for (const auto &kv : v.dict->items)
      items.push_back(&kv);
    if (st.sortKeys)
      std::stable_sort(items.begin(), items.end(),
                       [](auto *a, auto *b) { return a->first < b->first; });
    out += '{';
    for (size_t k = 0; k < items.size(); ++k) {
      if (k)
        out += item;
      newline(level + 1);
      jsonString(items[k]->first, st.ensureAscii, out);
      out += key;
      if (!dump(items[k]->second, st, level + 1, out, error))
        return false;
    }
    newline(level);
    out += '}';
    return true;
  }
  case Kind::Undefined:
    error = "Object of type Undefined is not JSON serializable";
    return false;
  case Kind::Function:
    error = "Object of type function is not JSON serializable";
    return false;
  }
  return false;
}

} // namespace

bool dumpJson(const Value &v, const JsonStyle &style, std::string &out,
              std::string &error) {
  return dump(v, style, 0, out, error);
}

} // namespace stc::rt::tmpl
