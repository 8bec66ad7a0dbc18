// stc-bench: prefill and decode speed of a compiled model, peak RSS, and the
// share of the memory-bandwidth roofline (weight bytes per decoded token x
// tokens/s over a read bandwidth it measures itself on this machine).
#include "Bandwidth.h"
#include "ByteSize.h"
#include "Runtime.h"
#include "SequencesBench.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <thread>
#include <vector>

namespace {

double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

} // namespace

const char *const kUsage =
    "usage: stc-bench <out-dir | model.stcm> [--threads N] [--prompt 128]\n"
    "                 [--gen 64] [--depth N] [--kv-type T] [--ctx N]\n"
    "                 [--memory-budget SIZE] [--sequences N[,N...]]\n"
    "                 [--experts-from-storage] [--json] [--profile]\n"
    "                 [--workers-only] [--shared-mapping]\n"
    "Prefill and decode speed of a compiled model on random token ids, peak\n"
    "RSS, and the share of the memory-bandwidth roofline (the bandwidth\n"
    "measured in the same run).\n"
    "  --threads N     threads (default: every core)\n"
    "  --prompt N      prompt tokens for the prefill (default 128)\n"
    "  --gen N         tokens decoded one at a time (default 64), each a\n"
    "                  random id as llama-bench's (not the model's choice)\n"
    "  --depth N       both measured after N tokens already in the context\n"
    "                  (as llama-bench -d N; the fill is not timed)\n"
    "  --kv-type T     the KV cache's element type: f16, q8_0, f32 (default:\n"
    "                  the compiled one)\n"
    "  --ctx N         the context (default: what the run needs; under a\n"
    "                  memory budget the plan's, as stc-run's)\n"
    "  --memory-budget SIZE / --experts-from-storage   as stc-run's (the\n"
    "                  plan and the experts read per token are printed; the\n"
    "                  bandwidth probes, which need 1+ GiB, are skipped)\n"
    "  --sequences N,..  instead: N sequences at once, each prefilled with\n"
    "                  --prompt ids and decoding --gen, all in batched steps:\n"
    "                  aggregate tok/s, ms per step, distinct experts per\n"
    "                  step, for each N (e.g. 1,2,4,8)\n"
    "  --json          one JSON object instead of text\n"
    "  --profile       where a prompt token's and a decoded token's time go,\n"
    "                  by step kind, and which kinds ran split across threads\n"
    "  --workers-only  a check, not a speed setting: the calling thread runs\n"
    "                  no parallel task, so all of them run on the others\n"
    "  --shared-mapping  weights in the file's page-cache pages, not a "
    "private\n"
    "                  copy in 2 MiB huge pages\n";

