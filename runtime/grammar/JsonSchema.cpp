// JsonSchema: a JSON Schema (draft 7's keywords a grammar holds exactly) to a
// Grammar. Whitespace: none outside strings (the output is compact JSON);
// objects: the declared properties in the schema's order (the optional ones
// may be left out), then the others additionalProperties allows; integers
// without a fraction.
#include "grammar/Grammar.h"

#include "template/Value.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>

namespace stc::rt::grammar {

namespace {

namespace tmpl = stc::rt::tmpl;
constexpr uint32_t kUnbounded = UINT32_MAX;

ByteSet bytes(const char *chars) {
  ByteSet s;
  for (const char *c = chars; *c; ++c)
    s.add(static_cast<uint8_t>(*c), static_cast<uint8_t>(*c));
  return s;
}
ByteSet range(int lo, int hi) {
  ByteSet s;
  s.add(lo, hi);
  return s;
}

std::string compact(const tmpl::Value &v) {
  tmpl::JsonStyle st;
  st.itemSeparator = ",";
  st.keySeparator = ":";
  std::string out, unused;
  tmpl::dumpJson(v, st, out, unused);
  return out;
}

Item stringBody(uint32_t minLength, uint32_t maxLength,
                std::vector<std::string> except = {}) {
  Item i;
  i.kind = Item::StringBody;
  i.minLength = minLength;
  i.maxLength = maxLength;
  i.except = std::move(except);
  return i;
}

// The keywords compiled; those that only annotate; the rest are refused.
const std::set<std::string> kKeywords = {
    "type",  "properties",      "required",  "additionalProperties",
    "items", "additionalItems", "minItems",  "maxItems",
    "enum",  "const",           "anyOf",     "allOf",
    "$ref",  "minLength",       "maxLength", "definitions",
    "$defs"};
const std::set<std::string> kAnnotations = {
    "title",     "description",     "$schema",         "$id",
    "default",   "examples",        "$comment",        "readOnly",
    "writeOnly", "contentEncoding", "contentMediaType"};

class Builder {
public:
  Builder(Grammar &g, const tmpl::Value &root) : g_(g), root_(root) {}
  std::string error;

