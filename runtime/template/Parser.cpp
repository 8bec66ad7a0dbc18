// Parser: template text to tokens (Jinja's delimiters and whitespace rules
// with trim_blocks and lstrip_blocks), and tokens to the AST, with Jinja's
// operator precedence.
#include "template/Builtins.h"
#include "template/Template.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

namespace stc::rt::tmpl {

namespace {

enum class Tok : uint8_t {
  Text,
  VarBegin,
  VarEnd,
  BlockBegin,
  BlockEnd,
  Name,
  String,
  Int,
  Float,
  Op,
  End
};

struct Token {
  Tok kind;
  std::string text;
  int line;
  int64_t i = 0;
  double f = 0;
};

class Lexer {
public:
  explicit Lexer(const std::string &src) : s_(src) {}

  bool run(std::vector<Token> &out, std::string &error) {
    size_t p = 0;
    bool stripNext = false; // the previous tag ended with '-'
    bool trimNext = false;  // the previous tag was a block (trim_blocks)
    while (true) {
      const size_t tag = findTag(p);
      // The text before the tag is s_[start, end).
      size_t start = p, end = tag;
      if (stripNext) {
        while (start < end &&
               std::isspace(static_cast<unsigned char>(s_[start])))
          ++start;
      } else if (trimNext) {
        if (s_.compare(start, 1, "\n") == 0)
          start += 1;
        else if (s_.compare(start, 2, "\r\n") == 0)
          start += 2;
      }
      if (tag == s_.size()) {
        emitText(start, end, out);
        break;
      }
      const char kind = s_[tag + 1]; // '{', '%' or '#'
      const char mod = tag + 2 < s_.size() ? s_[tag + 2] : 0;
      if (mod == '-') {
        while (end > start &&
               std::isspace(static_cast<unsigned char>(s_[end - 1])))
          --end;
      } else if (kind != '{' && mod != '+') {
        // lstrip_blocks: the spaces and tabs before a block or comment tag
        // that starts its line.
        size_t k = end;
        while (k > start && (s_[k - 1] == ' ' || s_[k - 1] == '\t'))
          --k;
        if (k == 0 || s_[k - 1] == '\n')
          end = k;
      }
      emitText(start, end, out);
      size_t q = tag + 2 + (mod == '-' || mod == '+' ? 1 : 0);
      const int line = lineOf(tag);
      bool endStrip = false, endPlus = false;
      if (kind == '#') {
        const size_t close = s_.find("#}", q);
        if (close == std::string::npos)
          return fail(error, line, "a comment that is never closed ('#}')");
        endStrip = close > q && s_[close - 1] == '-';
        p = close + 2;
      } else {
        out.push_back(
            {kind == '{' ? Tok::VarBegin : Tok::BlockBegin, "", line});
        const char *close = kind == '{' ? "}}" : "%}";
        if (!tokens(q, close, out, endStrip, endPlus, error))
          return false;
        out.push_back(
            {kind == '{' ? Tok::VarEnd : Tok::BlockEnd, "", lineOf(q)});
        p = q;
        // {% raw %}: the text up to {% endraw %} as it is.
        if (kind == '%' && out.size() >= 3 &&
            out[out.size() - 2].kind == Tok::Name &&
            out[out.size() - 2].text == "raw" &&
            out[out.size() - 3].kind == Tok::BlockBegin) {
          out.resize(out.size() - 3);
          if (!raw(p, out, endStrip, endPlus, error))
            return false;
        }
      }
      stripNext = endStrip;
      trimNext = kind != '{' && !endPlus;
    }
    out.push_back({Tok::End, "", lineOf(s_.size())});
    return true;
  }

private:
  const std::string &s_;

