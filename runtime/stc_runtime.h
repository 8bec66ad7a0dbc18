/* stc_runtime.h: the C API of an stc-generated runtime. Link the runtime
 * library and the kernels library that `stc compile` wrote next to the model
 * file. */
#ifndef STC_RUNTIME_H
#define STC_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct stc_model stc_model;

/* Maps and verifies a model file; `threads` <= 0 uses every core. Returns NULL
 * on error with a one-line message in `error` (when non-NULL). */
stc_model *stc_load(const char *path, int threads, char *error,
                    size_t error_size);

typedef struct stc_options {
  int threads;     /* <= 0: every core */
  int max_context; /* <= 0: min(the model's, 4096) */
  int lazy; /* 1: fault weights in on use (and prefetch the routed experts
               ahead) instead of reading the whole file at load */
  uint64_t memory_budget;   /* bytes; 0: the model's own budget (if any) */
  int experts_from_storage; /* 1: under a memory budget, every streamed expert
                               is read from storage (O_DIRECT), past the page
                               cache */
} stc_options;
stc_model *stc_load_with(const char *path, const stc_options *options,
                         char *error, size_t error_size);

/* Runs `n` tokens at the next positions of the context (prefill, or one decode
 * step with n = 1). When `all_logits` is non-NULL it receives n x vocab floats,
 * one row per token. Returns 0, or -1 with the reason in stc_last_error(). */
int stc_eval(stc_model *m, const int32_t *tokens, int n, float *all_logits);

/* Logits of the last token evaluated (vocab floats), valid until the next
 * stc_eval. */
const float *stc_logits(const stc_model *m);
int stc_vocab_size(const stc_model *m);
int stc_context_length(const stc_model *m); /* tokens in the context so far */
int stc_max_context(const stc_model *m);
void stc_reset(stc_model *m); /* forget the context */
const char *stc_last_error(const stc_model *m);
void stc_free(stc_model *m);
/* Under a memory budget: expert-cache slots, experts read, and bytes read so
 * far. */
void stc_expert_cache_stats(const stc_model *m, uint64_t *slots,
                            uint64_t *loads, uint64_t *bytes_read);
/* Seconds the expert cache's reads took (0 without a memory budget). */
double stc_expert_read_seconds(const stc_model *m);
/* Of the experts read, those read ahead of use (queued by the route-ahead
 * dispatch while attention runs) rather than when the MoE step needed them. */
uint64_t stc_expert_reads_ahead(const stc_model *m);
/* Over the tokens decoded one at a time so far: the share of expert neurons
 * with relu(gate) = 0, and (a model compiled with st-sparse-reglu, else 0) the
 * up and down bytes per token it skipped for them. Returns 1 if the model is
 * sparse. */
int stc_sparsity_stats(const stc_model *m, double *dead_share,
                       double *skipped_bytes_per_token);

/* Sampling: temperature <= 0 is greedy; top_k <= 0 and top_p >= 1 disable those
 * cuts. */
typedef struct stc_sampler stc_sampler;
stc_sampler *stc_sampler_new(float temperature, int top_k, float top_p,
                             uint64_t seed);
int32_t stc_sample(stc_sampler *s, const float *logits, int vocab);
void stc_sampler_free(stc_sampler *s);

#ifdef __cplusplus
}
#endif

#endif /* STC_RUNTIME_H */
