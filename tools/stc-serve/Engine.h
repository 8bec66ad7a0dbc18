// Engine: the one thread that runs the model for stc-serve, over N slots with
// continuous batching. Each slot is a sequence of the model (its own KV cache)
// and keeps the ids its cache holds after a request ends; a new request goes
// to the free slot whose cached ids its prompt extends most (a chat client
// resending its history evaluates only the new tokens) and joins the running
// batch at the next step. A step advances every busy slot: one decoded token
// each, and the next chunk of the prompts being evaluated (chunks of a fixed
// size, so a prompt is evaluated the same way whatever runs beside it, and a
// long prompt does not stall the streams). Requests beyond the slots wait in
// a bounded queue.
#ifndef STC_SERVE_ENGINE_H
#define STC_SERVE_ENGINE_H

#include "Metrics.h"
#include "OpenAi.h"
#include "PeerWatch.h"
#include "StopFilter.h"
#include "ToolCalls.h"
#include "stc_runtime.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace stc::serve {

// One request's way through the engine; shared by its HTTP handler (which
// reads the text as it comes) and the engine (which writes it).
class Job {
public:
  Job(Request r, PeerWatch w)
      : request(std::move(r)), watch(w),
        arrived(std::chrono::steady_clock::now()) {}
  const Request request;
  const PeerWatch watch;
  const std::chrono::steady_clock::time_point arrived;

  // The HTTP side. waitStarted: until the engine has tokenized and checked the
  // request (false: refused, with the error). take: the pieces generated
  // since the last call (content text, tool-call pieces), waiting up to
  // `timeout` for some; true once the job is over (then finishReason, usage,
  // calls and error are final).
  bool waitStarted(ApiError &error);
  bool take(std::vector<Delta> &pieces, std::chrono::milliseconds timeout);
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_ || watch.gone(); }
  std::string finishReason;
  Usage usage;
  std::vector<ToolCall> calls; // whole, at the end
  ApiError error;
  bool failed = false;

  // The engine side.
  void start(const Usage &u);
  void emit(const std::string &text);
  void emitCall(const ToolCall &piece);
  void finish(const std::string &reason);
  void fail(const ApiError &e);

private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Delta> pending_;
  bool started_ = false, done_ = false;
  std::atomic<bool> cancelled_{false};
};

// A slot's state for GET /health.
struct SlotState {
  const char *state = "idle"; // idle, prompt (evaluating it), generating
  int contextTokens = 0;      // ids in its KV cache
};

class Engine {
public:
  // `slots` sequences of the model (the first the model's own); `maxQueue`:
  // requests that may wait for a slot, more are refused (503).
  Engine(stc_model *m, int slots, int maxQueue);
  ~Engine();
  // False with `error` when the sequences cannot be made.
  bool ready(std::string &error) const;
  bool submit(std::shared_ptr<Job> job, ApiError &error);
  Metrics &metrics() { return metrics_; }
  stc_model *model() const { return m_; }
  std::vector<SlotState> slotStates();
  int queued();
  // Prompt tokens per chunk: the step's batch less one decoded token per
  // other slot.
  int chunk() const { return chunk_; }

private:
  struct Slot {
    stc_sequence *seq = nullptr;
    std::vector<int32_t> cached;  // the ids in its KV cache
    std::shared_ptr<Job> job;     // the request it runs, or null
    std::vector<int32_t> pending; // ids to evaluate: the prompt's rest, or
                                  // the token sampled last
    size_t prompt = 0;            // of which prompt ids (0: generating)
    stc_sampler *sampler = nullptr;
    stc_text_stream *text = nullptr;
    std::unique_ptr<StopFilter> filter;
    // With tools: the calls read from the text; tool_choice auto: the
    // grammar that holds a call once the model opens one ("<tool_call>"),
    // and the text's end, where that is looked for.
    std::unique_ptr<ToolCallStream> toolCalls;
    std::shared_ptr<stc_grammar> callGrammar; // (outlives its cache entry)
    std::string tail;
    int generated = 0, limit = -1;
    uint64_t lastUse = 0; // the engine's clock when it last ended a request
    std::chrono::steady_clock::time_point lastToken;
  };
  void run();
  // Takes a queued job into the free slot whose cache it extends most, or
  // refuses it.
  void admit(std::shared_ptr<Job> job);
  bool promptIds(const Request &r, std::vector<int32_t> &ids, ApiError &e);
  // One step over the busy slots.
  void step();
  // After a slot's evaluation: samples its next token, streams its text, and
  // ends the request on eos, a stop string or its limit.
  void next(Slot &s);
  // Ends a slot's request (the text held back sent first) and frees it.
  void end(Slot &s, const std::string &reason);
  void release(Slot &s);
  // Frees a slot's per-request state (sampler, text stream, stop filter,
  // tool calls): release's first half, and an admission that fails after
  // making them.
  void clearRequest(Slot &s);
  void publish(); // slotStates_ from the slots
  // The request's grammar (a forced tool call, response_format) set on the
  // slot's sampler, or the tool-call grammar kept for tool_choice auto;
  // false with a 400 for a schema that does not compile.
  bool grammars(const Request &r, Slot &s, ApiError &e);
  // Compiled grammars by what they hold, kept for later requests (their
  // masks with them); null when `make` fails.
  std::shared_ptr<stc_grammar>
  cached(const std::string &key, const std::function<stc_grammar *()> &make);
  std::map<std::string, std::shared_ptr<stc_grammar>> grammars_;
  std::deque<std::string> grammarOrder_; // oldest first
  static constexpr size_t kMaxGrammars = 16;
  // Text (content) and tool-call pieces from a slot's new text.
  void stream(Slot &s, const std::string &text);
  int busy() const;

  stc_model *m_;
  const int maxQueue_;
  int chunk_ = 1;
  std::string error_;
  Metrics metrics_;
  std::vector<Slot> slots_;
  uint64_t clock_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::vector<SlotState> slotStates_; // mu_
  bool stop_ = false;
  std::thread worker_;
};

} // namespace stc::serve

#endif