  static bool fail(std::string &error, int line, const std::string &what) {
    error = "line " + std::to_string(line) + ": " + what;
    return false;
  }
  // The line of position p, counted on from the last position asked (the
  // lexer asks in increasing order, so the whole text is counted once).
  mutable size_t linePos_ = 0;
  mutable int line_ = 1;
  int lineOf(size_t p) const {
    p = std::min(p, s_.size());
    if (p < linePos_)
      linePos_ = 0, line_ = 1;
    for (; linePos_ < p; ++linePos_)
      line_ += s_[linePos_] == '\n';
    return line_;
  }
  size_t findTag(size_t p) const {
    while (p + 1 < s_.size()) {
      if (s_[p] == '{' &&
          (s_[p + 1] == '{' || s_[p + 1] == '%' || s_[p + 1] == '#'))
        return p;
      ++p;
    }
    return s_.size();
  }
  void emitText(size_t start, size_t end, std::vector<Token> &out) {
    if (end > start)
      out.push_back({Tok::Text, s_.substr(start, end - start), lineOf(start)});
  }
  // After {% raw %}: its text up to {% endraw %} (the tags' '-' and '+'
  // apply to it as to other text), then the flags of the endraw tag.
  bool raw(size_t &p, std::vector<Token> &out, bool &strip, bool &plus,
           std::string &error) {
    const int line = lineOf(p);
    size_t k = p;
    while (true) {
      const size_t tag = s_.find("{%", k);
      if (tag == std::string::npos)
        return fail(error, line, "a raw block without {% endraw %}");
      size_t q = tag + 2;
      if (q < s_.size() && (s_[q] == '-' || s_[q] == '+'))
        ++q;
      while (q < s_.size() && std::isspace(static_cast<unsigned char>(s_[q])))
        ++q;
      if (s_.compare(q, 6, "endraw") != 0) {
        k = tag + 2;
        continue;
      }
      size_t close = q + 6;
      while (close < s_.size() &&
             std::isspace(static_cast<unsigned char>(s_[close])))
        ++close;
      const bool endStrip = s_.compare(close, 3, "-%}") == 0;
      const bool endPlus = s_.compare(close, 3, "+%}") == 0;
      if (!endStrip && !endPlus && s_.compare(close, 2, "%}") != 0)
        return fail(error, lineOf(close), "expected '%}' after endraw");
      size_t start = p, end = tag;
      if (strip)
        while (start < end &&
               std::isspace(static_cast<unsigned char>(s_[start])))
          ++start;
      else if (!plus && s_.compare(start, 1, "\n") == 0)
        start += 1;
      if (s_[tag + 2] == '-')
        while (end > start &&
               std::isspace(static_cast<unsigned char>(s_[end - 1])))
          --end;
      emitText(start, end, out);
      p = close + (endStrip || endPlus ? 3 : 2);
      strip = endStrip;
      plus = endPlus;
      return true;
    }
  }
  // The tokens of a tag up to `close` ("}}" or "%}", maybe after '-' or '+').
  bool tokens(size_t &p, const char *close, std::vector<Token> &out,
              bool &strip, bool &plus, std::string &error) {
    while (true) {
      while (p < s_.size() && std::isspace(static_cast<unsigned char>(s_[p])))
        ++p;
      const int line = lineOf(p);
      if (p >= s_.size())
        return fail(error, line,
                    std::string("a tag that is never closed ('") + close +
                        "')");
      if ((s_[p] == '-' || s_[p] == '+') && s_.compare(p + 1, 2, close) == 0) {
        strip = s_[p] == '-';
        plus = s_[p] == '+';
        p += 3;
        return true;
      }
      if (s_.compare(p, 2, close) == 0) {
        p += 2;
        return true;
      }
      const char c = s_[p];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t q = p;
        while (
            q < s_.size() &&
            (std::isalnum(static_cast<unsigned char>(s_[q])) || s_[q] == '_'))
          ++q;
        out.push_back({Tok::Name, s_.substr(p, q - p), line});
        p = q;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t q = p;
        bool isFloat = false;
        while (
            q < s_.size() &&
            (std::isdigit(static_cast<unsigned char>(s_[q])) || s_[q] == '_'))
          ++q;
        if (q + 1 < s_.size() && s_[q] == '.' &&
            std::isdigit(static_cast<unsigned char>(s_[q + 1]))) {
          isFloat = true;
          ++q;
          while (q < s_.size() &&
                 std::isdigit(static_cast<unsigned char>(s_[q])))
            ++q;
        }
        if (q < s_.size() && (s_[q] == 'e' || s_[q] == 'E')) {
          size_t r = q + 1;
          if (r < s_.size() && (s_[r] == '+' || s_[r] == '-'))
            ++r;
          if (r < s_.size() &&
              std::isdigit(static_cast<unsigned char>(s_[r]))) {
            isFloat = true;
            q = r;
            while (q < s_.size() &&
                   std::isdigit(static_cast<unsigned char>(s_[q])))
              ++q;
          }
        }
        std::string digits;
        for (size_t k = p; k < q; ++k)
          if (s_[k] != '_')
            digits += s_[k];
        Token t{isFloat ? Tok::Float : Tok::Int, digits, line};
        if (isFloat)
          t.f = std::strtod(digits.c_str(), nullptr);
        else
          t.i = std::strtoll(digits.c_str(), nullptr, 10);
        out.push_back(t);
        p = q;
      } else if (c == '"' || c == '\'') {
        std::string text;
        size_t q = p + 1;
        while (true) {
          if (q >= s_.size())
            return fail(error, line, "a string that is never closed");
          const char d = s_[q++];
          if (d == c)
            break;
          if (d != '\\') {
            text += d;
            continue;
          }
          if (q >= s_.size())
            return fail(error, line, "a string that is never closed");
          const char e = s_[q++];
          switch (e) {
          case 'n':
            text += '\n';
            break;
          case 't':
            text += '\t';
            break;
          case 'r':
            text += '\r';
            break;
          case '\\':
          case '\'':
          case '"':
            text += e;
            break;
          case '\n':
            break;
          default: // Python keeps an unknown escape as it is
            text += '\\';
            text += e;
          }
        }
        out.push_back({Tok::String, text, line});
        p = q;
      } else {
        static const char *const kOps[] = {
            "**", "//", "==", "!=", "<=", ">=", "+", "-", "*",
            "/",  "%",  "~",  "<",  ">",  "=",  "(", ")", "[",
            "]",  "{",  "}",  ",",  ".",  ":",  "|"};
        bool found = false;
        for (const char *op : kOps)
          if (s_.compare(p, std::strlen(op), op) == 0) {
            out.push_back({Tok::Op, op, line});
            p += std::strlen(op);
            found = true;
            break;
          }
        if (!found)
          return fail(error, line,
                      std::string("an unexpected character '") + c + "'");
      }
    }
  }
};

class Parser {
public:
  Parser(std::vector<Token> toks, std::string &error)
      : t_(std::move(toks)), error_(error) {}

