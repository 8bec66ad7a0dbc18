// The C API (stc_runtime.h) over Runtime, and the sampler.
#include "stc_runtime.h"

#include "CApiModel.h"
#include "TokenizerFile.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

namespace {

// A token drawn from `logits` as the sampler's settings say.
int32_t sampleFrom(stc_sampler *s, const float *logits, int vocab) {
  if (s->temperature <= 0.0f) // greedy; ties go to the lower id
    return static_cast<int32_t>(std::max_element(logits, logits + vocab) -
                                logits);
  s->order.resize(vocab);
  std::iota(s->order.begin(), s->order.end(), 0);
  int keep = s->topK > 0 ? std::min(s->topK, vocab) : vocab;
  std::partial_sort(s->order.begin(), s->order.begin() + keep, s->order.end(),
                    [&](int a, int b) { return logits[a] > logits[b]; });
  // Tokens banned (a bias of -100, a grammar) are never kept.
  while (keep > 1 && std::isinf(logits[s->order[keep - 1]]) &&
         logits[s->order[keep - 1]] < 0)
    --keep;
  s->probs.resize(keep);
  const float mx = logits[s->order[0]];
  double sum = 0;
  for (int i = 0; i < keep; ++i)
    sum += s->probs[i] = std::exp((logits[s->order[i]] - mx) / s->temperature);
  // Nucleus cut: the smallest prefix whose probability reaches top_p.
  if (s->topP < 1.0f) {
    double acc = 0;
    for (int i = 0; i < keep; ++i) {
      acc += s->probs[i] / sum;
      if (acc >= s->topP) {
        keep = i + 1;
        break;
      }
    }
    sum = 0;
    for (int i = 0; i < keep; ++i)
      sum += s->probs[i];
  }
  double r = std::uniform_real_distribution<double>(0.0, sum)(s->rng);
  for (int i = 0; i < keep; ++i) {
    r -= s->probs[i];
    if (r <= 0)
      return s->order[i];
  }
  return s->order[keep - 1];
}

stc_grammar *newGrammar(stc_model *m, stc::rt::grammar::Grammar g) {
  if (!m->hasTokenizer) {
    m->error = m->runtime.file().path() +
               ": compiled without a tokenizer (a grammar holds text)";
    return nullptr;
  }
  if (!m->trie)
    m->trie = std::make_shared<stc::rt::grammar::TokenTrie>(m->tokenizer);
  auto *out = new stc_grammar();
  out->compiled = std::make_shared<stc::rt::grammar::CompiledGrammar>(
      std::move(g), m->trie);
  return out;
}

} // namespace