int main(int argc, char **argv) {
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::fputs(kUsage, stdout);
      return 0;
    }
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string path = argv[1];
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    path += "/model.stcm";
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  int prompt = 128, gen = 64, depth = 0, kvType = -1, ctx = 0;
  bool json = false, profile = false, fromStorage = false, workersOnly = false,
       sharedMapping = false;
  uint64_t budget = 0;
  std::vector<int> sequences;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json" || a == "--profile") {
      (a == "--json" ? json : profile) = true;
      continue;
    }
    if (a == "--experts-from-storage" || a == "--workers-only" ||
        a == "--shared-mapping") {
      (a == "--workers-only"     ? workersOnly
       : a == "--shared-mapping" ? sharedMapping
                                 : fromStorage) = true;
      continue;
    }
    if (a != "--memory-budget" && a != "--threads" && a != "--prompt" &&
        a != "--gen" && a != "--depth" && a != "--kv-type" && a != "--ctx" &&
        a != "--sequences") {
      std::fprintf(stderr, "stc-bench: unknown option '%s'\n", a.c_str());
      return 2;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "stc-bench: option '%s' needs a value\n", a.c_str());
      return 2;
    }
    if (a == "--memory-budget") {
      if (!stc::rt::parseByteSize(argv[++i], budget)) {
        std::fprintf(stderr, "stc-bench: --memory-budget expects a size\n");
        return 2;
      }
      continue;
    }
    if (a == "--sequences") {
      if (!stc::bench::parseCounts(argv[++i], sequences)) {
        std::fprintf(stderr, "stc-bench: --sequences expects counts such as "
                             "1,2,4,8\n");
        return 2;
      }
      continue;
    }
    if (a == "--kv-type") {
      stc::model::KvType t;
      if (!stc::rt::parseKvType(argv[++i], t)) {
        std::fprintf(stderr, "stc-bench: --kv-type expects f16, q8_0 or f32\n");
        return 2;
      }
      kvType = static_cast<int>(t);
      continue;
    }
    int v = std::atoi(argv[++i]);
    if (v < 0 || (v == 0 && a != "--depth")) {
      std::fprintf(stderr, "stc-bench: %s expects a positive number\n",
                   a.c_str());
      return 2;
    }
    if (a == "--threads")
      threads = v;
    else if (a == "--prompt")
      prompt = v;
    else if (a == "--depth")
      depth = v;
    else if (a == "--ctx")
      ctx = v;
    else
      gen = v;
  }
  stc::rt::Runtime rt;
  stc::rt::RuntimeOptions o;
  o.threads = threads;
  // Without a budget the context is what the run needs (pages are touched as
  // positions fill anyway); under one, the plan's, as stc-run's.
  // (--sequences: each sequence's prompt and its decoded tokens.)
  o.maxContext = ctx > 0              ? ctx
                 : budget             ? 0
                 : !sequences.empty() ? prompt + gen + 8
                                      : depth + std::max(prompt, gen) + 8;
  o.kvType = kvType;
  o.memoryBudget = budget;
  o.expertsFromStorage = fromStorage;
  o.profile = profile;
  o.workersOnly = workersOnly;
  o.sharedMapping = sharedMapping;
  if (!sequences.empty())
    o.sequences = *std::max_element(sequences.begin(), sequences.end());
  std::string err;
  if (!rt.load(path, o, err)) {
    std::fprintf(stderr, "stc-bench: %s\n", err.c_str());
    return 1;
  }
  if (!sequences.empty())
    return stc::bench::benchSequences(rt, sequences, prompt, gen, json, profile)
               ? 0
               : 1;
  // Random ids, as llama-bench's: the fill, the prompt and every decoded
  // token (feeding back the model's own argmax would repeat a token for many
  // steps on random weights and flatter every cache).
  std::mt19937 rng(1);
  auto randomIds = [&](int n) {
    std::vector<int32_t> ids(n);
    for (int32_t &t : ids)
      t = static_cast<int32_t>(rng() % rt.vocab());
    return ids;
  };
  const std::vector<int32_t> fill = randomIds(depth),
                             tokens = randomIds(prompt),
                             decoded = randomIds(gen);
  // Warm-up: touch every weight once so page faults are not timed.
  if (!rt.eval(tokens.data(), std::min(prompt, 8), nullptr, err)) {
    std::fprintf(stderr, "stc-bench: %s\n", err.c_str());
    return 1;
  }
  rt.reset();
  bool ok = depth == 0 || rt.eval(fill.data(), depth, nullptr, err);
  rt.clearProfile();
  const stc::rt::ExpertCache *cache = rt.expertCache();
  auto reads = [&] { return cache ? cache->misses() : 0; };
  const uint64_t readsBefore = reads();
  double t0 = now();
  ok = ok && rt.eval(tokens.data(), prompt, nullptr, err);
  double prefill = now() - t0;
  const uint64_t prefillReads = reads() - readsBefore;
  // Decode from the same depth as the prefill started at (filled again where
  // a sliding-window ring no longer holds what the rewind needs).
  if (ok && !rt.rewind(depth, err)) {
    rt.reset();
    ok = depth == 0 || rt.eval(fill.data(), depth, nullptr, err);
  }
  const uint64_t decodeReadsBefore = reads(),
                 decodeBytesBefore = cache ? cache->bytesRead() : 0;
  const double decodeReadSecondsBefore = cache ? cache->readSeconds() : 0;
  t0 = now();
  for (int i = 0; ok && i < gen; ++i)
    ok = rt.eval(&decoded[i], 1, nullptr, err);
  double decode = now() - t0;
  const uint64_t decodeReads = reads() - decodeReadsBefore;
  // The storage bound of a decode under a budget: the bytes its misses read
  // a token at the rate the storage delivered them during the decode (the
  // time with at least one read in flight), i.e. the speed if every read
  // overlapped the compute; the decode's share of it says how well they did.
  const double decodeBytesPerToken =
      cache ? static_cast<double>(cache->bytesRead() - decodeBytesBefore) / gen
            : 0;
  const double decodeReadSeconds =
      cache ? cache->readSeconds() - decodeReadSecondsBefore : 0;
  const double decodeReadRate =
      decodeReadSeconds > 0 ? decodeBytesPerToken * gen / decodeReadSeconds : 0;
  const double storageBoundTps = decodeBytesPerToken > 0 && decodeReadRate > 0
                                     ? decodeReadRate / decodeBytesPerToken
                                     : 0;
  if (!ok) {
    std::fprintf(stderr, "stc-bench: %s\n", err.c_str());
    return 1;
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  const uint64_t peakRss = static_cast<uint64_t>(ru.ru_maxrss) * 1024;
  // Under a budget the probes would allocate past it: not measured (0).
  const bool budgeted = rt.memoryPlan().budget > 0;
  const double bandwidth =
      budgeted ? 0 : stc::rt::measureReadBandwidth(threads);
  // The storage bound at the rate the storage gives reads like the cache's
  // when nothing else runs (measured right after the decode: shared storage
  // drifts).
  const double storageRate =
      cache ? stc::rt::measureStorageReadRate(rt.file().path().c_str()) : 0;
  const double deviceBoundTps =
      decodeBytesPerToken > 0 ? storageRate / decodeBytesPerToken : 0;
  const uint64_t bytesPerToken = rt.weightBytesPerToken();
  const double prefillTps = prompt / prefill, decodeTps = gen / decode;
  const double roofline =
      bandwidth > 0 ? bytesPerToken * decodeTps / bandwidth : 0;
  // The dense roofline: the speed limit of an engine that reads every active
  // weight once. A sparse ReGLU reads fewer bytes and can go past it.
  const double denseRooflineTps = bandwidth / bytesPerToken;
  const double overDense = bandwidth > 0 ? decodeTps / denseRooflineTps : 0;
  // Experts read from storage per token (a memory budget's cache misses).
  const double decodeReadsPerToken = static_cast<double>(decodeReads) / gen,
               prefillReadsPerToken =
                   static_cast<double>(prefillReads) / prompt;
  const double skipped = rt.skippedBytesPerToken();
  // With sparse ReGLU: the speed limit of reading the live rows at the rate
  // this machine reads such rows (measured now, at the kernels' row size and
  // the measured live share) and everything else at the streaming rate.
  const double dead = rt.reluZeroFraction();
  double liveShare = 0, sparseRooflineTps = 0;
  if (!budgeted && rt.sparseReglu() && rt.sparseNeuronBytes() > 0 && dead > 0 &&
      dead < 1) {
    stc::rt::SparseReadRates r = stc::rt::measureSparseReadBandwidth(
        threads, rt.sparseNeuronBytes() / 2, 1 - dead, size_t(256) << 20);
    liveShare = r.liveRows / r.streaming;
    sparseRooflineTps = 1 / stc::rt::sparseSecondsPerToken(
                                static_cast<double>(bytesPerToken),
                                skipped / dead, dead, bandwidth, liveShare);
  }
  const auto *m = rt.file().model();
  const uint64_t cacheSlots = cache ? cache->slots() : 0,
                 cacheLoads = cache ? cache->misses() : 0,
                 cacheBytes = cache ? cache->bytesRead() : 0,
                 cacheAhead = cache ? cache->readsAhead() : 0;
  const double cacheSeconds = cache ? cache->readSeconds() : 0;
  const std::string target = m->target() ? m->target()->str() : "?";
  if (json) {
    std::printf(
        "{\"model\": \"%s\", \"target\": \"%s\", \"threads\": %d, "
        "\"prompt\": %d, \"gen\": %d, \"depth\": %d, \"kv_type\": \"%s\", "
        "\"prefill_tok_s\": %.3f, "
        "\"decode_tok_s\": %.3f, \"peak_rss_bytes\": %llu, "
        "\"weight_bytes_per_token\": %llu, \"bandwidth_bytes_s\": %.0f, "
        "\"roofline_share\": %.4f, \"kv_bytes_per_token\": %llu, "
        "\"kv_ring_bytes\": %llu, \"expert_cache_slots\": %llu, "
        "\"experts_read\": %llu, \"experts_read_ahead\": %llu, "
        "\"expert_bytes_read\": %llu, "
        "\"expert_read_seconds\": %.4f, \"experts_from_storage\": %s, "
        "\"relu_zero_fraction\": %.4f, \"sparse_reglu\": %s, "
        "\"skipped_bytes_per_token\": %.0f, \"dense_roofline_tok_s\": %.3f, "
        "\"decode_over_dense_roofline\": %.4f, \"live_row_read_share\": %.4f, "
        "\"sparse_roofline_tok_s\": %.3f, \"weights_in_huge_pages\": %s, "
        "\"ctx\": %d, \"prefill_experts_read_per_token\": %.3f, "
        "\"decode_experts_read_per_token\": %.3f, "
        "\"decode_expert_bytes_per_token\": %.0f, "
        "\"decode_read_bytes_s\": %.0f, \"storage_bound_tok_s\": %.3f, "
        "\"storage_read_bytes_s\": %.0f, \"device_bound_tok_s\": %.3f, "
        "\"guesses_read\": %llu, \"guesses_used\": %llu, "
        "\"guesses_dropped\": %llu, "
        "\"memory_plan\": \"%s\"}\n",
        path.c_str(), target.c_str(), threads, prompt, gen, depth,
        stc::rt::kvTypeName(rt.kvType()), prefillTps, decodeTps,
        static_cast<unsigned long long>(peakRss),
        static_cast<unsigned long long>(bytesPerToken), bandwidth, roofline,
        static_cast<unsigned long long>(rt.kvBytesPerToken()),
        static_cast<unsigned long long>(rt.kvRingBytes()),
        static_cast<unsigned long long>(cacheSlots),
        static_cast<unsigned long long>(cacheLoads),
        static_cast<unsigned long long>(cacheAhead),
        static_cast<unsigned long long>(cacheBytes), cacheSeconds,
        cache ? "true" : "false", rt.reluZeroFraction(),
        rt.sparseReglu() ? "true" : "false", skipped, denseRooflineTps,
        overDense, liveShare, sparseRooflineTps,
        rt.weightsInHugePages() ? "true" : "false", rt.maxContext(),
        prefillReadsPerToken, decodeReadsPerToken, decodeBytesPerToken,
        decodeReadRate, storageBoundTps, storageRate, deviceBoundTps,
        static_cast<unsigned long long>(cache ? cache->guessesRead() : 0),
        static_cast<unsigned long long>(cache ? cache->guessesUsed() : 0),
        static_cast<unsigned long long>(cache ? cache->guessesDropped() : 0),
        budgeted ? rt.memoryPlan().describe().c_str() : "");
  } else {
    std::printf("model                   %s (%s, %d threads)\n", path.c_str(),
                target.c_str(), threads);
    std::printf("prefill                 %.2f tok/s (%d tokens, at depth %d)\n",
                prefillTps, prompt, depth);
    std::printf("decode                  %.2f tok/s (%d tokens, at depth %d)\n",
                decodeTps, gen, depth);
    std::printf("peak RSS                %.1f MiB\n", peakRss / 1048576.0);
    std::printf("weights                 %s\n",
                rt.weightsInHugePages() ? "a private copy in 2 MiB huge pages"
                                        : "the file's page-cache mapping");
    std::printf("weight bytes per token  %.1f MiB\n",
                bytesPerToken / 1048576.0);
    if (budgeted) {
      std::printf("%s\n", rt.memoryPlan().describe().c_str());
      std::printf("read bandwidth          not measured under a memory "
                  "budget (its probes need 1+ GiB)\n");
    } else {
      std::printf("read bandwidth          %.2f GB/s (measured)\n",
                  bandwidth / 1e9);
      std::printf("roofline share          %.1f%%\n", roofline * 100);
      std::printf(
          "dense roofline          %.2f tok/s (decode at %.1f%% of it)\n",
          denseRooflineTps, overDense * 100);
    }
    if (rt.sparseReglu()) {
      std::printf("relu(gate) = 0          %.1f%% of decoded expert neurons: "
                  "their up and down rows skipped, %.1f MiB per token\n",
                  rt.reluZeroFraction() * 100, skipped / 1048576.0);
      if (sparseRooflineTps > 0)
        std::printf("live-row reads          %.0f%% of streaming bandwidth "
                    "(%llu-byte rows, %.0f%% live, measured): sparse roofline "
                    "%.2f tok/s (decode at %.1f%% of it)\n",
                    liveShare * 100,
                    static_cast<unsigned long long>(rt.sparseNeuronBytes() / 2),
                    (1 - dead) * 100, sparseRooflineTps,
                    decodeTps / sparseRooflineTps * 100);
    } else
      std::printf("relu(gate) = 0          %.1f%% of decoded expert neurons "
                  "(what st-sparse-reglu would skip)\n",
                  rt.reluZeroFraction() * 100);
    std::printf(
        "KV cache                %s, %llu bytes per token of context + %.1f "
        "MiB of sliding-window rings\n",
        stc::rt::kvTypeName(rt.kvType()),
        static_cast<unsigned long long>(rt.kvBytesPerToken()),
        rt.kvRingBytes() / 1048576.0);
    if (cache)
      std::printf("expert cache            %llu slots; %llu experts read, "
                  "%llu ahead of use (%.1f MiB in %.2f s, %.2f GB/s, from "
                  "storage, O_DIRECT); per token: %.2f in the prefill, %.2f "
                  "decoding\n",
                  static_cast<unsigned long long>(cacheSlots),
                  static_cast<unsigned long long>(cacheLoads),
                  static_cast<unsigned long long>(cacheAhead),
                  cacheBytes / 1048576.0, cacheSeconds,
                  cacheSeconds > 0 ? cacheBytes / cacheSeconds / 1e9 : 0.0,
                  prefillReadsPerToken, decodeReadsPerToken);
    if (cache && cache->guessesRead() + cache->guessesDropped() > 0)
      std::printf("next-layer guesses      %llu read (%llu of them routed to "
                  "when their layer ran), %llu dropped before a read\n",
                  static_cast<unsigned long long>(cache->guessesRead()),
                  static_cast<unsigned long long>(cache->guessesUsed()),
                  static_cast<unsigned long long>(cache->guessesDropped()));
    if (storageBoundTps > 0)
      std::printf("storage bound           %.1f MiB read a decoded token at "
                  "%.2f GB/s (the decode's reads): at most %.2f tok/s, "
                  "decode at %.1f%% of it\n",
                  decodeBytesPerToken / 1048576.0, decodeReadRate / 1e9,
                  storageBoundTps, decodeTps / storageBoundTps * 100);
    if (deviceBoundTps > 0)
      std::printf("storage rate            %.2f GB/s (8 O_DIRECT reads of 256 "
                  "KiB in flight, after the run): at most %.2f tok/s, decode "
                  "at %.1f%% of it\n",
                  storageRate / 1e9, deviceBoundTps,
                  decodeTps / deviceBoundTps * 100);
  }
  if (profile) {
    // The timed steps by kind: the prefill's in ms per prompt token, the
    // decode's in ms per generated token (the warm-up is not in either).
    // Beside each kind's time: its parallel tasks that other threads than the
    // caller ran (0: it did not split).
    auto print = [&](const std::map<std::string, double> &p,
                     const std::map<std::string, uint64_t> &split,
                     const char *title, int tokens) {
      double total = 0;
      std::vector<std::pair<double, std::string>> rows;
      for (const auto &kv : p) {
        total += kv.second;
        rows.push_back({kv.second, kv.first});
      }
      std::sort(rows.rbegin(), rows.rend());
      std::fprintf(json ? stderr : stdout, "%s:\n", title);
      for (const auto &r : rows)
        std::fprintf(json ? stderr : stdout, "  %-24s %8.3f  %5.1f%%\n",
                     r.second.c_str(), r.first * 1000 / tokens,
                     total > 0 ? r.first / total * 100 : 0);
      std::fprintf(json ? stderr : stdout,
                   "  tasks on other threads, by step kind:");
      for (const auto &kv : split)
        std::fprintf(json ? stderr : stdout, " %s=%llu", kv.first.c_str(),
                     static_cast<unsigned long long>(kv.second));
      std::fprintf(json ? stderr : stdout, "\n");
    };
    print(rt.prefillProfile(), rt.prefillSplitTasks(),
          "prefill profile (ms per prompt token)", prompt);
    print(rt.profile(), rt.splitTasks(), "decode profile (ms per token)", gen);
  }
  return 0;
}
