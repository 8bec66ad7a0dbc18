// Metrics: the Prometheus text exposition format (version 0.0.4).
#include "Metrics.h"

#include <algorithm>
#include <cstdio>

namespace stc::serve {

namespace {

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

std::string header(const std::string &name, const char *type,
                   const std::string &help) {
  return "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

} // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  const size_t b =
      std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  std::lock_guard<std::mutex> lock(mu_);
  ++counts_[b];
  sum_ += value;
  ++count_;
}

uint64_t Histogram::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return count_;
}

std::string Histogram::render(const std::string &name,
                              const std::string &help) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string s = header(name, "histogram", help);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    s += name + "_bucket{le=\"" + number(bounds_[i]) + "\"} " +
         std::to_string(cumulative) + "\n";
  }
  s += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  s += name + "_sum " + number(sum_) + "\n";
  s += name + "_count " + std::to_string(count_) + "\n";
  return s;
}

std::string Metrics::render() const {
  std::string s;
  auto add = [&](const char *name, const char *type, const char *help,
                 double value) {
    const std::string full = std::string("stc_") + name;
    s += header(full, type, help) + full + " " + number(value) + "\n";
  };
  add("requests_total", "counter",
      "Generation requests received (completed, cancelled or rejected).",
      requests);
  add("requests_completed_total", "counter", "Requests answered in full.",
      completed);
  add("requests_cancelled_total", "counter",
      "Requests whose client went away before the end.", cancelled);
  add("requests_rejected_total", "counter",
      "Requests answered with an error (4xx or 5xx).", rejected);
  add("prompt_tokens_total", "counter", "Tokens in the prompts run.",
      promptTokens);
  add("prompt_tokens_cached_total", "counter",
      "Prompt tokens reused from their slot's KV cache (not evaluated "
      "again).",
      cachedTokens);
  add("prompt_tokens_evaluated_total", "counter",
      "Prompt tokens evaluated (prefill).", evaluatedTokens);
  add("generated_tokens_total", "counter", "Tokens generated.",
      generatedTokens);
  add("steps_total", "counter",
      "Model steps run (each advances a batch of sequences).", steps);
  add("experts_routed_total", "counter",
      "Distinct experts the steps' tokens routed to, summed over the steps "
      "(an expert several sequences of a step share counts once; over "
      "stc_steps_total: experts read per step).",
      experts);
  add("prompt_seconds_total", "counter",
      "Seconds spent in steps that evaluated a prompt chunk.",
      promptMicros / 1e6);
  add("generate_seconds_total", "counter",
      "Seconds spent in steps of decoded tokens only.", generateMicros / 1e6);
  add("requests_queued", "gauge", "Requests waiting for a slot.", queued);
  add("requests_running", "gauge", "Requests in a slot (being generated).",
      running);
  add("slots", "gauge", "Slots: sequences the server runs at once.", slots);
  add("slots_busy", "gauge", "Slots running a request.", running);
  s += timeToFirstToken.render(
      "stc_time_to_first_token_seconds",
      "Seconds from a request's arrival to its first generated token.");
  s += timePerToken.render(
      "stc_time_per_output_token_seconds",
      "Seconds between two generated tokens of one request.");
  s += batchSize.render("stc_batch_size_sequences",
                        "Sequences advanced together in one step.");
  return s;
}

} // namespace stc::serve
