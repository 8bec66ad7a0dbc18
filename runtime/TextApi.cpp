// The C API's text functions (stc_runtime.h): tokenizer, ChatML and the
// generation loop that streams whole UTF-8 characters to a callback.
#include "stc_runtime.h"

#include "CApiModel.h"
#include "ChatFormat.h"
#include "RuntimeDetail.h"

#include <algorithm>
#include <cstring>

namespace {

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
  if (!needTokenizer(m))
    return -1;
  if (!(flags & STC_CHAT_FORCE_CHATML) &&
      !stc::rt::isChatMlTemplate(m->tokenizer.data().chatTemplate)) {
    m->error = "the model's chat template is not ChatML (use "
               "STC_CHAT_FORCE_CHATML, stc-run --chat-template chatml, to "
               "format ChatML anyway)";
    return -1;
  }
  std::vector<std::pair<std::string, std::string>> msgs;
  for (int i = 0; i < n; ++i)
    msgs.emplace_back(messages[i].role ? messages[i].role : "",
                      messages[i].content ? messages[i].content : "");
  std::string text;
  if (!stc::rt::formatChatMl(msgs, flags & STC_CHAT_ADD_GENERATION_PROMPT, text,
                             m->error))
    return -1;
  return copyOut(text, buf, size);
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

void stc_last_generation_stats(const stc_model *m, stc_generation_stats *out) {
  *out = m->lastGeneration;
}

} // extern "C"
