// Engine: the queue, the slots and their prompt caches, and the batched steps
// of stc-serve.
#include "Engine.h"

#include "CApiTools.h"

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

bool Job::take(std::vector<Delta> &pieces, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return !pending_.empty() || done_; });
  pieces.swap(pending_);
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
  if (!pending_.empty() && !pending_.back().isCall)
    pending_.back().text += text;
  else
    pending_.push_back(Delta{false, text, {}});
  cv_.notify_all();
}

void Job::emitCall(const ToolCall &piece) {
  std::lock_guard<std::mutex> lock(mu_);
  // A piece of the same call's arguments joins the one waiting.
  if (!pending_.empty() && pending_.back().isCall && piece.id.empty() &&
      pending_.back().call.index == piece.index)
    pending_.back().call.arguments += piece.arguments;
  else
    pending_.push_back(Delta{true, "", piece});
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

Engine::Engine(stc_model *m, int slots, int maxQueue)
    : m_(m), maxQueue_(maxQueue) {
  slots_.resize(std::max(1, slots));
  slots_[0].seq = stc_model_sequence(m);
  for (size_t i = 1; i < slots_.size(); ++i)
    if (!(slots_[i].seq = stc_sequence_new(m))) {
      error_ = stc_last_error(m);
      slots_.resize(i);
      break;
    }
  // A step holds one decoded token of every other slot beside a chunk.
  chunk_ = std::max(1, stc_max_batch(m) - static_cast<int>(slots_.size() - 1));
  metrics_.slots = static_cast<int>(slots_.size());
  slotStates_.resize(slots_.size());
  if (error_.empty())
    worker_ = std::thread([this] { run(); });
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable())
    worker_.join();
  for (Slot &s : slots_) {
    if (s.job)
      end(s, "cancelled");
    stc_sequence_free(s.seq); // (not the model's own)
  }
  for (const std::shared_ptr<Job> &job : queue_)
    job->finish("cancelled");
}

std::shared_ptr<stc_grammar>
Engine::cached(const std::string &key,
               const std::function<stc_grammar *()> &make) {
  auto it = grammars_.find(key);
  if (it != grammars_.end())
    return it->second;
  std::shared_ptr<stc_grammar> g(make(), stc_grammar_free);
  if (!g)
    return nullptr;
  // The oldest goes past kMaxGrammars (a slot that still uses it keeps it:
  // a sampler shares the compiled grammar, a slot's callGrammar owns it).
  if (grammarOrder_.size() >= kMaxGrammars) {
    grammars_.erase(grammarOrder_.front());
    grammarOrder_.pop_front();
  }
  grammars_[key] = g;
  grammarOrder_.push_back(key);
  return g;
}

namespace {

// The JSON Schema of one call of a tool: its name and its arguments.
std::string callSchema(const Tool &t) {
  std::string name;
  for (char c : t.name) { // (a JSON string of the name)
    if (c == '"' || c == '\\')
      name += '\\';
    name += c;
  }
  return "{\"type\":\"object\",\"properties\":{\"name\":{\"const\":\"" + name +
         "\"},\"arguments\":" +
         (t.parameters.empty() ? std::string("{\"type\":\"object\"}")
                               : t.parameters) +
         "},\"required\":[\"name\",\"arguments\"],"
         "\"additionalProperties\":false}";
}

} // namespace

