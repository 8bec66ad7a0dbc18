// The calibration's forward pass (every sequence at once, f32) against the
// reference (one sequence at a time, double sums): the same routed (token,
// expert) pairs and the same gate pre-activations, on both conventions and the
// tiny presets' attention plans (global and sliding windows, NoPE and RoPE).
#include "TestUtil.h"

#include "calibrate/CalibrationForward.h"
#include "formats/Checkpoint.h"
#include "reference/Reference.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <tuple>

using namespace stc;
using namespace stc::test;

namespace {

// (layer, token of all sequences, n-th pair of that token and layer) ->
// (expert, gate values).
using Gates = std::map<std::tuple<int64_t, int64_t, int>,
                       std::pair<int64_t, std::vector<float>>>;

} // namespace

TEST(CalibrationForward, GivesTheReferencesGates) {
  const std::string dir = scratchDir("calibration-forward");
  for (const char *preset : {"tiny", "tiny-swa"})
    for (const char *format : {"hf", "gguf"}) {
      Checkpoint ck;
      ASSERT_TRUE(Checkpoint::open(
                      synthCheckpoint(dir, preset, format, DType::F32, 5), ck)
                      .ok());
      // Two sequences; the second crosses tiny-swa's window of 8.
      const std::vector<std::vector<int64_t>> seqs = {
          {5, 77, 301, 12, 498, 260},
          {33, 141, 402, 19, 88, 250, 7, 377, 163, 291, 45, 120}};
      const int64_t F = ck.config.expertFfn;
      Gates want, got;
      int64_t offset = 0;
      for (const std::vector<int64_t> &s : seqs) {
        ref::Options o;
        o.convention = ck.config.convention;
        o.skipHead = true;
        std::map<std::pair<int64_t, int64_t>, int> pairs;
        o.onGate = [&](int64_t layer, int64_t t, int64_t e, const float *g) {
          const int n = pairs[{layer, t}]++;
          want[{layer, offset + t, n}] = {e, std::vector<float>(g, g + F)};
        };
        std::vector<float> unused;
        ASSERT_TRUE(ref::forward(ck, s, o, unused).ok());
        offset += static_cast<int64_t>(s.size());
      }
      // calibrationForward reports token by token within a layer.
      std::map<std::pair<int64_t, int64_t>, int> pairs;
      const int64_t K = ck.config.topK;
      std::map<int64_t, int64_t> seen;
      Status st = calibrationForward(
          ck, seqs, [&](int64_t layer, int64_t e, const float *g) {
            const int64_t t = seen[layer]++ / K;
            const int n = pairs[{layer, t}]++;
            got[{layer, t, n}] = {e, std::vector<float>(g, g + F)};
          });
      ASSERT_TRUE(st.ok()) << st.message();
      ASSERT_EQ(got.size(), want.size()) << preset << " " << format;
      float worst = 0;
      for (const auto &[key, w] : want) {
        const auto &g = got[key];
        ASSERT_EQ(g.first, w.first)
            << preset << " " << format << " layer " << std::get<0>(key)
            << " token " << std::get<1>(key);
        for (int64_t f = 0; f < F; ++f)
          worst = std::max(worst, std::fabs(g.second[f] - w.second[f]));
      }
      // f32 sums against double ones, through a few layers.
      EXPECT_LT(worst, 1e-4f) << preset << " " << format;
    }
}
