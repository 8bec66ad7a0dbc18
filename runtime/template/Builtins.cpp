// Builtins: Jinja's filters and tests, Python's string and dict methods, and
// the globals of transformers' chat-template environment.
#include "template/Builtins.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <ctime>

namespace stc::rt::tmpl {

namespace {

// ---- UTF-8: Python indexes strings by code point ----

std::vector<std::string> characters(const std::string &s) {
  std::vector<std::string> out;
  for (size_t k = 0; k < s.size();) {
    const unsigned char c = s[k];
    size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    n = std::min(n, s.size() - k);
    out.push_back(s.substr(k, n));
    k += n;
  }
  return out;
}

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
         c == '\v';
}

std::string strip(const std::string &s, const Value *chars, bool left,
                  bool right) {
  auto drop = [&](char c) {
    if (!chars || chars->kind == Kind::None)
      return isSpace(c);
    return chars->s.find(c) != std::string::npos;
  };
  size_t a = 0, b = s.size();
  while (left && a < b && drop(s[a]))
    ++a;
  while (right && b > a && drop(s[b - 1]))
    --b;
  return s.substr(a, b - a);
}

std::string lower(std::string s) {
  for (char &c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string upper(std::string s) {
  for (char &c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// Python's str.title: a letter after a non-letter is upper, the rest lower
// (ASCII letters; others pass through).
std::string title(std::string s) {
  bool prevLetter = false;
  for (char &c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    const bool letter = std::isalpha(u) != 0;
    if (letter)
      c = static_cast<char>(prevLetter ? std::tolower(u) : std::toupper(u));
    prevLetter = letter || u >= 0x80;
  }
  return s;
}

std::string capitalize(const std::string &s) {
  std::string out = lower(s);
  if (!out.empty())
    out[0] =
        static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

std::string replace(const std::string &s, const std::string &from,
                    const std::string &to, int64_t count) {
  if (from.empty()) { // Python inserts `to` around every character
    std::string out;
    int64_t n = 0;
    for (const std::string &c : characters(s)) {
      if (count < 0 || n++ < count)
        out += to;
      out += c;
    }
    if (count < 0 || n < count)
      out += to;
    return out;
  }
  std::string out;
  size_t k = 0;
  int64_t n = 0;
  while (count < 0 || n < count) {
    const size_t at = s.find(from, k);
    if (at == std::string::npos)
      break;
    out += s.substr(k, at - k) + to;
    k = at + from.size();
    ++n;
  }
  return out + s.substr(k);
}

std::vector<std::string> split(const std::string &s, const Value *sep,
                               int64_t maxsplit) {
  std::vector<std::string> out;
  if (!sep || sep->kind == Kind::None) { // runs of whitespace
    size_t k = 0;
    while (true) {
      while (k < s.size() && isSpace(s[k]))
        ++k;
      if (k >= s.size())
        break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
        std::string rest = s.substr(k);
        while (!rest.empty() && isSpace(rest.back()))
          rest.pop_back();
        out.push_back(rest);
        break;
      }
      size_t e = k;
      while (e < s.size() && !isSpace(s[e]))
        ++e;
      out.push_back(s.substr(k, e - k));
      k = e;
    }
    return out;
  }
  size_t k = 0;
  while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
    const size_t at = s.find(sep->s, k);
    if (at == std::string::npos)
      break;
    out.push_back(s.substr(k, at - k));
    k = at + sep->s.size();
  }
  out.push_back(s.substr(k));
  return out;
}

Value strings(const std::vector<std::string> &parts) {
  Value v = Value::newList();
  for (const std::string &p : parts)
    v.list->push_back(Value::string(p));
  return v;
}

bool needString(const Value *v, const char *what, std::string &error) {
  if (v && v->kind == Kind::String)
    return true;
  error = std::string(what) + " expects a string";
  return false;
}

int64_t intArg(const Value *v, int64_t fallback) {
  if (!v || v->kind == Kind::None || v->isUndefined())
    return fallback;
  return v->kind == Kind::Bool    ? v->b
         : v->kind == Kind::Float ? static_cast<int64_t>(v->f)
                                  : v->i;
}

bool boolArg(const Value *v, bool fallback) {
  return v && !v->isUndefined() ? truthy(*v) : fallback;
}

// A bound method of a string: Python's, the read-only ones.
Value stringMethod(const std::string &s, const std::string &name) {
  static const char *const kMethods[] = {
      "strip",   "lstrip",  "rstrip",  "split",      "startswith", "endswith",
      "replace", "upper",   "lower",   "title",      "capitalize", "find",
      "rfind",   "count",   "join",    "splitlines", "isdigit",    "isspace",
      "isalpha", "isalnum", "isupper", "islower"};
  if (std::find_if(std::begin(kMethods), std::end(kMethods),
                   [&](const char *m) { return name == m; }) ==
      std::end(kMethods))
    return Value::undefined("'str object' has no attribute '" + name + "'");
  return Value::function([s, name](const Args &a, Value &out,
                                   std::string &error) {
    const Value *a0 = a.get(0, nullptr), *a1 = a.get(1, nullptr),
                *a2 = a.get(2, nullptr);
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      out = Value::string(strip(s, a0, name != "rstrip", name != "lstrip"));
    } else if (name == "split") {
      out =
          strings(split(s, a.get(0, "sep"), intArg(a.get(1, "maxsplit"), -1)));
    } else if (name == "startswith" || name == "endswith") {
      std::vector<std::string> options;
      if (a0 && a0->kind == Kind::List) {
        for (const Value &o : *a0->list)
          options.push_back(o.s);
      } else {
        if (!needString(a0, name.c_str(), error))
          return false;
        options.push_back(a0->s);
      }
      bool hit = false;
      for (const std::string &o : options)
        hit = hit || (name == "startswith" ? s.compare(0, o.size(), o) == 0
                                           : s.size() >= o.size() &&
                                                 s.compare(s.size() - o.size(),
                                                           o.size(), o) == 0);
      out = Value::boolean(hit);
    } else if (name == "replace") {
      if (!needString(a0, "replace", error) ||
          !needString(a1, "replace", error))
        return false;
      out = Value::string(replace(s, a0->s, a1->s, intArg(a2, -1)));
    } else if (name == "upper" || name == "lower") {
      out = Value::string(name == "upper" ? upper(s) : lower(s));
    } else if (name == "title") {
      out = Value::string(title(s));
    } else if (name == "capitalize") {
      out = Value::string(capitalize(s));
    } else if (name == "find" || name == "rfind" || name == "count") {
      if (!needString(a0, name.c_str(), error))
        return false;
      if (name == "count") {
        int64_t n = 0;
        if (a0->s.empty())
          n = static_cast<int64_t>(characters(s).size()) + 1;
        else
          for (size_t k = s.find(a0->s); k != std::string::npos;
               k = s.find(a0->s, k + a0->s.size()))
            ++n;
        out = Value::integer(n);
        return true;
      }
      const size_t at = name == "find" ? s.find(a0->s) : s.rfind(a0->s);
      // (a code point offset, as Python counts)
      out = Value::integer(
          at == std::string::npos
              ? -1
              : static_cast<int64_t>(characters(s.substr(0, at)).size()));
    } else if (name == "join") {
      List items;
      if (!a0 || !iterate(*a0, items, error))
        return error.empty() ? (error = "join expects an iterable", false)
                             : false;
      std::string r;
      for (size_t k = 0; k < items.size(); ++k) {
        if (items[k].kind != Kind::String) {
          error = "sequence item " + std::to_string(k) +
                  ": expected str instance, " + typeName(items[k]) + " found";
          return false;
        }
        r += (k ? s : "") + items[k].s;
      }
      out = Value::string(r);
    } else if (name == "splitlines") {
      std::vector<std::string> lines;
      size_t k = 0;
      while (k < s.size()) {
        size_t e = k;
        while (e < s.size() && s[e] != '\n' && s[e] != '\r')
          ++e;
        lines.push_back(s.substr(k, e - k));
        if (e < s.size() && s[e] == '\r' && e + 1 < s.size() &&
            s[e + 1] == '\n')
          ++e;
        k = e + 1;
      }
      out = strings(lines);
    } else {
      // isdigit, isspace, isalpha, isalnum, isupper, islower (ASCII).
      bool all = !s.empty(), cased = false;
      for (unsigned char c : s) {
        if (name == "isdigit")
          all = all && std::isdigit(c);
        else if (name == "isspace")
          all = all && isSpace(static_cast<char>(c));
        else if (name == "isalpha")
          all = all && std::isalpha(c);
        else if (name == "isalnum")
          all = all && std::isalnum(c);
        else if (name == "isupper") {
          all = all && !std::islower(c);
          cased = cased || std::isupper(c);
        } else {
          all = all && !std::isupper(c);
          cased = cased || std::islower(c);
        }
      }
      if (name == "isupper" || name == "islower")
        all = all && cased;
      out = Value::boolean(all);
    }
    return true;
  });
}

Value dictMethod(const Value &d, const std::string &name) {
  if (name != "items" && name != "keys" && name != "values" && name != "get")
    return Value::undefined();
  return Value::function([d, name](const Args &a, Value &out, std::string &) {
    if (name == "get") {
      const Value *key = a.get(0, nullptr);
      const Value *found =
          key && key->kind == Kind::String ? d.dict->find(key->s) : nullptr;
      const Value *fallback = a.get(1, "default");
      out = found ? *found : fallback ? *fallback : Value::none();
      return true;
    }
    out = Value::newList();
    for (const auto &kv : d.dict->items) {
      if (name == "items")
        out.list->push_back(
            Value::newList({Value::string(kv.first), kv.second}));
      else
        out.list->push_back(name == "keys" ? Value::string(kv.first)
                                           : kv.second);
    }
    return true;
  });
}

std::string htmlEscape(const std::string &s) {
  std::string out;
  for (char c : s) {
    switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&#34;";
      break;
    case '\'':
      out += "&#39;";
      break;
    default:
      out += c;
    }
  }
  return out;
}

// The attribute path "a.b.0" of a value (filters' attribute=).
Value path(const Value &v, const std::string &dotted) {
  Value cur = v;
  size_t k = 0;
  while (true) {
    const size_t dot = dotted.find('.', k);
    const std::string part = dotted.substr(k, dot - k);
    const bool digits =
        !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c));
        });
    cur = digits ? item(cur,
                        Value::integer(std::strtoll(part.c_str(), nullptr, 10)))
                 : attribute(cur, part);
    if (dot == std::string::npos)
      return cur;
    k = dot + 1;
  }
}