  bool run(Body &out) {
    std::string ended;
    if (!body(out, {}, ended))
      return false;
    return true;
  }

private:
  std::vector<Token> t_;
  size_t p_ = 0;
  std::string &error_;
  // Nesting of blocks and expressions: bounded so that a hostile template
  // cannot exhaust the stack of the parser, the renderer or the tree's
  // destructors (real templates nest a handful of levels).
  static constexpr int kMaxNesting = 200;
  int nesting_ = 0;
  struct Nested {
    Parser &p;
    explicit Nested(Parser &p) : p(p) { ++p.nesting_; }
    ~Nested() { --p.nesting_; }
    bool tooDeep() const { return p.nesting_ > kMaxNesting; }
  };
  bool tooDeep(int line) {
    return fail(line, "blocks or expressions nested deeper than " +
                          std::to_string(kMaxNesting) + " levels");
  }
  // The depth of an expression's tree, cached in its nodes: checked as each
  // node of a chain (a + b + ..., a.b.c, x | f | g) is made, so that a long
  // chain, which the parser builds in a loop, is bounded as nesting is.
  static int depthOf(Expr *e) {
    if (!e)
      return 0;
    if (e->depth == 0) {
      int d = std::max(
          {depthOf(e->a.get()), depthOf(e->b.get()), depthOf(e->c.get())});
      for (ExprPtr &x : e->args)
        d = std::max(d, depthOf(x.get()));
      for (ExprPtr &x : e->keys)
        d = std::max(d, depthOf(x.get()));
      for (auto &kv : e->kwargs)
        d = std::max(d, depthOf(kv.second.get()));
      e->depth = d + 1;
    }
    return e->depth;
  }
  bool shallow(const ExprPtr &e, int line) {
    return depthOf(e.get()) <= kMaxNesting || tooDeep(line);
  }

