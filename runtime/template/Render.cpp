// Render: runs a parsed template: Jinja's scoping (a for loop's body and a
// macro's have their own; `set` at the top level is global; namespaces are
// assigned into), its undefined values (printing nothing, iterating nothing,
// an error once used otherwise), the loop variable and loop controls, and
// Python's operators.
#include "template/Builtins.h"
#include "template/Template.h"

#include <cmath>

namespace stc::rt::tmpl {

namespace {

// Output larger than this, macros nested deeper, or more statements run
// (loops over huge ranges, nested) are refused: a template that never ends.
// A chat template runs a few statements per message (2^18: thousands of
// messages; a loop iteration costs about a microsecond).
constexpr size_t kMaxOutput = size_t(64) << 20;
constexpr int kMaxDepth = 64;
constexpr uint64_t kMaxSteps = uint64_t(1) << 18;

struct Scope {
  Dict vars;
  Scope *parent;
};

class Renderer {
public:
  Renderer(const Value &context, std::string &error) : error_(error) {
    addGlobals(globals_.vars);
    if (context.kind == Kind::Dict)
      for (const auto &kv : context.dict->items)
        globals_.vars.set(kv.first, kv.second);
    globals_.parent = nullptr;
  }

  bool run(const Body &body, std::string &out) {
    return exec(body, globals_, out);
  }

private:
  enum class Flow { Normal, Break, Continue };
  Scope globals_;
  std::string &error_;
  Flow flow_ = Flow::Normal;
  int depth_ = 0;
  uint64_t steps_ = 0; // statements run and loop filters evaluated

  bool step(int line) {
    return ++steps_ <= kMaxSteps ||
           fail(line, "the template ran more than " +
                          std::to_string(kMaxSteps) +
                          " statements (a loop that does not end?)");
  }

  bool fail(int line, const std::string &what) {
    if (error_.empty())
      error_ = "line " + std::to_string(line) + ": " + what;
    return false;
  }

  static Value lookup(const Scope &scope, const std::string &name) {
    for (const Scope *s = &scope; s; s = s->parent)
      if (const Value *v = s->vars.find(name))
        return *v;
    return Value::undefined("'" + name + "' is undefined");
  }

  // An undefined value used where a value is needed: the error names it.
  bool defined(const Value &v, int line) {
    if (!v.isUndefined())
      return true;
    return fail(line, v.s.empty() ? "an undefined value is used" : v.s);
  }

  bool args(const Expr &e, Scope &scope, Args &out) {
    for (const ExprPtr &x : e.args) {
      Value v;
      if (!eval(*x, scope, v))
        return false;
      out.positional.push_back(std::move(v));
    }
    for (const auto &kv : e.kwargs) {
      Value v;
      if (!eval(*kv.second, scope, v))
        return false;
      out.keyword.emplace_back(kv.first, std::move(v));
    }
    return true;
  }

  bool arithmetic(const std::string &op, const Value &a, const Value &b,
                  Value &out, int line) {
    if (op == "~") {
      out = Value::string(str(a) + str(b));
      return true;
    }
    if (!defined(a, line) || !defined(b, line))
      return false;
    auto isNum = [](const Value &v) {
      return v.kind == Kind::Int || v.kind == Kind::Float ||
             v.kind == Kind::Bool;
    };
    auto num = [](const Value &v) {
      return v.kind == Kind::Bool ? double(v.b) : v.asDouble();
    };
    auto integer = [](const Value &v) {
      return v.kind == Kind::Bool ? int64_t(v.b) : v.i;
    };
    const bool ints =
        isNum(a) && isNum(b) && a.kind != Kind::Float && b.kind != Kind::Float;
    if (op == "+") {
      if (a.kind == Kind::String && b.kind == Kind::String) {
        out = Value::string(a.s + b.s);
        return true;
      }
      if (a.kind == Kind::List && b.kind == Kind::List) {
        List l = *a.list;
        l.insert(l.end(), b.list->begin(), b.list->end());
        out = Value::newList(std::move(l));
        return true;
      }
    }
    if (op == "*" && ((a.kind == Kind::String || a.kind == Kind::List) &&
                      (b.kind == Kind::Int || b.kind == Kind::Bool))) {
      const int64_t n = integer(b);
      if (a.kind == Kind::String) {
        std::string s;
        for (int64_t k = 0; k < n && s.size() < kMaxOutput; ++k)
          s += a.s;
        out = Value::string(s);
      } else {
        List l;
        for (int64_t k = 0; k < n && l.size() < 100000; ++k)
          l.insert(l.end(), a.list->begin(), a.list->end());
        out = Value::newList(std::move(l));
      }
      return true;
    }
    if (!isNum(a) || !isNum(b))
      return fail(line, "unsupported operand type(s) for " + op + ": '" +
                            typeName(a) + "' and '" + typeName(b) + "'");
    if ((op == "/" || op == "//" || op == "%") && num(b) == 0)
      return fail(line, "division by zero");
    if (op == "+" || op == "-" || op == "*") {
      if (ints) {
        const int64_t x = integer(a), y = integer(b);
        out = Value::integer(op == "+" ? x + y : op == "-" ? x - y : x * y);
      } else {
        const double x = num(a), y = num(b);
        out = Value::number(op == "+" ? x + y : op == "-" ? x - y : x * y);
      }
    } else if (op == "/") {
      out = Value::number(num(a) / num(b));
    } else if (op == "//" || op == "%") {
      if (ints) {
        const int64_t x = integer(a), y = integer(b);
        int64_t q = x / y, r = x % y;
        if (r != 0 && ((r < 0) != (y < 0))) { // Python floors
          --q;
          r += y;
        }
        out = Value::integer(op == "//" ? q : r);
      } else {
        const double x = num(a), y = num(b);
        const double q = std::floor(x / y);
        out = Value::number(op == "//" ? q : x - q * y);
      }
    } else { // **
      if (ints && integer(b) >= 0) {
        int64_t r = 1;
        for (int64_t k = 0; k < integer(b) && k < 64; ++k)
          r *= integer(a);
        out = Value::integer(r);
      } else {
        out = Value::number(std::pow(num(a), num(b)));
      }
    }
    return true;
  }

