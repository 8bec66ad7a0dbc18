// KTileRow: one row of a rows16k K-quant matrix (KQuantLayout.h) as floats,
// with ggml's dequantization operations in ggml's order (so the same floats as
// ggml's dequantize_row_*). The embedding lookup of a K-quant token table uses
// it; header-only so the compiler's tests can check it against ggml.
#pragma once

#include "Half.h"
#include "KQuantLayout.h"

#include <cstdint>

namespace stc::rt {

inline void kTileRowToFloat(KKind kind, const uint8_t *matrix, int64_t cols,
                            int64_t row, float *out) {
  const KTileLayout L = kTileLayout(kind);
  const int64_t SB = cols / kKTileCols, g = row / 16;
  const int l = static_cast<int>(row % 16);
  for (int64_t sb = 0; sb < SB; ++sb) {
    const uint8_t *tile = matrix + (g * SB + sb) * L.tileBytes;
    auto half = [&](int off) {
      return halfToFloat(loadU16(tile + off + 2 * l));
    };
    const float d = half(L.supers);
    const float dmin = L.mins >= 0 ? half(L.supers + 32) : 0.0f;
    for (int i = 0; i < kKTileCols; ++i) {
      const int b = i / 32, k = i % 32, z = k / 16, j = (k % 16) / 4, r = k % 4;
      const uint8_t *blk = tile + b * L.blockBytes;
      const int lane = l * 4 + r;
      int u = 0, bits = 0;
      if (L.nibbles >= 0) {
        u = (blk[L.nibbles + j * 64 + lane] >> (4 * z)) & 15;
        bits = 4;
      }
      if (L.twoBits >= 0) {
        u |= ((blk[L.twoBits + z * 64 + lane] >> (2 * j)) & 3) << bits;
        bits += 2;
      }
      if (L.oneBit >= 0)
        u |= ((blk[L.oneBit + lane] >> (j + 4 * z)) & 1) << bits;
      float v;
      if (L.mins >= 0) {
        const float d1 = d * tile[L.scales + b * 16 + l];
        const float m1 = dmin * tile[L.mins + b * 16 + l];
        v = d1 * u - m1;
      } else {
        const float dl =
            d * static_cast<int8_t>(tile[L.scales + (i / 16) * 16 + l]);
        v = dl * (u - L.offset);
      }
      out[sb * kKTileCols + i] = v;
    }
  }
}

} // namespace stc::rt
