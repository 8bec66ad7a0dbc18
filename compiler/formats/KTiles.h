// KTiles: ggml's K-quant super-blocks (Q4_K, Q5_K, Q6_K, Q3_K) taken apart
// into the integers their dequantization multiplies, and put back together as
// the runtime's rows16k tiles (runtime/KQuantLayout.h) for the int8-dot
// kernels. No value changes on the way: a tile holds the block's own levels and
// scales.
#pragma once

#include "DType.h"
#include "KQuantLayout.h"

#include <cstdint>

namespace stc {

// One super-block's integers.
struct KBlockLevels {
  uint16_t d = 0, dmin = 0; // fp16 bits (dmin: Q4_K, Q5_K)
  uint8_t u[256] = {};      // unsigned levels (Q4_K 0..15, ..., Q3_K 0..7)
  // Per sub-block: Q4_K/Q5_K eight 6-bit scales (0..63); Q6_K sixteen int8;
  // Q3_K sixteen 6-bit scales minus 32.
  int8_t scale[16] = {};
  uint8_t min[8] = {}; // Q4_K/Q5_K's eight 6-bit mins
};

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K super-block's
// 12 packed scale bytes (ggml's get_scale_min_k4).
void scaleMinK4(int j, const uint8_t *packed, uint8_t &scale, uint8_t &min);

// Whether a type has rows16k tiles and kernels, and its tile kind.
bool isKTileType(DType t);
rt::KKind kKindOf(DType t); // only for isKTileType types

// Takes one block of `t` (a K tile type) apart.
void unpackKBlock(DType t, const uint8_t *block, KBlockLevels &out);
// Element i's value, with ggml's operations in ggml's order (so it equals
// dequantize(t, ...) bit for bit).
float kLevelValue(DType t, const KBlockLevels &levels, int i);

// Repacks `rows` (a multiple of 16) rows of `cols` (a multiple of 256) values
// stored as ggml blocks of `t` into rows16k tiles: rt::kTileMatrixBytes bytes
// at `tiles`.
void packKTiles(DType t, const uint8_t *blocks, int64_t rows, int64_t cols,
                uint8_t *tiles);

} // namespace stc