bool Engine::grammars(const Request &r, Slot &s, ApiError &e) {
  // The calls the model may make: every tool's, or the named one's.
  std::string calls;
  int n = 0;
  for (const Tool &t : r.tools)
    if (r.toolChoice != ToolChoice::Named || t.name == r.toolName) {
      calls += std::string(n++ ? "," : "") + callSchema(t);
    }
  calls = n == 1 ? calls : "{\"anyOf\":[" + calls + "]}";
  auto refuse = [&](const char *param) {
    e.message = std::string(param) + ": " + stc_last_error(m_);
    e.param = param;
    e.code = "invalid_value";
    return false;
  };
  std::shared_ptr<stc_grammar> g;
  if (r.toolChoice == ToolChoice::Required ||
      r.toolChoice == ToolChoice::Named) {
    // The whole answer is calls: one (a named function, or without
    // parallel_tool_calls), or several.
    const int most =
        r.parallelToolCalls && r.toolChoice == ToolChoice::Required ? 8 : 1;
    g = cached("calls " + std::to_string(most) + " " + calls, [&] {
      return stc_grammar_json_schema_tagged(m_, calls.c_str(), "<tool_call>\n",
                                            "\n</tool_call>", most);
    });
    if (!g)
      return refuse("tools");
  } else if (r.format == ResponseFormat::JsonObject) {
    g = cached("json_object", [&] { return stc_grammar_json(m_, 1); });
  } else if (r.format == ResponseFormat::JsonSchema) {
    g = cached("schema " + r.formatSchema, [&] {
      return stc_grammar_from_json_schema(m_, r.formatSchema.c_str());
    });
    if (!g)
      return refuse("response_format");
  }
  if (g)
    stc_sampler_set_grammar(s.sampler, g.get());
  if (r.toolChoice != ToolChoice::None)
    s.toolCalls = std::make_unique<ToolCallStream>();
  if (r.toolChoice == ToolChoice::Auto && !g) {
    // The model writes freely until it opens a call; from there the call
    // is held to a tool's schema.
    s.callGrammar = cached("call " + calls, [&] {
      return stc_grammar_json_schema_tagged(m_, calls.c_str(), "\n",
                                            "\n</tool_call>", 1);
    });
    if (!s.callGrammar)
      return refuse("tools");
  }
  return true;
}

void Engine::stream(Slot &s, const std::string &text) {
  Job &job = *s.job;
  if (!s.toolCalls) {
    job.emit(s.filter->push(text));
    return;
  }
  std::vector<Delta> pieces;
  s.toolCalls->push(text, pieces);
  for (const Delta &d : pieces) {
    if (d.isCall)
      job.emitCall(d.call);
    else if (!s.filter->stopped())
      job.emit(s.filter->push(d.text));
  }
}

bool Engine::ready(std::string &error) const {
  error = error_;
  return error_.empty();
}

bool Engine::submit(std::shared_ptr<Job> job, ApiError &e) {
  std::lock_guard<std::mutex> lock(mu_);
  if (static_cast<int>(queue_.size()) >= maxQueue_) {
    ++metrics_.rejected;
    e.status = 503;
    e.type = "server_error";
    e.code = "queue_full";
    e.message = std::to_string(queue_.size()) +
                " requests are waiting for a slot already (stc-serve "
                "--parallel, --queue); try again later.";
    return false;
  }
  queue_.push_back(std::move(job));
  metrics_.queued = static_cast<int>(queue_.size());
  cv_.notify_one();
  return true;
}

std::vector<SlotState> Engine::slotStates() {
  std::lock_guard<std::mutex> lock(mu_);
  return slotStates_;
}

int Engine::queued() {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(queue_.size());
}

int Engine::busy() const {
  return static_cast<int>(std::count_if(slots_.begin(), slots_.end(),
                                        [](const Slot &s) { return !!s.job; }));
}

void Engine::publish() {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot &s = slots_[i];
    slotStates_[i].state = !s.job         ? "idle"
                           : s.prompt > 0 ? "prompt"
                                          : "generating";
    slotStates_[i].contextTokens = static_cast<int>(s.cached.size());
  }
}

