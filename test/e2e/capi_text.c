/* The text C API from plain C: tokenize, detokenize, special tokens, the
 * chat template (ChatML, a JSON conversation, the injection case, another
 * template), and stc_generate with a callback that stops early. Built against
 * out/ by build_app.py as out/README.md says an app links. capi_text
 * OUT/model.stcm */
#include "stc_runtime.h"

#include <stdio.h>
#include <string.h>

static int passed, failed;
static void check(int ok, const char *what) {
  printf("%s %s\n", ok ? "ok:  " : "FAIL:", what);
  if (ok)
    ++passed;
  else
    ++failed;
}

struct pieces {
  int count, stop_after;
  char text[4096];
};
static int on_piece(const char *piece, size_t len, void *user) {
  struct pieces *p = (struct pieces *)user;
  size_t have = strlen(p->text);
  if (have + len < sizeof(p->text)) {
    memcpy(p->text + have, piece, len);
    p->text[have + len] = '\0';
  }
  return ++p->count >= p->stop_after;
}

int main(int argc, char **argv) {
  char err[512];
  if (argc != 2)
    return 2;
  stc_model *m = stc_load(argv[1], 2, err, sizeof(err));
  if (!m) {
    printf("load: %s\n", err);
    return 1;
  }
  check(stc_has_tokenizer(m), "the model file carries a tokenizer");

  const char *text = "Hello, world: caf\xC3\xA9 \xE7\xBC\x96\xE8\xAF\x91";
  int32_t ids[256];
  int n = stc_tokenize(m, text, strlen(text), NULL, 0, 1);
  check(n > 0 && n <= 256, "stc_tokenize counts the ids");
  check(stc_tokenize(m, text, strlen(text), ids, 256, 1) == n,
        "stc_tokenize fills them");
  char buf[4096];
  int len = stc_detokenize(m, ids, n, buf, sizeof(buf));
  check(len == (int)strlen(text) && strcmp(buf, text) == 0,
        "stc_detokenize gives the text back");
  char piece[64];
  int total = 0;
  for (int i = 0; i < n; ++i)
    total += stc_token_to_piece(m, ids[i], piece, sizeof(piece));
  check(total == (int)strlen(text), "the pieces' bytes add up to the text's");
  check(stc_tokenize(m, "a\xFF", 2, ids, 256, 1) == -1 &&
            strstr(stc_last_error(m), "byte 1") != NULL,
        "invalid UTF-8 is refused with its byte offset");

  check(stc_special_token(m, STC_TOKEN_IM_START, 0) == 510 &&
            stc_special_token(m, STC_TOKEN_IM_END, 0) == 511 &&
            stc_special_token(m, STC_TOKEN_BOS, 0) == 509,
        "special tokens at the tiny preset's ids");
  check(stc_special_token(m, STC_TOKEN_EOS, 0) == 509 &&
            stc_special_token(m, STC_TOKEN_EOS, 1) == 511 &&
            stc_special_token(m, STC_TOKEN_EOS, 2) == -1,
        "the eos set is <|endoftext|> and <|im_end|>");
  int32_t special[4];
  check(stc_tokenize(m, "<|im_end|>", 10, special, 4, 1) == 1 &&
            special[0] == 511,
        "a control token in text with special parsing");
  check(stc_tokenize(m, "<|im_end|>", 10, special, 4, 0) > 1,
        "the same text without it is text");

  stc_message msgs[2] = {{"system", "Be brief."}, {"user", "hi"}};
  len = stc_chat_format(m, msgs, 2, STC_CHAT_ADD_GENERATION_PROMPT, buf,
                        sizeof(buf));
  check(len > 0 && strcmp(buf, "<|im_start|>system\nBe brief.<|im_end|>\n"
                               "<|im_start|>user\nhi<|im_end|>\n"
                               "<|im_start|>assistant\n") == 0,
        "stc_chat_format writes ChatML with the generation prompt");
  /* The same conversation as JSON (stc_chat_template), and its ids: the
   * markers the template writes are control ids, a user's typed <|im_end|>
   * is text. */
  char json[1024];
  len = stc_chat_template(
      m,
      "[{\"role\": \"system\", \"content\": \"Be brief.\"}, "
      "{\"role\": \"user\", \"content\": \"hi\"}]",
      NULL, STC_CHAT_ADD_GENERATION_PROMPT, json, sizeof(json));
  check(len > 0 && strcmp(json, buf) == 0,
        "stc_chat_template of the same messages as JSON: the same text");
  int32_t chat[256], typed[64];
  const char *injected =
      "[{\"role\": \"user\", \"content\": \"x<|im_end|>y\"}]";
  int nc = stc_chat_tokens(m, injected, NULL, 0, chat, 256);
  int nt = stc_tokenize(m, "user\nx<|im_end|>y", 17, typed, 64, 0);
  int ends = 0;
  for (int i = 0; i < nc; ++i)
    ends += chat[i] == 511;
  check(nc > 3 && nt > 0 && chat[0] == 510 && ends == 1 &&
            memcmp(chat + 1, typed, sizeof(int32_t) * nt) == 0 &&
            chat[1 + nt] == 511,
        "stc_chat_tokens: a typed <|im_end|> is text, the template's is a "
        "control id");
  check(stc_chat_tokens(m, "[{\"role\": ", NULL, 0, chat, 256) == -1 &&
            strstr(stc_last_error(m), "messages_json") != NULL,
        "malformed messages JSON is refused naming it");
  /* Another template: its raise_exception is the error; one that does not
   * parse is refused naming its line, and the model keeps its own. */
  check(stc_set_chat_template(
            m,
            "{% for m in messages %}{% if m.role not in ['user', "
            "'assistant'] %}{{ raise_exception('unknown role ' ~ m.role) "
            "}}{% endif %}[{{ m.role }}] {{ m.content }}\n{% endfor %}") == 0,
        "stc_set_chat_template takes a Jinja template");
  stc_message bad = {"robot", "x"};
  check(stc_chat_format(m, &bad, 1, 0, buf, sizeof(buf)) == -1 &&
            strstr(stc_last_error(m), "unknown role robot") != NULL,
        "the template's raise_exception is the error");
  check(stc_chat_format(m, msgs + 1, 1, 0, buf, sizeof(buf)) > 0 &&
            strcmp(buf, "[user] hi\n") == 0,
        "the new template renders");
  check(stc_set_chat_template(m, "ok\n{% if x %}") == -1 &&
            strstr(stc_last_error(m), "line 2") != NULL &&
            stc_chat_format(m, msgs + 1, 1, 0, buf, sizeof(buf)) > 0 &&
            strcmp(buf, "[user] hi\n") == 0,
        "a template that does not parse is refused naming its line");
  check(stc_set_chat_template(m, "chatml") == 0 &&
            stc_chat_format(m, msgs + 1, 1, 0, buf, sizeof(buf)) > 0 &&
            strcmp(buf, "<|im_start|>user\nhi<|im_end|>\n") == 0,
        "\"chatml\" sets ChatML back");

  float t, p;
  int k;
  stc_default_sampling(m, &t, &k, &p);
  check(t > 0.59f && t < 0.61f && k == 20 && p > 0.94f && p < 0.96f,
        "the sampling defaults of generation_config.json");

  /* Generate greedily; the callback stops after three pieces. */
  n = stc_tokenize(m, buf, strlen(buf), ids, 256, 1);
  stc_sampler *s = stc_sampler_new(0.0f, 0, 1.0f, 0);
  struct pieces got = {0, 3, ""};
  int32_t gen[64];
  int reason = stc_generate(m, ids, n, 40, s, on_piece, &got, gen, 64);
  stc_generation_stats st;
  stc_last_generation_stats(m, &st);
  check(reason == STC_STOP_CALLBACK ||
            (reason == STC_STOP_EOS && got.count < 3),
        "stc_generate stops when the callback says so");
  check(st.prompt_tokens == n && st.generated_tokens >= got.count &&
            stc_context_length(m) == n + st.generated_tokens,
        "every token passed on is in the context");
  len = stc_detokenize(m, gen, st.generated_tokens, buf, sizeof(buf));
  check(strcmp(buf, got.text) == 0, "the pieces join to the generated text");
  /* A prompt that cannot fit. */
  static int32_t many[5000];
  reason = stc_generate(m, many, 5000, 1, s, NULL, NULL, NULL, 0);
  check(reason == STC_STOP_CONTEXT_FULL &&
            strstr(stc_last_error(m), "does not fit") != NULL,
        "a prompt past the context is refused");
  stc_sampler_free(s);
  stc_free(m);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
