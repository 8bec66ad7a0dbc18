// ggml's block types: stc's dequantization against ggml's own (fixtures made
// by llama-quantize, see test/fixtures/ggml/make_fixtures.py), bit for bit, a
// few values worked out by hand, and the exact conversions to Q8_0.
#include "TestUtil.h"
#include "formats/DType.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

using namespace stc;
using stc::test::bitMismatches;
using stc::test::ggmlFixture;

namespace {

class GgmlBlocks : public ::testing::TestWithParam<DType> {};

TEST_P(GgmlBlocks, DequantizeEqualsGgmlBitForBit) {
  const DType t = GetParam();
  const std::string blocks = ggmlFixture(std::string(dtypeName(t)) + ".blocks");
  const std::string want = ggmlFixture(std::string(dtypeName(t)) + ".f32");
  ASSERT_FALSE(blocks.empty()) << "missing fixture for " << dtypeName(t);
  const uint64_t count = want.size() / 4;
  uint64_t bytes = 0;
  ASSERT_TRUE(dtypeBytes(t, count, bytes));
  ASSERT_EQ(bytes, blocks.size());
  std::vector<float> got(count);
  dequantize(t, blocks.data(), got.data(), count);
  // Bits, not values: -0.0 and NaN patterns must match too.
  size_t first;
  EXPECT_EQ(bitMismatches(got.data(), want, count, first), 0u)
      << dtypeName(t) << ": first at element " << first;
}

INSTANTIATE_TEST_SUITE_P(
    AllTypes, GgmlBlocks,
    ::testing::Values(DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K,
                      DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K,
                      DType::IQ4_NL, DType::IQ4_XS),
    [](const auto &info) { return std::string(dtypeName(info.param)); });

void put16(uint8_t *p, uint16_t v) {
  p[0] = v & 0xFF;
  p[1] = v >> 8;
}

TEST(GgmlBlocks, ByHand) {
  float y[256];
  { // Q4_1: x * d + m with d = 0.5, m = -1: nibble 5 -> 1.5
    uint8_t b[20] = {};
    put16(b, f32ToF16(0.5f));
    put16(b + 2, f32ToF16(-1.0f));
    b[4] = 0x35; // element 0 = 5, element 16 = 3
    dequantize(DType::Q4_1, b, y, 32);
    EXPECT_EQ(y[0], 1.5f);
    EXPECT_EQ(y[16], 0.5f);
    EXPECT_EQ(y[1], -1.0f);
  }
  { // Q5_0: the fifth bit of element 0 is qh bit 0; value (q - 16) * d
    uint8_t b[22] = {};
    put16(b, f32ToF16(2.0f));
    b[2] = 0x01; // element 0 has its fifth bit
    b[6] = 0x03; // element 0 low nibble 3
    dequantize(DType::Q5_0, b, y, 32);
    EXPECT_EQ(y[0], (19 - 16) * 2.0f);
    EXPECT_EQ(y[1], -32.0f); // q = 0
  }
  { // Q6_K: element 0 = d * scale[0] * ((ql & 15 | (qh & 3) << 4) - 32)
    uint8_t b[210] = {};
    b[0] = 0x0A;  // ql[0] low nibble 10
    b[128] = 0x2; // qh[0] bits 0-1 = 2 -> q = 10 | 32 = 42
    b[192] = 3;   // scale 0
    put16(b + 208, f32ToF16(0.25f));
    dequantize(DType::Q6_K, b, y, 256);
    EXPECT_EQ(y[0], 0.25f * 3 * (42 - 32));
  }
  { // Q4_K: sub-block 0 scale 2 and min 1 (6-bit, bytes 0 and 4 of scales)
    uint8_t b[144] = {};
    put16(b, f32ToF16(0.5f));
    put16(b + 2, f32ToF16(0.25f));
    b[4] = 2;     // scale of sub-block 0
    b[8] = 1;     // min of sub-block 0
    b[16] = 0x07; // element 0 = 7
    dequantize(DType::Q4_K, b, y, 256);
    EXPECT_EQ(y[0], 0.5f * 2 * 7 - 0.25f * 1);
  }
  { // IQ4_NL: d * table[nibble]; nibble 0 is -127, 15 is 113
    uint8_t b[18] = {};
    put16(b, f32ToF16(0.5f));
    b[2] = 0xF0; // element 0 = level 0, element 16 = level 15
    dequantize(DType::IQ4_NL, b, y, 32);
    EXPECT_EQ(y[0], -63.5f);
    EXPECT_EQ(y[16], 56.5f);
  }
}

TEST(GgmlBlocks, ExactImagesInQ8_0) {
  // Q5_0 and IQ4_NL become Q8_0 blocks that dequantize to the same floats.
  for (DType t : {DType::Q5_0, DType::IQ4_NL}) {
    const std::string blocks =
        ggmlFixture(std::string(dtypeName(t)) + ".blocks");
    const uint64_t count = blocks.size() / blockBytes(t) * blockElements(t);
    std::vector<uint8_t> q8(count / 32 * kQ8_0BlockBytes);
    ASSERT_TRUE(convertExact(t, DType::Q8_0, blocks.data(), q8.data(), count));
    std::vector<float> a(count), b(count);
    dequantize(t, blocks.data(), a.data(), count);
    dequantize(DType::Q8_0, q8.data(), b.data(), count);
    EXPECT_EQ(std::memcmp(a.data(), b.data(), count * 4), 0) << dtypeName(t);
    EXPECT_EQ(exactKernelType(t), DType::Q8_0);
  }
  EXPECT_FALSE(convertExact(DType::Q4_K, DType::Q8_0, nullptr, nullptr, 0));
  EXPECT_EQ(exactKernelType(DType::Q4_K), DType::Q4_K);
  EXPECT_EQ(exactKernelType(DType::Q2_K), DType::F32);
  EXPECT_EQ(exactKernelType(DType::Q4_0), DType::Q4_0);
}

// synth's encoders (BlockEncode.cpp) write blocks the decoders read back close
// to the input: the RMS error over the RMS of the values stays under a bound
// per type's bits, and a block of zeros stays zeros.
TEST(GgmlBlocks, EncodersRoundTrip) {
  const std::pair<DType, double> bounds[] = {
      {DType::Q4_1, 0.12},  {DType::Q5_0, 0.07}, {DType::Q5_1, 0.06},
      {DType::Q2_K, 0.45},  {DType::Q3_K, 0.25}, {DType::Q4_K, 0.12},
      {DType::Q5_K, 0.06},  {DType::Q6_K, 0.03}, {DType::IQ4_NL, 0.12},
      {DType::IQ4_XS, 0.12}};
  std::vector<float> x(4096);
  uint64_t state = 12345;
  for (float &v : x) { // sums of uniforms: roughly normal, with a long tail
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    v = ((state >> 40) & 0xFFFF) / 65536.0f - 0.5f;
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    v += ((state >> 40) & 0xFFFF) / 65536.0f - 0.5f;
  }
  for (const auto &[t, bound] : bounds) {
    uint64_t bytes = 0;
    ASSERT_TRUE(dtypeBytes(t, x.size(), bytes));
    std::vector<uint8_t> q(bytes);
    ASSERT_TRUE(quantize(t, x.data(), q.data(), x.size())) << dtypeName(t);
    std::vector<float> y(x.size());
    dequantize(t, q.data(), y.data(), y.size());
    double err = 0, sig = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      err += (y[i] - x[i]) * (y[i] - x[i]);
      sig += x[i] * x[i];
    }
    EXPECT_LT(std::sqrt(err / sig), bound) << dtypeName(t);
    std::vector<float> zeros(256, 0.0f), back(256, 1.0f);
    std::vector<uint8_t> zq(blockBytes(t) * (256 / blockElements(t)));
    ASSERT_TRUE(quantize(t, zeros.data(), zq.data(), 256));
    dequantize(t, zq.data(), back.data(), 256);
    for (float v : back)
      ASSERT_EQ(v, 0.0f) << dtypeName(t);
  }
}

} // namespace
