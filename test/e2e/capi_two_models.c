/* Two models in one process, each with its own thread count and pool, run at
 * the same time from two threads: each computes what it computes alone, bit for
 * bit, over many rounds (before per-model pools, the second stc_load took the
 * process-wide pool over, concurrent evaluations shared it, and this hung).
 *   capi_two_models A.stcm B.stcm   (compiled with the same kernels) */
#include "stc_runtime.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ROUNDS = 40, TOKENS = 12 };

struct run {
  stc_model *m;
  float *want; /* TOKENS x vocab, computed alone */
  int mismatches, errors;
};

static void evaluate(stc_model *m, float *logits) {
  int32_t ids[TOKENS];
  for (int i = 0; i < TOKENS; ++i)
    ids[i] = (7 + 29 * i) % 500;
  stc_reset(m);
  /* A prefill of 8, then 4 decode steps. */
  if (stc_eval(m, ids, 8, logits) != 0)
    return;
  for (int i = 8; i < TOKENS; ++i)
    if (stc_eval(m, ids + i, 1, logits + (size_t)i * stc_vocab_size(m)) != 0)
      return;
}

static void *loop(void *arg) {
  struct run *r = arg;
  const size_t bytes = sizeof(float) * TOKENS * stc_vocab_size(r->m);
  float *got = malloc(bytes);
  for (int i = 0; i < ROUNDS; ++i) {
    memset(got, 0, bytes);
    evaluate(r->m, got);
    if (memcmp(got, r->want, bytes) != 0)
      ++r->mismatches;
  }
  free(got);
  return NULL;
}

int main(int argc, char **argv) {
  char err[512];
  if (argc != 3)
    return 2;
  struct run runs[2];
  const int threads[2] = {1, 3}; /* the second load once took the pool over */
  for (int k = 0; k < 2; ++k) {
    runs[k].m = stc_load(argv[1 + k], threads[k], err, sizeof(err));
    if (!runs[k].m) {
      printf("load %s: %s\n", argv[1 + k], err);
      return 1;
    }
    runs[k].want = malloc(sizeof(float) * TOKENS * stc_vocab_size(runs[k].m));
    runs[k].mismatches = runs[k].errors = 0;
  }
  /* Alone, one after the other. */
  for (int k = 0; k < 2; ++k)
    evaluate(runs[k].m, runs[k].want);
  pthread_t t[2];
  for (int k = 0; k < 2; ++k)
    pthread_create(&t[k], NULL, loop, &runs[k]);
  for (int k = 0; k < 2; ++k)
    pthread_join(t[k], NULL);
  int failed = 0;
  for (int k = 0; k < 2; ++k) {
    printf("%s model %d (%d threads): %d of %d concurrent rounds differ\n",
           runs[k].mismatches ? "FAIL:" : "ok:  ", k, threads[k],
           runs[k].mismatches, ROUNDS);
    failed += runs[k].mismatches != 0;
    stc_free(runs[k].m);
    free(runs[k].want);
  }
  return failed ? 1 : 0;
}
