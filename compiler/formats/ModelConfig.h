// ModelConfig: the SmallThinker hyper-parameters (spec §1), read from an HF
// config.json or from GGUF metadata, with each file format's rules for
// per-layer RoPE and sliding window.
#pragma once

#include "Gguf.h"
#include "Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace stc {

enum class RouterWeighting { Softmax, Sigmoid };

// Which implementation's numerics a checkpoint implies (spec §2.2 vs §3.1): HF
// for config.json + safetensors, llama.cpp for GGUF. The reference follows it.
enum class Convention { HF, LlamaCpp };

struct ModelConfig {
  int64_t numLayers = 0;
  int64_t hiddenSize = 0;
  int64_t numHeads = 0;
  int64_t numKVHeads = 0;
  int64_t headDim = 0;
  int64_t vocabSize = 0;
  int64_t numExperts = 0;
  int64_t topK = 0;
  int64_t expertFfn = 0;
  RouterWeighting weighting = RouterWeighting::Sigmoid;
  double ropeTheta = 1e6;
  double rmsNormEps = 1e-6;
  int64_t maxPositions = 0;
  std::vector<int> ropeLayout; // per layer: 1 = RoPE, 0 = NoPE
  std::vector<int> swaLayout;  // per layer: 1 = sliding window, 0 = global
  int64_t slidingWindow = 4096;
  bool tieWordEmbeddings = true;
  int64_t bosTokenId = -1;
  std::vector<int64_t> eosTokenIds;
  Convention convention = Convention::HF;
  // Things the reader decided on the user's behalf (defaults, llama.cpp
  // quirks): printed by the tools so nothing is silently assumed.
  std::vector<std::string> notes;

  bool layerUsesRope(int64_t layer) const { return ropeLayout[layer] != 0; }
  int64_t layerWindow(int64_t layer) const {
    return swaLayout[layer] ? slidingWindow : 0;
  }
  // Checks the relations between fields (heads divisible by kv heads, top-k <=
  // experts, layouts one entry per layer, ...); `source` names the file in the
  // message.
  Status validate(const std::string &source) const;
};

// Parses a SmallThinker config.json (spec §1 table).
Status parseHfConfig(const std::string &path, ModelConfig &out);
// Reads the smallthinker.* keys llama.cpp's converter writes (spec §3.1),
// reproducing llama.cpp's layer rules unless stc's optional layout arrays are
// present.
Status parseGgufConfig(const GgufFile &file, ModelConfig &out);

// Upper bounds that keep a hostile config from driving huge allocations.
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxDim = 1 << 20;

} // namespace stc
