// Calibration: the ReLU sparsity profile `stc compile` plans with. It runs the
// calibration forward pass (CalibrationForward.h: the reference's semantics,
// target-independent, every sequence at once) on calibration tokens and records
// in the IR, per st.moe, each expert neuron's firing frequency
// (`neuron_firing`, [E, F]) and the layer's dead share
// (`dead_share`); st-sparse-reglu's auto mode and st-neuron-layout read them.
#pragma once

#include "formats/Checkpoint.h"
#include "formats/Status.h"

#include "mlir/IR/BuiltinOps.h"

#include <cstdint>
#include <string>
#include <vector>

namespace stc {

namespace rt {
struct TokenizerData;
}

// Without --calibrate: this many seeded random sequences of this many tokens.
constexpr int64_t kDefaultCalibrationSequences = 8;
constexpr int64_t kDefaultCalibrationLength = 32;
constexpr uint64_t kDefaultCalibrationSeed = 1;
// Longer calibration sequences are cut into pieces of this many tokens (the
// calibration pass attends over the whole sequence without a KV cache plan:
// its attention grows with the square of the length).
constexpr int64_t kCalibrationMaxLength = 128;

struct CalibrationTokens {
  std::vector<std::vector<int64_t>> sequences;
  std::string description; // for the report: what and how much
};

// From `file`: token ids (lines of integers separated by commas or spaces, one
// sequence per line) or else UTF-8 text, encoded with `tokenizer` (null: ids
// only). Empty `file`: the seeded default.
Status calibrationTokens(const std::string &file, const ModelConfig &config,
                         const rt::TokenizerData *tokenizer,
                         CalibrationTokens &out);

// Runs the calibration pass on every sequence (all at once) and
// annotates each st.moe of `module`, and the module (`st.calibration`).
Status calibrate(const Checkpoint &ck, const CalibrationTokens &tokens,
                 mlir::ModuleOp module);

} // namespace stc
