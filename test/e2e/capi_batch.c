/* Several sequences on one model (stc_sequence_new, stc_eval_batch): each
 * sequence's logits in batched steps are the same bits as the same sequence
 * run alone, greedy decode included, while other sequences join (their prompts
 * in the same step as the others' decoded tokens, chunked past the model's
 * batch), leave mid-way (freed), or were never there. Then the batch's
 * refusals: a sequence twice, a token outside the vocabulary, a full context
 * (nothing evaluated), and under a memory budget more sequences than the plan
 * holds.
 *   capi_batch MODEL.stcm THREADS [EXPERT_BYTES]
 * With EXPERT_BYTES: under a memory budget of what the plan needs for the
 * sequences (64 positions each) and one layer's experts, plus EXPERT_BYTES
 * (room for a few more expert slots: they are evicted and read again). */
#include "stc_runtime.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SEQS = 4, GEN = 10, MAXP = 40 };

static int failed;
static void check(int ok, const char *what) {
  printf("%s %s\n", ok ? "ok:  " : "FAIL:", what);
  failed += !ok;
}

static int32_t argmax(const float *l, int V) {
  int32_t best = 0;
  for (int i = 1; i < V; ++i)
    if (l[i] > l[best])
      best = i;
  return best;
}

static double maxDiff(const float *a, const float *b, int n) {
  double d = 0;
  for (int i = 0; i < n; ++i)
    d = fmax(d, fabs((double)a[i] - b[i]));
  return d;
}

