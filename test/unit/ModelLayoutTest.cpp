// The model file's byte layout rules (runtime/ModelLayout.h) for the layouts
// st-sparse-reglu asks for and the K-quants' rows16k tiles.
#include "ModelLayout.h"

#include <gtest/gtest.h>

namespace {

using stc::model::DType;
using stc::model::Layout;
using stc::rt::tensorBytes;

TEST(ModelLayout, Blocks16PadsRowsToWholeTiles) {
  // 128 values = 4 blocks, padded to one tile of 16 blocks per row.
  int64_t shape[3] = {2, 64, 128};
  uint64_t stride = 0;
  EXPECT_EQ(tensorBytes(DType::Q4_0, Layout::Blocks16, shape, 3, &stride),
            2 * 20480u); // 64 rows x 16 blocks x 18 bytes = 18432, to pages
  EXPECT_EQ(stride, 20480u);
  // 1536 values (the 4B hidden size) = 48 blocks = 3 whole tiles: no padding.
  int64_t big[2] = {768, 1536};
  EXPECT_EQ(tensorBytes(DType::Q8_0, Layout::Blocks16, big, 2, nullptr),
            768u * 48 * 34);
  // Tiles of float values do not exist.
  EXPECT_EQ(tensorBytes(DType::F32, Layout::Blocks16, big, 2, nullptr), 0u);
}

TEST(ModelLayout, KQuantsAreRows16kTilesOnly) {
  // 32 rows x 512 columns of Q4_K: 2 groups x 2 super-blocks of 2368 bytes.
  int64_t shape[2] = {32, 512};
  EXPECT_EQ(tensorBytes(DType::Q4_K, Layout::Rows16, shape, 2, nullptr),
            4u * 2368);
  // Q6_K's 3360 bytes of planes and scales are padded to 3392.
  EXPECT_EQ(tensorBytes(DType::Q6_K, Layout::Rows16, shape, 2, nullptr),
            4u * 3392);
  // Stacked experts: each expert's tiles rounded up to whole pages.
  int64_t experts[3] = {3, 16, 256};
  uint64_t stride = 0;
  EXPECT_EQ(tensorBytes(DType::Q3_K, Layout::Rows16, experts, 3, &stride),
            3u * 4096);
  EXPECT_EQ(stride, 4096u);
  // Rows not a multiple of 16, columns not of 256, another layout, 1-D: none.
  int64_t rows8[2] = {8, 256}, cols128[2] = {16, 128}, vec[1] = {256};
  EXPECT_EQ(tensorBytes(DType::Q4_K, Layout::Rows16, rows8, 2, nullptr), 0u);
  EXPECT_EQ(tensorBytes(DType::Q5_K, Layout::Rows16, cols128, 2, nullptr), 0u);
  EXPECT_EQ(tensorBytes(DType::Q4_K, Layout::RowMajor, shape, 2, nullptr), 0u);
  EXPECT_EQ(tensorBytes(DType::Q4_K, Layout::Blocks16, shape, 2, nullptr), 0u);
  EXPECT_EQ(tensorBytes(DType::Q6_K, Layout::Rows16, vec, 1, nullptr), 0u);
}

TEST(ModelLayout, TransposedKeepsTheBytesAndNeedsChunksOf64) {
  int64_t shape[3] = {4, 1536, 768}; // [E, D, F]
  uint64_t stride = 0;
  const uint64_t bytes =
      tensorBytes(DType::Q4_0, Layout::Transposed, shape, 3, &stride);
  EXPECT_EQ(stride, (1536u * 768 / 32 * 18 + 4095) / 4096 * 4096);
  EXPECT_EQ(bytes, 4 * stride);
  // D = 96 is not a whole number of 64-output chunks; F = 48 not of blocks.
  int64_t narrow[3] = {4, 96, 64}, ragged[3] = {4, 128, 48};
  EXPECT_EQ(tensorBytes(DType::Q4_0, Layout::Transposed, narrow, 3, nullptr),
            0u);
  EXPECT_EQ(tensorBytes(DType::Q8_0, Layout::Transposed, ragged, 3, nullptr),
            0u);
  // f32 rows: plain transposed floats.
  EXPECT_EQ(tensorBytes(DType::F32, Layout::Transposed, narrow, 3, nullptr),
            4u * 24576);
}

} // namespace
