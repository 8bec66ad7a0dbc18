// The rows16k tiles of the K-quant kernels: taking ggml's blocks apart into
// levels and scales, and the tiles the compiler writes read back as rows, give
// ggml's own dequantization (fixtures by llama-quantize, see
// test/fixtures/ggml/make_fixtures.py) bit for bit; a few levels worked out by
// hand pin the bit planes.
#include "formats/KTiles.h"
#include "KTileRow.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

using namespace stc;
using stc::test::bitMismatches;
using stc::test::ggmlFixture;

namespace {

class KTiles : public ::testing::TestWithParam<DType> {};

TEST_P(KTiles, LevelsTimesScalesAreGgmlsValues) {
  const DType t = GetParam();
  const std::string blocks = ggmlFixture(std::string(dtypeName(t)) + ".blocks");
  const std::string want = ggmlFixture(std::string(dtypeName(t)) + ".f32");
  ASSERT_FALSE(blocks.empty());
  const size_t n = want.size() / 4;
  std::vector<float> got(n);
  KBlockLevels lv;
  for (size_t b = 0; b < n / 256; ++b) {
    unpackKBlock(
        t, reinterpret_cast<const uint8_t *>(blocks.data()) + b * blockBytes(t),
        lv);
    for (int i = 0; i < 256; ++i)
      got[b * 256 + i] = kLevelValue(t, lv, i);
  }
  size_t first;
  EXPECT_EQ(bitMismatches(got.data(), want, n, first), 0u)
      << dtypeName(t) << ": first at " << first;
}

TEST_P(KTiles, TileRowsReadBackAsGgmlsValues) {
  // The fixture's 32 blocks as 16 rows of 512 columns (two tiles per group).
  const DType t = GetParam();
  const std::string blocks = ggmlFixture(std::string(dtypeName(t)) + ".blocks");
  const std::string want = ggmlFixture(std::string(dtypeName(t)) + ".f32");
  const int64_t rows = 16, cols = static_cast<int64_t>(want.size() / 4) / 16;
  ASSERT_EQ(cols, 512);
  const rt::KKind kind = kKindOf(t);
  std::vector<uint8_t> tiles(rt::kTileMatrixBytes(kind, rows, cols));
  packKTiles(t, reinterpret_cast<const uint8_t *>(blocks.data()), rows, cols,
             tiles.data());
  std::vector<float> got(rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    rt::kTileRowToFloat(kind, tiles.data(), cols, r, got.data() + r * cols);
  size_t first;
  EXPECT_EQ(bitMismatches(got.data(), want, got.size(), first), 0u)
      << dtypeName(t) << ": first at " << first;
}

INSTANTIATE_TEST_SUITE_P(TileTypes, KTiles,
                         ::testing::Values(DType::Q4_K, DType::Q5_K,
                                           DType::Q6_K, DType::Q3_K),
                         [](const auto &info) {
                           return std::string(dtypeName(info.param));
                         });

TEST(KTilesByHand, Q6KLevelsAndPlanes) {
  // Q6_K: value 65 = 64 + 1 of the second 128 has ql[64 + 1] low... worked
  // out: element 128 + 64 + 1 = 193 takes the high nibble of ql[64 + 1] and
  // bits 4-5 of qh[32 + 1].
  uint8_t blk[210] = {};
  blk[64 + 1] = 0x90;                      // high nibble 9
  blk[128 + 32 + 1] = 0x20;                // bits 4-5: 2
  blk[192 + 12] = static_cast<int8_t>(-3); // scale of sub-block 193 / 16 = 12
  blk[208] = 0x00;
  blk[209] = 0x3C; // d = 1.0
  KBlockLevels lv;
  unpackKBlock(DType::Q6_K, blk, lv);
  EXPECT_EQ(lv.u[193], 9 | (2 << 4));
  EXPECT_EQ(kLevelValue(DType::Q6_K, lv, 193), -3.0f * (41 - 32));
  EXPECT_EQ(kLevelValue(DType::Q6_K, lv, 0), 0.0f); // scale 0
  // In the tile, 193 is block 6, column 1: z 0, j 0, r 1; 4-bit plane byte
  // [0][l][1] low nibble, 2-bit plane byte [0][l][1] bits 0-1.
  std::vector<uint8_t> blocks(16 * 210);
  std::memcpy(&blocks[5 * 210], blk, 210); // row 5
  std::vector<uint8_t> tiles(rt::kTileMatrixBytes(rt::KKind::Q6_K, 16, 256));
  packKTiles(DType::Q6_K, blocks.data(), 16, 256, tiles.data());
  const rt::KTileLayout L = rt::kTileLayout(rt::KKind::Q6_K);
  const uint8_t *b6 = tiles.data() + 6 * L.blockBytes;
  EXPECT_EQ(b6[L.nibbles + 0 * 64 + 5 * 4 + 1], 9);
  EXPECT_EQ(b6[L.twoBits + 0 * 64 + 5 * 4 + 1], 2);
  EXPECT_EQ(static_cast<int8_t>(tiles[L.scales + 12 * 16 + 5]), -3);
}

TEST(KTilesByHand, Q4KScalesAndMins) {
  // Q4_K: d = 2, dmin = 0.5; sub-block 5's scale and min come from the packed
  // high part: scale = (q[9] & 15) | (q[1] >> 6) << 4, min = (q[9] >> 4) |
  // (q[5] >> 6) << 4.
  uint8_t blk[144] = {};
  blk[0] = 0x00;
  blk[1] = 0x40; // d = 2
  blk[2] = 0x00;
  blk[3] = 0x38; // dmin = 0.5
  uint8_t *sc = blk + 4;
  sc[9] = 0x37;                // scale low 7, min low 3
  sc[1] = 0x40;                // scale high 1: scale = 23
  sc[5] = 0x80;                // min high 2: min = 35
  blk[16 + 32 * 2 + 3] = 0x50; // element 64*2 + 32 + 3 = 163 (sub-block 5): 5
  KBlockLevels lv;
  unpackKBlock(DType::Q4_K, blk, lv);
  EXPECT_EQ(lv.scale[5], 23);
  EXPECT_EQ(lv.min[5], 35);
  EXPECT_EQ(lv.u[163], 5);
  EXPECT_EQ(kLevelValue(DType::Q4_K, lv, 163), 2.0f * 23 * 5 - 0.5f * 35);
}

TEST(KTilesByHand, Q3KThirdBitAndSignedScale) {
  // Q3_K: element 128 + 32 * 3 + 7 = 231: low bits 6-7 of qs[32 + 7], third
  // bit 4 + 3 = 7 of hmask[7]; scale 231 / 16 = 14: low 4 bits from byte 6's
  // high nibble, high 2 from byte 8 + 2, bits 6-7.
  uint8_t blk[110] = {};
  blk[32 + 32 + 7] = 0xC0; // low bits 3
  blk[7] = 0x80;           // third bit set: +4
  blk[96 + 6] = 0x50;      // scale low 5
  blk[96 + 10] = 0x80;     // scale high 2: 6-bit 37, minus 32 = 5
  blk[108] = 0x00;
  blk[109] = 0x3C; // d = 1
  KBlockLevels lv;
  unpackKBlock(DType::Q3_K, blk, lv);
  EXPECT_EQ(lv.u[231], 7);
  EXPECT_EQ(lv.scale[14], 5);
  EXPECT_EQ(kLevelValue(DType::Q3_K, lv, 231), 5.0f * 3);
  EXPECT_EQ(kLevelValue(DType::Q3_K, lv, 230), 5.0f * -4); // level 0: -4
}

} // namespace