  bool compile(const tmpl::Value &s, const std::string &path, int &rule) {
    if (s.kind == tmpl::Kind::Bool) {
      rule = s.b ? anyValue() : never();
      return true;
    }
    if (s.kind != tmpl::Kind::Dict)
      return fail(path, "a schema must be an object or a boolean");
    const tmpl::Dict &d = *s.dict;
    for (const auto &kv : d.items)
      if (!kKeywords.count(kv.first) && !kAnnotations.count(kv.first))
        return fail(path, "the keyword '" + kv.first +
                              "' is not supported (a grammar cannot hold "
                              "it exactly, or stc does not implement it)");
    if (const tmpl::Value *ref = d.find("$ref"))
      return reference(*ref, path, rule); // (draft 7: beside $ref, nothing)
    const tmpl::Value *types = d.find("type");
    if (const tmpl::Value *one = d.find("allOf")) {
      if (one->kind != tmpl::Kind::List || one->list->size() != 1 ||
          d.items.size() - annotations(d) != 1)
        return fail(path, "allOf is supported with one schema and nothing "
                          "beside it");
      return compile((*one->list)[0], path + "/allOf/0", rule);
    }
    if (const tmpl::Value *any = d.find("anyOf")) {
      if (any->kind != tmpl::Kind::List || any->list->empty())
        return fail(path, "anyOf expects a non-empty array");
      if (d.items.size() - annotations(d) != 1)
        return fail(path, "anyOf is supported with nothing beside it");
      rule = g_.add(path);
      for (size_t k = 0; k < any->list->size(); ++k) {
        int sub;
        if (!compile((*any->list)[k], path + "/anyOf/" + std::to_string(k),
                     sub))
          return false;
        g_.rules[rule].alternatives.push_back({ruleRef(sub)});
      }
      return true;
    }
    std::vector<std::string> typeList;
    if (types) {
      if (types->kind == tmpl::Kind::String)
        typeList.push_back(types->s);
      else if (types->kind == tmpl::Kind::List)
        for (const tmpl::Value &t : *types->list)
          typeList.push_back(t.s);
      else
        return fail(path, "type must be a string or an array of strings");
      for (const std::string &t : typeList)
        if (t != "object" && t != "array" && t != "string" && t != "number" &&
            t != "integer" && t != "boolean" && t != "null")
          return fail(path, "unknown type '" + t + "'");
    } else {
      typeList = {"object", "array", "string", "number", "boolean", "null"};
    }
    auto has = [&](const char *t) {
      return std::find(typeList.begin(), typeList.end(), t) != typeList.end();
    };
    // const / enum: the values themselves (of the allowed types).
    const tmpl::Value *cnst = d.find("const");
    const tmpl::Value *en = d.find("enum");
    if (cnst || en) {
      std::vector<tmpl::Value> values;
      if (cnst)
        values.push_back(*cnst);
      else if (en->kind == tmpl::Kind::List)
        values = *en->list;
      else
        return fail(path, "enum expects an array");
      rule = g_.add(path);
      for (const tmpl::Value &v : values) {
        if (types && !typeMatches(v, has))
          continue;
        if (cnst && en && en->kind == tmpl::Kind::List &&
            std::none_of(
                en->list->begin(), en->list->end(),
                [&](const tmpl::Value &x) { return tmpl::equal(x, v); }))
          continue;
        g_.rules[rule].alternatives.push_back({literal(compact(v))});
      }
      return true;
    }
    rule = g_.add(path);
    if (has("object")) {
      int r;
      if (!object(d, path, r))
        return false;
      g_.rules[rule].alternatives.push_back({ruleRef(r)});
    }
    if (has("array")) {
      int r;
      if (!array(d, path, r))
        return false;
      g_.rules[rule].alternatives.push_back({ruleRef(r)});
    }
    if (has("string")) {
      uint32_t lo = 0, hi = kUnbounded;
      if (!count(d, "minLength", path, lo) || !count(d, "maxLength", path, hi))
        return false;
      g_.rules[rule].alternatives.push_back(
          {literal("\""), stringBody(lo, hi), literal("\"")});
    }
    // (The rule is made before `rule`'s alternatives are touched: adding a
    // rule moves the others.)
    if (has("number") || has("integer")) {
      const int n = has("number") ? number() : integer();
      g_.rules[rule].alternatives.push_back({ruleRef(n)});
    }
    if (has("boolean")) {
      g_.rules[rule].alternatives.push_back({literal("true")});
      g_.rules[rule].alternatives.push_back({literal("false")});
    }
    if (has("null"))
      g_.rules[rule].alternatives.push_back({literal("null")});
    return true;
  }

  int anyValue() {
    if (any_ >= 0)
      return any_;
    any_ = g_.add("any value");
    const int obj = g_.add("any object"), arr = g_.add("any array");
    const int kv = g_.add("any member"), moreKv = g_.add("more members");
    const int moreV = g_.add("more values");
    g_.rules[any_].alternatives = {
        {ruleRef(obj)},
        {ruleRef(arr)},
        {literal("\""), stringBody(0, kUnbounded), literal("\"")},
        {ruleRef(number())},
        {literal("true")},
        {literal("false")},
        {literal("null")}};
    g_.rules[kv].alternatives = {{literal("\""), stringBody(0, kUnbounded),
                                  literal("\":"), ruleRef(any_)}};
    g_.rules[moreKv].alternatives = {{literal(","), ruleRef(kv)}};
    g_.rules[obj].alternatives = {{literal("{}")},
                                  {literal("{"), ruleRef(kv),
                                   ruleRef(moreKv, 0, kUnbounded),
                                   literal("}")}};
    g_.rules[moreV].alternatives = {{literal(","), ruleRef(any_)}};
    g_.rules[arr].alternatives = {{literal("[]")},
                                  {literal("["), ruleRef(any_),
                                   ruleRef(moreV, 0, kUnbounded),
                                   literal("]")}};
    return any_;
  }

private:
  Grammar &g_;
  const tmpl::Value &root_;
  int any_ = -1, number_ = -1, integer_ = -1, never_ = -1, digits_ = -1;
  std::map<std::string, int> refs_;

