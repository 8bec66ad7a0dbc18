// Metrics: stc-serve's counters, gauges and histograms, and their Prometheus
// text (GET /metrics): what operators of llama-server and vLLM watch (queue
// depth, busy slots, batch size, time to first token, time per output token)
// beside the request and token counts.
#ifndef STC_SERVE_METRICS_H
#define STC_SERVE_METRICS_H

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace stc::serve {

// A Prometheus histogram: observations counted in buckets of upper bounds.
class Histogram {
public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  // The exposition of `name`: its _bucket lines (cumulative, then +Inf),
  // _sum and _count, after HELP and TYPE.
  std::string render(const std::string &name, const std::string &help) const;
  uint64_t count() const;

private:
  const std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<uint64_t> counts_; // per bucket, the last for +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

struct Metrics {
  // Once idle, requests = completed + cancelled + rejected.
  std::atomic<uint64_t> requests{0};        // generation requests received
  std::atomic<uint64_t> completed{0};       // answered in full
  std::atomic<uint64_t> cancelled{0};       // their client went away
  std::atomic<uint64_t> rejected{0};        // answered with a 4xx or 5xx error
  std::atomic<uint64_t> promptTokens{0};    // in the prompts of run requests
  std::atomic<uint64_t> cachedTokens{0};    // of those, reused from a slot
  std::atomic<uint64_t> evaluatedTokens{0}; // of those, evaluated (prefill)
  std::atomic<uint64_t> generatedTokens{0};
  std::atomic<int> queued{0};  // waiting for a slot
  std::atomic<int> running{0}; // in a slot
  int slots = 0;
  // Steps, and the wall time of those with a prompt chunk and of those of
  // decoded tokens only.
  std::atomic<uint64_t> steps{0}, promptMicros{0}, generateMicros{0};
  // Distinct (layer, expert) pairs the steps' tokens routed to, summed over
  // the steps (stc_batch_stats).
  std::atomic<uint64_t> experts{0};
  // Seconds from a request's arrival to its first token; between a stream's
  // tokens; sequences per step.
  Histogram timeToFirstToken{
      {0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}};
  Histogram timePerToken{
      {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5}};
  Histogram batchSize{{1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64}};

  std::string render() const;
};

} // namespace stc::serve

#endif
