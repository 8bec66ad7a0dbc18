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
 * on error with a one-line message in `error` (when non-NULL).
 * Threads: each model has its own pool of `threads` (the calling thread is one
 * of them), used by the kernels while that model evaluates. Several models may
 * be loaded and evaluated at once from different threads; one model must not
 * be used from two threads at once. An app that links one libstc_model.a can
 * load any model whose compile used the same kernels (stc_load names a missing
 * one). */
stc_model *stc_load(const char *path, int threads, char *error,
                    size_t error_size);

typedef struct stc_options {
  int threads;     /* <= 0: every core */
  int max_context; /* <= 0: the model's trained length (KV cache pages are
                      touched only as positions fill); past it: refused */
  int lazy; /* 1: fault weights in on use (and prefetch the routed experts
               ahead) instead of reading the whole file at load */
  uint64_t memory_budget;   /* bytes; 0: the model's own budget (if any). What
                               the whole process may be charged (anonymous
                               memory and page cache): the runtime plans it
                               (stc_memory_plan) and reads the experts from
                               storage (O_DIRECT) through a cache */
  int experts_from_storage; /* kept for old apps: under a memory budget
                               experts always come from storage */
  int shared_mapping; /* without a budget or lazy: 1 keeps the weights in the
                         file's page-cache pages (shared with other processes
                         that map it); 0 (default) copies them into private
                         2 MiB transparent huge pages where the OS has them,
                         which decodes faster (fewer TLB misses) */
  /* Fields below were added later; stc_load_sized reads only those within
   * the size the app passes, so an app built with an older header keeps
   * working (the fields it does not know take their defaults, 0). */
  int kv_type;       /* the KV cache's element type: STC_KV_MODEL (0, what the
                        model was compiled with), STC_KV_F32, STC_KV_F16 or
                        STC_KV_Q8_0 (int8 with an fp16 scale per 32 values) */
  int max_sequences; /* sequences that may exist at once, the model's own
                        included (stc_sequence_new). Under a memory budget,
                        whose plan holds a KV cache for each: 0 is 1, < 0
                        lets the plan choose (up to 4, as many as get a
                        useful context each: stc_max_sequences). Without a
                        budget, <= 0 is any number. */
} stc_options;
enum { STC_KV_MODEL = 0, STC_KV_F32 = 1, STC_KV_F16 = 2, STC_KV_Q8_0 = 3 };
/* Loads with `options` of `options_size` bytes: pass sizeof(stc_options). */
stc_model *stc_load_sized(const char *path, const stc_options *options,
                          size_t options_size, char *error, size_t error_size);
/* The same with the options this function took when it was introduced (the
 * fields up to shared_mapping). */
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
/* Keeps the first n tokens of the context and forgets the rest, so a prompt
 * that shares a prefix with the context continues from it (stc-serve's prompt
 * cache). Returns 0, or -1 with the context unchanged: n past the context, or
 * a sliding-window layer's ring no longer holds the keys position n attends to
 * (then stc_reset and evaluate the prefix again). stc_logits is invalid until
 * the next stc_eval. */
int stc_rewind(stc_model *m, int n);
const char *stc_last_error(const stc_model *m);
void stc_free(stc_model *m);
/* Under a memory budget: expert-cache slots, experts read, and bytes read so
 * far. */
void stc_expert_cache_stats(const stc_model *m, uint64_t *slots,
                            uint64_t *loads, uint64_t *bytes_read);
/* Under a memory budget, how the runtime spends it, one line in MiB: dense
 * weights, KV cache (and the context it holds), activations, process, margin,
 * expert cache; "" without a budget. Valid while the model is loaded. */
const char *stc_memory_plan(const stc_model *m);
/* Tokens evaluated since the load (prompts and decoded tokens alike): the
 * denominator of the expert reads per token. */
uint64_t stc_tokens_evaluated(const stc_model *m);
/* Seconds the expert cache's reads took (0 without a memory budget). */
double stc_expert_read_seconds(const stc_model *m);
/* Of the experts read, those read ahead of use (queued by the route-ahead
 * dispatch while attention runs) rather than when the MoE step needed them. */
uint64_t stc_expert_reads_ahead(const stc_model *m);
/* Of the experts read, those read on a guess: when one token is decoded under
 * a budget, each layer's route-ahead step also applies the next layer's
 * router to its own input and starts reading those experts a layer early.
 * `used`: guesses the next layer then routed to; `dropped`: wrong guesses
 * cancelled before a byte was read (not counted as read). */
