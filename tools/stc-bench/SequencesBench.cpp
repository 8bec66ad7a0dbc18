// SequencesBench: stc-bench --sequences.
#include "SequencesBench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <sstream>

namespace stc::bench {

namespace {

double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

} // namespace

bool parseCounts(const std::string &text, std::vector<int> &counts) {
  std::stringstream in(text);
  std::string item;
  counts.clear();
  while (std::getline(in, item, ',')) {
    char *end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end || v < 1 || v > 4096)
      return false;
    counts.push_back(static_cast<int>(v));
  }
  return !counts.empty();
}

bool benchSequences(stc::rt::Runtime &rt, const std::vector<int> &counts,
                    int prompt, int gen, bool json, bool profile) {
  std::mt19937 rng(1);
  std::string err;
  auto fail = [&] {
    std::fprintf(stderr, "stc-bench: %s\n", err.c_str());
    return false;
  };
  // Warm-up: every weight touched once, not timed.
  std::vector<int32_t> warm(8);
  for (int32_t &t : warm)
    t = static_cast<int32_t>(rng() % rt.vocab());
  if (!rt.eval(warm.data(), static_cast<int>(warm.size()), nullptr, err))
    return fail();
  if (json)
    std::printf("[");
  else
    std::printf("sequences  prefill tok/s  decode tok/s  ms per step  "
                "experts per step  (aggregate over the sequences; %d prompt "
                "ids each, %d decode steps)\n",
                prompt, gen);
  for (size_t c = 0; c < counts.size(); ++c) {
    const int n = counts[c];
    // The runtime's own sequence and n - 1 more.
    rt.reset();
    std::vector<std::unique_ptr<stc::rt::Sequence>> made;
    std::vector<stc::rt::Sequence *> seqs{&rt.ownSequence()};
    for (int i = 1; i < n; ++i) {
      made.push_back(rt.newSequence(err));
      if (!made.back())
        return fail();
      seqs.push_back(made.back().get());
    }
    std::vector<std::vector<int32_t>> prompts(n, std::vector<int32_t>(prompt));
    for (auto &p : prompts)
      for (int32_t &t : p)
        t = static_cast<int32_t>(rng() % rt.vocab());
    std::vector<stc::rt::Runtime::BatchItem> items;
    for (int i = 0; i < n; ++i)
      items.push_back({seqs[i], prompts[i].data(), prompt, nullptr});
    double t0 = now();
    if (!rt.evalBatch(items.data(), n, err))
      return fail();
    const double prefill = now() - t0;
    // Random ids, as llama-bench decodes (the model's own choice would
    // repeat tokens on random weights and flatter the caches).
    std::vector<int32_t> ids(static_cast<size_t>(n) * gen);
    for (int32_t &t : ids)
      t = static_cast<int32_t>(rng() % rt.vocab());
    const uint64_t steps0 = rt.steps(), experts0 = rt.expertsUsed();
    const std::map<std::string, double> profile0 = rt.profile();
    t0 = now();
    for (int g = 0; g < gen; ++g) {
      for (int i = 0; i < n; ++i)
        items[i] = {seqs[i], &ids[static_cast<size_t>(g) * n + i], 1, nullptr};
      if (!rt.evalBatch(items.data(), n, err))
        return fail();
    }
    const double decode = now() - t0;
    const double steps = static_cast<double>(rt.steps() - steps0);
    const double experts = (rt.expertsUsed() - experts0) / steps;
    const double prefillTps = static_cast<double>(n) * prompt / prefill,
                 decodeTps = static_cast<double>(n) * gen / decode,
                 msPerStep = decode / gen * 1000;
    if (json)
      std::printf("%s{\"sequences\": %d, \"prompt\": %d, \"gen\": %d, "
                  "\"prefill_tok_s\": %.3f, \"decode_tok_s\": %.3f, "
                  "\"ms_per_step\": %.3f, \"experts_per_step\": %.1f}",
                  c ? ", " : "", n, prompt, gen, prefillTps, decodeTps,
                  msPerStep, experts);
    else
      std::printf("%9d  %13.2f  %12.2f  %11.2f  %16.1f\n", n, prefillTps,
                  decodeTps, msPerStep, experts);
    if (profile) { // the decode steps' time by kind, ms per step
      std::vector<std::pair<double, std::string>> rows;
      double total = 0;
      for (const auto &kv : rt.profile()) {
        auto before = profile0.find(kv.first);
        const double t =
            kv.second - (before == profile0.end() ? 0 : before->second);
        rows.push_back({t, kv.first});
        total += t;
      }
      std::sort(rows.rbegin(), rows.rend());
      std::fprintf(json ? stderr : stdout,
                   "  decode profile of %d sequences (ms per step):\n", n);
      for (const auto &r : rows)
        if (r.first > 0)
          std::fprintf(json ? stderr : stdout, "    %-24s %8.3f  %5.1f%%\n",
                       r.second.c_str(), r.first * 1000 / gen,
                       total > 0 ? r.first / total * 100 : 0);
    }
    std::fflush(stdout);
  }
  if (json)
    std::printf("]\n");
  return true;
}

} // namespace stc::bench
