/* stc_rewind, the prompt cache's primitive: a context rewound to n tokens and
 * continued computes what a fresh context of the same tokens does (the same
 * evaluations, so bit for bit), on every layer kind of tiny-swa including its
 * sliding-window rings; a rewind past what a ring still holds, or past the
 * context, is refused and leaves the context as it was.
 *   capi_rewind OUT/model.stcm   (tiny-swa compiled with --max-batch 4:
 *   window 8, rings of 11 slots) */
#include "stc_runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failed;
static void check(int ok, const char *what) {
  printf("%s %s\n", ok ? "ok:  " : "FAIL:", what);
  failed += !ok;
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
  const int V = stc_vocab_size(m);
  int32_t seq[30], other[5] = {300, 301, 302, 303, 304};
  for (int i = 0; i < 30; ++i)
    seq[i] = (11 + 37 * i) % 512;
  float *fresh = malloc(sizeof(float) * 10 * V);
  float *again = malloc(sizeof(float) * 10 * V);

  /* Fresh: 20 tokens, then the last 10. */
  stc_eval(m, seq, 20, NULL);
  stc_eval(m, seq + 20, 10, fresh);

  /* 20 tokens, 3 others, back to 20, the last 10: the rings (11 slots) still
   * hold positions 12..22, and position 20 attends to 13..19. */
  stc_reset(m);
  stc_eval(m, seq, 20, NULL);
  stc_eval(m, other, 3, NULL);
  check(stc_rewind(m, 20) == 0, "rewind 23 -> 20");
  check(stc_context_length(m) == 20, "context is 20 tokens");
  stc_eval(m, seq + 20, 10, again);
  check(memcmp(fresh, again, sizeof(float) * 10 * V) == 0,
        "rewound and continued == fresh, bit for bit");

  /* Back into the middle of what was just evaluated: the rings hold 19..29,
   * position 27 attends to 20..26. */
  check(stc_rewind(m, 27) == 0, "rewind 30 -> 27");
  stc_eval(m, seq + 27, 3, again);
  check(memcmp(fresh + 7 * V, again, sizeof(float) * 3 * V) == 0,
        "rewind 30 -> 27, continued == fresh");

  /* 5 others overwrite position 13 (slot 13 % 11 = 2 now holds 24). */
  stc_reset(m);
  stc_eval(m, seq, 20, NULL);
  stc_eval(m, other, 5, NULL);
  check(stc_rewind(m, 20) != 0, "rewind 25 -> 20 refused");
  printf("  %s\n", stc_last_error(m));
  check(strstr(stc_last_error(m), "sliding-window") != NULL,
        "the error names the sliding-window cache");
  check(stc_context_length(m) == 25, "refused: context unchanged");
  check(stc_rewind(m, 26) != 0, "rewind past the context refused");
  check(stc_rewind(m, -1) != 0, "rewind to -1 refused");
  check(stc_rewind(m, 0) == 0 && stc_context_length(m) == 0,
        "rewind to 0 always works");
  stc_eval(m, seq, 20, NULL);
  stc_eval(m, seq + 20, 10, again);
  check(memcmp(fresh, again, sizeof(float) * 10 * V) == 0,
        "after rewind to 0 == fresh");

  free(fresh);
  free(again);
  stc_free(m);
  printf("%s\n", failed ? "FAILED" : "all passed");
  return failed ? 1 : 0;
}