void stc_expert_guess_stats(const stc_model *m, uint64_t *read, uint64_t *used,
                            uint64_t *dropped);
/* Over the tokens decoded one at a time so far: the share of expert neurons
 * with relu(gate) = 0, and (a model compiled with st-sparse-reglu, else 0) the
 * up and down bytes per token it skipped for them. Returns 1 if the model is
 * sparse. */
int stc_sparsity_stats(const stc_model *m, double *dead_share,
                       double *skipped_bytes_per_token);

/* ---- Several sequences: one loaded model, batched steps ----
 * A sequence is one context (a conversation): its own KV cache and last
 * logits. The weights, buffers and threads are the model's and shared. One
 * stc_eval_batch step advances several sequences at once: the dense matmuls
 * read each weight once for all their tokens and an expert several sequences
 * route to is read once. A sequence's logits are the same bits whether it is
 * evaluated alone or batched with any others (each sequence's tokens are cut
 * into the same chunks and each kernel sums its rows in the same order).
 * Sequences belong to their model: use them from the thread that uses it. */
typedef struct stc_sequence stc_sequence;
/* The model's own sequence: the one stc_eval, stc_generate, stc_logits,
 * stc_reset and stc_rewind use. Valid while the model is loaded; never freed
 * by the app. */
stc_sequence *stc_model_sequence(stc_model *m);
/* Sequences that may exist at once (INT_MAX: any number). */
int stc_max_sequences(const stc_model *m);
/* A new, empty sequence (its KV cache reserved for stc_max_context positions,
 * its pages touched as they fill), or NULL with stc_last_error: as many exist
 * as stc_options.max_sequences allows. */
stc_sequence *stc_sequence_new(stc_model *m);
void stc_sequence_free(stc_sequence *s);        /* ignores the model's own */
int stc_sequence_length(const stc_sequence *s); /* tokens in its context */
void stc_sequence_reset(stc_sequence *s);
/* As stc_rewind, on this sequence. */
int stc_sequence_rewind(stc_sequence *s, int n);
/* Logits of its last token evaluated (vocab floats), valid until the next
 * step that evaluates it. */
const float *stc_sequence_logits(const stc_sequence *s);
typedef struct stc_batch_item {
  stc_sequence *sequence;
  const int32_t *tokens; /* n tokens at its next positions */
  int n;
  float *all_logits; /* NULL, or n x vocab floats: one row per token */
} stc_batch_item;
/* Evaluates every item (each a distinct sequence of model m) in steps of at
 * most the model's batch of tokens: prompts of several sequences and single
 * decoded tokens share a step. Returns 0, or -1 with stc_last_error (nothing
 * is evaluated when an item is invalid: a sequence twice, no tokens, a token
 * outside the vocabulary, a full context). */
int stc_eval_batch(stc_model *m, const stc_batch_item *items, int count);
/* Since the load: steps evaluated, the sequences they advanced (over steps:
 * the mean batch), and the distinct (layer, expert) pairs their tokens routed
 * to (an expert that several tokens of a step share counts once). */
void stc_batch_stats(const stc_model *m, uint64_t *steps, uint64_t *sequences,
                     uint64_t *experts);
/* Tokens one step holds: a longer item is cut into chunks of this many. An
 * app that keeps prompt chunks and decoded tokens in one step gives each
 * prompt chunks of at most this minus the decoded tokens beside it. */
int stc_max_batch(const stc_model *m);

/* Sampling: temperature <= 0 is greedy; top_k <= 0 and top_p >= 1 disable those
 * cuts. */
typedef struct stc_sampler stc_sampler;
stc_sampler *stc_sampler_new(float temperature, int top_k, float top_p,
                             uint64_t seed);
int32_t stc_sample(stc_sampler *s, const float *logits, int vocab);
/* Adds bias[i] to the logit of ids[i] before every sample (OpenAI's
 * logit_bias); a bias of -100 or less bans the token. Replaces any earlier
 * bias; n = 0 clears it. Returns 0, or -1 for a negative id or a NaN bias. */
int stc_sampler_set_logit_bias(stc_sampler *s, const int32_t *ids,
                               const float *bias, int n);
void stc_sampler_free(stc_sampler *s);