// The key a sort compares: the value, a string lowered unless case-sensitive.
Value sortKey(const Value &v, bool caseSensitive) {
  return v.kind == Kind::String && !caseSensitive ? Value::string(lower(v.s))
                                                  : v;
}

bool sortList(List &items, bool reverse, bool caseSensitive,
              const Value *attribute, std::string &error) {
  std::vector<std::pair<Value, size_t>> keyed;
  for (size_t k = 0; k < items.size(); ++k)
    keyed.emplace_back(sortKey(attribute && attribute->kind == Kind::String
                                   ? path(items[k], attribute->s)
                                   : items[k],
                               caseSensitive),
                       k);
  bool ok = true;
  std::stable_sort(keyed.begin(), keyed.end(),
                   [&](const auto &x, const auto &y) {
                     bool r = false;
                     if (!ok)
                       return false;
                     ok = reverse ? less(y.first, x.first, r, error)
                                  : less(x.first, y.first, r, error);
                     return ok && r;
                   });
  if (!ok)
    return false;
  List sorted;
  for (const auto &k : keyed)
    sorted.push_back(items[k.second]);
  items.swap(sorted);
  return true;
}

bool toNumber(const Value &v, bool wantInt, const Value *fallback, Value &out) {
  switch (v.kind) {
  case Kind::Int:
  case Kind::Bool:
    out = wantInt ? Value::integer(v.kind == Kind::Bool ? v.b : v.i)
                  : Value::number(v.kind == Kind::Bool ? v.b : double(v.i));
    return true;
  case Kind::Float:
    out = wantInt ? Value::integer(static_cast<int64_t>(v.f))
                  : Value::number(v.f);
    return true;
  case Kind::String: {
    const std::string t = strip(v.s, nullptr, true, true);
    char *end = nullptr;
    if (wantInt) {
      const long long n = std::strtoll(t.c_str(), &end, 10);
      if (!t.empty() && *end == '\0') {
        out = Value::integer(n);
        return true;
      }
      // Jinja's int filter reads a float text too.
      const double d = std::strtod(t.c_str(), &end);
      if (!t.empty() && *end == '\0') {
        out = Value::integer(static_cast<int64_t>(d));
        return true;
      }
    } else {
      const double d = std::strtod(t.c_str(), &end);
      if (!t.empty() && *end == '\0') {
        out = Value::number(d);
        return true;
      }
    }
    break;
  }
  default:
    break;
  }
  out = fallback ? *fallback : wantInt ? Value::integer(0) : Value::number(0.0);
  return true;
}