  const Token &peek(size_t ahead = 0) const {
    return t_[std::min(p_ + ahead, t_.size() - 1)];
  }
  bool fail(int line, const std::string &what) {
    error_ = "line " + std::to_string(line) + ": " + what;
    return false;
  }
  bool isOp(const char *op, size_t ahead = 0) const {
    return peek(ahead).kind == Tok::Op && peek(ahead).text == op;
  }
  bool isName(const char *name, size_t ahead = 0) const {
    return peek(ahead).kind == Tok::Name && peek(ahead).text == name;
  }
  bool expectOp(const char *op) {
    if (!isOp(op))
      return fail(peek().line, std::string("expected '") + op + "', got " +
                                   describe(peek()));
    ++p_;
    return true;
  }
  static std::string describe(const Token &t) {
    switch (t.kind) {
    case Tok::BlockEnd:
      return "the end of the tag";
    case Tok::VarEnd:
      return "'}}'";
    case Tok::End:
      return "the end of the template";
    case Tok::Name:
      return "'" + t.text + "'";
    case Tok::String:
      return "a string";
    default:
      return t.text.empty() ? "something else" : "'" + t.text + "'";
    }
  }
  bool expectBlockEnd() {
    if (peek().kind != Tok::BlockEnd)
      return fail(peek().line,
                  "expected the end of the tag, got " + describe(peek()));
    ++p_;
    return true;
  }

  // Nodes up to one of the block keywords in `ends` (then `ended` holds it
  // and the parser stands after the keyword, inside its tag).
  bool body(Body &out, std::vector<const char *> ends, std::string &ended) {
    const Nested nested(*this);
    if (nested.tooDeep())
      return tooDeep(peek().line);
    while (true) {
      const Token &tok = peek();
      if (tok.kind == Tok::End) {
        if (!ends.empty())
          return fail(tok.line, std::string("the template ended inside a "
                                            "block: expected '") +
                                    ends.back() + "'");
        return true;
      }
      if (tok.kind == Tok::Text) {
        auto n = std::make_unique<Node>();
        n->kind = NodeKind::Text;
        n->line = tok.line;
        n->text = tok.text;
        out.push_back(std::move(n));
        ++p_;
        continue;
      }
      if (tok.kind == Tok::VarBegin) {
        ++p_;
        auto n = std::make_unique<Node>();
        n->kind = NodeKind::Output;
        n->line = tok.line;
        if (!tuple(n->expr))
          return false;
        if (peek().kind != Tok::VarEnd)
          return fail(peek().line, "expected '}}', got " + describe(peek()));
        ++p_;
        out.push_back(std::move(n));
        continue;
      }
      // A block tag.
      ++p_;
      const Token &kw = peek();
      if (kw.kind != Tok::Name)
        return fail(kw.line, "expected a statement, got " + describe(kw));
      for (const char *e : ends)
        if (kw.text == e) {
          ended = e;
          ++p_;
          return true;
        }
      if (kw.text.compare(0, 3, "end") == 0 || kw.text == "else" ||
          kw.text == "elif")
        return fail(kw.line, "unexpected '" + kw.text + "'" +
                                 (ends.empty() ? std::string()
                                               : std::string(", expected '") +
                                                     ends.back() + "'"));
      if (!statement(out))
        return false;
    }
  }