/* Constrained decoding: a grammar the sampler holds its tokens to. From a
 * JSON Schema (the subset a grammar holds exactly: type, properties,
 * required, additionalProperties, items (a schema or a tuple),
 * additionalItems, minItems, maxItems, enum, const, anyOf, allOf of one,
 * local $ref, minLength, maxLength; annotations such as title and
 * description ignored; any other keyword refused, named in
 * stc_last_error). The output is compact JSON: no whitespace outside
 * strings, an object's properties in the schema's order (the optional ones
 * may be left out) then any others it allows, integers without a fraction.
 * NULL on error. */
typedef struct stc_grammar stc_grammar;
stc_grammar *stc_grammar_from_json_schema(stc_model *m,
                                          const char *schema_json);
/* Any JSON value, or (object_only) any JSON object. */
stc_grammar *stc_grammar_json(stc_model *m, int object_only);
/* `begin`, the JSON the schema describes, `end`; then up to max_repeats - 1
 * more of them, each after a newline (a tool call's wrapper, such as
 * "<tool_call>\n" ... "\n</tool_call>"). */
stc_grammar *stc_grammar_json_schema_tagged(stc_model *m,
                                            const char *schema_json,
                                            const char *begin, const char *end,
                                            int max_repeats);
void stc_grammar_free(stc_grammar *g);
/* From the next stc_sample on, only tokens the grammar allows are drawn (an
 * eos once the text is complete, and then only an eos); the grammar starts
 * from its beginning. NULL removes it. The grammar must outlive the sampler's
 * use of it; one grammar serves several samplers (its masks are shared). */
void stc_sampler_set_grammar(stc_sampler *s, stc_grammar *g);
/* With a grammar: 1 when what was sampled is complete (an eos may follow), 2
 * when nothing but an eos may, else 0; -1 without a grammar. */
int stc_sampler_grammar_state(const stc_sampler *s);

/* ---- Text: the tokenizer the model file carries, ChatML, generation ----
 * A model compiled from a checkpoint without a tokenizer has none: these then
 * fail (-1, NULL or STC_STOP_ERROR) with stc_last_error saying so. Texts are
 * UTF-8; invalid UTF-8 is refused with its byte offset. */

int stc_has_tokenizer(const stc_model *m);

/* The ids of `text` (`len` bytes) into ids[0..max_ids). `parse_special`: the
 * control tokens written in the text (<|im_start|>, ...) are matched as such;
 * off, they are text (user input). Returns the number of ids, which may exceed
 * max_ids (then call again with a larger array), or -1. */
int stc_tokenize(stc_model *m, const char *text, size_t len, int32_t *ids,
                 int max_ids, int parse_special);

/* The bytes of one token (maybe a part of a UTF-8 character) into buf[0..size);
 * returns their count (which may exceed size), or -1 for an id outside the
 * vocabulary. Not NUL-terminated. */
int stc_token_to_piece(stc_model *m, int32_t id, char *buf, size_t size);

/* The text of ids[0..n), each invalid or unfinished UTF-8 sequence replaced by
 * U+FFFD, NUL-terminated in buf[0..size); returns its length (which may exceed
 * size - 1), or -1. */
int stc_detokenize(stc_model *m, const int32_t *ids, int n, char *buf,
                   size_t size);

typedef enum stc_special {
  STC_TOKEN_BOS = 0,
  STC_TOKEN_EOS = 1, /* `index` walks the eos set: 0, 1, ... */
  STC_TOKEN_IM_START = 2,
  STC_TOKEN_IM_END = 3,
  STC_TOKEN_PAD = 4
} stc_special;
/* The id of a special token, or -1 when the model has none (or no more eos
 * ids at `index`). */
int32_t stc_special_token(stc_model *m, stc_special which, int index);

typedef struct stc_message {
  const char *role; /* "system", "user", "assistant" */
  const char *content;
} stc_message;
enum {
  STC_CHAT_ADD_GENERATION_PROMPT = 1, /* end with the assistant's turn start */
  STC_CHAT_FORCE_CHATML = 2 /* ChatML whatever the model's template is */
};
/* The model's chat template (the checkpoint's Jinja template, rendered as
 * transformers' apply_chat_template renders it; ChatML when it had none)
 * applied to messages[0..n), into buf[0..size), NUL-terminated; returns its
 * length (which may exceed size - 1), or -1: a template that does not parse
 * or uses what stc does not implement (the error names it and its line), the
 * template's own raise_exception. Tokenize the result with parse_special = 1
 * only if the contents are trusted: stc_chat_tokens keeps them text. */