// printf-style "%s"|format(args): %s, %d, %i, %r, %f, %%.
bool printfFormat(const std::string &fmt, const Args &a, Value &out,
                  std::string &error) {
  std::string r;
  size_t next = 0;
  for (size_t k = 0; k < fmt.size(); ++k) {
    if (fmt[k] != '%') {
      r += fmt[k];
      continue;
    }
    if (++k >= fmt.size()) {
      error = "format: incomplete format";
      return false;
    }
    const char c = fmt[k];
    if (c == '%') {
      r += '%';
      continue;
    }
    if (next >= a.positional.size()) {
      error = "format: not enough arguments for format string";
      return false;
    }
    const Value &v = a.positional[next++];
    if (c == 's')
      r += str(v);
    else if (c == 'r')
      r += repr(v);
    else if ((c == 'd' || c == 'i') && v.isNumber())
      r += std::to_string(v.kind == Kind::Float ? static_cast<int64_t>(v.f)
                                                : v.i);
    else if (c == 'f' && v.isNumber()) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%f", v.asDouble());
      r += buf;
    } else {
      error =
          std::string("format: the conversion '%") + c + "' is not implemented";
      return false;
    }
  }
  out = Value::string(r);
  return true;
}

} // namespace

bool iterate(const Value &v, List &out, std::string &error) {
  out.clear();
  switch (v.kind) {
  case Kind::Undefined:
    return true;
  case Kind::List:
    out = *v.list;
    return true;
  case Kind::Dict:
    for (const auto &kv : v.dict->items)
      out.push_back(Value::string(kv.first));
    return true;
  case Kind::String:
    for (const std::string &c : characters(v.s))
      out.push_back(Value::string(c));
    return true;
  default:
    error = "'" + typeName(v) + "' is not iterable";
    return false;
  }
}

