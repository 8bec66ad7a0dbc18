// ChatTemplate: the rendering with the messages' added tokens marked. Every
// occurrence of an added token's text in a string of the messages or tools is
// preceded by a marker (U+FDD0, a noncharacter no text carries) before the
// template runs; the template's string operations leave the marker beside its
// token, and after rendering each marker is taken out and the token it
// precedes is recorded as text.
#include "ChatTemplate.h"

#include <algorithm>

namespace stc::rt {

const char *const kChatMlTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' "
    "+ message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if "
    "add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

namespace {

const std::string kMark = "\xEF\xB7\x90"; // U+FDD0

// The longest of `added` that `s` holds at `at`, or 0.
size_t addedAt(const std::string &s, size_t at,
               const std::vector<std::string> &added) {
  for (const std::string &t : added) // longest first
    if (!t.empty() && s.compare(at, t.size(), t) == 0)
      return t.size();
  return 0;
}

tmpl::Value marked(const tmpl::Value &v,
                   const std::vector<std::string> &added) {
  switch (v.kind) {
  case tmpl::Kind::String: {
    std::string out;
    for (size_t k = 0; k < v.s.size();) {
      const size_t n = addedAt(v.s, k, added);
      if (n) {
        out += kMark + v.s.substr(k, n);
        k += n;
      } else {
        out += v.s[k++];
      }
    }
    return tmpl::Value::string(out);
  }
  case tmpl::Kind::List: {
    tmpl::Value l = tmpl::Value::newList();
    for (const tmpl::Value &x : *v.list)
      l.list->push_back(marked(x, added));
    return l;
  }
  case tmpl::Kind::Dict: {
    tmpl::Value d = tmpl::Value::newDict();
    for (const auto &kv : v.dict->items)
      d.dict->items.emplace_back(kv.first, marked(kv.second, added));
    return d;
  }
  default:
    return v;
  }
}

} // namespace

bool ChatTemplate::init(const std::string &source, std::string &error) {
  if (!template_.parse(source.empty() ? kChatMlTemplate : source, error)) {
    error = "chat template " + error;
    return false;
  }
  return true;
}

bool ChatTemplate::render(const tmpl::Value &messages, const tmpl::Value &tools,
                          bool addGenerationPrompt, const Tokenizer *tokenizer,
                          std::string &text, std::vector<bool> *blocked,
                          std::string &error) const {
  const std::vector<std::string> added =
      tokenizer ? tokenizer->addedTokens() : std::vector<std::string>();
  // What transformers' apply_chat_template passes: the conversation, the
  // tools (None without), the flag, and the special tokens' texts.
  tmpl::Value context = tmpl::Value::newDict();
  context.dict->set("messages", marked(messages, added));
  context.dict->set("tools", tools.isUndefined() ? tmpl::Value::none()
                                                 : marked(tools, added));
  context.dict->set("documents", tmpl::Value::none());
  context.dict->set("add_generation_prompt",
                    tmpl::Value::boolean(addGenerationPrompt));
  if (tokenizer) {
    const TokenizerData &d = tokenizer->data();
    if (d.bos >= 0)
      context.dict->set("bos_token", tmpl::Value::string(d.tokens[d.bos]));
    if (!d.eos.empty())
      context.dict->set("eos_token", tmpl::Value::string(d.tokens[d.eos[0]]));
    if (d.pad >= 0)
      context.dict->set("pad_token", tmpl::Value::string(d.tokens[d.pad]));
  }
  std::string raw;
  if (!template_.render(context, raw, error)) {
    error = "chat template " + error;
    return false;
  }
  text.clear();
  if (blocked)
    blocked->clear();
  for (size_t k = 0; k < raw.size();) {
    if (raw.compare(k, kMark.size(), kMark) == 0) {
      k += kMark.size();
      const size_t n = addedAt(raw, k, added);
      text += raw.substr(k, n);
      if (blocked)
        blocked->resize(text.size(), true);
      k += n;
      continue;
    }
    text += raw[k++];
    if (blocked)
      blocked->resize(text.size(), false);
  }
  return true;
}

bool ChatTemplate::tokens(const tmpl::Value &messages, const tmpl::Value &tools,
                          bool addGenerationPrompt, const Tokenizer &tokenizer,
                          std::vector<int32_t> &ids, std::string &error) const {
  std::string text;
  std::vector<bool> blocked;
  const size_t before = ids.size();
  if (!render(messages, tools, addGenerationPrompt, &tokenizer, text, &blocked,
              error) ||
      !tokenizer.encode(text, true, ids, error, &blocked))
    return false;
  // As transformers tokenizes a rendered chat (add_special_tokens=False):
  // a bos only where the template wrote one.
  const TokenizerData &d = tokenizer.data();
  if (d.addBos && d.bos >= 0 && ids.size() > before && ids[before] == d.bos)
    ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(before));
  return true;
}

} // namespace stc::rt
