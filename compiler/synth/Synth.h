// Synth: writes SmallThinker checkpoints with seeded random weights, in the HF
// layout (config.json + safetensors, optionally sharded) or as GGUF, at tiny
// test shapes or the real 4B/21B shapes. Writing streams one chunk of one
// tensor at a time.
#pragma once

#include "formats/DType.h"
#include "formats/ModelConfig.h"
#include "formats/Status.h"

#include <cstdint>
#include <functional>
#include <string>

namespace stc {

struct SynthOptions {
  std::string preset = "tiny";
  std::string format = "hf"; // "hf" or "gguf"
  DType dtype = DType::F32;
  uint64_t seed = 0;
  int64_t layers = 0; // 0 = the preset's count
  int shards = 1;     // HF only
  // GGUF only: leave out stc's smallthinker.rope_layout / sliding_window_layout
  // keys, so readers must rebuild the layout with llama.cpp's rule, as for a
  // third-party GGUF.
  bool omitLayoutKeys = false;
  // Only the tokenizer: the HF tokenizer files (no config.json or weights), or
  // a GGUF of metadata without tensors (which llama.cpp opens vocab-only).
  bool tokenizerOnly = false;
  // GGUF only: each expert's down projection stored transposed, as
  // PowerInfer's converter writes it (convert_hf_to_gguf.py --transpose-down).
  bool transposeDown = false;
  // GGUF only: "q4_k_m", "q3_k_m" or "q4_0": the per-tensor types
  // llama-quantize picks for that file type (a Q6_K head, more bits for some
  // attn_v and ffn_down, ...) instead of `dtype` everywhere.
  std::string mix;
  // "paper" or a dead fraction in (0, 1): weights whose expert neurons are
  // inactive (relu(gate) = 0) at that per-layer rate, each neuron with its own
  // firing rate (see ActivationSparsity.h). Empty: plain random weights.
  std::string activationSparsity;
  // Told once per tensor whose rows a block type cannot encode and which is
  // stored in llama-quantize's fallback type instead.
  std::function<void(const std::string &)> note;
  std::string output;
};

// The preset's config: "tiny", "tiny-swa", "tiny-k", "4b" or "21b".
Status synthPresetConfig(const std::string &preset, ModelConfig &out);
// Whether the preset's HF checkpoint carries a separate lm_head.weight.
bool synthPresetHasLmHead(const std::string &preset);

Status writeSynthCheckpoint(const SynthOptions &options);

// The synthetic value of element `index` of canonical weight `name` for `seed`
// before any --activation-sparsity overrides (synthValues in SynthValues.h).
float synthValue(uint64_t seed, uint64_t nameHash, uint64_t index, float scale,
                 float offset);

} // namespace stc