  bool fail(const std::string &path, const std::string &what) {
    error = (path.empty() ? "the schema" : "schema at '" + path + "'") + ": " +
            what;
    return false;
  }
  static size_t annotations(const tmpl::Dict &d) {
    size_t n = 0;
    for (const auto &kv : d.items)
      n += kAnnotations.count(kv.first) || kv.first == "definitions" ||
           kv.first == "$defs";
    return n;
  }
  template <typename Has>
  static bool typeMatches(const tmpl::Value &v, Has has) {
    switch (v.kind) {
    case tmpl::Kind::Dict:
      return has("object");
    case tmpl::Kind::List:
      return has("array");
    case tmpl::Kind::String:
      return has("string");
    case tmpl::Kind::Int:
      return has("integer") || has("number");
    case tmpl::Kind::Float:
      return has("number") ||
             (has("integer") && v.f == static_cast<double>(int64_t(v.f)));
    case tmpl::Kind::Bool:
      return has("boolean");
    case tmpl::Kind::None:
      return has("null");
    default:
      return false;
    }
  }
  bool count(const tmpl::Dict &d, const char *key, const std::string &path,
             uint32_t &out) {
    const tmpl::Value *v = d.find(key);
    if (!v)
      return true;
    if (v->kind != tmpl::Kind::Int || v->i < 0)
      return fail(path, std::string(key) + " expects a non-negative integer");
    out = static_cast<uint32_t>(std::min<int64_t>(v->i, kUnbounded - 1));
    return true;
  }
  int never() {
    if (never_ < 0)
      never_ = g_.add("nothing"); // no alternative: matches nothing
    return never_;
  }
  int digits() {
    if (digits_ < 0) {
      digits_ = g_.add("integer part");
      g_.rules[digits_].alternatives = {
          {literal("0")},
          {byteClass(range('1', '9')),
           byteClass(range('0', '9'), 0, kUnbounded)}};
    }
    return digits_;
  }
  int number() {
    if (number_ >= 0)
      return number_;
    number_ = g_.add("number");
    const int frac = g_.add("fraction"), exp = g_.add("exponent");
    g_.rules[frac].alternatives = {
        {literal("."), byteClass(range('0', '9'), 1, kUnbounded)}};
    g_.rules[exp].alternatives = {{byteClass(bytes("eE")),
                                   byteClass(bytes("+-"), 0, 1),
                                   byteClass(range('0', '9'), 1, kUnbounded)}};
    Item minus = literal("-");
    minus.min = 0;
    g_.rules[number_].alternatives = {
        {minus, ruleRef(digits()), ruleRef(frac, 0, 1), ruleRef(exp, 0, 1)}};
    return number_;
  }
  int integer() {
    if (integer_ >= 0)
      return integer_;
    // Written without a fraction (draft 7 counts 1.0 as an integer too; a
    // tool's caller expects 1).
    integer_ = g_.add("integer");
    Item minus = literal("-");
    minus.min = 0;
    g_.rules[integer_].alternatives = {{minus, ruleRef(digits())}};
    return integer_;
  }

  bool reference(const tmpl::Value &ref, const std::string &path, int &rule) {
    if (ref.kind != tmpl::Kind::String || ref.s.empty() || ref.s[0] != '#')
      return fail(path, "$ref supports local references ('#...') only");
    auto it = refs_.find(ref.s);
    if (it != refs_.end()) {
      rule = it->second;
      return true;
    }
    // A JSON pointer into the root document.
    const tmpl::Value *at = &root_;
    const std::string &p = ref.s;
    for (size_t k = 1; k < p.size();) {
      if (p[k] != '/')
        return fail(path, "$ref '" + p + "' is not a JSON pointer");
      const size_t next = p.find('/', k + 1);
      std::string part = p.substr(k + 1, next - k - 1);
      for (size_t q; (q = part.find("~1")) != std::string::npos;)
        part.replace(q, 2, "/");
      for (size_t q; (q = part.find("~0")) != std::string::npos;)
        part.replace(q, 2, "~");
      if (at->kind == tmpl::Kind::Dict)
        at = at->dict->find(part);
      else if (at->kind == tmpl::Kind::List && !part.empty() &&
               part.size() < 10 &&
               std::all_of(part.begin(), part.end(),
                           [](char c) { return std::isdigit(c & 0xFF); }) &&
               std::strtoul(part.c_str(), nullptr, 10) < at->list->size())
        at = &(*at->list)[std::strtoul(part.c_str(), nullptr, 10)];
      else
        at = nullptr;
      if (!at)
        return fail(path, "$ref '" + p + "' does not resolve");
      k = next == std::string::npos ? p.size() : next;
    }
    // The rule exists before its body, so a recursive schema refers to it.
    rule = g_.add(p);
    refs_[p] = rule;
    int body;
    if (!compile(*at, p, body))
      return false;
    g_.rules[rule].alternatives = {{ruleRef(body)}};
    return true;
  }