int stc_chat_format(stc_model *m, const stc_message *messages, int n, int flags,
                    char *buf, size_t size);
/* The same with the conversation as JSON, as the OpenAI API and Hugging Face
 * take it: `messages_json` an array of message objects (role, content,
 * tool_calls, tool_call_id, name, ...; objects keep their key order),
 * `tools_json` NULL or an array of tool definitions ({"type": "function",
 * "function": {...}}), as the template reads them. */
int stc_chat_template(stc_model *m, const char *messages_json,
                      const char *tools_json, int flags, char *buf,
                      size_t size);
/* The prompt's token ids: the control tokens the template wrote are control
 * ids; an added token's text inside a message (a user who types <|im_end|>
 * or <tool_call>) is text. Returns the number of ids, which may exceed
 * max_ids (then call again with a larger array), or -1. */
int stc_chat_tokens(stc_model *m, const char *messages_json,
                    const char *tools_json, int flags, int32_t *ids,
                    int max_ids);
/* Replaces the model's chat template: a Jinja template's text, or "chatml"
 * (NULL too). Returns 0, or -1 (the model's template is kept) when it does
 * not parse. */
int stc_set_chat_template(stc_model *m, const char *source);

/* The sampling defaults the model carries (its generation_config.json, else
 * the model card's: temperature 0.6, top-k 20, top-p 0.95). */
void stc_default_sampling(const stc_model *m, float *temperature, int *top_k,
                          float *top_p);

/* The text of generated tokens as it streams: whole UTF-8 characters once
 * complete, what stc_generate passes its callback (for an app that runs its
 * own loop over stc_eval_batch). */
typedef struct stc_text_stream stc_text_stream;
stc_text_stream *stc_text_stream_new(stc_model *m);
/* Appends token `id`'s bytes, then stc_text_stream_take; -1 for an id outside
 * the vocabulary. */
int stc_text_stream_push(stc_text_stream *s, int32_t id, char *buf,
                         size_t size);
/* The text complete so far and not taken: into buf[0..size), NUL-terminated,
 * returning its length; when it needs more than size - 1 bytes, returns that
 * length and keeps the text for a call with a larger buffer. */
int stc_text_stream_take(stc_text_stream *s, char *buf, size_t size);
/* Ends the stream (an unfinished character becomes U+FFFD), then
 * stc_text_stream_take. */
int stc_text_stream_finish(stc_text_stream *s, char *buf, size_t size);
void stc_text_stream_free(stc_text_stream *s);

typedef enum stc_stop_reason {
  STC_STOP_ERROR = -1,
  STC_STOP_EOS = 0,         /* an id of the eos set (not passed on) */
  STC_STOP_LIMIT = 1,       /* max_tokens generated */
  STC_STOP_CALLBACK = 2,    /* the callback returned nonzero */
  STC_STOP_CONTEXT_FULL = 3 /* no room for the prompt or the next token */
} stc_stop_reason;
/* Receives each complete piece of generated text (whole UTF-8 characters;
 * at the end, an unfinished one as U+FFFD). Returns nonzero to stop. */
typedef int (*stc_piece_callback)(const char *piece, size_t len, void *user);

/* Appends prompt[0..n_prompt) to the context, then samples up to max_tokens
 * tokens (< 0: until eos or a full context) with `sampler`, passing their text
 * to `callback` (may be NULL). Every token passed on is in the context when
 * this returns (so a chat continues where it stopped); the eos token is not.
 * `generated` (may be NULL) receives the ids sampled, at most max_generated.
 * Returns the reason it stopped. */
int stc_generate(stc_model *m, const int32_t *prompt, int n_prompt,
                 int max_tokens, stc_sampler *sampler,
                 stc_piece_callback callback, void *user, int32_t *generated,
                 int max_generated);

/* Of the last stc_generate: tokens prompted and generated, and the seconds of
 * the prompt's evaluation (prefill) and of the generation. */
typedef struct stc_generation_stats {
  int prompt_tokens;
  int generated_tokens;
  double prompt_seconds;
  double generate_seconds;
} stc_generation_stats;
void stc_last_generation_stats(const stc_model *m, stc_generation_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* STC_RUNTIME_H */
