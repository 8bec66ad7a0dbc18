/* generate.c: the smallest app on an stc-compiled model, in plain C: load the
 * model, read a prompt, stream the answer through stc_generate's callback.
 *
 *   cc -std=c11 -I OUT generate.c OUT/libstc_model.a -lstdc++ -lpthread -ldl \
 *      -lm -o generate
 *   ./generate OUT/model.stcm "Tell me about the sea" [max_tokens]
 *   echo "Tell me about the sea" | ./generate OUT/model.stcm - [max_tokens]
 */
#include "stc_runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each piece is whole UTF-8 characters; returning nonzero would stop. */
static int print_piece(const char *piece, size_t len, void *user) {
  (void)user;
  fwrite(piece, 1, len, stdout);
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL.stcm PROMPT|- [MAX_TOKENS]\n", argv[0]);
    return 2;
  }
  char prompt[8192];
  if (strcmp(argv[2], "-") == 0) {
    size_t n = fread(prompt, 1, sizeof(prompt) - 1, stdin);
    prompt[n] = '\0';
  } else {
    snprintf(prompt, sizeof(prompt), "%s", argv[2]);
  }
  const int max_tokens = argc > 3 ? atoi(argv[3]) : 64;

  char err[512];
  stc_model *m = stc_load(argv[1], 0, err, sizeof(err));
  if (!m) {
    fprintf(stderr, "generate: %s\n", err);
    return 1;
  }
  /* The prompt as one user turn of a ChatML conversation. */
  stc_message msg = {"user", prompt};
  char text[16384];
  int len = stc_chat_format(m, &msg, 1, STC_CHAT_ADD_GENERATION_PROMPT, text,
                            sizeof(text));
  int32_t ids[4096];
  int n = len < 0 ? -1 : stc_tokenize(m, text, (size_t)len, ids, 4096, 1);
  if (n < 0 || n > 4096) {
    fprintf(stderr, "generate: %s\n",
            n < 0 ? stc_last_error(m) : "the prompt is too long");
    stc_free(m);
    return 1;
  }
  float temperature, top_p;
  int top_k;
  stc_default_sampling(m, &temperature, &top_k, &top_p);
  stc_sampler *s = stc_sampler_new(temperature, top_k, top_p, 42);
  int reason =
      stc_generate(m, ids, n, max_tokens, s, print_piece, NULL, NULL, 0);
  printf("\n");
  stc_sampler_free(s);
  if (reason == STC_STOP_ERROR)
    fprintf(stderr, "generate: %s\n", stc_last_error(m));
  stc_free(m);
  return reason == STC_STOP_ERROR ? 1 : 0;
}