  static std::string quoted(const std::string &name) {
    std::string out, unused;
    tmpl::dumpJson(tmpl::Value::string(name), tmpl::JsonStyle(), out, unused);
    return out;
  }

  bool object(const tmpl::Dict &d, const std::string &path, int &rule) {
    struct Prop {
      std::string name;
      int rule;
      bool required;
    };
    std::vector<Prop> props;
    std::vector<std::string> names;
    const tmpl::Value *ps = d.find("properties");
    const tmpl::Value *req = d.find("required");
    std::set<std::string> required;
    if (req) {
      if (req->kind != tmpl::Kind::List)
        return fail(path, "required expects an array of names");
      for (const tmpl::Value &r : *req->list)
        required.insert(r.s);
    }
    if (ps) {
      if (ps->kind != tmpl::Kind::Dict)
        return fail(path, "properties expects an object");
      for (const auto &kv : ps->dict->items) {
        int r;
        if (!compile(kv.second, path + "/properties/" + kv.first, r))
          return false;
        props.push_back({kv.first, r, required.count(kv.first) > 0});
        names.push_back(kv.first);
      }
    }
    if (req) // required names without a schema: any value
      for (const tmpl::Value &r : *req->list)
        if (std::find(names.begin(), names.end(), r.s) == names.end()) {
          props.push_back({r.s, anyValue(), true});
          names.push_back(r.s);
        }
    int extra = anyValue();
    if (const tmpl::Value *ap = d.find("additionalProperties")) {
      if (ap->kind == tmpl::Kind::Bool && !ap->b)
        extra = -1;
      else if (!compile(*ap, path + "/additionalProperties", extra))
        return false;
    }
    if (names.size() > 32 && extra >= 0)
      return fail(path, "more than 32 properties beside additional ones");
    // R(i, first): the members from the i-th declared property on; `first`:
    // no comma before the next one.
    std::map<std::pair<size_t, bool>, int> memo;
    std::function<int(size_t, bool)> members = [&](size_t i, bool first) {
      const auto key = std::make_pair(i, first);
      if (auto it = memo.find(key); it != memo.end())
        return it->second;
      const int r = g_.add(path + " members");
      memo[key] = r;
      std::vector<Sequence> alts;
      if (i == props.size()) {
        alts.push_back({}); // no more
        if (extra >= 0) {
          const int kv = g_.add(path + " other member");
          g_.rules[kv].alternatives = {{literal("\""),
                                        stringBody(0, kUnbounded, names),
                                        literal("\":"), ruleRef(extra)}};
          const int more = g_.add(path + " more others");
          g_.rules[more].alternatives = {{literal(","), ruleRef(kv)}};
          Sequence s;
          if (!first)
            s.push_back(literal(","));
          s.push_back(ruleRef(kv));
          s.push_back(ruleRef(more, 0, kUnbounded));
          alts.push_back(s);
        }
      } else {
        Sequence s;
        s.push_back(literal((first ? "" : ",") + quoted(props[i].name) + ":"));
        s.push_back(ruleRef(props[i].rule));
        s.push_back(ruleRef(members(i + 1, false)));
        alts.push_back(s);
        if (!props[i].required)
          alts.push_back({ruleRef(members(i + 1, first))});
      }
      g_.rules[r].alternatives = std::move(alts);
      return r;
    };
    rule = g_.add(path + " object");
    const int body = members(0, true);
    g_.rules[rule].alternatives = {{literal("{"), ruleRef(body), literal("}")}};
    return true;
  }

