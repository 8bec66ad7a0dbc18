#include "Calibration.h"

#include "calibrate/CalibrationForward.h"

#include "reference/Reference.h"
#include "reference/SparsityStats.h"

#include "Tokenizer.h"
#include "dialects/st/StDialect.h"
#include "formats/FileIO.h"

#include "mlir/IR/BuiltinAttributes.h"

#include <algorithm>
#include <cctype>
#include <memory>
#include <random>
#include <sstream>
#include <thread>

using namespace mlir;

namespace stc {

namespace {

// A line of token ids: integers separated by commas and/or blanks.
bool parseIds(const std::string &line, std::vector<int64_t> &ids) {
  std::string s = line;
  std::replace(s.begin(), s.end(), ',', ' ');
  std::istringstream in(s);
  std::string item;
  while (in >> item) {
    char *end = nullptr;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (*end != '\0')
      return false;
    ids.push_back(v);
  }
  return true;
}

void addCut(std::vector<std::vector<int64_t>> &out,
            const std::vector<int64_t> &seq) {
  for (size_t i = 0; i < seq.size(); i += kCalibrationMaxLength)
    out.emplace_back(seq.begin() + i,
                     seq.begin() +
                         std::min(seq.size(), i + kCalibrationMaxLength));
}

} // namespace

Status calibrationTokens(const std::string &file, const ModelConfig &c,
                         const rt::TokenizerData *tokenizer,
                         CalibrationTokens &out) {
  out = CalibrationTokens();
  int64_t total = 0;
  if (file.empty()) {
    // mt19937_64's output is fixed by the standard: the same ids everywhere.
    std::mt19937_64 rng(kDefaultCalibrationSeed);
    for (int64_t s = 0; s < kDefaultCalibrationSequences; ++s) {
      std::vector<int64_t> seq;
      for (int64_t i = 0; i < kDefaultCalibrationLength; ++i)
        seq.push_back(
            static_cast<int64_t>(rng() % static_cast<uint64_t>(c.vocabSize)));
      out.sequences.push_back(seq);
    }
    out.description = std::to_string(kDefaultCalibrationSequences) +
                      " seeded random sequences of " +
                      std::to_string(kDefaultCalibrationLength) +
                      " tokens (no --calibrate given)";
    return Status::success();
  }
  std::string text;
  STC_TRY(readSmallFile(file, uint64_t(256) << 20, text));
  // Token ids if every non-empty line parses as such, else text.
  std::vector<std::vector<int64_t>> lines;
  bool ids = true;
  std::istringstream in(text);
  std::string line;
  while (ids && std::getline(in, line)) {
    std::vector<int64_t> seq;
    ids = parseIds(line, seq);
    if (ids && !seq.empty())
      lines.push_back(seq);
  }
  if (ids && !lines.empty()) {
    for (const auto &seq : lines) {
      for (int64_t t : seq)
        if (t < 0 || t >= c.vocabSize)
          return Status::error(file + ": token id " + std::to_string(t) +
                               " is outside the vocabulary [0, " +
                               std::to_string(c.vocabSize) + ")");
      total += static_cast<int64_t>(seq.size());
      addCut(out.sequences, seq);
    }
    out.description = file + ": " + std::to_string(total) + " token ids in " +
                      std::to_string(lines.size()) + " sequences";
    return Status::success();
  }
  if (!tokenizer)
    return Status::error(file + ": not token ids (lines of integers), and the "
                                "checkpoint has no tokenizer to encode text");
  rt::Tokenizer tok;
  std::string err;
  if (!tok.init(*tokenizer, "the checkpoint's tokenizer", err))
    return Status::error(err);
  std::vector<int32_t> encoded;
  if (!tok.encode(text, false, encoded, err))
    return Status::error(file + ": " + err);
  if (encoded.empty())
    return Status::error(file + ": no text to calibrate on");
  addCut(out.sequences, std::vector<int64_t>(encoded.begin(), encoded.end()));
  out.description = file + ": text, " + std::to_string(encoded.size()) +
                    " tokens in " + std::to_string(out.sequences.size()) +
                    " sequences of up to " +
                    std::to_string(kCalibrationMaxLength);
  return Status::success();
}

Status calibrate(const Checkpoint &ck, const CalibrationTokens &tokens,
                 ModuleOp module) {
  const ModelConfig &c = ck.config;
  // Every sequence at once, layer by layer (CalibrationForward.h).
  auto stats = std::make_unique<ref::SparsityStats>(c);
  STC_TRY(
      calibrationForward(ck, tokens.sequences,
                         [&](int64_t layer, int64_t expert, const float *gate) {
                           stats->add(layer, expert, gate);
                         }));
  const ref::SparsityStats &all = *stats;
  const std::vector<ref::SparsityStats::Layer> layers = all.layers();

  MLIRContext *ctx = module.getContext();
  Status result = Status::success();
  module.walk([&](st::MoeOp moe) {
    const int64_t l = moe.getLayer();
    if (l < 0 || l >= static_cast<int64_t>(layers.size())) {
      result = Status::error("calibration: st.moe of layer " +
                             std::to_string(l) + " is outside the model's " +
                             std::to_string(layers.size()) + " layers");
      return;
    }
    const int64_t E = c.numExperts, F = c.expertFfn;
    std::vector<float> firing(E * F, 0.0f);
    for (int64_t e = 0; e < E; ++e) {
      const uint32_t routed = all.routed(l, e);
      const uint32_t *fired = all.fired(l, e);
      for (int64_t f = 0; f < F && routed; ++f)
        firing[e * F + f] = static_cast<float>(fired[f]) / routed;
    }
    auto type = RankedTensorType::get({E, F}, Float32Type::get(ctx));
    moe->setAttr("neuron_firing",
                 DenseElementsAttr::get(type, llvm::ArrayRef<float>(firing)));
    moe->setAttr("dead_share",
                 FloatAttr::get(Float64Type::get(ctx), layers[l].deadShare()));
  });
  STC_TRY(result);
  int64_t total = 0;
  for (const auto &s : tokens.sequences)
    total += static_cast<int64_t>(s.size());
  module->setAttr("st.calibration",
                  StringAttr::get(ctx, tokens.description +
                                           ", through the calibration pass (" +
                                           std::to_string(total) + " tokens)"));
  return Status::success();
}

} // namespace stc