void Engine::run() {
  while (true) {
    std::vector<std::shared_ptr<Job>> admitted;
    {
      std::unique_lock<std::mutex> lock(mu_);
      const int free = static_cast<int>(slots_.size()) - busy();
      cv_.wait(lock, [&] {
        return stop_ || free < static_cast<int>(slots_.size()) ||
               !queue_.empty();
      });
      if (stop_)
        return;
      // A request whose client left while it waited goes at once.
      for (auto it = queue_.begin(); it != queue_.end();)
        if ((*it)->cancelled()) {
          ++metrics_.cancelled;
          (*it)->finish("cancelled");
          it = queue_.erase(it);
        } else {
          ++it;
        }
      for (int i = 0; i < free && !queue_.empty(); ++i) {
        admitted.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      metrics_.queued = static_cast<int>(queue_.size());
    }
    for (const std::shared_ptr<Job> &job : admitted)
      admit(job);
    // Requests whose client left free their slot before the step.
    for (Slot &s : slots_)
      if (s.job && s.job->cancelled())
        end(s, "cancelled");
    if (busy() > 0)
      step();
    publish();
  }
}

// The prompt's ids: a completion's text or ids, or a chat's messages through
// the model's chat template.
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
  // The model's chat template (or the one --chat-template set): the control
  // tokens it writes are control ids, what the messages hold is text.
  // The tools go to the template (which writes them into the prompt) unless
  // tool_choice is none.
  const int flags = STC_CHAT_ADD_GENERATION_PROMPT;
  const char *tools = r.toolsJson.empty() || r.toolChoice == ToolChoice::None
                          ? nullptr
                          : r.toolsJson.c_str();
  int n = stc_chat_tokens(m_, r.messagesJson.c_str(), tools, flags, nullptr, 0);
  if (n >= 0) {
    ids.resize(n);
    n = stc_chat_tokens(m_, r.messagesJson.c_str(), tools, flags, ids.data(),
                        n);
  }
  if (n < 0) {
    e.message = std::string("messages: ") + stc_last_error(m_);
    e.param = "messages";
    return false;
  }
  return true;
}

void Engine::admit(std::shared_ptr<Job> job) {
  const Request &r = job->request;
  if (job->cancelled()) { // gone while it waited
    ++metrics_.cancelled;
    job->finish("cancelled");
    return;
  }
  std::vector<int32_t> ids;
  ApiError e;
  auto refuse = [&] {
    ++metrics_.rejected;
    job->fail(e);
  };
  if (!promptIds(r, ids, e))
    return refuse();
  for (const auto &[id, bias] : r.logitBias)
    if (id >= stc_vocab_size(m_)) {
      e.message = "Invalid value for 'logit_bias': token id " +
                  std::to_string(id) + " is past the vocabulary of " +
                  std::to_string(stc_vocab_size(m_)) + ".";
      e.param = "logit_bias";
      e.code = "invalid_value";
      return refuse();
    }
  const int maxContext = stc_max_context(m_);
  const int asked = r.maxTokens > 0 ? r.maxTokens : 1;
  if (static_cast<int64_t>(ids.size()) + asked > maxContext) {
    const char *what = r.endpoint == Endpoint::Chat ? "messages" : "prompt";
    e.message = "This model's maximum context length is " +
                std::to_string(maxContext) +
                " tokens. However, you requested " +
                std::to_string(ids.size() + asked) + " tokens (" +
                std::to_string(ids.size()) + " in the " + what + ", " +
                std::to_string(asked) +
                " in the completion). Please reduce the length of the " + what +
                " or completion.";
    e.param = what;
    e.code = "context_length_exceeded";
    return refuse();
  }

  // The free slot whose cached conversation the prompt extends (it shares
  // at least half of the slot's ids: the longest such prefix); else an empty
  // slot; else the one idle longest. A prompt that shares only a
  // conversation's first tokens (the template's opening) does not take that
  // slot while another is free, so several clients each keep theirs. At
  // least the last prompt token is evaluated again: its logits choose the
  // first new token.
  Slot *slot = nullptr;
  size_t keep = 0;
  auto prefix = [&](const Slot &s) {
    return static_cast<size_t>(
        std::mismatch(s.cached.begin(), s.cached.end(), ids.begin(), ids.end())
            .first -
        s.cached.begin());
  };
  for (Slot &s : slots_) {
    const size_t k = s.job ? 0 : prefix(s);
    if (k > 0 && 2 * k >= s.cached.size() && k > keep) {
      slot = &s;
      keep = k;
    }
  }
  for (Slot &s : slots_)
    if (!slot && !s.job && s.cached.empty())
      slot = &s;
  for (Slot &s : slots_)
    if (!keep && !s.job && !s.cached.empty() &&
        (!slot || (!slot->cached.empty() && s.lastUse < slot->lastUse)))
      slot = &s;
  keep = prefix(*slot);
  Slot &s = *slot;
  keep = std::min(keep, ids.size() - 1);
  if (keep < s.cached.size()) {
    if (stc_sequence_rewind(s.seq, static_cast<int>(keep)) != 0) {
      // A sliding-window ring lost the keys the prefix needs: start over.
      stc_sequence_reset(s.seq);
      keep = 0;
    }
    s.cached.resize(keep);
  }

  float temperature, topP;
  int topK;
  stc_default_sampling(m_, &temperature, &topK, &topP);
  const uint64_t seed = r.seed ? *r.seed : std::random_device{}();
  s.sampler =
      stc_sampler_new(r.temperature.value_or(temperature),
                      r.topK.value_or(topK), r.topP.value_or(topP), seed);
  std::vector<int32_t> biasIds;
  std::vector<float> biases;
  for (const auto &[id, bias] : r.logitBias) {
    biasIds.push_back(id);
    biases.push_back(bias);
  }
  stc_sampler_set_logit_bias(s.sampler, biasIds.data(), biases.data(),
                             static_cast<int>(biasIds.size()));
  s.text = stc_text_stream_new(m_);
  s.filter = std::make_unique<StopFilter>(r.stop);
  if (!grammars(r, s, e)) {
    clearRequest(s);
    return refuse();
  }
  s.tail.clear();
  s.job = std::move(job);
  s.pending.assign(ids.begin() + keep, ids.end());
  s.prompt = s.pending.size();
  s.generated = 0;
  s.limit = r.maxTokens > 0 ? r.maxTokens : -1;
  ++metrics_.running;
  metrics_.promptTokens += ids.size();
  metrics_.cachedTokens += keep;
  metrics_.evaluatedTokens += s.prompt;
  Usage usage;
  usage.promptTokens = static_cast<int>(ids.size());
  usage.cachedTokens = static_cast<int>(keep);
  s.job->start(usage);
}