  bool contains(const Value &container, const Value &x, bool &out, int line) {
    if (container.kind == Kind::String) {
      if (x.kind != Kind::String)
        return fail(line, "'in <string>' requires a string as the left "
                          "operand, not " +
                              typeName(x));
      out = container.s.find(x.s) != std::string::npos;
      return true;
    }
    if (container.kind == Kind::Dict) {
      out = x.kind == Kind::String && container.dict->find(x.s);
      return true;
    }
    List items;
    std::string why;
    if (!iterate(container, items, why))
      return fail(line, "argument of type '" + typeName(container) +
                            "' is not iterable");
    out = false;
    for (const Value &v : items)
      out = out || equal(v, x);
    return true;
  }

  bool call(const Value &fn, const Args &a, Value &out, int line) {
    if (fn.kind != Kind::Function)
      return fail(line,
                  fn.isUndefined()
                      ? (fn.s.empty() ? "an undefined value is called" : fn.s)
                      : "'" + typeName(fn) + "' is not callable");
    std::string why;
    if (!(*fn.fn)(a, out, why))
      return fail(line, why);
    return true;
  }

  bool eval(const Expr &e, Scope &scope, Value &out) {
    switch (e.kind) {
    case ExprKind::Literal:
      out = e.value;
      return true;
    case ExprKind::Name:
      out = lookup(scope, e.name);
      return true;
    case ExprKind::Attr: {
      Value obj;
      if (!eval(*e.a, scope, obj) || !defined(obj, e.line))
        return false;
      out = attribute(obj, e.name);
      return true;
    }
    case ExprKind::Item: {
      Value obj, key;
      if (!eval(*e.a, scope, obj) || !defined(obj, e.line) ||
          !eval(*e.b, scope, key))
        return false;
      out = item(obj, key);
      return true;
    }
    case ExprKind::Slice: {
      Value obj, parts[3];
      if (!eval(*e.a, scope, obj) || !defined(obj, e.line))
        return false;
      if ((e.b && !eval(*e.b, scope, parts[0])) ||
          (e.c && !eval(*e.c, scope, parts[1])) ||
          (!e.args.empty() && !eval(*e.args[0], scope, parts[2])))
        return false;
      std::string why;
      if (!slice(obj, parts[0], parts[1], parts[2], out, why))
        return fail(e.line, why);
      return true;
    }
    case ExprKind::Call: {
      Value fn;
      Args a;
      if (!eval(*e.a, scope, fn) || !args(e, scope, a))
        return false;
      return call(fn, a, out, e.line);
    }
    case ExprKind::Filter: {
      Value v;
      Args a;
      if (!eval(*e.a, scope, v) || !args(e, scope, a))
        return false;
      std::string why;
      if (!applyFilter(e.name, v, a, out, why))
        return fail(e.line, why);
      return true;
    }
    case ExprKind::Test: {
      Value v;
      Args a;
      if (!eval(*e.a, scope, v) || !args(e, scope, a))
        return false;
      bool r;
      std::string why;
      if (!applyTest(e.name, v, a, r, why))
        return fail(e.line, why);
      out = Value::boolean(r != e.negated);
      return true;
    }
    case ExprKind::Neg: {
      Value v;
      if (!eval(*e.a, scope, v))
        return false;
      return arithmetic("-", Value::integer(0), v, out, e.line);
    }
    case ExprKind::Not: {
      Value v;
      if (!eval(*e.a, scope, v))
        return false;
      out = Value::boolean(!truthy(v));
      return true;
    }
    case ExprKind::And:
    case ExprKind::Or: {
      // Python's: the deciding operand itself.
      if (!eval(*e.a, scope, out))
        return false;
      if (truthy(out) == (e.kind == ExprKind::Or))
        return true;
      return eval(*e.b, scope, out);
    }
    case ExprKind::Cond: {
      Value c;
      if (!eval(*e.a, scope, c))
        return false;
      if (truthy(c))
        return eval(*e.b, scope, out);
      if (!e.c) {
        out = Value::undefined("the conditional expression has no else");
        return true;
      }
      return eval(*e.c, scope, out);
    }
    case ExprKind::Binary: {
      Value a, b;
      if (!eval(*e.a, scope, a) || !eval(*e.b, scope, b))
        return false;
      return arithmetic(e.name, a, b, out, e.line);
    }
    case ExprKind::Compare: {
      Value a, b;
      if (!eval(*e.a, scope, a) || !eval(*e.b, scope, b))
        return false;
      bool r = false;
      if (e.name == "==" || e.name == "!=") {
        r = equal(a, b) == (e.name == "==");
      } else if (e.name == "in" || e.name == "not in") {
        if (!contains(b, a, r, e.line))
          return false;
        r = r == (e.name == "in");
      } else {
        if (!defined(a, e.line) || !defined(b, e.line))
          return false;
        bool lt, gt;
        std::string why;
        if (!less(a, b, lt, why) || !less(b, a, gt, why))
          return fail(e.line, why);
        r = e.name == "<"    ? lt
            : e.name == "<=" ? !gt
            : e.name == ">"  ? gt
                             : !lt;
      }
      out = Value::boolean(r);
      return true;
    }
    case ExprKind::ListLit: {
      out = Value::newList();
      for (const ExprPtr &x : e.args) {
        Value v;
        if (!eval(*x, scope, v))
          return false;
        out.list->push_back(std::move(v));
      }
      return true;
    }
    case ExprKind::DictLit: {
      out = Value::newDict();
      for (size_t k = 0; k < e.keys.size(); ++k) {
        Value key, v;
        if (!eval(*e.keys[k], scope, key) || !eval(*e.args[k], scope, v))
          return false;
        if (key.kind != Kind::String)
          return fail(e.line, "dict keys other than strings are not "
                              "implemented");
        out.dict->set(key.s, std::move(v));
      }
      return true;
    }
    }
    return fail(e.line, "unknown expression");
  }

