// stc-run: loads a compiled model and generates tokens (token ids until the
// tokenizer lands). Links only the runtime and the model's kernels.
#include "stc_runtime.h"

#include "ByteSize.h"
#include "TokenList.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace {

int usage() {
  std::fprintf(
      stderr,
      "usage: stc-run <out-dir | model.stcm> --tokens 1,2,3 [-n N]\n"
      "       [--logits FILE] [--token-by-token] [--threads N] [--ctx N]\n"
      "       [--lazy] [--memory-budget SIZE] [--experts-from-storage]\n"
      "       [--stats]\n"
      "       [--temp T] [--top-k K] [--top-p P] [--seed S]\n");
  return 2;
}

int fail(const std::string &m) {
  std::fprintf(stderr, "stc-run: %s\n", m.c_str());
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 2)
    return usage();
  std::string path = argv[1];
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    path += "/model.stcm";
  std::vector<int32_t> tokens;
  int n = 16, threads = 0, topK = 0;
  float temp = 0.0f, topP = 1.0f;
  unsigned long long seed = 0;
  bool tokenByToken = false, lazy = false, stats = false, fromStorage = false;
  uint64_t budget = 0;
  int ctx = 0;
  const char *logitsPath = nullptr;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char * {
      return i + 1 < argc ? argv[++i] : nullptr;
    };
    const char *v = nullptr;
    if (a == "--token-by-token") {
      tokenByToken = true;
      continue;
    }
    if (a == "--lazy") {
      lazy = true;
      continue;
    }
    if (a == "--stats") {
      stats = true;
      continue;
    }
    if (a == "--experts-from-storage") {
      fromStorage = true;
      continue;
    }
    if (!(v = value()))
      return usage();
    if (a == "--tokens") {
      std::vector<int64_t> ids;
      std::string bad;
      if (!stc::rt::parseTokenList(v, ids, bad))
        return fail("--tokens: expected comma-separated token ids, got '" +
                    std::string(v) + "'");
      for (int64_t id : ids) {
        if (id < INT32_MIN || id > INT32_MAX)
          return fail("--tokens: " + std::to_string(id) + " is not a token id");
        tokens.push_back(static_cast<int32_t>(id));
      }
    } else if (a == "-n") {
      n = std::atoi(v);
    } else if (a == "--logits") {
      logitsPath = v;
    } else if (a == "--threads") {
      threads = std::atoi(v);
    } else if (a == "--ctx") {
      ctx = std::atoi(v);
    } else if (a == "--memory-budget") {
      if (!stc::rt::parseByteSize(v, budget))
        return fail("--memory-budget expects a size such as 1GiB, got '" +
                    std::string(v) + "'");
    } else if (a == "--temp") {
      temp = std::strtof(v, nullptr);
    } else if (a == "--top-k") {
      topK = std::atoi(v);
    } else if (a == "--top-p") {
      topP = std::strtof(v, nullptr);
    } else if (a == "--seed") {
      seed = std::strtoull(v, nullptr, 10);
    } else {
      return fail("unknown option '" + a + "'");
    }
  }
  if (tokens.empty())
    return fail("--tokens is required (the tokenizer is not part of stc yet)");
  char err[1024];
  stc_options options = {};
  options.threads = threads;
  options.max_context = ctx;
  options.lazy = lazy;
  options.memory_budget = budget;
  options.experts_from_storage = fromStorage ? 1 : 0;
  stc_model *m = stc_load_with(path.c_str(), &options, err, sizeof(err));
  if (!m)
    return fail(err);
  const int V = stc_vocab_size(m);
  std::vector<float> logits;
  auto evalOne = [&](const int32_t *t, int count) {
    size_t at = logits.size();
    if (logitsPath)
      logits.resize(at + static_cast<size_t>(count) * V);
    return stc_eval(m, t, count, logitsPath ? logits.data() + at : nullptr) ==
           0;
  };
  bool ok = true;
  if (tokenByToken) {
    for (size_t i = 0; ok && i < tokens.size(); ++i)
      ok = evalOne(&tokens[i], 1);
  } else {
    ok = evalOne(tokens.data(), static_cast<int>(tokens.size()));
  }
  stc_sampler *sampler = stc_sampler_new(temp, topK, topP, seed);
  std::vector<int32_t> out;
  for (int i = 0; ok && i < n; ++i) {
    int32_t next = stc_sample(sampler, stc_logits(m), V);
    out.push_back(next);
    std::printf(i ? " %d" : "%d", next);
    std::fflush(stdout);
    if (i + 1 < n)
      ok = evalOne(&next, 1);
  }
  if (n > 0)
    std::printf("\n");
  stc_sampler_free(sampler);
  if (stats) {
    uint64_t slots, loads, bytes;
    stc_expert_cache_stats(m, &slots, &loads, &bytes);
    const double seconds = stc_expert_read_seconds(m);
    std::fprintf(stderr,
                 "expert cache: %llu slots, %llu experts read (%llu ahead of "
                 "use), %.1f MiB in %.3f s\n",
                 static_cast<unsigned long long>(slots),
                 static_cast<unsigned long long>(loads),
                 static_cast<unsigned long long>(stc_expert_reads_ahead(m)),
                 bytes / 1048576.0, seconds);
    double dead = 0, skipped = 0;
    if (stc_sparsity_stats(m, &dead, &skipped))
      std::fprintf(stderr,
                   "sparse ReGLU: %.1f%% of decoded expert neurons dead, "
                   "%.3f MiB of up/down rows skipped per decoded token\n",
                   dead * 100, skipped / 1048576.0);
  }
  if (!ok) {
    std::string e = stc_last_error(m);
    stc_free(m);
    return fail(e);
  }
  if (logitsPath) {
    std::string tmp = std::string(logitsPath) + ".tmp";
    FILE *f = std::fopen(tmp.c_str(), "wb");
    bool written =
        f && std::fwrite(logits.data(), 4, logits.size(), f) == logits.size();
    if (f && std::fclose(f) != 0)
      written = false;
    if (!written || std::rename(tmp.c_str(), logitsPath) != 0) {
      std::remove(tmp.c_str());
      stc_free(m);
      return fail(std::string(logitsPath) +
                  ": cannot write: " + std::strerror(errno));
    }
  }
  stc_free(m);
  return 0;
}