bool length(const Value &v, int64_t &out, std::string &error) {
  switch (v.kind) {
  case Kind::Undefined:
    out = 0;
    return true;
  case Kind::String:
    out = static_cast<int64_t>(characters(v.s).size());
    return true;
  case Kind::List:
    out = static_cast<int64_t>(v.list->size());
    return true;
  case Kind::Dict:
    out = static_cast<int64_t>(v.dict->items.size());
    return true;
  default:
    error = "object of type '" + typeName(v) + "' has no len()";
    return false;
  }
}

Value attribute(const Value &obj, const std::string &name) {
  switch (obj.kind) {
  case Kind::Dict: {
    if (!obj.dict->isNamespace) {
      Value m = dictMethod(obj, name);
      if (!m.isUndefined())
        return m;
    }
    if (const Value *v = obj.dict->find(name))
      return *v;
    return Value::undefined("'" + typeName(obj) + "' has no attribute '" +
                            name + "'");
  }
  case Kind::String:
    return stringMethod(obj.s, name);
  default:
    return Value::undefined("'" + typeName(obj) + "' has no attribute '" +
                            name + "'");
  }
}

Value item(const Value &obj, const Value &key) {
  if (obj.kind == Kind::Dict && key.kind == Kind::String) {
    if (const Value *v = obj.dict->find(key.s))
      return *v;
    return attribute(obj, key.s);
  }
  if ((obj.kind == Kind::List || obj.kind == Kind::String) &&
      (key.kind == Kind::Int || key.kind == Kind::Bool)) {
    int64_t k = key.kind == Kind::Bool ? key.b : key.i;
    if (obj.kind == Kind::List) {
      const int64_t n = static_cast<int64_t>(obj.list->size());
      if (k < 0)
        k += n;
      if (k >= 0 && k < n)
        return (*obj.list)[k];
    } else {
      const std::vector<std::string> c = characters(obj.s);
      const int64_t n = static_cast<int64_t>(c.size());
      if (k < 0)
        k += n;
      if (k >= 0 && k < n)
        return Value::string(c[k]);
    }
    return Value::undefined(
        typeName(obj) + " has no element " +
        std::to_string(key.kind == Kind::Bool ? key.b : key.i));
  }
  if (key.kind == Kind::String)
    return attribute(obj, key.s);
  return Value::undefined(typeName(obj) + " has no element " + repr(key));
}

bool slice(const Value &obj, const Value &start, const Value &stop,
           const Value &step, Value &out, std::string &error) {
  List items;
  std::vector<std::string> chars;
  int64_t n;
  if (obj.kind == Kind::List) {
    items = *obj.list;
    n = static_cast<int64_t>(items.size());
  } else if (obj.kind == Kind::String) {
    chars = characters(obj.s);
    n = static_cast<int64_t>(chars.size());
  } else {
    error = "'" + typeName(obj) + "' cannot be sliced";
    return false;
  }
  auto given = [](const Value &v) {
    return !v.isUndefined() && v.kind != Kind::None;
  };
  const int64_t st = given(step) ? intArg(&step, 1) : 1;
  if (st == 0) {
    error = "slice step cannot be zero";
    return false;
  }
  // Python's slice.indices.
  auto clamp = [&](const Value &v, int64_t dflt) {
    if (!given(v))
      return dflt;
    int64_t k = intArg(&v, 0);
    if (k < 0)
      k += n;
    if (st > 0)
      return std::clamp<int64_t>(k, 0, n);
    return std::clamp<int64_t>(k, -1, n - 1);
  };
  const int64_t a = clamp(start, st > 0 ? 0 : n - 1),
                b = clamp(stop, st > 0 ? n : -1);
  std::vector<int64_t> picks;
  for (int64_t k = a; st > 0 ? k < b : k > b; k += st)
    picks.push_back(k);
  if (obj.kind == Kind::List) {
    out = Value::newList();
    for (int64_t k : picks)
      out.list->push_back(items[k]);
  } else {
    std::string s;
    for (int64_t k : picks)
      s += chars[k];
    out = Value::string(s);
  }
  return true;
}

