/* The text C API from plain C: tokenize, detokenize, special tokens, ChatML,
 * and stc_generate with a callback that stops early. Built against out/ by
 * build_app.py as out/README.md says an app links.
 *   capi_text OUT/model.stcm */
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
  stc_message bad = {"robot", "x"};
  check(stc_chat_format(m, &bad, 1, 0, buf, sizeof(buf)) == -1 &&
            strstr(stc_last_error(m), "robot") != NULL,
        "an unknown role is an error naming it");

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