  bool array(const tmpl::Dict &d, const std::string &path, int &rule) {
    uint32_t lo = 0, hi = kUnbounded;
    if (!count(d, "minItems", path, lo) || !count(d, "maxItems", path, hi))
      return false;
    rule = g_.add(path + " array");
    if (lo > hi) // nothing satisfies it
      return true;
    const tmpl::Value *items = d.find("items");
    std::vector<int> tuple;
    int rest = anyValue(); // the items after a tuple (or every item)
    if (items && items->kind == tmpl::Kind::List) {
      for (size_t k = 0; k < items->list->size(); ++k) {
        int r;
        if (!compile((*items->list)[k], path + "/items/" + std::to_string(k),
                     r))
          return false;
        tuple.push_back(r);
      }
      if (const tmpl::Value *ai = d.find("additionalItems")) {
        if (ai->kind == tmpl::Kind::Bool && !ai->b)
          rest = -1;
        else if (!compile(*ai, path + "/additionalItems", rest))
          return false;
      }
    } else if (items) {
      if (items->kind == tmpl::Kind::Bool && !items->b)
        rest = -1;
      else if (!compile(*items, path + "/items", rest))
        return false;
    }
    // T(i, first): the items from the i-th on.
    std::map<std::pair<size_t, bool>, int> memo;
    std::function<int(size_t, bool)> from = [&](size_t i, bool first) {
      const auto key = std::make_pair(i, first);
      if (auto it = memo.find(key); it != memo.end())
        return it->second;
      const int r = g_.add(path + " items");
      memo[key] = r;
      std::vector<Sequence> alts;
      if (i >= lo)
        alts.push_back({}); // the array may end here
      if (i < tuple.size()) {
        if (i < hi) {
          Sequence s;
          if (!first)
            s.push_back(literal(","));
          s.push_back(ruleRef(tuple[i]));
          s.push_back(ruleRef(from(i + 1, false)));
          alts.push_back(s);
        }
      } else if (rest >= 0 && i < hi) {
        // The rest: at least lo - i more (at least one), at most hi - i.
        const int more = g_.add(path + " more items");
        g_.rules[more].alternatives = {{literal(","), ruleRef(rest)}};
        const uint32_t need = lo > i ? static_cast<uint32_t>(lo - i) : 1;
        Sequence s;
        if (!first)
          s.push_back(literal(","));
        s.push_back(ruleRef(rest));
        s.push_back(ruleRef(
            more, need - 1,
            hi == kUnbounded ? kUnbounded : static_cast<uint32_t>(hi - i - 1)));
        alts.push_back(s);
      }
      g_.rules[r].alternatives = std::move(alts);
      return r;
    };
    g_.rules[rule].alternatives = {
        {literal("["), ruleRef(from(0, true)), literal("]")}};
    return true;
  }
};

} // namespace

namespace {

// Whether the root derives some finite text (the fixed point of "a rule is
// productive when one of its alternatives has only productive items"): a
// schema whose grammar cannot end would leave the sampler nothing but eos.
bool productive(const Grammar &g) {
  std::vector<bool> done(g.rules.size(), false);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < g.rules.size(); ++r) {
      if (done[r])
        continue;
      for (const Sequence &alt : g.rules[r].alternatives) {
        bool all = true;
        for (const Item &it : alt)
          if (it.min > 0 &&
              ((it.kind == Item::Rule && !done[it.rule]) ||
               (it.kind == Item::StringBody && it.minLength > it.maxLength)))
            all = false;
        if (all) {
          done[r] = changed = true;
          break;
        }
      }
    }
  }
  return done[g.root];
}

} // namespace

bool schemaGrammar(const std::string &schema, Grammar &out,
                   std::string &error) {
  tmpl::Value root;
  if (!tmpl::parseJson(schema, root, error)) {
    error = "the schema is not JSON: " + error;
    return false;
  }
  out = Grammar();
  Builder b(out, root);
  int rule;
  if (!b.compile(root, "", rule)) {
    error = b.error;
    return false;
  }
  out.root = rule;
  if (!productive(out)) {
    error = "the schema allows no value (false, or a $ref cycle with no "
            "way out)";
    return false;
  }
  return true;
}

bool taggedSchemaGrammar(const std::string &schema, const std::string &begin,
                         const std::string &end, int maxRepeats, Grammar &out,
                         std::string &error) {
  if (!schemaGrammar(schema, out, error))
    return false;
  const int value = out.root;
  const int tagged = out.add("tagged value");
  Sequence s;
  if (!begin.empty())
    s.push_back(literal(begin));
  s.push_back(ruleRef(value));
  if (!end.empty())
    s.push_back(literal(end));
  out.rules[tagged].alternatives = {s};
  const int more = out.add("more tagged values");
  out.rules[more].alternatives = {{literal("\n"), ruleRef(tagged)}};
  const int root = out.add("tagged values");
  out.rules[root].alternatives = {
      {ruleRef(tagged),
       ruleRef(more, 0, static_cast<uint32_t>(std::max(0, maxRepeats - 1)))}};
  out.root = root;
  return true;
}

Grammar anyJson(bool objectOnly) {
  Grammar g;
  tmpl::Value none;
  Builder b(g, none);
  const int any = b.anyValue();
  g.root = objectOnly ? any + 1 : any; // ("any object" follows "any value")
  return g;
}

} // namespace stc::rt::grammar
