// The C API's text functions (stc_runtime.h): tokenizer, ChatML and the
// generation loop that streams whole UTF-8 characters to a callback.
#include "stc_runtime.h"

#include "CApiModel.h"
#include "RuntimeDetail.h"

#include <algorithm>
#include <cstring>

namespace {

namespace tmpl = stc::rt::tmpl;

bool needTokenizer(stc_model *m) {
  if (!m->hasTokenizer)
    m->error = m->runtime.file().path() +
               ": compiled without a tokenizer (its checkpoint had none)";
  return m->hasTokenizer;
}

// Copies `s` into buf[0..size) NUL-terminated, returns its full length.
int copyOut(const std::string &s, char *buf, size_t size) {
  if (buf && size > 0) {
    const size_t n = std::min(s.size(), size - 1);
    std::memcpy(buf, s.data(), n);
    buf[n] = '\0';
  }
  return static_cast<int>(s.size());
}

// The template a chat call uses: ChatML when forced, else the model's (or
// null with the reason it cannot be used).
const stc::rt::ChatTemplate *chatTemplate(stc_model *m, int flags) {
  if (!needTokenizer(m))
    return nullptr;
  if (flags & STC_CHAT_FORCE_CHATML) {
    static const stc::rt::ChatTemplate chatMl = [] {
      stc::rt::ChatTemplate t;
      std::string unused;
      t.init("", unused);
      return t;
    }();
    return &chatMl;
  }
  if (!m->chatError.empty()) {
    m->error = m->chatError;
    return nullptr;
  }
  return &m->chat;
}

bool renderChat(stc_model *m, const tmpl::Value &msgs, const tmpl::Value &tools,
                int flags, std::string &text) {
  const stc::rt::ChatTemplate *t = chatTemplate(m, flags);
  return t && t->render(msgs, tools, flags & STC_CHAT_ADD_GENERATION_PROMPT,
                        &m->tokenizer, text, nullptr, m->error);
}

// The messages (an array) and tools (an array, or absent) of a chat call.
bool conversation(stc_model *m, const char *messagesJson, const char *toolsJson,
                  tmpl::Value &msgs, tmpl::Value &tools) {
  std::string why;
  if (!messagesJson || !tmpl::parseJson(messagesJson, msgs, why) ||
      msgs.kind != tmpl::Kind::List) {
    m->error = "messages_json: " + (messagesJson
                                        ? why.empty() ? "not a JSON array" : why
                                        : std::string("null"));
    return false;
  }
  tools = tmpl::Value::undefined();
  if (toolsJson && (!tmpl::parseJson(toolsJson, tools, why) ||
                    tools.kind != tmpl::Kind::List)) {
    m->error = "tools_json: " + (why.empty() ? "not a JSON array" : why);
    return false;
  }
  return true;
}

} // namespace