void Engine::step() {
  // Every generating slot's token, then the prompt chunks of the slots
  // evaluating one, the longest-waiting first, while the step holds them.
  const int maxBatch = stc_max_batch(m_);
  std::vector<stc_batch_item> items;
  std::vector<Slot *> in;
  int total = 0;
  for (Slot &s : slots_)
    if (s.job && s.prompt == 0) {
      items.push_back({s.seq, s.pending.data(), 1, nullptr});
      in.push_back(&s);
      ++total;
    }
  std::vector<Slot *> prompts;
  for (Slot &s : slots_)
    if (s.job && s.prompt > 0)
      prompts.push_back(&s);
  std::sort(prompts.begin(), prompts.end(), [](const Slot *a, const Slot *b) {
    return a->job->arrived < b->job->arrived;
  });
  bool prompted = false;
  for (Slot *s : prompts) {
    const int n = static_cast<int>(std::min<size_t>(chunk_, s->prompt));
    if (total + n > maxBatch)
      break;
    items.push_back({s->seq, s->pending.data(), n, nullptr});
    in.push_back(s);
    total += n;
    prompted = true;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const int rc =
      stc_eval_batch(m_, items.data(), static_cast<int>(items.size()));
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - t0)
                          .count();
  ++metrics_.steps;
  metrics_.batchSize.observe(static_cast<double>(items.size()));
  uint64_t steps, sequences, experts;
  stc_batch_stats(m_, &steps, &sequences, &experts);
  metrics_.experts = experts;
  (prompted ? metrics_.promptMicros : metrics_.generateMicros) += micros;
  if (rc != 0) {
    // What the caches hold now is not known: their slots start afresh.
    ApiError e;
    e.status = 500;
    e.type = "server_error";
    e.message = std::string("the model failed: ") + stc_last_error(m_);
    for (Slot *s : in) {
      stc_sequence_reset(s->seq);
      s->cached.clear();
      ++metrics_.rejected;
      s->job->fail(e);
      release(*s);
    }
    return;
  }
  for (size_t k = 0; k < items.size(); ++k) {
    Slot &s = *in[k];
    const int n = items[k].n;
    s.cached.insert(s.cached.end(), s.pending.begin(), s.pending.begin() + n);
    s.pending.erase(s.pending.begin(), s.pending.begin() + n);
    if (s.prompt > 0 && (s.prompt -= n) > 0)
      continue; // more of the prompt
    next(s);
  }
}

