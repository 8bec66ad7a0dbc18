// Engine: the queue, the prompt cache and the generation of stc-serve.
#include "Engine.h"

#include "CApiTools.h"
#include "StopFilter.h"

#include <algorithm>
#include <random>

namespace stc::serve {

bool Job::waitStarted(ApiError &e) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return started_ || done_; });
  if (failed)
    e = error;
  return !failed;
}

bool Job::take(std::string &text, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return !pending_.empty() || done_; });
  text.swap(pending_);
  pending_.clear();
  return done_;
}

void Job::start(const Usage &u) {
  std::lock_guard<std::mutex> lock(mu_);
  usage = u;
  started_ = true;
  cv_.notify_all();
}

void Job::emit(const std::string &text) {
  if (text.empty())
    return;
  std::lock_guard<std::mutex> lock(mu_);
  pending_ += text;
  cv_.notify_all();
}

void Job::finish(const std::string &reason) {
  std::lock_guard<std::mutex> lock(mu_);
  finishReason = reason;
  done_ = true;
  cv_.notify_all();
}

void Job::fail(const ApiError &e) {
  std::lock_guard<std::mutex> lock(mu_);
  error = e;
  failed = true;
  done_ = true;
  cv_.notify_all();
}

Engine::Engine(stc_model *m, int maxQueue, bool chatMl)
    : m_(m), maxQueue_(maxQueue), chatMl_(chatMl) {
  worker_ = std::thread([this] { run(); });
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

bool Engine::submit(std::shared_ptr<Job> job, ApiError &e) {
  std::lock_guard<std::mutex> lock(mu_);
  if (static_cast<int>(queue_.size()) >= maxQueue_) {
    ++metrics_.rejected;
    e.status = 503;
    e.type = "server_error";
    e.code = "queue_full";
    e.message = std::to_string(queue_.size()) +
                " requests are waiting already (stc-serve --queue); try "
                "again later.";
    return false;
  }
  queue_.push_back(std::move(job));
  metrics_.queued = static_cast<int>(queue_.size());
  cv_.notify_one();
  return true;
}

void Engine::run() {
  while (true) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty())
        return;
      job = std::move(queue_.front());
      queue_.pop_front();
      metrics_.queued = static_cast<int>(queue_.size());
      ++metrics_.running; // with the pop: never counted in neither
    }
    process(*job);
    --metrics_.running;
  }
}

// The prompt's ids. Chat messages are ChatML with the markers as control
// tokens and each turn's "role\ncontent" tokenized as text (control tokens
// typed by a client stay text), which is how the model's own tokenizer reads
// the formatted conversation unless the text holds such tokens.
bool Engine::promptIds(const Request &r, std::vector<int32_t> &ids,
                       ApiError &e) {
  const int vocab = stc_vocab_size(m_);
  if (r.endpoint == Endpoint::Completion) {
    if (!r.promptIsIds) {
      if (stc::tools::appendTokens(m_, r.prompt, false, ids))
        return true;
      e.message = std::string("prompt: ") + stc_last_error(m_);
      e.param = "prompt";
      return false;
    }
    for (int32_t id : r.promptIds)
      if (id >= vocab) {
        e.message = "prompt: token id " + std::to_string(id) +
                    " is past the vocabulary of " + std::to_string(vocab);
        e.param = "prompt";
        return false;
      }
    ids = r.promptIds;
    return true;
  }
  const int32_t imStart = stc_special_token(m_, STC_TOKEN_IM_START, 0);
  const int32_t imEnd = stc_special_token(m_, STC_TOKEN_IM_END, 0);
  if (!chatMl_ || imStart < 0 || imEnd < 0) {
    e.message = imStart < 0 || imEnd < 0
                    ? "this model's tokenizer has no <|im_start|> / "
                      "<|im_end|>: use /v1/completions"
                    : "this model's chat template is not ChatML: start "
                      "stc-serve with --chat-template chatml, or use "
                      "/v1/completions";
    return false;
  }
  for (size_t i = 0; i < r.messages.size(); ++i) {
    ids.push_back(imStart);
    if (!stc::tools::appendTokens(
            m_, r.messages[i].role + "\n" + r.messages[i].content, false,
            ids)) {
      e.message =
          "messages[" + std::to_string(i) + "].content: " + stc_last_error(m_);
      e.param = "messages[" + std::to_string(i) + "].content";
      return false;
    }
    ids.push_back(imEnd);
    stc::tools::appendTokens(m_, "\n", false, ids);
  }
  ids.push_back(imStart);
  stc::tools::appendTokens(m_, "assistant\n", false, ids);
  return true;
}

namespace {

struct Generation {
  Job *job;
  StopFilter filter;
};

int onPiece(const char *piece, size_t len, void *user) {
  Generation &g = *static_cast<Generation *>(user);
  g.job->emit(g.filter.push(std::string(piece, len)));
  return g.filter.stopped() || g.job->cancelled();
}

} // namespace