extern "C" {

int stc_has_tokenizer(const stc_model *m) { return m->hasTokenizer ? 1 : 0; }

int stc_tokenize(stc_model *m, const char *text, size_t len, int32_t *ids,
                 int max_ids, int parse_special) {
  if (!needTokenizer(m))
    return -1;
  std::vector<int32_t> out;
  if (!m->tokenizer.encode(std::string(text, len), parse_special != 0, out,
                           m->error))
    return -1;
  if (ids && max_ids > 0)
    std::copy_n(out.begin(), std::min<size_t>(out.size(), max_ids), ids);
  return static_cast<int>(out.size());
}

int stc_token_to_piece(stc_model *m, int32_t id, char *buf, size_t size) {
  if (!needTokenizer(m))
    return -1;
  if (id < 0 || id >= m->tokenizer.size()) {
    m->error = "token id " + std::to_string(id) +
               " is outside the vocabulary [0, " +
               std::to_string(m->tokenizer.size()) + ")";
    return -1;
  }
  const std::string &p = m->tokenizer.piece(id);
  if (buf)
    std::memcpy(buf, p.data(), std::min(p.size(), size));
  return static_cast<int>(p.size());
}

int stc_detokenize(stc_model *m, const int32_t *ids, int n, char *buf,
                   size_t size) {
  if (!needTokenizer(m))
    return -1;
  for (int i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= m->tokenizer.size()) {
      m->error = "token id " + std::to_string(ids[i]) +
                 " is outside the vocabulary [0, " +
                 std::to_string(m->tokenizer.size()) + ")";
      return -1;
    }
  return copyOut(m->tokenizer.decode(ids, n > 0 ? n : 0), buf, size);
}

int32_t stc_special_token(stc_model *m, stc_special which, int index) {
  if (!m->hasTokenizer)
    return -1;
  const stc::rt::TokenizerData &d = m->tokenizer.data();
  switch (which) {
  case STC_TOKEN_BOS:
    return d.bos;
  case STC_TOKEN_EOS:
    return index >= 0 && index < static_cast<int>(d.eos.size()) ? d.eos[index]
                                                                : -1;
  case STC_TOKEN_IM_START:
    return m->tokenizer.find("<|im_start|>");
  case STC_TOKEN_IM_END:
    return m->tokenizer.find("<|im_end|>");
  case STC_TOKEN_PAD:
    return d.pad;
  }
  return -1;
}

int stc_chat_format(stc_model *m, const stc_message *messages, int n, int flags,
                    char *buf, size_t size) {
  tmpl::Value msgs = tmpl::Value::newList();
  for (int i = 0; i < n; ++i) {
    tmpl::Value msg = tmpl::Value::newDict();
    msg.dict->set(
        "role", tmpl::Value::string(messages[i].role ? messages[i].role : ""));
    msg.dict->set(
        "content",
        tmpl::Value::string(messages[i].content ? messages[i].content : ""));
    msgs.list->push_back(std::move(msg));
  }
  std::string text;
  if (!renderChat(m, msgs, tmpl::Value::undefined(), flags, text))
    return -1;
  return copyOut(text, buf, size);
}

int stc_chat_template(stc_model *m, const char *messages_json,
                      const char *tools_json, int flags, char *buf,
                      size_t size) {
  tmpl::Value msgs, tools;
  std::string text;
  if (!conversation(m, messages_json, tools_json, msgs, tools) ||
      !renderChat(m, msgs, tools, flags, text))
    return -1;
  return copyOut(text, buf, size);
}

int stc_chat_tokens(stc_model *m, const char *messages_json,
                    const char *tools_json, int flags, int32_t *ids,
                    int max_ids) {
  tmpl::Value msgs, tools;
  const stc::rt::ChatTemplate *t;
  std::vector<int32_t> out;
  if (!conversation(m, messages_json, tools_json, msgs, tools) ||
      !(t = chatTemplate(m, flags)) ||
      !t->tokens(msgs, tools, flags & STC_CHAT_ADD_GENERATION_PROMPT,
                 m->tokenizer, out, m->error))
    return -1;
  if (ids && max_ids > 0)
    std::copy_n(out.begin(), std::min<size_t>(out.size(), max_ids), ids);
  return static_cast<int>(out.size());
}

int stc_set_chat_template(stc_model *m, const char *source) {
  if (!needTokenizer(m))
    return -1;
  const std::string text =
      !source || std::string(source) == "chatml" ? "" : source;
  stc::rt::ChatTemplate t;
  if (!t.init(text, m->error))
    return -1;
  m->chat = std::move(t);
  m->chatError.clear();
  return 0;
}

void stc_default_sampling(const stc_model *m, float *temperature, int *top_k,
                          float *top_p) {
  // The model card's (spec section 4) where the checkpoint gave none.
  float t = 0.6f, p = 0.95f;
  int k = 20;
  if (m->hasTokenizer) {
    const stc::rt::TokenizerData &d = m->tokenizer.data();
    if (d.temperature >= 0)
      t = d.temperature;
    if (d.topP >= 0)
      p = d.topP;
    if (d.topK >= 0)
      k = d.topK;
  }
  *temperature = t;
  *top_k = k;
  *top_p = p;
}

int stc_generate(stc_model *m, const int32_t *prompt, int n_prompt,
                 int max_tokens, stc_sampler *sampler,
                 stc_piece_callback callback, void *user, int32_t *generated,
                 int max_generated) {
  stc_generation_stats &st = m->lastGeneration;
  st = stc_generation_stats{};
  if (!needTokenizer(m))
    return STC_STOP_ERROR;
  stc::rt::Runtime &rt = m->runtime;
  if (n_prompt > 0) {
    if (rt.position() + n_prompt > rt.maxContext()) {
      m->error =
          "the prompt of " + std::to_string(n_prompt) +
          " tokens does not fit the context: " + std::to_string(rt.position()) +
          " of " + std::to_string(rt.maxContext()) + " tokens are used";
      return STC_STOP_CONTEXT_FULL;
    }
    const double t0 = stc::rt::seconds();
    if (!rt.eval(prompt, n_prompt, nullptr, m->error))
      return STC_STOP_ERROR;
    st.prompt_tokens = n_prompt;
    st.prompt_seconds = stc::rt::seconds() - t0;
  } else if (rt.position() == 0) {
    m->error = "nothing to continue: the prompt is empty and so is the "
               "context";
    return STC_STOP_ERROR;
  }
  const double t0 = stc::rt::seconds();
  stc::rt::Utf8Stream stream;
  bool stopped = false;
  auto emit = [&](const std::string &text) {
    if (!text.empty() && callback && !stopped)
      stopped = callback(text.data(), text.size(), user) != 0;
  };
  int reason = STC_STOP_LIMIT;
  for (int i = 0; max_tokens < 0 || i < max_tokens; ++i) {
    const int32_t next = stc_sample(sampler, rt.lastLogits(), rt.vocab());
    if (m->tokenizer.isEos(next)) {
      reason = STC_STOP_EOS;
      break;
    }
    if (rt.position() >= rt.maxContext()) {
      m->error = "the context is full (" + std::to_string(rt.maxContext()) +
                 " tokens)";
      reason = STC_STOP_CONTEXT_FULL;
      break;
    }
    // In the context before it is passed on: what was shown is what the
    // model saw.
    if (!rt.eval(&next, 1, nullptr, m->error)) {
      reason = STC_STOP_ERROR;
      break;
    }
    if (generated && st.generated_tokens < max_generated)
      generated[st.generated_tokens] = next;
    ++st.generated_tokens;
    emit(stream.push(m->tokenizer.piece(next)));
    if (stopped) {
      reason = STC_STOP_CALLBACK;
      break;
    }
  }
  emit(stream.finish()); // an unfinished character, as U+FFFD
  st.generate_seconds = stc::rt::seconds() - t0;
  return reason;
}

stc_text_stream *stc_text_stream_new(stc_model *m) {
  if (!needTokenizer(m))
    return nullptr;
  auto *s = new stc_text_stream();
  s->model = m;
  return s;
}

int stc_text_stream_push(stc_text_stream *s, int32_t id, char *buf,
                         size_t size) {
  stc_model *m = s->model;
  if (id < 0 || id >= m->tokenizer.size()) {
    m->error = "token id " + std::to_string(id) +
               " is outside the vocabulary [0, " +
               std::to_string(m->tokenizer.size()) + ")";
    return -1;
  }
  s->ready += s->stream.push(m->tokenizer.piece(id));
  return stc_text_stream_take(s, buf, size);
}

int stc_text_stream_take(stc_text_stream *s, char *buf, size_t size) {
  const int n = static_cast<int>(s->ready.size());
  if (buf && size > s->ready.size()) {
    copyOut(s->ready, buf, size);
    s->ready.clear();
  }
  return n;
}

int stc_text_stream_finish(stc_text_stream *s, char *buf, size_t size) {
  s->ready += s->stream.finish();
  return stc_text_stream_take(s, buf, size);
}

void stc_text_stream_free(stc_text_stream *s) { delete s; }

void stc_last_generation_stats(const stc_model *m, stc_generation_stats *out) {
  *out = m->lastGeneration;
}

} // extern "C"
