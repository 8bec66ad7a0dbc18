// Checkpoint: one view of a SmallThinker checkpoint in either layout (HF
// directory with config.json + safetensors, or one GGUF file): its config and a
// table of the weights the model needs, each with its logical shape and the
// byte extents that hold it. Opening reads headers only; weight data is read on
// demand, a range at a time.
#pragma once

#include "DType.h"
#include "FileIO.h"
#include "ModelConfig.h"
#include "Status.h"

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace stc {

enum class CheckpointFormat { HF, GGUF };

// A weight the SmallThinker graph needs. Names are stc's canonical names, which
// are llama.cpp's GGUF names without ".weight" (experts stacked:
// blk.N.ffn_gate_exps). Shapes are logical, PyTorch order ([out, in]; stacked
// experts [E, out, in]), which is the reverse of GGUF's ne.
struct WeightSpec {
  std::string name;
  std::vector<int64_t> shape;
  int layer = -1; // -1 for embedding, final norm, head
  bool stackedExperts = false;
  std::string hfName; // "{e}" stands for the expert index when stacked
};

// The weights a config implies, in graph order. `withOutput` adds the separate
// head.
std::vector<WeightSpec> expectedWeights(const ModelConfig &config,
                                        bool withOutput);

// The logical [cols][rows] f32 matrix of one expert stored transposed as
// `rows` rows of `cols` elements of `t` at `stored` (`scratch` is reused).
void untransposeExpert(DType t, const uint8_t *stored, int64_t rows,
                       int64_t cols, float *logical,
                       std::vector<float> &scratch);

struct TensorExtent {
  std::string file;    // path of the file holding these bytes
  uint64_t offset = 0; // absolute byte offset
  uint64_t nbytes = 0;
  std::string sourceName; // the tensor's name in that file
};

struct WeightInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  // Concatenated, the extents hold the tensor row-major in its logical shape;
  // HF experts are one extent per expert, everything else a single extent.
  std::vector<TensorExtent> extents;
  // Stacked experts stored each as the transpose of its logical matrix
  // (PowerInfer's `--transpose-down` ffn_down_exps: [E][F][D] in the file for
  // a logical [E, D, F]); readF32 still returns the logical order.
  bool expertsTransposed = false;
  uint64_t numElements() const;
  uint64_t numBytes() const;
};

class Checkpoint {
public:
  Checkpoint() = default;
  Checkpoint(Checkpoint &&) = default;
  Checkpoint &operator=(Checkpoint &&) = default;
  virtual ~Checkpoint() = default;
  // `path` is an HF directory or a .gguf file.
  static Status open(const std::string &path, Checkpoint &out);

  CheckpointFormat format = CheckpointFormat::HF;
  std::string path;
  ModelConfig config;
  // True when the LM head reads the embedding matrix (HF tie_word_embeddings,
  // or a GGUF without output.weight).
  bool lmHeadTied = true;
  std::vector<WeightInfo> weights;

  const WeightInfo *find(const std::string &name) const;
  const WeightInfo &lmHead() const {
    return *find(lmHeadTied ? "token_embd" : "output");
  }
  // Reads logical elements [begin, begin + count) of `w` as f32. For block
  // types, begin and count must be whole blocks (any range of a transposed
  // one).
  // Virtual so that a checkpoint whose weights are computed rather than read
  // (synth's calibration model) can serve the reference.
  virtual Status readF32(const WeightInfo &w, uint64_t begin, uint64_t count,
                         float *out) const;
  // All of weight `name` as f32 (an error names it when it is missing).
  Status readAllF32(const std::string &name, std::vector<float> &out) const;

private:
  Status readTransposedF32(const WeightInfo &w, uint64_t begin, uint64_t count,
                           float *out) const;
  Status openHF(const std::string &dir);
  Status openGGUF(const std::string &file);
  const InputFile *file(const std::string &path, Status &st) const;
  mutable std::map<std::string, std::unique_ptr<InputFile>> files_;
  std::unique_ptr<std::mutex> filesMutex_ = std::make_unique<std::mutex>();
};

} // namespace stc