namespace {

const char *const kFilters[] = {
    "abs",        "attr",    "capitalize", "count",    "d",     "default",
    "dictsort",   "e",       "escape",     "first",    "float", "format",
    "indent",     "int",     "items",      "join",     "last",  "length",
    "list",       "lower",   "map",        "max",      "min",   "reject",
    "rejectattr", "replace", "reverse",    "round",    "safe",  "select",
    "selectattr", "sort",    "string",     "sum",      "title", "tojson",
    "trim",       "unique",  "upper",      "wordcount"};

const char *const kTests[] = {
    "boolean",  "callable",    "defined", "divisibleby", "eq",
    "equalto",  "even",        "false",   "float",       "ge",
    "gt",       "greaterthan", "in",      "integer",     "iterable",
    "le",       "lower",       "lt",      "lessthan",    "mapping",
    "ne",       "none",        "number",  "odd",         "sameas",
    "sequence", "string",      "true",    "undefined",   "upper",
    "==",       "!=",          "<",       "<=",          ">",
    ">="};

template <size_t N>
bool listed(const char *const (&names)[N], const std::string &name) {
  return std::find_if(std::begin(names), std::end(names), [&](const char *n) {
           return name == n;
         }) != std::end(names);
}

// select/reject (test on the item) and selectattr/rejectattr (test on an
// attribute; no test: truthiness).
bool selectFilter(const std::string &name, const Value &value, const Args &a,
                  Value &out, std::string &error) {
  const bool byAttr = name == "selectattr" || name == "rejectattr";
  const bool keep = name == "select" || name == "selectattr";
  List items;
  if (!iterate(value, items, error))
    return false;
  size_t first = 0;
  std::string attr;
  if (byAttr) {
    if (a.positional.empty() || a.positional[0].kind != Kind::String) {
      error = name + " expects an attribute name";
      return false;
    }
    attr = a.positional[0].s;
    first = 1;
  }
  std::string test;
  if (a.positional.size() > first) {
    if (a.positional[first].kind != Kind::String) {
      error = name + " expects a test name";
      return false;
    }
    test = a.positional[first].s;
    if (!isTest(test)) {
      error = "the test '" + test + "' is not implemented";
      return false;
    }
  }
  Args testArgs;
  for (size_t k = first + 1; k < a.positional.size(); ++k)
    testArgs.positional.push_back(a.positional[k]);
  out = Value::newList();
  for (const Value &x : items) {
    const Value subject = byAttr ? path(x, attr) : x;
    bool pass = truthy(subject);
    if (!test.empty() && !applyTest(test, subject, testArgs, pass, error))
      return false;
    if (pass == keep)
      out.list->push_back(x);
  }
  return true;
}

} // namespace

bool isFilter(const std::string &name) { return listed(kFilters, name); }
bool isTest(const std::string &name) { return listed(kTests, name); }

bool applyTest(const std::string &name, const Value &v, const Args &a,
               bool &out, std::string &error) {
  const Value *arg = a.get(0, nullptr);
  auto compareWith = [&](const char *op) {
    if (!arg) {
      error = "the test '" + name + "' needs an argument";
      return false;
    }
    bool lt = false, gt = false;
    if (!std::strcmp(op, "==") || !std::strcmp(op, "!=")) {
      out = equal(v, *arg) == (op[0] == '=');
      return true;
    }
    if (!less(v, *arg, lt, error) || !less(*arg, v, gt, error))
      return false;
    out = !std::strcmp(op, "<")    ? lt
          : !std::strcmp(op, "<=") ? !gt
          : !std::strcmp(op, ">")  ? gt
                                   : !lt;
    return true;
  };
  if (name == "defined")
    out = !v.isUndefined();
  else if (name == "undefined")
    out = v.isUndefined();
  else if (name == "none")
    out = v.kind == Kind::None;
  else if (name == "boolean")
    out = v.kind == Kind::Bool;
  else if (name == "true")
    out = v.kind == Kind::Bool && v.b;
  else if (name == "false")
    out = v.kind == Kind::Bool && !v.b;
  else if (name == "integer")
    out = v.kind == Kind::Int;
  else if (name == "float")
    out = v.kind == Kind::Float;
  else if (name == "number")
    out = v.kind == Kind::Int || v.kind == Kind::Float || v.kind == Kind::Bool;
  else if (name == "string")
    out = v.kind == Kind::String;
  else if (name == "mapping")
    out = v.kind == Kind::Dict && !v.dict->isNamespace;
  else if (name == "iterable" || name == "sequence")
    out = v.kind == Kind::List || v.kind == Kind::String ||
          v.kind == Kind::Dict || v.isUndefined();
  else if (name == "callable")
    out = v.kind == Kind::Function;
  else if (name == "lower" || name == "upper")
    out = v.kind == Kind::String &&
          v.s == (name == "lower" ? lower(v.s) : upper(v.s));
  else if (name == "odd" || name == "even" || name == "divisibleby") {
    if (v.kind != Kind::Int && v.kind != Kind::Bool) {
      error = "the test '" + name + "' expects an integer";
      return false;
    }
    const int64_t x = v.kind == Kind::Bool ? v.b : v.i;
    if (name == "divisibleby") {
      const int64_t d = intArg(arg, 0);
      if (d == 0) {
        error = "integer division or modulo by zero";
        return false;
      }
      out = x % d == 0;
    } else {
      out = (x % 2 != 0) == (name == "odd");
    }
  } else if (name == "sameas")
    out = arg && (v.kind == arg->kind &&
                  (v.kind == Kind::None || v.kind == Kind::Undefined ||
                   (v.kind == Kind::Bool && v.b == arg->b) ||
                   (v.kind == Kind::List && v.list == arg->list) ||
                   (v.kind == Kind::Dict && v.dict == arg->dict)));
  else if (name == "in") {
    if (!arg) {
      error = "the test 'in' needs an argument";
      return false;
    }
    if (arg->kind == Kind::String && v.kind == Kind::String)
      out = arg->s.find(v.s) != std::string::npos;
    else if (arg->kind == Kind::Dict)
      out = v.kind == Kind::String && arg->dict->find(v.s);
    else {
      List items;
      if (!iterate(*arg, items, error))
        return false;
      out = std::any_of(items.begin(), items.end(),
                        [&](const Value &x) { return equal(x, v); });
    }
  } else if (name == "eq" || name == "equalto" || name == "==")
    return compareWith("==");
  else if (name == "ne" || name == "!=")
    return compareWith("!=");
  else if (name == "lt" || name == "lessthan" || name == "<")
    return compareWith("<");
  else if (name == "le" || name == "<=")
    return compareWith("<=");
  else if (name == "gt" || name == "greaterthan" || name == ">")
    return compareWith(">");
  else if (name == "ge" || name == ">=")
    return compareWith(">=");
  else {
    error = "the test '" + name + "' is not implemented";
    return false;
  }
  return true;
}