  // Assigns `v` to the names (several: unpacking a sequence).
  bool assign(const std::vector<std::string> &names, const Value &v,
              Scope &scope, int line) {
    if (names.size() == 1) {
      scope.vars.set(names[0], v);
      return true;
    }
    List items;
    std::string why;
    if (!iterate(v, items, why))
      return fail(line, "cannot unpack a " + typeName(v));
    if (items.size() != names.size())
      return fail(line, "expected " + std::to_string(names.size()) +
                            " values to unpack, got " +
                            std::to_string(items.size()));
    for (size_t k = 0; k < names.size(); ++k)
      scope.vars.set(names[k], items[k]);
    return true;
  }

  Value macro(const Node &n) {
    const Node *node = &n;
    return Value::function([this, node](const Args &a, Value &out,
                                        std::string &why) {
      if (depth_ >= kMaxDepth) {
        why = "macros nested deeper than " + std::to_string(kMaxDepth);
        return false;
      }
      if (a.positional.size() > node->params.size()) {
        why = "macro '" + node->text + "' takes " +
              std::to_string(node->params.size()) + " arguments, got " +
              std::to_string(a.positional.size());
        return false;
      }
      // A macro sees the template's globals and its parameters.
      Scope local{Dict(), &globals_};
      for (size_t k = 0; k < node->params.size(); ++k) {
        const auto &[name, dflt] = node->params[k];
        const Value *given = a.get(k, name.c_str());
        Value v;
        if (given) {
          v = *given;
        } else if (dflt) {
          if (!eval(*dflt, local, v)) {
            why = error_;
            return false;
          }
        } else {
          v = Value::undefined("parameter '" + name + "' was not given");
        }
        local.vars.set(name, v);
      }
      for (const auto &kv : a.keyword)
        if (std::none_of(node->params.begin(), node->params.end(),
                         [&](const auto &p) { return p.first == kv.first; })) {
          why = "macro '" + node->text + "' takes no keyword argument '" +
                kv.first + "'";
          return false;
        }
      std::string text;
      ++depth_;
      const bool ok = exec(node->body, local, text);
      --depth_;
      flow_ = Flow::Normal;
      if (!ok) { // (error_ keeps the line inside the macro)
        why = error_;
        return false;
      }
      out = Value::string(std::move(text));
      return true;
    });
  }