  bool statement(Body &out) {
    const Token kw = peek();
    ++p_;
    const std::string &k = kw.text;
    auto n = std::make_unique<Node>();
    n->line = kw.line;
    std::string ended;
    if (k == "if") {
      n->kind = NodeKind::If;
      ExprPtr c;
      if (!expression(c) || !expectBlockEnd())
        return false;
      while (true) {
        Body b;
        if (!body(b, {"elif", "else", "endif"}, ended))
          return false;
        n->branches.emplace_back(std::move(c), std::move(b));
        if (ended == "endif")
          break;
        if (ended == "else") {
          if (!expectBlockEnd())
            return false;
          Body e;
          if (!body(e, {"endif"}, ended))
            return false;
          n->branches.emplace_back(nullptr, std::move(e));
          break;
        }
        if (!expression(c) || !expectBlockEnd())
          return false;
      }
      if (!expectBlockEnd())
        return false;
    } else if (k == "for") {
      n->kind = NodeKind::For;
      if (!targets(n->targets))
        return false;
      if (!isName("in"))
        return fail(peek().line, "expected 'in' in the for loop");
      ++p_;
      // The iterable stops before a filter's 'if' (Jinja's
      // parse_tuple(with_condexpr=False)).
      if (!orExpr(n->expr))
        return false;
      if (isName("if")) {
        ++p_;
        if (!expression(n->cond))
          return false;
      }
      if (isName("recursive"))
        return fail(peek().line, "recursive loops are not implemented");
      if (!expectBlockEnd() || !body(n->body, {"else", "endfor"}, ended))
        return false;
      if (ended == "else" &&
          (!expectBlockEnd() || !body(n->orelse, {"endfor"}, ended)))
        return false;
      if (!expectBlockEnd())
        return false;
    } else if (k == "set") {
      if (peek().kind != Tok::Name)
        return fail(peek().line, "expected a name to set");
      if (isOp(".", 1)) {
        n->kind = NodeKind::Set;
        n->text = peek().text;
        p_ += 2;
        if (peek().kind != Tok::Name)
          return fail(peek().line, "expected an attribute name");
        n->attr = peek().text;
        ++p_;
        if (!expectOp("=") || !tuple(n->expr) || !expectBlockEnd())
          return false;
      } else {
        if (!targets(n->targets))
          return false;
        if (isOp("=")) {
          n->kind = NodeKind::Set;
          ++p_;
          if (!tuple(n->expr) || !expectBlockEnd())
            return false;
        } else {
          if (n->targets.size() != 1)
            return fail(kw.line, "a block set assigns one name");
          if (isOp("|"))
            return fail(peek().line, "a filtered block set is not "
                                     "implemented");
          n->kind = NodeKind::SetBlock;
          n->text = n->targets[0];
          if (!expectBlockEnd() || !body(n->body, {"endset"}, ended) ||
              !expectBlockEnd())
            return false;
        }
      }
    } else if (k == "macro") {
      n->kind = NodeKind::Macro;
      if (peek().kind != Tok::Name)
        return fail(peek().line, "expected the macro's name");
      n->text = peek().text;
      ++p_;
      if (!expectOp("("))
        return false;
      while (!isOp(")")) {
        if (peek().kind != Tok::Name)
          return fail(peek().line, "expected a parameter name");
        std::string name = peek().text;
        ++p_;
        ExprPtr def;
        if (isOp("=")) {
          ++p_;
          if (!expression(def))
            return false;
        }
        n->params.emplace_back(std::move(name), std::move(def));
        if (isOp(","))
          ++p_;
        else if (!isOp(")"))
          return fail(peek().line, "expected ',' or ')' in the parameters");
      }
      ++p_;
      if (!expectBlockEnd() || !body(n->body, {"endmacro"}, ended) ||
          !expectBlockEnd())
        return false;
    } else if (k == "break" || k == "continue") {
      n->kind = k == "break" ? NodeKind::Break : NodeKind::Continue;
      if (!expectBlockEnd())
        return false;
    } else if (k == "generation") {
      // transformers' AssistantTracker tag: its body renders as it is.
      if (!expectBlockEnd())
        return false;
      Body b;
      if (!body(b, {"endgeneration"}, ended) || !expectBlockEnd())
        return false;
      for (NodePtr &x : b)
        out.push_back(std::move(x));
      return true;
    } else {
      const bool known = k == "extends" || k == "include" || k == "import" ||
                         k == "from" || k == "block" || k == "call" ||
                         k == "filter" || k == "with" || k == "autoescape" ||
                         k == "do" || k == "trans";
      return fail(kw.line, known
                               ? "the '" + k + "' statement is not implemented"
                               : "unknown statement '" + k + "'");
    }
    out.push_back(std::move(n));
    return true;
  }

  bool targets(std::vector<std::string> &names) {
    const bool paren = isOp("(");
    if (paren)
      ++p_;
    while (true) {
      if (peek().kind != Tok::Name)
        return fail(peek().line, "expected a name, got " + describe(peek()));
      names.push_back(peek().text);
      ++p_;
      if (!isOp(","))
        break;
      ++p_;
    }
    return !paren || expectOp(")");
  }