bool applyFilter(const std::string &name, const Value &v, const Args &a,
                 Value &out, std::string &error) {
  const Value *a0 = a.get(0, nullptr);
  if (name == "default" || name == "d") {
    const bool boolean = boolArg(a.get(1, "boolean"), false);
    const Value *dflt = a.get(0, "default_value");
    out = (boolean ? !truthy(v) : v.isUndefined())
              ? (dflt ? *dflt : Value::string(""))
              : v;
    return true;
  }
  if (name == "safe") {
    out = v;
    return true;
  }
  if (name == "string") {
    out = Value::string(str(v));
    return true;
  }
  if (name == "tojson") {
    // transformers' tojson: json.dumps(x, ensure_ascii=False, indent=indent,
    // separators=separators, sort_keys=sort_keys), no HTML escaping.
    JsonStyle style;
    style.ensureAscii = boolArg(a.get(99, "ensure_ascii"), false);
    const Value *indent = a.get(0, "indent");
    style.indent =
        indent && indent->kind == Kind::Int ? static_cast<int>(indent->i) : -1;
    if (const Value *sep = a.get(99, "separators");
        sep && sep->kind == Kind::List && sep->list->size() == 2) {
      style.itemSeparator = (*sep->list)[0].s;
      style.keySeparator = (*sep->list)[1].s;
    }
    style.sortKeys = boolArg(a.get(99, "sort_keys"), false);
    std::string text;
    if (!dumpJson(v, style, text, error))
      return false;
    out = Value::string(text);
    return true;
  }
  if (name == "length" || name == "count") {
    int64_t n;
    if (!length(v, n, error))
      return false;
    out = Value::integer(n);
    return true;
  }
  if (v.isUndefined() && name != "list" && name != "join" && name != "first" &&
      name != "last") {
    error = v.s.empty() ? "an undefined value" : v.s;
    return false;
  }
  if (name == "upper" || name == "lower" || name == "title" ||
      name == "capitalize" || name == "trim" || name == "escape" ||
      name == "e" || name == "replace" || name == "indent" ||
      name == "wordcount" || name == "format") {
    const std::string s = str(v);
    if (name == "upper")
      out = Value::string(upper(s));
    else if (name == "lower")
      out = Value::string(lower(s));
    else if (name == "title")
      out = Value::string(title(s));
    else if (name == "capitalize")
      out = Value::string(capitalize(s));
    else if (name == "trim")
      out = Value::string(strip(s, a.get(0, "chars"), true, true));
    else if (name == "escape" || name == "e")
      out = Value::string(htmlEscape(s));
    else if (name == "replace") {
      const Value *from = a.get(0, "old"), *to = a.get(1, "new");
      if (!from || !to) {
        error = "replace expects two strings";
        return false;
      }
      out = Value::string(
          replace(s, str(*from), str(*to), intArg(a.get(2, "count"), -1)));
    } else if (name == "indent") {
      const Value *w = a.get(0, "width");
      const std::string pad =
          w && w->kind == Kind::String ? w->s : std::string(intArg(w, 4), ' ');
      const bool first = boolArg(a.get(1, "first"), false),
                 blank = boolArg(a.get(2, "blank"), false);
      std::string r;
      size_t k = 0, line = 0;
      while (true) {
        const size_t nl = s.find('\n', k);
        const std::string l = s.substr(k, nl - k);
        const bool empty = strip(l, nullptr, true, true).empty();
        if ((line > 0 || first) && (blank || !empty))
          r += pad;
        r += l;
        if (nl == std::string::npos)
          break;
        r += '\n';
        k = nl + 1;
        ++line;
      }
      out = Value::string(r);
    } else if (name == "wordcount") {
      out = Value::integer(static_cast<int64_t>(split(s, nullptr, -1).size()));
    } else {
      return printfFormat(s, a, out, error);
    }
    return true;
  }
  if (name == "int" || name == "float")
    return toNumber(v, name == "int", a.get(0, "default"), out);
  if (name == "abs") {
    if (v.kind == Kind::Int || v.kind == Kind::Bool)
      out = Value::integer(std::llabs(v.kind == Kind::Bool ? v.b : v.i));
    else if (v.kind == Kind::Float)
      out = Value::number(std::fabs(v.f));
    else {
      error = "bad operand type for abs(): '" + typeName(v) + "'";
      return false;
    }
    return true;
  }
  if (name == "round") {
    if (!v.isNumber()) {
      error = "round expects a number";
      return false;
    }
    const int64_t precision = intArg(a.get(0, "precision"), 0);
    const Value *method = a.get(1, "method");
    const std::string m =
        method && method->kind == Kind::String ? method->s : "common";
    const double scale = std::pow(10.0, static_cast<double>(precision));
    const double x = v.asDouble() * scale;
    // Jinja's "common" is Python's round(): half to even.
    const double r = m == "ceil"    ? std::ceil(x)
                     : m == "floor" ? std::floor(x)
                                    : std::nearbyint(x);
    out = Value::number(r / scale);
    return true;
  }
  if (name == "attr") {
    if (!a0 || a0->kind != Kind::String) {
      error = "attr expects a name";
      return false;
    }
    out = attribute(v, a0->s);
    return true;
  }
  if (name == "items") {
    if (v.kind != Kind::Dict) {
      error = "items expects a mapping";
      return false;
    }
    out = Value::newList();
    for (const auto &kv : v.dict->items)
      out.list->push_back(Value::newList({Value::string(kv.first), kv.second}));
    return true;
  }
  if (name == "dictsort") {
    if (v.kind != Kind::Dict) {
      error = "dictsort expects a mapping";
      return false;
    }
    const bool caseSensitive = boolArg(a.get(0, "case_sensitive"), false);
    const Value *by = a.get(1, "by");
    const bool byValue = by && by->kind == Kind::String && by->s == "value";
    List pairs;
    for (const auto &kv : v.dict->items)
      pairs.push_back(Value::newList({Value::string(kv.first), kv.second}));
    const Value attr = Value::string(byValue ? "1" : "0");
    if (!sortList(pairs, boolArg(a.get(2, "reverse"), false), caseSensitive,
                  &attr, error))
      return false;
    out = Value::newList(std::move(pairs));
    return true;
  }
  // The rest iterate.
  List items;
  if (!iterate(v, items, error))
    return false;
  if (name == "list") {
    out = Value::newList(items);
  } else if (name == "first" || name == "last") {
    out = items.empty()     ? Value::undefined("no " + name + " item")
          : name == "first" ? items.front()
                            : items.back();
  } else if (name == "reverse") {
    if (v.kind == Kind::String) {
      std::string r;
      for (auto it = items.rbegin(); it != items.rend(); ++it)
        r += it->s;
      out = Value::string(r);
    } else {
      std::reverse(items.begin(), items.end());
      out = Value::newList(items);
    }
  } else if (name == "join") {
    const Value *attr = a.get(1, "attribute");
    const std::string sep = a0 && !a0->isUndefined() ? str(*a0) : "";
    std::string r;
    for (size_t k = 0; k < items.size(); ++k)
      r += (k ? sep : "") + str(attr && attr->kind == Kind::String
                                    ? path(items[k], attr->s)
                                    : items[k]);
    out = Value::string(r);
  } else if (name == "map") {
    out = Value::newList();
    const Value *attr = a.get(99, "attribute");
    if (attr && attr->kind == Kind::String) {
      const Value *dflt = a.get(99, "default");
      for (const Value &x : items) {
        Value y = path(x, attr->s);
        out.list->push_back(y.isUndefined() && dflt ? *dflt : y);
      }
    } else {
      if (!a0 || a0->kind != Kind::String || !isFilter(a0->s)) {
        error = "map expects attribute= or the name of a filter";
        return false;
      }
      Args rest;
      rest.positional.assign(a.positional.begin() + 1, a.positional.end());
      rest.keyword = a.keyword;
      for (const Value &x : items) {
        Value y;
        if (!applyFilter(a0->s, x, rest, y, error))
          return false;
        out.list->push_back(y);
      }
    }
  } else if (name == "select" || name == "reject" || name == "selectattr" ||
             name == "rejectattr") {
    return selectFilter(name, v, a, out, error);
  } else if (name == "sort") {
    if (!sortList(items, boolArg(a.get(0, "reverse"), false),
                  boolArg(a.get(1, "case_sensitive"), false),
                  a.get(2, "attribute"), error))
      return false;
    out = Value::newList(items);
  } else if (name == "unique") {
    const bool caseSensitive = boolArg(a.get(0, "case_sensitive"), false);
    const Value *attr = a.get(1, "attribute");
    out = Value::newList();
    List seen;
    for (const Value &x : items) {
      const Value key =
          sortKey(attr && attr->kind == Kind::String ? path(x, attr->s) : x,
                  caseSensitive);
      if (std::none_of(seen.begin(), seen.end(),
                       [&](const Value &s) { return equal(s, key); })) {
        seen.push_back(key);
        out.list->push_back(x);
      }
    }
  } else if (name == "min" || name == "max") {
    if (items.empty()) {
      out = Value::undefined("no " + name + " of an empty sequence");
      return true;
    }
    const bool caseSensitive = boolArg(a.get(0, "case_sensitive"), false);
    const Value *attr = a.get(1, "attribute");
    size_t best = 0;
    for (size_t k = 1; k < items.size(); ++k) {
      auto key = [&](size_t i) {
        return sortKey(attr && attr->kind == Kind::String
                           ? path(items[i], attr->s)
                           : items[i],
                       caseSensitive);
      };
      bool r;
      if (!(name == "min" ? less(key(k), key(best), r, error)
                          : less(key(best), key(k), r, error)))
        return false;
      if (r)
        best = k;
    }
    out = items[best];
  } else if (name == "sum") {
    const Value *attr = a.get(0, "attribute");
    const Value *start = a.get(1, "start");
    Value total = start ? *start : Value::integer(0);
    for (const Value &x : items) {
      const Value y = attr && attr->kind == Kind::String ? path(x, attr->s) : x;
      if (!y.isNumber() || !total.isNumber()) {
        error = "sum expects numbers";
        return false;
      }
      total = total.kind == Kind::Int && y.kind == Kind::Int
                  ? Value::integer(total.i + y.i)
                  : Value::number(total.asDouble() + y.asDouble());
    }
    out = total;
  } else {
    error = "the filter '" + name + "' is not implemented";
    return false;
  }
  return true;
}