extern "C" {

stc_model *stc_load(const char *path, int threads, char *error,
                    size_t error_size) {
  stc_options o = {};
  o.threads = threads;
  return stc_load_sized(path, &o, sizeof(o), error, error_size);
}

stc_model *stc_load_with(const char *path, const stc_options *options,
                         char *error, size_t error_size) {
  return stc_load_sized(path, options, offsetof(stc_options, kv_type), error,
                        error_size);
}

stc_model *stc_load_sized(const char *path, const stc_options *options,
                          size_t options_size, char *error, size_t error_size) {
  // The fields the app's header had; the rest keep their defaults (0).
  stc_options in = {};
  std::memcpy(&in, options, std::min(options_size, sizeof(in)));
  auto *m = new stc_model();
  stc::rt::RuntimeOptions o;
  o.threads = in.threads;
  o.maxContext = in.max_context;
  o.populate = !in.lazy;
  o.memoryBudget = in.memory_budget;
  o.expertsFromStorage = in.experts_from_storage != 0;
  o.sharedMapping = in.shared_mapping != 0;
  o.sequences = in.max_sequences;
  o.kvType =
      in.kv_type == STC_KV_F32    ? static_cast<int>(stc::model::KvType::F32)
      : in.kv_type == STC_KV_F16  ? static_cast<int>(stc::model::KvType::F16)
      : in.kv_type == STC_KV_Q8_0 ? static_cast<int>(stc::model::KvType::Q8_0)
                                  : -1;
  std::string err;
  bool ok = true;
  if (in.kv_type < STC_KV_MODEL || in.kv_type > STC_KV_Q8_0) {
    err = std::string(path) + ": stc_options.kv_type " +
          std::to_string(in.kv_type) + " is not one of STC_KV_*";
    ok = false;
  }
  ok = ok && m->runtime.load(path, o, err);
  if (ok && m->runtime.file().model()->tokenizer()) {
    // The tokenizer's tables are built once, here.
    stc::rt::TokenizerData data;
    ok = stc::rt::readTokenizer(*m->runtime.file().model()->tokenizer(), data,
                                path, err) &&
         m->tokenizer.init(std::move(data), path, err);
    m->hasTokenizer = ok;
    // A template that does not parse (a model compiled before stc checked
    // it) leaves chat refused, naming why; the rest works.
    std::string why;
    if (ok && !m->chat.init(m->tokenizer.data().chatTemplate, why))
      m->chatError = std::string(path) + ": " + why;
  }
  if (ok && m->runtime.memoryPlan().budget)
    m->memoryPlan = m->runtime.memoryPlan().describe();
  m->own.model = m;
  m->own.sequence = &m->runtime.ownSequence();
  if (!ok) {
    if (error && error_size > 0) {
      std::strncpy(error, err.c_str(), error_size - 1);
      error[error_size - 1] = '\0';
    }
    delete m;
    return nullptr;
  }
  return m;
}

int stc_eval(stc_model *m, const int32_t *tokens, int n, float *all_logits) {
  return m->runtime.eval(tokens, n, all_logits, m->error) ? 0 : -1;
}

const float *stc_logits(const stc_model *m) { return m->runtime.lastLogits(); }
int stc_vocab_size(const stc_model *m) { return m->runtime.vocab(); }
int stc_context_length(const stc_model *m) { return m->runtime.position(); }
int stc_max_context(const stc_model *m) { return m->runtime.maxContext(); }
void stc_reset(stc_model *m) { m->runtime.reset(); }
int stc_rewind(stc_model *m, int n) {
  return m->runtime.rewind(n, m->error) ? 0 : -1;
}
const char *stc_last_error(const stc_model *m) { return m->error.c_str(); }
void stc_free(stc_model *m) { delete m; }

stc_sequence *stc_model_sequence(stc_model *m) { return &m->own; }

int stc_max_sequences(const stc_model *m) { return m->runtime.maxSequences(); }

stc_sequence *stc_sequence_new(stc_model *m) {
  std::unique_ptr<stc::rt::Sequence> s = m->runtime.newSequence(m->error);
  if (!s)
    return nullptr;
  auto *out = new stc_sequence();
  out->model = m;
  out->sequence = s.get();
  out->owned = std::move(s);
  return out;
}

void stc_sequence_free(stc_sequence *s) {
  if (s && s != &s->model->own)
    delete s;
}

int stc_sequence_length(const stc_sequence *s) {
  return s->sequence->position();
}

void stc_sequence_reset(stc_sequence *s) {
  s->model->runtime.reset(*s->sequence);
}

int stc_sequence_rewind(stc_sequence *s, int n) {
  return s->model->runtime.rewind(*s->sequence, n, s->model->error) ? 0 : -1;
}

const float *stc_sequence_logits(const stc_sequence *s) {
  return s->sequence->lastLogits();
}

int stc_eval_batch(stc_model *m, const stc_batch_item *items, int count) {
  m->batch.clear();
  for (int i = 0; i < count; ++i) {
    if (items[i].sequence && items[i].sequence->model != m) {
      m->error =
          "batch item " + std::to_string(i) + ": a sequence of another model";
      return -1;
    }
    m->batch.push_back(
        {items[i].sequence ? items[i].sequence->sequence : nullptr,
         items[i].tokens, items[i].n, items[i].all_logits});
  }
  return m->runtime.evalBatch(m->batch.data(), count, m->error) ? 0 : -1;
}

void stc_batch_stats(const stc_model *m, uint64_t *steps, uint64_t *sequences,
                     uint64_t *experts) {
  *steps = m->runtime.steps();
  *sequences = m->runtime.stepSequences();
  *experts = m->runtime.expertsUsed();
}

int stc_max_batch(const stc_model *m) { return m->runtime.maxBatch(); }

void stc_expert_cache_stats(const stc_model *m, uint64_t *slots,
                            uint64_t *loads, uint64_t *bytes_read) {
  const stc::rt::ExpertCache *c = m->runtime.expertCache();
  *slots = c ? c->slots() : 0;
  *loads = c ? c->misses() : 0;
  *bytes_read = c ? c->bytesRead() : 0;
}

const char *stc_memory_plan(const stc_model *m) {
  return m->memoryPlan.c_str();
}

uint64_t stc_tokens_evaluated(const stc_model *m) {
  return m->runtime.tokensEvaluated();
}

double stc_expert_read_seconds(const stc_model *m) {
  const stc::rt::ExpertCache *c = m->runtime.expertCache();
  return c ? c->readSeconds() : 0;
}

uint64_t stc_expert_reads_ahead(const stc_model *m) {
  const stc::rt::ExpertCache *c = m->runtime.expertCache();
  return c ? c->readsAhead() : 0;
}

void stc_expert_guess_stats(const stc_model *m, uint64_t *read, uint64_t *used,
                            uint64_t *dropped) {
  const stc::rt::ExpertCache *c = m->runtime.expertCache();
  *read = c ? c->guessesRead() : 0;
  *used = c ? c->guessesUsed() : 0;
  *dropped = c ? c->guessesDropped() : 0;
}

int stc_sparsity_stats(const stc_model *m, double *dead_share,
                       double *skipped_bytes_per_token) {
  *dead_share = m->runtime.reluZeroFraction();
  *skipped_bytes_per_token = m->runtime.skippedBytesPerToken();
  return m->runtime.sparseReglu() ? 1 : 0;
}

stc_sampler *stc_sampler_new(float temperature, int top_k, float top_p,
                             uint64_t seed) {
  auto *s = new stc_sampler();
  s->temperature = temperature;
  s->topK = top_k;
  s->topP = top_p;
  s->rng.seed(seed);
  return s;
}

int stc_sampler_set_logit_bias(stc_sampler *s, const int32_t *ids,
                               const float *bias, int n) {
  for (int i = 0; i < n; ++i)
    if (ids[i] < 0 || std::isnan(bias[i]))
      return -1;
  s->bias.clear();
  for (int i = 0; i < n; ++i)
    s->bias.emplace_back(ids[i], bias[i] <= -100.0f
                                     ? -std::numeric_limits<float>::infinity()
                                     : bias[i]);
  return 0;
}

int32_t stc_sample(stc_sampler *s, const float *logits, int vocab) {
  const std::vector<uint64_t> *mask = nullptr;
  if (s->grammar) {
    mask = s->grammar->mask();
    if (!mask) // nothing can follow: the caller ends with the eos
      return s->grammar->eos();
  }
  if (!s->bias.empty() || mask) {
    s->biased.assign(logits, logits + vocab);
    for (const auto &[id, b] : s->bias)
      if (id < vocab)
        s->biased[id] += b;
    if (mask) // the tokens the grammar does not allow are never drawn
      for (int i = 0; i < vocab; ++i)
        if (!((*mask)[i >> 6] >> (i & 63) & 1))
          s->biased[i] = -std::numeric_limits<float>::infinity();
    logits = s->biased.data();
  }
  const int32_t token = sampleFrom(s, logits, vocab);
  if (s->grammar)
    s->grammar->accept(token);
  return token;
}

void stc_sampler_set_grammar(stc_sampler *s, stc_grammar *g) {
  s->grammar =
      g ? std::make_unique<stc::rt::grammar::GrammarMatcher>(g->compiled)
        : nullptr;
}

int stc_sampler_grammar_state(const stc_sampler *s) {
  if (!s->grammar)
    return -1;
  return s->grammar->mustEnd() ? 2 : s->grammar->canEnd() ? 1 : 0;
}

stc_grammar *stc_grammar_from_json_schema(stc_model *m,
                                          const char *schema_json) {
  stc::rt::grammar::Grammar g;
  if (!schema_json ||
      !stc::rt::grammar::schemaGrammar(schema_json, g, m->error))
    return nullptr;
  return newGrammar(m, std::move(g));
}

stc_grammar *stc_grammar_json_schema_tagged(stc_model *m,
                                            const char *schema_json,
                                            const char *begin, const char *end,
                                            int max_repeats) {
  stc::rt::grammar::Grammar g;
  if (!schema_json || !stc::rt::grammar::taggedSchemaGrammar(
                          schema_json, begin ? begin : "", end ? end : "",
                          max_repeats, g, m->error))
    return nullptr;
  return newGrammar(m, std::move(g));
}

stc_grammar *stc_grammar_json(stc_model *m, int object_only) {
  return newGrammar(m, stc::rt::grammar::anyJson(object_only != 0));
}

void stc_grammar_free(stc_grammar *g) { delete g; }

void stc_sampler_free(stc_sampler *s) { delete s; }

} // extern "C"
