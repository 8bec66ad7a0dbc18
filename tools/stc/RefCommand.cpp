// stc ref: the f32 reference forward pass; prints top-k logits, can dump all
// logits.
#include "Args.h"
#include "Commands.h"
#include "Usage.h"

#include "TokenList.h"
#include "formats/Checkpoint.h"
#include "formats/FileIO.h"
#include "reference/Reference.h"
#include "reference/SparsityStats.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

namespace stc {

namespace {

void printSparsityStats(const ref::SparsityStats &stats) {
  uint64_t evaluated = 0, dead = 0, pairs = 0;
  double jaccard = 0;
  const std::vector<ref::SparsityStats::Layer> layers = stats.layers();
  for (size_t l = 0; l < layers.size(); ++l) {
    const ref::SparsityStats::Layer &r = layers[l];
    std::printf("sparsity: layer %zu: %.1f%% dead of %llu routed neurons, live "
                "sets' mean Jaccard %.3f (%llu token pairs)\n",
                l, 100 * r.deadShare(),
                static_cast<unsigned long long>(r.evaluated), r.jaccard,
                static_cast<unsigned long long>(r.pairs));
    evaluated += r.evaluated;
    dead += r.dead;
    pairs += r.pairs;
    jaccard += r.jaccard * r.pairs;
  }
  std::printf("sparsity: all layers: %.1f%% dead, live sets' mean Jaccard "
              "%.3f\n",
              evaluated ? 100.0 * dead / evaluated : 0.0,
              pairs ? jaccard / pairs : 0.0);
}

} // namespace

int runRef(int argc, char **argv) {
  Args args({"--tokens", "--top-k", "--dump-logits", "--convention",
             "--generate", "--kv-type"},
            {"--q8-activations", "--stats"});
  std::string err;
  if (!args.parse(argc, argv, 2, err))
    return fail("ref: " + err);
  if (args.help()) {
    std::fputs(kRefUsage, stdout);
    return 0;
  }
  if (args.positionals().size() != 1)
    return fail("ref: expected one checkpoint path (an HF folder or a .gguf)");
  if (!args.has("--tokens"))
    return fail("ref: --tokens is required, e.g. --tokens 1,2,3");
  std::vector<int64_t> tokens;
  std::string bad;
  if (!rt::parseTokenList(args.get("--tokens"), tokens, bad))
    return fail("ref: --tokens: '" + bad + "' is not an integer token id");
  int64_t topK = 5;
  if (!args.getInt("--top-k", 5, topK, err))
    return fail("ref: " + err);

  Checkpoint ck;
  Status st = Checkpoint::open(args.positionals()[0], ck);
  if (!st.ok())
    return fail(st.message());
  for (const std::string &n : ck.config.notes)
    std::fprintf(stderr, "stc: note: %s\n", n.c_str());
  ref::Options options;
  options.q8Activations = args.has("--q8-activations");
  if (args.has("--kv-type")) {
    const std::string t = args.get("--kv-type");
    if (t == "f16")
      options.kvType = DType::F16;
    else if (t == "q8_0")
      options.kvType = DType::Q8_0;
    else if (t != "f32")
      return fail("ref: --kv-type expects f32, f16 or q8_0, got '" + t + "'");
  }
  Convention &conv = options.convention;
  conv = ck.config.convention;
  if (args.has("--convention")) {
    std::string c = args.get("--convention");
    if (c == "hf")
      conv = Convention::HF;
    else if (c == "llama.cpp")
      conv = Convention::LlamaCpp;
    else
      return fail("ref: --convention must be hf or llama.cpp, got '" + c + "'");
  }
  ref::SparsityStats stats(ck.config);
  if (args.has("--stats"))
    options.onGate = stats.observer();
  std::vector<float> logits;
  int64_t generate = 0;
  if (!args.getInt("--generate", 0, generate, err) || generate < 0)
    return fail("ref: --generate expects a count of tokens");
  if (generate > 0) {
    // Greedy continuation (ties to the lower id, as stc-run's --temp 0): the
    // whole sequence again for each token (the reference keeps no cache).
    std::vector<int64_t> seq = tokens;
    std::string line;
    for (int64_t i = 0; i < generate; ++i) {
      st = ref::forward(ck, seq, options, logits);
      if (!st.ok())
        return fail(st.message());
      const float *row = &logits[(seq.size() - 1) * ck.config.vocabSize];
      const int64_t next =
          std::max_element(row, row + ck.config.vocabSize) - row;
      seq.push_back(next);
      line += (i ? "," : "") + std::to_string(next);
    }
    std::printf("generated: %s\n", line.c_str());
    return 0;
  }
  st = ref::forward(ck, tokens, options, logits);
  if (!st.ok())
    return fail(st.message());

  const int64_t V = ck.config.vocabSize,
                T = static_cast<int64_t>(tokens.size());
  topK = std::max<int64_t>(1, std::min(topK, V));
  std::vector<int64_t> order(V);
  for (int64_t t = 0; t < T; ++t) {
    const float *row = &logits[t * V];
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + topK, order.end(),
                      [&](int64_t a, int64_t b) {
                        return row[a] > row[b] || (row[a] == row[b] && a < b);
                      });
    std::printf("position %lld (token %lld):", static_cast<long long>(t),
                static_cast<long long>(tokens[t]));
    for (int64_t j = 0; j < topK; ++j)
      std::printf(" %lld:%.6f", static_cast<long long>(order[j]),
                  row[order[j]]);
    std::printf("\n");
    if (t == T - 1)
      std::printf("next token: %lld\n", static_cast<long long>(order[0]));
  }

  if (args.has("--stats"))
    printSparsityStats(stats);

  if (args.has("--dump-logits")) {
    AtomicOutputFile f;
    std::string path = args.get("--dump-logits");
    if (!(st = f.open(path)).ok() ||
        !(st = f.write(logits.data(), logits.size() * sizeof(float))).ok() ||
        !(st = f.commit()).ok())
      return fail(st.message());
  }
  return 0;
}

} // namespace stc
