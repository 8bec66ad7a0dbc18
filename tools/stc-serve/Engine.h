// Engine: the one thread that runs the model for stc-serve. Requests wait in
// a queue and run one at a time (one KV cache, never two sequences in it); the
// ids left in the cache by the last request are kept, so a request whose
// prompt extends them (a chat client resending its history) evaluates only
// the new tokens.
#ifndef STC_SERVE_ENGINE_H
#define STC_SERVE_ENGINE_H

#include "OpenAi.h"
#include "PeerWatch.h"
#include "stc_runtime.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace stc::serve {

// Counters for GET /metrics.
struct Metrics {
  // Once idle, requests = completed + cancelled + rejected.
  std::atomic<uint64_t> requests{0};        // generation requests received
  std::atomic<uint64_t> completed{0};       // answered in full
  std::atomic<uint64_t> cancelled{0};       // their client went away
  std::atomic<uint64_t> rejected{0};        // answered with a 4xx or 5xx error
  std::atomic<uint64_t> promptTokens{0};    // in the prompts of run requests
  std::atomic<uint64_t> cachedTokens{0};    // of those, reused from the cache
  std::atomic<uint64_t> evaluatedTokens{0}; // of those, evaluated (prefill)
  std::atomic<uint64_t> generatedTokens{0};
  std::atomic<int> queued{0}; // waiting for the engine
  std::atomic<int> running{0};
  std::atomic<uint64_t> promptMicros{0}, generateMicros{0};
};

// One request's way through the engine; shared by its HTTP handler (which
// reads the text as it comes) and the engine (which writes it).
class Job {
public:
  Job(Request r, PeerWatch w) : request(std::move(r)), watch(w) {}
  const Request request;
  const PeerWatch watch;

  // The HTTP side. waitStarted: until the engine has tokenized and checked the
  // request (false: refused, with the error). take: the text generated since
  // the last call, waiting up to `timeout` for some; true once the job is
  // over (then finishReason/usage/error are final).
  bool waitStarted(ApiError &error);
  bool take(std::string &text, std::chrono::milliseconds timeout);
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_ || watch.gone(); }
  std::string finishReason;
  Usage usage;
  ApiError error;
  bool failed = false;

  // The engine side.
  void start(const Usage &u);
  void emit(const std::string &text);
  void finish(const std::string &reason);
  void fail(const ApiError &e);

private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string pending_;
  bool started_ = false, done_ = false;
  std::atomic<bool> cancelled_{false};
};

class Engine {
public:
  // `maxQueue`: requests that may wait; more are refused (503).
  Engine(stc_model *m, int maxQueue, bool chatMl);
  ~Engine();
  bool submit(std::shared_ptr<Job> job, ApiError &error);
  Metrics &metrics() { return metrics_; }
  stc_model *model() const { return m_; }

private:
  void run();
  void process(Job &job);
  bool promptIds(const Request &r, std::vector<int32_t> &ids, ApiError &e);

  stc_model *m_;
  const int maxQueue_;
  const bool chatMl_;
  Metrics metrics_;
  std::vector<int32_t> context_; // the ids in the model's KV cache
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stop_ = false;
  std::thread worker_;
};

} // namespace stc::serve

#endif