int main(int argc, char **argv) {
  if (argc < 3)
    return 2;
  char err[512];
  stc_options o;
  memset(&o, 0, sizeof(o));
  o.threads = atoi(argv[2]);
  o.max_sequences = SEQS + 1; /* the model's own and SEQS more */
  if (argc > 3) {
    /* Just above what the plan needs for SEQS + 1 sequences of 64 positions
     * and one layer's experts: the error of a budget too small names it. */
    o.max_context = 64;
    o.memory_budget = 1 << 20;
    stc_model *probe = stc_load_sized(argv[1], &o, sizeof(o), err, sizeof(err));
    const char *at = probe ? NULL : strstr(err, "sequences, ");
    if (!at) {
      printf("expected a budget error, got: %s\n", probe ? "a model" : err);
      return 1;
    }
    o.memory_budget =
        (uint64_t)((atof(at + strlen("sequences, ")) + 0.05) * 1048576) +
        strtoull(argv[3], NULL, 10);
    printf("memory budget %llu bytes\n", (unsigned long long)o.memory_budget);
  }
  stc_model *m = stc_load_sized(argv[1], &o, sizeof(o), err, sizeof(err));
  if (!m) {
    printf("load: %s\n", err);
    return 1;
  }
  const int V = stc_vocab_size(m);
  /* Prompts of 5, 19, 1 and 37 tokens: chunked past a small --max-batch. */
  const int len[SEQS] = {5, 19, 1, 37};
  int32_t prompt[SEQS][MAXP];
  for (int i = 0; i < SEQS; ++i)
    for (int t = 0; t < len[i]; ++t)
      prompt[i][t] = (7 + 31 * i + 53 * t) % V;
  /* Alone: each prompt on a fresh sequence, then GEN greedy tokens, one per
   * step; the logits after each evaluation (the prompt's every row for the
   * last sequence). */
  float *ref = malloc(sizeof(float) * SEQS * (GEN + 1) * V);
  float *refAll = malloc(sizeof(float) * MAXP * V);
  float *all = malloc(sizeof(float) * MAXP * V);
  int32_t tokens[SEQS][GEN + 1];
  for (int i = 0; i < SEQS; ++i) {
    stc_sequence *s = stc_sequence_new(m);
    if (!s) {
      printf("stc_sequence_new: %s\n", stc_last_error(m));
      return 1;
    }
    stc_batch_item it = {s, prompt[i], len[i], i == SEQS - 1 ? refAll : NULL};
    for (int g = 0; g <= GEN; ++g) {
      if (stc_eval_batch(m, &it, 1) != 0) {
        printf("eval: %s\n", stc_last_error(m));
        return 1;
      }
      memcpy(ref + ((size_t)i * (GEN + 1) + g) * V, stc_sequence_logits(s),
             sizeof(float) * V);
      tokens[i][g] = argmax(stc_sequence_logits(s), V);
      it.tokens = &tokens[i][g];
      it.n = 1;
      it.all_logits = NULL;
    }
    stc_sequence_free(s);
  }

  /* Batched: sequences 0 and 1 start together, 2 joins at step 3 and 3 at
   * step 5 (its 37-token prompt beside the others' decoded tokens); 1 leaves
   * at step 6. */
  const int join[SEQS] = {0, 0, 3, 5};
  const int leave[SEQS] = {-1, 6, -1, -1};
  stc_sequence *seq[SEQS] = {0};
  int done[SEQS] = {0}; /* evaluations so far: the prompt, then tokens */
  int mismatches = 0, evaluated = 0;
  uint64_t steps0, seqs0, experts0;
  stc_batch_stats(m, &steps0, &seqs0, &experts0);
  for (int step = 0;; ++step) {
    stc_batch_item items[SEQS];
    int which[SEQS], n = 0, running = 0;
    for (int i = 0; i < SEQS; ++i) {
      if (step == leave[i] && seq[i]) {
        stc_sequence_free(seq[i]);
        seq[i] = NULL;
        done[i] = GEN + 1;
      }
      if (step == join[i])
        seq[i] = stc_sequence_new(m);
      if (!seq[i] || done[i] > GEN)
        continue;
      ++running;
      stc_batch_item it = {seq[i], prompt[i], len[i],
                           i == SEQS - 1 ? all : NULL};
      if (done[i] > 0) {
        it.tokens = &tokens[i][done[i] - 1];
        it.n = 1;
        it.all_logits = NULL;
      }
      which[n] = i;
      items[n++] = it;
    }
    if (running == 0 && step > join[SEQS - 1])
      break;
    if (n == 0)
      continue;
    if (stc_eval_batch(m, items, n) != 0) {
      printf("batched eval: %s\n", stc_last_error(m));
      return 1;
    }
    for (int k = 0; k < n; ++k) {
      const int i = which[k];
      const float *want = ref + ((size_t)i * (GEN + 1) + done[i]) * V;
      const float *got = stc_sequence_logits(seq[i]);
      ++evaluated;
      if (memcmp(want, got, sizeof(float) * V) != 0) {
        ++mismatches;
        printf("  step %d, sequence %d, evaluation %d: logits differ from "
               "alone by up to %g\n",
               step, i, done[i], maxDiff(want, got, V));
      }
      if (items[k].all_logits &&
          memcmp(refAll, all, sizeof(float) * len[i] * V) != 0) {
        ++mismatches;
        printf("  sequence %d's prompt rows differ from alone by up to %g\n", i,
               maxDiff(refAll, all, len[i] * V));
      }
      ++done[i];
    }
  }
  uint64_t steps1, seqs1, experts1;
  stc_batch_stats(m, &steps1, &seqs1, &experts1);
  char what[256];
  snprintf(what, sizeof(what),
           "%d batched evaluations of %d sequences (joining, leaving, "
           "prompts chunked beside decoded tokens): every one's logits "
           "equal alone's, bit for bit",
           evaluated, SEQS);
  check(mismatches == 0, what);
  snprintf(what, sizeof(what),
           "the steps really batched: %llu sequences in %llu steps, %llu "
           "distinct experts routed to",
           (unsigned long long)(seqs1 - seqs0),
           (unsigned long long)(steps1 - steps0),
           (unsigned long long)(experts1 - experts0));
  check(seqs1 - seqs0 > steps1 - steps0 && experts1 > experts0, what);

  /* Refusals: nothing is evaluated. */
  const int before = stc_sequence_length(seq[0]);
  int32_t bad = V, good = 1;
  stc_batch_item twice[2] = {{seq[0], &good, 1, NULL},
                             {seq[0], &good, 1, NULL}};
  check(stc_eval_batch(m, twice, 2) == -1 &&
            strstr(stc_last_error(m), "the same sequence as batch item 0"),
        "a sequence twice in a batch is refused");
  stc_batch_item outside[2] = {{seq[2], &good, 1, NULL},
                               {seq[0], &bad, 1, NULL}};
  check(stc_eval_batch(m, outside, 2) == -1 &&
            strstr(stc_last_error(m), "outside the vocabulary") &&
            stc_sequence_length(seq[0]) == before &&
            stc_sequence_length(seq[2]) == len[2] + GEN,
        "a token outside the vocabulary is refused, nothing evaluated");
  if (o.memory_budget) {
    uint64_t slots, loads, bytes;
    stc_expert_cache_stats(m, &slots, &loads, &bytes);
    snprintf(what, sizeof(what),
             "under the budget, experts streamed: %llu cache slots, %llu "
             "experts read",
             (unsigned long long)slots, (unsigned long long)loads);
    check(slots > 0 && loads > slots, what);
    /* The model's own, 0, 2 and 3 exist: one more fits, then none. */
    stc_sequence *extra = stc_sequence_new(m);
    stc_sequence *past = stc_sequence_new(m);
    check(extra && !past && strstr(stc_last_error(m), "5 sequences exist"),
          "under a budget, no more sequences than its plan holds");
    printf("  (%s)\n", stc_last_error(m));
    stc_sequence_free(extra);
  }
  for (int i = 0; i < SEQS; ++i)
    stc_sequence_free(seq[i]);
  stc_sequence_free(stc_model_sequence(m)); /* ignored */
  free(ref);
  free(refAll);
  free(all);
  stc_free(m);
  printf(failed ? "%d FAILED\n" : "all passed\n", failed);
  return failed != 0;
}