void addGlobals(Dict &g) {
  g.set("range",
        Value::function([](const Args &a, Value &out, std::string &error) {
          int64_t start = 0, stop, step = 1;
          if (a.positional.empty() || a.positional.size() > 3) {
            error = "range expects 1 to 3 integers";
            return false;
          }
          for (const Value &v : a.positional)
            if (v.kind != Kind::Int && v.kind != Kind::Bool) {
              error = "range expects integers, got a " + typeName(v);
              return false;
            }
          if (a.positional.size() == 1) {
            stop = intArg(&a.positional[0], 0);
          } else {
            start = intArg(&a.positional[0], 0);
            stop = intArg(&a.positional[1], 0);
            if (a.positional.size() == 3)
              step = intArg(&a.positional[2], 1);
          }
          if (step == 0) {
            error = "range() arg 3 must not be zero";
            return false;
          }
          // The sandbox's limit (jinja2.sandbox.MAX_RANGE).
          const int64_t n =
              step > 0 ? (stop > start ? (stop - start + step - 1) / step : 0)
                       : (start > stop ? (start - stop - step - 1) / -step : 0);
          if (n > 100000) {
            error = "Range too big. The sandbox blocks ranges larger than "
                    "MAX_RANGE (100000).";
            return false;
          }
          out = Value::newList();
          for (int64_t k = 0; k < n; ++k)
            out.list->push_back(Value::integer(start + k * step));
          return true;
        }));
  g.set("dict", Value::function([](const Args &a, Value &out, std::string &) {
          out = Value::newDict();
          if (!a.positional.empty() && a.positional[0].kind == Kind::Dict)
            out.dict->items = a.positional[0].dict->items;
          for (const auto &kv : a.keyword)
            out.dict->set(kv.first, kv.second);
          return true;
        }));
  g.set("namespace",
        Value::function([](const Args &a, Value &out, std::string &) {
          out = Value::newDict();
          out.dict->isNamespace = true;
          if (!a.positional.empty() && a.positional[0].kind == Kind::Dict)
            out.dict->items = a.positional[0].dict->items;
          for (const auto &kv : a.keyword)
            out.dict->set(kv.first, kv.second);
          return true;
        }));
  g.set("raise_exception",
        Value::function([](const Args &a, Value &, std::string &error) {
          error =
              a.positional.empty() ? "raise_exception" : str(a.positional[0]);
          return false;
        }));
  g.set("strftime_now",
        Value::function([](const Args &a, Value &out, std::string &error) {
          if (a.positional.empty() || a.positional[0].kind != Kind::String) {
            error = "strftime_now expects a format";
            return false;
          }
          const std::time_t now = std::time(nullptr);
          std::tm local;
          localtime_r(&now, &local);
          char buf[256];
          const size_t n = std::strftime(buf, sizeof(buf),
                                         a.positional[0].s.c_str(), &local);
          out = Value::string(std::string(buf, n));
          return true;
        }));
}

} // namespace stc::rt::tmpl
