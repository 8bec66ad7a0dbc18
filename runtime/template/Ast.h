// Ast: a parsed chat template (Parser.cpp builds it, Render.cpp runs it).
// Expressions and statements carry the template line they came from, for
// errors.
#pragma once

#include "template/Value.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace stc::rt::tmpl {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind : uint8_t {
  Literal, // value
  Name,    // name
  Attr,    // a.name
  Item,    // a[b]
  Slice,   // a[b:c:d] (absent parts null)
  Call,    // a(args, kwargs)
  Filter,  // a | name(args, kwargs)
  Test,    // a is [not] name(args)
  Neg,     // -a
  Not,     // not a
  Binary,  // a op b: + - * / // % ** ~
  Compare, // a op b: == != < > <= >= in, not in
  And,     // a and b
  Or,      // a or b
  Cond,    // b if a else c
  ListLit, // [args]
  DictLit, // {keys[i]: args[i]}
};

struct Expr {
  ExprKind kind = ExprKind::Literal;
  int line = 0;
  Value value;      // Literal
  std::string name; // Name, Attr, Filter, Test, Binary/Compare operator
  ExprPtr a, b, c;
  std::vector<ExprPtr> args, keys;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  bool negated = false; // Test: is not
  int depth = 0;        // the tree's depth from here (the parser's check)
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

enum class NodeKind : uint8_t {
  Text,     // text
  Output,   // {{ expr }}
  If,       // branches: (condition, body); the else branch's condition null
  For,      // {% for targets in expr [if cond] %} body {% else %} orelse
  Set,      // {% set targets = expr %} or {% set ns.attr = expr %}
  SetBlock, // {% set target %} body {% endset %}
  Macro,    // {% macro name(params) %} body {% endmacro %}
  Break,
  Continue,
};

struct Node {
  NodeKind kind = NodeKind::Text;
  int line = 0;
  std::string text;                 // Text; Set/SetBlock/Macro: the name
  std::string attr;                 // Set: ns.attr's attribute
  std::vector<std::string> targets; // For, Set: the names assigned
  ExprPtr expr, cond;               // For: iterable and filter; Set: value
  std::vector<std::pair<ExprPtr, Body>> branches; // If
  Body body, orelse;                              // For, SetBlock, Macro
  // Macro: parameter names and defaults (null: required).
  std::vector<std::pair<std::string, ExprPtr>> params;
};

} // namespace stc::rt::tmpl