void Engine::next(Slot &s) {
  Job &job = *s.job;
  if (job.cancelled())
    return end(s, "cancelled");
  const int32_t token =
      stc_sample(s.sampler, stc_sequence_logits(s.seq), stc_vocab_size(m_));
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(
                           now - (s.generated == 0 ? job.arrived : s.lastToken))
                           .count();
  (s.generated == 0 ? metrics_.timeToFirstToken : metrics_.timePerToken)
      .observe(since);
  s.lastToken = now;
  for (int i = 0;; ++i) {
    const int32_t eos = stc_special_token(m_, STC_TOKEN_EOS, i);
    if (eos < 0)
      break;
    if (token == eos)
      return end(s, "stop"); // (not passed on)
  }
  ++s.generated;
  ++metrics_.generatedTokens;
  char buf[256];
  const int n = stc_text_stream_push(s.text, token, buf, sizeof(buf));
  std::string piece(buf, std::max(0, std::min<int>(n, sizeof(buf) - 1)));
  if (n >= static_cast<int>(sizeof(buf))) { // a long piece: taken whole
    piece.assign(n + 1, '\0');
    stc_text_stream_take(s.text, piece.data(), piece.size());
    piece.resize(n);
  }
  stream(s, piece);
  if (s.callGrammar) { // tool_choice auto: has the model opened a call?
    s.tail += piece;
    const std::string open = ToolCallStream::kOpen;
    if (s.tail.size() >= open.size() &&
        s.tail.compare(s.tail.size() - open.size(), open.size(), open) == 0) {
      stc_sampler_set_grammar(s.sampler, s.callGrammar.get());
      s.callGrammar = nullptr;
    } else if (s.tail.size() > 2 * open.size()) {
      s.tail.erase(0, s.tail.size() - open.size());
    }
  }
  if (s.filter->stopped())
    return end(s, "stop");
  if (s.limit > 0 && s.generated >= s.limit)
    return end(s, "length");
  if (stc_sequence_length(s.seq) >= stc_max_context(m_))
    return end(s, "length"); // no room to evaluate it
  s.pending.assign(1, token);
}

void Engine::end(Slot &s, const std::string &reason) {
  const std::shared_ptr<Job> held = s.job; // (release drops the slot's)
  Job &job = *held;
  std::string finish = reason;
  if (reason == "cancelled") {
    ++metrics_.cancelled;
  } else {
    if (!s.filter->stopped()) {
      // An unfinished character at the end, as U+FFFD.
      std::string rest(stc_text_stream_finish(s.text, nullptr, 0) + 1, '\0');
      stc_text_stream_take(s.text, rest.data(), rest.size());
      rest.pop_back();
      stream(s, rest);
    }
    if (s.toolCalls) {
      std::vector<Delta> pieces;
      s.toolCalls->finish(pieces);
      for (const Delta &d : pieces)
        if (!d.isCall && !s.filter->stopped())
          job.emit(s.filter->push(d.text));
      job.calls = s.toolCalls->calls();
    }
    job.emit(s.filter->flush());
    job.usage.completionTokens = s.generated;
    ++metrics_.completed;
    // A response that called tools says so (unless it was cut short).
    if (!job.calls.empty() && reason == "stop")
      finish = "tool_calls";
  }
  // The slot is free, and /health says so, before the client hears the end:
  // a client that has its answer then finds its slot idle.
  release(s);
  publish();
  job.finish(finish);
}

void Engine::clearRequest(Slot &s) {
  stc_sampler_free(s.sampler);
  s.sampler = nullptr;
  stc_text_stream_free(s.text);
  s.text = nullptr;
  s.filter.reset();
  s.toolCalls.reset();
  s.callGrammar = nullptr;
}

void Engine::release(Slot &s) {
  clearRequest(s);
  s.job.reset();
  s.pending.clear();
  s.prompt = 0;
  s.lastUse = ++clock_;
  --metrics_.running;
}

} // namespace stc::serve