  ExprPtr make(ExprKind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // A tuple without parentheses (a, b) becomes a list; else the expression.
  bool tuple(ExprPtr &out) {
    const int line = peek().line;
    if (!expression(out))
      return false;
    if (!isOp(","))
      return true;
    ExprPtr list = make(ExprKind::ListLit, line);
    list->args.push_back(std::move(out));
    while (isOp(",")) {
      ++p_;
      if (peek().kind == Tok::VarEnd || peek().kind == Tok::BlockEnd)
        break;
      ExprPtr e;
      if (!expression(e))
        return false;
      list->args.push_back(std::move(e));
    }
    out = std::move(list);
    return true;
  }

  bool expression(ExprPtr &out) {
    const Nested nested(*this);
    if (nested.tooDeep())
      return tooDeep(peek().line);
    if (!orExpr(out))
      return false;
    while (isName("if")) {
      const int line = peek().line;
      ++p_;
      ExprPtr cond, other;
      if (!orExpr(cond))
        return false;
      if (isName("else")) {
        ++p_;
        if (!expression(other))
          return false;
      }
      ExprPtr e = make(ExprKind::Cond, line);
      e->a = std::move(cond);
      e->b = std::move(out);
      e->c = std::move(other); // null: undefined
      out = std::move(e);
      if (!shallow(out, line))
        return false;
    }
    return true;
  }

  bool binary(ExprPtr &out, ExprKind kind, const char *word,
              bool (Parser::*next)(ExprPtr &)) {
    if (!(this->*next)(out))
      return false;
    while (isName(word)) {
      const int line = peek().line;
      ++p_;
      ExprPtr rhs;
      if (!(this->*next)(rhs))
        return false;
      ExprPtr e = make(kind, line);
      e->a = std::move(out);
      e->b = std::move(rhs);
      out = std::move(e);
      if (!shallow(out, line))
        return false;
    }
    return true;
  }
  bool orExpr(ExprPtr &out) {
    return binary(out, ExprKind::Or, "or", &Parser::andExpr);
  }
  bool andExpr(ExprPtr &out) {
    return binary(out, ExprKind::And, "and", &Parser::notExpr);
  }
  bool notExpr(ExprPtr &out) {
    if (isName("not")) {
      const int line = peek().line;
      ++p_;
      const Nested nested(*this);
      if (nested.tooDeep())
        return tooDeep(line);
      ExprPtr e = make(ExprKind::Not, line);
      if (!notExpr(e->a))
        return false;
      out = std::move(e);
      return shallow(out, line);
    }
    return compare(out);
  }
  bool compare(ExprPtr &out) {
    if (!math1(out))
      return false;
    // a < b < c is (a < b) and (b < c) in Python; chains are rare in
    // templates and refused rather than half done.
    int ops = 0;
    while (true) {
      std::string op;
      const int line = peek().line;
      if (peek().kind == Tok::Op && (isOp("==") || isOp("!=") || isOp("<") ||
                                     isOp(">") || isOp("<=") || isOp(">="))) {
        op = peek().text;
        ++p_;
      } else if (isName("in")) {
        op = "in";
        ++p_;
      } else if (isName("not") && isName("in", 1)) {
        op = "not in";
        p_ += 2;
      } else {
        return true;
      }
      if (++ops > 1)
        return fail(line, "chained comparisons are not implemented");
      ExprPtr rhs;
      if (!math1(rhs))
        return false;
      ExprPtr e = make(ExprKind::Compare, line);
      e->name = op;
      e->a = std::move(out);
      e->b = std::move(rhs);
      out = std::move(e);
    }
  }
  bool ops(ExprPtr &out, std::vector<const char *> names,
           bool (Parser::*next)(ExprPtr &)) {
    if (!(this->*next)(out))
      return false;
    while (true) {
      const char *found = nullptr;
      for (const char *n : names)
        if (isOp(n))
          found = n;
      if (!found)
        return true;
      const int line = peek().line;
      ++p_;
      ExprPtr rhs;
      if (!(this->*next)(rhs))
        return false;
      ExprPtr e = make(ExprKind::Binary, line);
      e->name = found;
      e->a = std::move(out);
      e->b = std::move(rhs);
      out = std::move(e);
      if (!shallow(out, line))
        return false;
    }
  }
  bool math1(ExprPtr &out) { return ops(out, {"+", "-"}, &Parser::concat); }
  bool concat(ExprPtr &out) { return ops(out, {"~"}, &Parser::math2); }
  bool math2(ExprPtr &out) {
    return ops(out, {"*", "/", "//", "%"}, &Parser::power);
  }
  bool power(ExprPtr &out) { return ops(out, {"**"}, &Parser::unaryF); }
  bool unaryF(ExprPtr &out) { return unary(out, true); }

  bool unary(ExprPtr &out, bool withFilter) {
    const int line = peek().line;
    const Nested nested(*this);
    if (nested.tooDeep())
      return tooDeep(line);
    if (isOp("-") || isOp("+")) {
      const bool neg = isOp("-");
      ++p_;
      ExprPtr inner;
      if (!unary(inner, false))
        return false;
      if (neg) {
        out = make(ExprKind::Neg, line);
        out->a = std::move(inner);
      } else {
        out = std::move(inner);
      }
    } else if (!primary(out)) {
      return false;
    }
    if (!postfix(out))
      return false;
    return !withFilter || filters(out);
  }

  bool callArgs(Expr &e) {
    // After '(': positional then keyword arguments up to ')'.
    while (!isOp(")")) {
      if (peek().kind == Tok::Name && isOp("=", 1)) {
        std::string name = peek().text;
        p_ += 2;
        ExprPtr v;
        if (!expression(v))
          return false;
        e.kwargs.emplace_back(std::move(name), std::move(v));
      } else {
        if (isOp("*"))
          return fail(peek().line, "*args in a call are not implemented");
        ExprPtr v;
        if (!expression(v))
          return false;
        e.args.push_back(std::move(v));
      }
      if (isOp(","))
        ++p_;
      else if (!isOp(")"))
        return fail(peek().line,
                    "expected ',' or ')' in the call, got " + describe(peek()));
    }
    ++p_;
    return true;
  }

  bool filters(ExprPtr &out) {
    while (true) {
      if (isOp("|")) {
        ++p_;
        if (peek().kind != Tok::Name)
          return fail(peek().line, "expected a filter name after '|'");
        const Token name = peek();
        ++p_;
        if (!isFilter(name.text))
          return fail(name.line,
                      "the filter '" + name.text + "' is not implemented");
        ExprPtr e = make(ExprKind::Filter, name.line);
        e->name = name.text;
        e->a = std::move(out);
        if (isOp("(")) {
          ++p_;
          if (!callArgs(*e))
            return false;
        }
        out = std::move(e);
      } else if (isName("is")) {
        const int line = peek().line;
        ++p_;
        ExprPtr e = make(ExprKind::Test, line);
        if (isName("not")) {
          e->negated = true;
          ++p_;
        }
        if (peek().kind != Tok::Name)
          return fail(peek().line, "expected a test name after 'is'");
        e->name = peek().text;
        if (!isTest(e->name))
          return fail(peek().line,
                      "the test '" + e->name + "' is not implemented");
        ++p_;
        e->a = std::move(out);
        if (isOp("(")) {
          ++p_;
          if (!callArgs(*e))
            return false;
        } else if (peek().kind == Tok::String || peek().kind == Tok::Int ||
                   peek().kind == Tok::Float ||
                   (peek().kind == Tok::Name && !isName("and") &&
                    !isName("or") && !isName("else") && !isName("if") &&
                    !isName("in") && !isName("is") && !isName("not"))) {
          // `x is divisibleby 3`, `x is sameas none`: one argument.
          ExprPtr arg;
          if (!primary(arg) || !postfix(arg))
            return false;
          e->args.push_back(std::move(arg));
        }
        out = std::move(e);
      } else {
        return true;
      }
      if (!shallow(out, peek().line))
        return false;
    }
  }

  bool postfix(ExprPtr &out) {
    while (true) {
      const int line = peek().line;
      if (isOp(".")) {
        ++p_;
        if (peek().kind != Tok::Name && peek().kind != Tok::Int)
          return fail(peek().line, "expected an attribute name after '.'");
        ExprPtr e = make(
            peek().kind == Tok::Int ? ExprKind::Item : ExprKind::Attr, line);
        if (peek().kind == Tok::Int) {
          e->b = make(ExprKind::Literal, line);
          e->b->value = Value::integer(peek().i);
        }
        e->name = peek().text;
        ++p_;
        e->a = std::move(out);
        out = std::move(e);
      } else if (isOp("[")) {
        ++p_;
        ExprPtr parts[3];
        bool slice = false;
        for (int k = 0; k < 3; ++k) {
          if (!isOp(":") && !isOp("]") && !expression(parts[k]))
            return false;
          if (isOp(":") && k < 2) {
            slice = true;
            ++p_;
            continue;
          }
          break;
        }
        if (!expectOp("]"))
          return false;
        ExprPtr e = make(slice ? ExprKind::Slice : ExprKind::Item, line);
        e->a = std::move(out);
        e->b = std::move(parts[0]);
        e->c = std::move(parts[1]);
        if (slice && parts[2])
          e->args.push_back(std::move(parts[2]));
        if (!slice && !e->b)
          return fail(line, "expected a subscript");
        out = std::move(e);
      } else if (isOp("(")) {
        ++p_;
        ExprPtr e = make(ExprKind::Call, line);
        e->a = std::move(out);
        if (!callArgs(*e))
          return false;
        out = std::move(e);
      } else {
        return true;
      }
      if (!shallow(out, line))
        return false;
    }
  }

  bool primary(ExprPtr &out) {
    const Token tok = peek();
    const int line = tok.line;
    switch (tok.kind) {
    case Tok::String: {
      // Adjacent strings are one ("a" "b").
      std::string s;
      while (peek().kind == Tok::String) {
        s += peek().text;
        ++p_;
      }
      out = make(ExprKind::Literal, line);
      out->value = Value::string(std::move(s));
      return true;
    }
    case Tok::Int:
    case Tok::Float:
      ++p_;
      out = make(ExprKind::Literal, line);
      out->value =
          tok.kind == Tok::Int ? Value::integer(tok.i) : Value::number(tok.f);
      return true;
    case Tok::Name:
      ++p_;
      out = make(ExprKind::Literal, line);
      if (tok.text == "true" || tok.text == "True")
        out->value = Value::boolean(true);
      else if (tok.text == "false" || tok.text == "False")
        out->value = Value::boolean(false);
      else if (tok.text == "none" || tok.text == "None")
        out->value = Value::none();
      else {
        out->kind = ExprKind::Name;
        out->name = tok.text;
      }
      return true;
    case Tok::Op:
      if (tok.text == "(") {
        ++p_;
        if (isOp(")")) { // the empty tuple
          ++p_;
          out = make(ExprKind::ListLit, line);
          return true;
        }
        ExprPtr e;
        if (!expression(e))
          return false;
        if (isOp(",")) {
          ExprPtr list = make(ExprKind::ListLit, line);
          list->args.push_back(std::move(e));
          while (isOp(",")) {
            ++p_;
            if (isOp(")"))
              break;
            ExprPtr x;
            if (!expression(x))
              return false;
            list->args.push_back(std::move(x));
          }
          e = std::move(list);
        }
        if (!expectOp(")"))
          return false;
        out = std::move(e);
        return true;
      }
      if (tok.text == "[") {
        ++p_;
        out = make(ExprKind::ListLit, line);
        while (!isOp("]")) {
          ExprPtr x;
          if (!expression(x))
            return false;
          out->args.push_back(std::move(x));
          if (isOp(","))
            ++p_;
          else if (!isOp("]"))
            return fail(peek().line, "expected ',' or ']' in the list");
        }
        ++p_;
        return true;
      }
      if (tok.text == "{") {
        ++p_;
        out = make(ExprKind::DictLit, line);
        while (!isOp("}")) {
          ExprPtr k, v;
          if (!expression(k) || !expectOp(":") || !expression(v))
            return false;
          out->keys.push_back(std::move(k));
          out->args.push_back(std::move(v));
          if (isOp(","))
            ++p_;
          else if (!isOp("}"))
            return fail(peek().line, "expected ',' or '}' in the dict");
        }
        ++p_;
        return true;
      }
      break;
    default:
      break;
    }
    return fail(line, "expected an expression, got " + describe(tok));
  }
};

} // namespace

bool Template::parse(const std::string &source, std::string &error) {
  std::vector<Token> tokens;
  body_.clear();
  if (!Lexer(source).run(tokens, error))
    return false;
  return Parser(std::move(tokens), error).run(body_);
}

} // namespace stc::rt::tmpl