void Engine::process(Job &job) {
  const Request &r = job.request;
  if (job.cancelled()) { // gone while it waited
    ++metrics_.cancelled;
    job.finish("cancelled");
    return;
  }
  std::vector<int32_t> ids;
  ApiError e;
  if (!promptIds(r, ids, e)) {
    ++metrics_.rejected;
    job.fail(e);
    return;
  }
  for (const auto &[id, bias] : r.logitBias)
    if (id >= stc_vocab_size(m_)) {
      e.message = "Invalid value for 'logit_bias': token id " +
                  std::to_string(id) + " is past the vocabulary of " +
                  std::to_string(stc_vocab_size(m_)) + ".";
      e.param = "logit_bias";
      e.code = "invalid_value";
      ++metrics_.rejected;
      job.fail(e);
      return;
    }
  const int maxContext = stc_max_context(m_);
  const int asked = r.maxTokens > 0 ? r.maxTokens : 1;
  if (static_cast<int64_t>(ids.size()) + asked > maxContext) {
    e.message = "This model's maximum context length is " +
                std::to_string(maxContext) +
                " tokens. However, you requested " +
                std::to_string(ids.size() + asked) + " tokens (" +
                std::to_string(ids.size()) + " in the " +
                (r.endpoint == Endpoint::Chat ? "messages" : "prompt") + ", " +
                std::to_string(asked) +
                " in the completion). Please reduce the length of the " +
                (r.endpoint == Endpoint::Chat ? "messages" : "prompt") +
                " or completion.";
    e.param = r.endpoint == Endpoint::Chat ? "messages" : "prompt";
    e.code = "context_length_exceeded";
    ++metrics_.rejected;
    job.fail(e);
    return;
  }

  // The prompt cache: keep the longest prefix the context shares with this
  // prompt. At least the last prompt token is evaluated again: its logits
  // choose the first new token.
  size_t keep =
      std::mismatch(context_.begin(), context_.end(), ids.begin(), ids.end())
          .first -
      context_.begin();
  keep = std::min(keep, ids.size() - 1);
  if (keep < context_.size()) {
    if (stc_rewind(m_, static_cast<int>(keep)) != 0) {
      // A sliding-window ring lost the keys the prefix needs: start over.
      stc_reset(m_);
      keep = 0;
    }
    context_.resize(keep);
  }

  float temperature, topP;
  int topK;
  stc_default_sampling(m_, &temperature, &topK, &topP);
  temperature = r.temperature.value_or(temperature);
  topK = r.topK.value_or(topK);
  topP = r.topP.value_or(topP);
  const uint64_t seed = r.seed ? *r.seed : std::random_device{}();
  stc_sampler *sampler = stc_sampler_new(temperature, topK, topP, seed);
  std::vector<int32_t> biasIds;
  std::vector<float> biases;
  for (const auto &[id, bias] : r.logitBias) {
    biasIds.push_back(id);
    biases.push_back(bias);
  }
  stc_sampler_set_logit_bias(sampler, biasIds.data(), biases.data(),
                             static_cast<int>(biasIds.size()));

  Usage usage;
  usage.promptTokens = static_cast<int>(ids.size());
  usage.cachedTokens = static_cast<int>(keep);
  job.start(usage);

  Generation g{&job, StopFilter(r.stop)};
  const int limit = r.maxTokens > 0 ? r.maxTokens : -1;
  std::vector<int32_t> out(limit > 0 ? limit : maxContext);
  const int reason = stc_generate(
      m_, ids.data() + keep, static_cast<int>(ids.size() - keep), limit,
      sampler, onPiece, &g, out.data(), static_cast<int>(out.size()));
  stc_sampler_free(sampler);
  stc_generation_stats st;
  stc_last_generation_stats(m_, &st);
  if (reason == STC_STOP_ERROR) {
    // Whatever the cache holds now is not known: start the next one afresh.
    stc_reset(m_);
    context_.clear();
    e.status = 500;
    e.type = "server_error";
    e.message = std::string("the model failed: ") + stc_last_error(m_);
    ++metrics_.rejected;
    job.fail(e);
    return;
  }
  if (st.prompt_tokens > 0)
    context_.insert(context_.end(), ids.begin() + keep, ids.end());
  context_.insert(context_.end(), out.begin(),
                  out.begin() +
                      std::min<size_t>(st.generated_tokens, out.size()));
  job.emit(g.filter.flush());

  metrics_.promptTokens += ids.size();
  metrics_.cachedTokens += keep;
  metrics_.evaluatedTokens += st.prompt_tokens;
  metrics_.generatedTokens += st.generated_tokens;
  metrics_.promptMicros += static_cast<uint64_t>(st.prompt_seconds * 1e6);
  metrics_.generateMicros += static_cast<uint64_t>(st.generate_seconds * 1e6);
  job.usage.completionTokens = st.generated_tokens;
  if (job.cancelled() && !g.filter.stopped() && reason == STC_STOP_CALLBACK) {
    ++metrics_.cancelled;
    job.finish("cancelled");
    return;
  }
  ++metrics_.completed;
  job.finish(reason == STC_STOP_EOS || g.filter.stopped() ? "stop" : "length");
}

} // namespace stc::serve
