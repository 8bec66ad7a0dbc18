#include "MemoryPlan.h"

#include <algorithm>
#include <cstdio>

namespace stc::rt {

namespace {

std::string mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", bytes / 1048576.0);
  return buf;
}

constexpr uint64_t kMiB = uint64_t(1) << 20;
// Contexts the plan chooses are whole multiples of this.
constexpr int kContextStep = 256;
// Choosing the sequences: at most this many, each with a context of at least
// kWantedContext positions (or the trained length), else one.
constexpr int kMostChosenSequences = 4;
constexpr int kWantedContext = 4096;

} // namespace

bool planMemory(const MemoryPlanInputs &in, MemoryPlan &plan,
                std::string &error) {
  plan = MemoryPlan();
  plan.budget = in.budget;
  // The sequences the KV cache is planned for (to be chosen below when 0).
  int sequences = std::max(1, in.sequences);
  auto kvBytes = [&](int n) { return in.kvBytes(n, sequences); };
  plan.resident = in.resident;
  plan.onDemand = in.onDemand;
  plan.process = in.process;
  plan.slotBytes = in.slotBytes;
  // What the estimates below may miss: allocator slack, the kernel's page
  // tables, a page or two of the file the reads touch.
  plan.margin = std::max<uint64_t>(16 * kMiB, in.budget / 50);
  const uint64_t minimumExperts = in.slotBytes * in.topK;
  const int smallest = std::min(in.trainedContext, kContextStep);
  const uint64_t leastKv =
      kvBytes(in.requestedContext > 0 ? in.requestedContext : smallest);
  // The prefill batch: the planned chunk, halved (down to 16) while its
  // buffers and scratch would take more than 1/16 of the budget or not fit
  // beside the rest.
  auto activations = [&](int batch) {
    return in.activationBytes(batch, std::min(in.logitRows, batch));
  };
  plan.batch = std::max(1, in.maxBatch);
  while (plan.batch > 16 &&
         (activations(plan.batch) > in.budget / 16 ||
          plan.resident + plan.process + plan.margin + activations(plan.batch) +
                  leastKv + minimumExperts >
              in.budget))
    plan.batch /= 2;
  plan.logitRows = std::min(in.logitRows, plan.batch);
  plan.activations = activations(plan.batch);
  const uint64_t fixed =
      plan.resident + plan.process + plan.margin + plan.activations;
  auto tooSmall = [&](const std::string &what, uint64_t kv) {
    error = "memory budget " + mib(in.budget) + " is below " + what + " " +
            mib(fixed + kv + minimumExperts) + ": dense weights " +
            mib(plan.resident) + ", process (code, stacks, tokenizer) " +
            mib(plan.process) + ", activations for " +
            std::to_string(plan.batch) + " tokens " + mib(plan.activations) +
            ", margin " + mib(plan.margin) + ", KV cache " + mib(kv) +
            ", one layer's " + std::to_string(in.topK) + " active experts " +
            mib(minimumExperts);
    return false;
  };
  // A token's working set of experts: every layer's top-k.
  const uint64_t working =
      std::min(in.maxSlots, static_cast<uint64_t>(in.layers) * in.topK) *
      in.slotBytes;
  // The longest context (whole steps, up to the trained length) whose KV
  // caches take at most an eighth of the budget and leave the experts a cache
  // of at least the working set, where the budget has that much room; else
  // the shortest step.
  auto longestContext = [&]() {
    int context = smallest;
    for (int n = smallest + kContextStep; n <= in.trainedContext;
         n = std::min(n + kContextStep, in.trainedContext)) {
      const uint64_t kv = kvBytes(n);
      if (kv > in.budget / 8 || fixed + kv + working > in.budget)
        break;
      context = n;
      if (n == in.trainedContext)
        break;
    }
    return context;
  };
  if (in.sequences <= 0) {
    // As many sequences as get a useful context each (the one asked for, or
    // kWantedContext) within the same share of the budget; at least one.
    const int want = in.requestedContext > 0
                         ? in.requestedContext
                         : std::min(in.trainedContext, kWantedContext);
    for (sequences = kMostChosenSequences; sequences > 1; --sequences) {
      const uint64_t kv = kvBytes(want);
      if (kv <= in.budget / 8 && fixed + kv + working <= in.budget &&
          (in.requestedContext > 0 || longestContext() >= want))
        break;
    }
  }
  plan.sequences = sequences;
  if (in.requestedContext > 0) {
    plan.context = in.requestedContext;
    plan.kv = kvBytes(plan.context);
    if (fixed + plan.kv + minimumExperts > in.budget)
      return tooSmall(
          "what a " + std::to_string(plan.context) +
              "-token context (--ctx) needs" +
              (sequences > 1
                   ? " for each of " + std::to_string(sequences) + " sequences,"
                   : ","),
          plan.kv);
  } else {
    if (fixed + kvBytes(smallest) + minimumExperts > in.budget)
      return tooSmall("the minimum", kvBytes(smallest));
    plan.context = longestContext();
    plan.contextChosen = true;
    plan.kv = kvBytes(plan.context);
  }
  plan.slots =
      std::min<uint64_t>(in.maxSlots, (in.budget - fixed - plan.kv) /
                                          std::max<uint64_t>(in.slotBytes, 1));
  return true;
}

std::string MemoryPlan::describe() const {
  std::string s = "memory budget " + mib(budget) + ": dense weights " +
                  mib(resident) + " resident";
  if (onDemand)
    s += " (" + mib(onDemand) + " more read a row at a time)";
  s += ", KV cache " + mib(kv) + " for " +
       (sequences > 1 ? std::to_string(sequences) + " sequences of " : "") +
       std::to_string(context) + " positions" +
       (contextChosen ? std::string(" (chosen: the longest whose KV cache") +
                            (sequences > 1 ? "s take" : " takes") +
                            " at most 1/8 of the budget beside a token's "
                            "working set of experts; --ctx sets it)"
                      : "") +
       ", activations " + mib(activations) + " for a " + std::to_string(batch) +
       "-token batch, process " + mib(process) + ", margin " + mib(margin) +
       ", expert cache " + mib(experts()) + " (" + std::to_string(slots) +
       " slots of " + mib(slotBytes) + ")";
  return s;
}

} // namespace stc::rt