  bool exec(const Body &body, Scope &scope, std::string &out) {
    for (const NodePtr &np : body) {
      const Node &n = *np;
      if (out.size() > kMaxOutput)
        return fail(n.line, "the output passed " +
                                std::to_string(kMaxOutput >> 20) + " MiB");
      if (!step(n.line))
        return false;
      switch (n.kind) {
      case NodeKind::Text:
        out += n.text;
        break;
      case NodeKind::Output: {
        Value v;
        if (!eval(*n.expr, scope, v))
          return false;
        out += str(v);
        break;
      }
      case NodeKind::If:
        for (const auto &[cond, branch] : n.branches) {
          Value c = Value::boolean(true);
          if (cond && !eval(*cond, scope, c))
            return false;
          if (truthy(c)) {
            if (!exec(branch, scope, out))
              return false;
            break;
          }
        }
        break;
      case NodeKind::For:
        if (!loop(n, scope, out))
          return false;
        break;
      case NodeKind::Set: {
        Value v;
        if (!eval(*n.expr, scope, v))
          return false;
        if (!n.attr.empty()) {
          const Value ns = lookup(scope, n.text);
          if (ns.kind != Kind::Dict || !ns.dict->isNamespace)
            return fail(n.line, "cannot assign attribute on non-namespace "
                                "object '" +
                                    n.text + "'");
          ns.dict->set(n.attr, std::move(v));
        } else if (!assign(n.targets, v, scope, n.line)) {
          return false;
        }
        break;
      }
      case NodeKind::SetBlock: {
        std::string text;
        if (!exec(n.body, scope, text))
          return false;
        scope.vars.set(n.text, Value::string(std::move(text)));
        break;
      }
      case NodeKind::Macro:
        scope.vars.set(n.text, macro(n));
        break;
      case NodeKind::Break:
      case NodeKind::Continue:
        flow_ = n.kind == NodeKind::Break ? Flow::Break : Flow::Continue;
        return true;
      }
      if (flow_ != Flow::Normal)
        return true;
    }
    return true;
  }

  bool loop(const Node &n, Scope &scope, std::string &out) {
    Value iterable;
    if (!eval(*n.expr, scope, iterable))
      return false;
    List items;
    std::string why;
    if (!iterate(iterable, items, why))
      return fail(n.line, why);
    // The loop's filter (`for x in xs if cond`) runs before loop.* counts.
    if (n.cond) {
      List kept;
      for (const Value &x : items) {
        if (!step(n.line))
          return false;
        Scope s{Dict(), &scope};
        if (!assign(n.targets, x, s, n.line))
          return false;
        Value c;
        if (!eval(*n.cond, s, c))
          return false;
        if (truthy(c))
          kept.push_back(x);
      }
      items.swap(kept);
    }
    const int64_t len = static_cast<int64_t>(items.size());
    for (int64_t k = 0; k < len; ++k) {
      if (!step(n.line))
        return false;
      Scope s{Dict(), &scope};
      Value lp = Value::newDict();
      Dict &d = *lp.dict;
      d.set("index", Value::integer(k + 1));
      d.set("index0", Value::integer(k));
      d.set("revindex", Value::integer(len - k));
      d.set("revindex0", Value::integer(len - k - 1));
      d.set("first", Value::boolean(k == 0));
      d.set("last", Value::boolean(k == len - 1));
      d.set("length", Value::integer(len));
      d.set("depth", Value::integer(1));
      d.set("depth0", Value::integer(0));
      d.set("previtem", k > 0 ? items[k - 1]
                              : Value::undefined("there is no previous item"));
      d.set("nextitem", k + 1 < len
                            ? items[k + 1]
                            : Value::undefined("there is no next item"));
      d.set("cycle",
            Value::function([k](const Args &a, Value &o, std::string &e) {
              if (a.positional.empty()) {
                e = "no items for cycling given";
                return false;
              }
              o = a.positional[k % a.positional.size()];
              return true;
            }));
      s.vars.set("loop", lp);
      if (!assign(n.targets, items[k], s, n.line) || !exec(n.body, s, out))
        return false;
      if (flow_ == Flow::Break) {
        flow_ = Flow::Normal;
        break;
      }
      flow_ = Flow::Normal;
    }
    if (len == 0 && !n.orelse.empty())
      return exec(n.orelse, scope, out);
    return true;
  }
};

} // namespace

bool Template::render(const Value &context, std::string &out,
                      std::string &error) const {
  out.clear();
  error.clear();
  Renderer r(context, error);
  return r.run(body_, out);
}

} // namespace stc::rt::tmpl
