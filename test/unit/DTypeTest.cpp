// DType: half-precision conversions and GGUF block quantization, checked by
// hand.
#include "formats/DType.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

using namespace stc;

TEST(DType, HalfConversions) {
  EXPECT_EQ(f32ToF16(1.0f), 0x3C00);
  EXPECT_EQ(f32ToF16(-2.0f), 0xC000);
  EXPECT_EQ(f32ToF16(65504.0f), 0x7BFF);
  EXPECT_EQ(f32ToF16(1e6f), 0x7C00);          // overflow to inf
  EXPECT_EQ(f32ToF16(5.9604645e-8f), 0x0001); // smallest subnormal
  EXPECT_EQ(f16ToF32(0x0001), 5.9604645e-8f);
  EXPECT_EQ(f16ToF32(0x3555), 0.333251953125f);
  // Round to nearest even at the halfway point between 1 and 1 + 2^-10.
  EXPECT_EQ(f32ToF16(1.0f + 0.00048828125f), 0x3C00);
  EXPECT_EQ(f32ToF16(1.0f + 3 * 0.00048828125f), 0x3C02);
  for (uint32_t h = 0; h < 0x7C00;
       ++h) // every finite positive half round-trips
    ASSERT_EQ(f32ToF16(f16ToF32(static_cast<uint16_t>(h))), h);
}

TEST(DType, Bf16Conversions) {
  EXPECT_EQ(f32ToBf16(1.0f), 0x3F80);
  EXPECT_EQ(bf16ToF32(0x3F80), 1.0f);
  // 1 + 2^-8 is halfway between two bf16 values: rounds to even (1.0).
  EXPECT_EQ(f32ToBf16(1.00390625f), 0x3F80);
  EXPECT_EQ(f32ToBf16(1.01171875f), 0x3F82);
}

TEST(DType, Q4_0MatchesGgmlByHand) {
  // Block: element 3 has the largest magnitude (-4) => d = -4 / -8 = 0.5, id
  // = 2.
  std::vector<float> x(32, 0.0f);
  x[3] = -4.0f;
  x[16] = 1.0f; // 1 * 2 + 8.5 = 10.5 -> 10
  x[0] = 3.49f; // 6.98 + 8.5 = 15.48 -> 15
  uint8_t blk[kQ4_0BlockBytes];
  quantize(DType::Q4_0, x.data(), blk, 32);
  EXPECT_EQ(f16ToF32(static_cast<uint16_t>(blk[0] | blk[1] << 8)), 0.5f);
  EXPECT_EQ(blk[2 + 3] & 0x0F, 0); // -4 / 0.5 + 8 = 0
  EXPECT_EQ(blk[2 + 0] & 0x0F, 15);
  EXPECT_EQ(blk[2 + 0] >> 4, 10); // element 16 is the high nibble of byte 0
  std::vector<float> y(32);
  dequantize(DType::Q4_0, blk, y.data(), 32);
  EXPECT_EQ(y[3], -4.0f);
  EXPECT_EQ(y[16], 1.0f);
  EXPECT_EQ(y[0], 3.5f);
  EXPECT_EQ(y[1], 0.0f);
}

TEST(DType, Q8_0RoundTripError) {
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i)
    x[i] = std::sin(0.37f * i) * (i < 32 ? 1.0f : 0.01f);
  std::vector<uint8_t> q(2 * kQ8_0BlockBytes);
  quantize(DType::Q8_0, x.data(), q.data(), 64);
  std::vector<float> y(64);
  dequantize(DType::Q8_0, q.data(), y.data(), 64);
  for (int i = 0; i < 64; ++i) {
    float amax = i < 32 ? 1.0f : 0.01f;
    EXPECT_LE(std::fabs(x[i] - y[i]), amax / 127.0f * 0.51f + 1e-6f) << i;
  }
}

TEST(DType, Bytes) {
  uint64_t b;
  EXPECT_TRUE(dtypeBytes(DType::Q4_0, 64, b));
  EXPECT_EQ(b, 36u);
  EXPECT_TRUE(dtypeBytes(DType::Q8_0, 32, b));
  EXPECT_EQ(b, 34u);
  EXPECT_FALSE(dtypeBytes(DType::Q4_0, 33, b));
  EXPECT_FALSE(dtypeBytes(DType::F32, UINT64_MAX / 2, b));
}
