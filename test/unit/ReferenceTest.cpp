// Reference: each piece checked by hand, and the whole pass agreeing across
// layouts.
#include "TestUtil.h"

#include "formats/Checkpoint.h"
#include "reference/Reference.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace stc;
using namespace stc::test;

TEST(Reference, RopeNeoxPairsElementJWithJPlusHalf) {
  // dim 8, theta 10^4: pair j uses angle pos * 10000^(-2j/8) = pos * 10^(-j).
  const int64_t pos = 3;
  for (int j = 0; j < 4; ++j) {
    float v[8] = {};
    v[j] = 1.0f; // a unit vector in the first half rotates into element j + 4
    ref::applyRopeNeox(v, 8, pos, 10000.0);
    double angle = pos * std::pow(10.0, -j);
    for (int i = 0; i < 8; ++i) {
      double expected = i == j       ? std::cos(angle)
                        : i == j + 4 ? std::sin(angle)
                                     : 0;
      EXPECT_NEAR(v[i], expected, 1e-6) << "j=" << j << " i=" << i;
    }
    float w[8] = {};
    w[j + 4] = 1.0f; // and the second half into element j, negated
    ref::applyRopeNeox(w, 8, pos, 10000.0);
    EXPECT_NEAR(w[j], -std::sin(angle), 1e-6);
    EXPECT_NEAR(w[j + 4], std::cos(angle), 1e-6);
  }
  float z[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  ref::applyRopeNeox(z, 8, 0, 100.0); // position 0 is the identity
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(z[i], i + 1);
}

TEST(Reference, SlidingWindowMaskBoundary) {
  // Window 4: query 10 sees keys 7, 8, 9, 10 (four keys including itself).
  EXPECT_FALSE(ref::keyVisible(10, 6, 4));
  EXPECT_TRUE(ref::keyVisible(10, 7, 4));
  EXPECT_TRUE(ref::keyVisible(10, 10, 4));
  EXPECT_FALSE(ref::keyVisible(10, 11, 4)); // causal
  EXPECT_TRUE(ref::keyVisible(10, 0, 0));   // global sees everything before it
  EXPECT_FALSE(ref::keyVisible(10, 11, 0));
  EXPECT_TRUE(ref::keyVisible(3, 0, 4)); // short prefixes are whole
}

TEST(Reference, GqaHeadMapping) {
  // 4B: 12 query heads over 2 kv heads; 21B: 28 over 4 (groups of 7).
  for (int h = 0; h < 12; ++h)
    EXPECT_EQ(ref::kvHeadFor(h, 12, 2), h < 6 ? 0 : 1);
  EXPECT_EQ(ref::kvHeadFor(6, 28, 4), 0);
  EXPECT_EQ(ref::kvHeadFor(7, 28, 4), 1);
  EXPECT_EQ(ref::kvHeadFor(27, 28, 4), 3);
}

TEST(Reference, SigmoidVersusSoftmaxRouting) {
  const float logits[4] = {0.0f, 2.0f, 1.0f, -1.0f};
  std::vector<int64_t> idx;
  std::vector<float> w;
  ref::route(logits, 4, 2, RouterWeighting::Softmax, Convention::HF, idx, w);
  ASSERT_EQ(idx, (std::vector<int64_t>{1, 2}));
  double e = std::exp(1.0);
  EXPECT_NEAR(w[0], e / (e + 1), 1e-6); // softmax over the two selected logits
  EXPECT_NEAR(w[1], 1 / (e + 1), 1e-6);
  ref::route(logits, 4, 2, RouterWeighting::Sigmoid, Convention::HF, idx, w);
  double s2 = 1 / (1 + std::exp(-2.0)), s1 = 1 / (1 + std::exp(-1.0));
  EXPECT_NEAR(w[0], s2 / (s1 + s2), 1e-6); // sigmoid, divided by the sum
  EXPECT_NEAR(w[1], s1 / (s1 + s2), 1e-6);
  // llama.cpp's softmax over all experts, gathered and renormalized: the same
  // weights.
  std::vector<float> wl;
  ref::route(logits, 4, 2, RouterWeighting::Softmax, Convention::LlamaCpp, idx,
             wl);
  EXPECT_NEAR(wl[0], e / (e + 1), 1e-6);
  // llama.cpp clamps the denominator: sigmoids of very negative logits sum to
  // ~3e-9.
  const float low[3] = {-20.0f, -21.0f, -30.0f};
  ref::route(low, 3, 2, RouterWeighting::Sigmoid, Convention::LlamaCpp, idx,
             wl);
  EXPECT_NEAR(wl[0], (1 / (1 + std::exp(20.0))) / 6.103515625e-5, 1e-9);
  ref::route(low, 3, 2, RouterWeighting::Sigmoid, Convention::HF, idx, w);
  EXPECT_GT(w[0], 0.7f); // HF has no clamp
}

TEST(Reference, TopKTiesPickLowerIndexFirst) {
  const float logits[4] = {1.0f, 3.0f, 3.0f, 0.0f};
  std::vector<int64_t> idx;
  std::vector<float> w;
  ref::route(logits, 4, 3, RouterWeighting::Softmax, Convention::HF, idx, w);
  EXPECT_EQ(idx, (std::vector<int64_t>{1, 2, 0}));
}

TEST(Reference, RmsNorm) {
  const float x[4] = {1, -1, 1, -1}, w[4] = {1, 2, 3, 4};
  float y[4];
  ref::rmsNorm(x, w, 4, 0.0, y);
  EXPECT_NEAR(y[1], -2.0f, 1e-6);
  const float z[2] = {3, 4}, o[2] = {1, 1};
  ref::rmsNorm(z, o, 2, 1e-6, y);
  EXPECT_NEAR(y[0], 3 / std::sqrt(12.5 + 1e-6), 1e-6);
}

static float maxAbsDiff(const std::vector<float> &a,
                        const std::vector<float> &b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i)
    m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// The acceptance check: the same f32 weights give the same logits from
// the HF layout (HF rules) and from GGUF (llama.cpp rules), to 1e-4.
TEST(Reference, HFAndGGUFGiveTheSameLogits) {
  std::string dir = scratchDir("ref-layouts");
  for (const char *preset : {"tiny", "tiny-swa"}) {
    Checkpoint hf, gg;
    ASSERT_TRUE(
        Checkpoint::open(synthCheckpoint(dir, preset, "hf", DType::F32), hf)
            .ok());
    ASSERT_TRUE(
        Checkpoint::open(synthCheckpoint(dir, preset, "gguf", DType::F32), gg)
            .ok());
    // 20 tokens: longer than tiny-swa's window of 8.
    std::vector<int64_t> tokens;
    for (int i = 0; i < 20; ++i)
      tokens.push_back((i * 37 + 11) % 512);
    std::vector<float> a, b;
    Status st = ref::forward(hf, tokens, a);
    ASSERT_TRUE(st.ok()) << st.message();
    ASSERT_TRUE(ref::forward(gg, tokens, b).ok());
    ASSERT_EQ(a.size(), 20u * 512u);
    EXPECT_LT(maxAbsDiff(a, b), 1e-4f) << preset;
    float spread = 0;
    for (float v : a)
      spread = std::max(spread, std::fabs(v));
    EXPECT_GT(spread, 0.1f) << "logits should not be trivially zero";
  }
}

TEST(Reference, CausalAndWindowed) {
  std::string dir = scratchDir("ref-causal");
  Checkpoint ck;
  ASSERT_TRUE(
      Checkpoint::open(synthCheckpoint(dir, "tiny-swa", "hf", DType::F32), ck)
          .ok());
  std::vector<int64_t> t1 = {5, 9, 13, 200, 7, 7, 31, 400, 2, 3, 4, 5, 6};
  std::vector<int64_t> t2 = t1;
  t2.back() = 99; // changing the last token leaves every earlier position alone
  std::vector<float> a, b;
  ASSERT_TRUE(ref::forward(ck, t1, a).ok());
  ASSERT_TRUE(ref::forward(ck, t2, b).ok());
  const size_t V = 512, T = t1.size();
  for (size_t i = 0; i < (T - 1) * V; ++i)
    ASSERT_EQ(a[i], b[i]) << "position " << i / V;
  float lastDiff = 0;
  for (size_t i = (T - 1) * V; i < T * V; ++i)
    lastDiff = std::max(lastDiff, std::fabs(a[i] - b[i]));
  EXPECT_GT(lastDiff, 1e-3f);
}

TEST(Reference, LowPrecisionLayoutsStayClose) {
  std::string dir = scratchDir("ref-dtypes");
  Checkpoint f32, bf16, q8;
  ASSERT_TRUE(
      Checkpoint::open(synthCheckpoint(dir, "tiny", "hf", DType::F32), f32)
          .ok());
  ASSERT_TRUE(
      Checkpoint::open(synthCheckpoint(dir, "tiny", "hf", DType::BF16), bf16)
          .ok());
  ASSERT_TRUE(
      Checkpoint::open(synthCheckpoint(dir, "tiny", "gguf", DType::Q8_0), q8)
          .ok());
  std::vector<int64_t> tokens = {1, 2, 3, 4, 5, 6};
  std::vector<float> a, b, c;
  ASSERT_TRUE(ref::forward(f32, tokens, a).ok());
  ASSERT_TRUE(ref::forward(bf16, tokens, b).ok());
  ASSERT_TRUE(ref::forward(q8, tokens, c).ok());
  // Same seed, same values before rounding: bf16 (8-bit mantissa) and q8_0 stay
  // near.
  EXPECT_LT(maxAbsDiff(a, b), 0.1f);
  EXPECT_LT(maxAbsDiff(a, c), 0.1f);
  EXPECT_GT(maxAbsDiff(a, b), 0.0f); // but they did round
}

TEST(Reference, RejectsTokensOutsideTheVocabulary) {
  std::string dir = scratchDir("ref-tokens");
  Checkpoint ck;
  ASSERT_TRUE(
      Checkpoint::open(synthCheckpoint(dir, "tiny", "hf", DType::F32), ck)
          .ok());
  std::vector<float> out;
  Status st = ref::forward(ck, {1, 512}, out);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("token id 512"), std::string::npos);
}
