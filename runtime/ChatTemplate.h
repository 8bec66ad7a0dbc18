// ChatTemplate: a model's chat template (runtime/template: Jinja as
// transformers renders it) applied to a conversation, and the prompt's token
// ids with the control tokens kept apart: only the tokens the template itself
// writes become control ids; an added token's text inside a message (a user
// typing <|im_end|> or <tool_call>) is text, as the model's tokenizer reads
// plain text.
#pragma once

#include "Tokenizer.h"
#include "template/Template.h"
#include "template/Value.h"

#include <string>
#include <vector>

namespace stc::rt {

// ChatML, as transformers writes it for a ChatML model without a template.
extern const char *const kChatMlTemplate;

class ChatTemplate {
public:
  // `source`: the template's text ("": ChatML). False with "chat template
  // line N: what" for one that does not parse or uses what is not
  // implemented.
  bool init(const std::string &source, std::string &error);
  // The prompt of `messages` (a list of message dicts: role, content,
  // tool_calls, ...) and `tools` (a list of tool definitions, or none), with
  // the tokenizer's bos_token and eos_token (none without a tokenizer).
  // `blocked` (may be null) marks the byte offsets of `text` where an added
  // token written by a message starts or continues: Tokenizer::encode does
  // not match them.
  bool render(const tmpl::Value &messages, const tmpl::Value &tools,
              bool addGenerationPrompt, const Tokenizer *tokenizer,
              std::string &text, std::vector<bool> *blocked,
              std::string &error) const;
  // render, then the ids (control tokens only where the template wrote them).
  bool tokens(const tmpl::Value &messages, const tmpl::Value &tools,
              bool addGenerationPrompt, const Tokenizer &tokenizer,
              std::vector<int32_t> &ids, std::string &error) const;

private:
  tmpl::Template template_;
};

} // namespace stc::rt
