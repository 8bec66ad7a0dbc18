// Template: a Hugging Face chat template, rendered as transformers'
// apply_chat_template renders it (Jinja in an ImmutableSandboxedEnvironment
// with trim_blocks and lstrip_blocks, the loopcontrols extension, the
// `generation` tag, and the globals raise_exception and strftime_now;
// `tojson` as transformers redefines it: json.dumps without HTML escaping,
// keys in their order). What Jinja has and this does not (template
// inheritance, includes, call blocks, recursive loops, filters outside the
// list in Builtins.cpp) is refused when the template is parsed, naming the
// construct and its line: never rendered approximately.
#pragma once

#include "template/Ast.h"
#include "template/Value.h"

#include <string>

namespace stc::rt::tmpl {

class Template {
public:
  // False with "line N: what" for a syntax error or a construct this does
  // not implement.
  bool parse(const std::string &source, std::string &error);
  // Renders with the variables of `context` (a dict: messages, tools,
  // add_generation_prompt, bos_token, ...); false with "line N: what" for
  // raise_exception's message, an undefined value used, a type error.
  bool render(const Value &context, std::string &out, std::string &error) const;

private:
  Body body_;
};

} // namespace stc::rt::tmpl
