// KQuantLayout: the rows16k tiles that hold ggml's K-quant matrices (Q4_K,
// Q5_K, Q6_K, Q3_K) for the int8-dot kernels. Shared by the compiler's writer,
// the runtime and the kernel generator (so it includes nothing).
//
// A tile holds 16 rows x one 256-column super-block. Tiles run along the row
// (group g's tiles are contiguous, so a task streams one region), groups follow
// each other, experts are stacked at their page-rounded stride.
//
// Inside a tile, eight 32-column blocks b hold the rows' integer levels u (the
// unsigned form: Q4_K 0..15, Q5_K 0..31, Q6_K 0..63, Q3_K 0..7) in bit planes,
// each a multiple of 64 bytes laid out so one 64-byte load gives the same 4
// columns of all 16 rows (the rows16 order of gemm_quant). Column k = 16z + 4j
// + r of a block (z 0..1, j 0..3, r 0..3) of row l lives in
//   the 4-bit plane: byte [j][l][r], low nibble for z = 0, high for z = 1;
//   the 2-bit plane: byte [z][l][r], bits 2j..2j+1;
//   the 1-bit plane: byte [l][r], bit j + 4z.
// Q4_K: 4-bit; Q5_K: 4-bit + 1-bit as bit 4; Q6_K: 4-bit + 2-bit as bits 4-5;
// Q3_K: 2-bit + 1-bit as bit 2.
//
// After the eight blocks, the sub-block scales and the super-block scales:
//   Q4_K, Q5_K: sc [b][l] u8, m [b][l] u8, fp16 d [l] then dmin [l];
//     value = (d * sc) * u - (dmin * m)
//   Q6_K, Q3_K: sc [b][z][l] int8 (Q3_K's 6-bit scale minus 32), fp16 d [l];
//     value = (d * sc) * (u - offset), offset 32 (Q6_K) or 4 (Q3_K)
// which are ggml's dequantizations, operation for operation. Tiles are padded
// to a multiple of 64 bytes.
#pragma once

namespace stc::rt {

enum class KKind { Q4_K, Q5_K, Q6_K, Q3_K };

struct KTileLayout {
  int blockBytes; // one block's planes (16 rows x 32 columns)
  int nibbles;    // offset of the 4-bit plane in a block, or -1
  int twoBits;    // offset of the 2-bit plane in a block, or -1
  int oneBit;     // offset of the 1-bit plane in a block, or -1
  int scales;     // offset of the sub-block scales in the tile
  int mins;       // offset of the sub-block mins (Q4_K, Q5_K), or -1
  int supers;     // offset of the fp16 d [16] (then dmin [16] with mins)
  int tileBytes;  // the whole tile, padded to 64
  int offset;     // subtracted from u before the scale (Q6_K, Q3_K), else 0
};

constexpr int kKTileRows = 16;
constexpr int kKTileCols = 256;

constexpr KTileLayout kTileLayout(KKind k) {
  switch (k) {
  case KKind::Q4_K:
    return {256, 0, -1, -1, 2048, 2176, 2304, 2368, 0};
  case KKind::Q5_K:
    return {320, 0, -1, 256, 2560, 2688, 2816, 2880, 0};
  case KKind::Q6_K:
    return {384, 0, 256, -1, 3072, -1, 3328, 3392, 32};
  case KKind::Q3_K:
    return {192, -1, 0, 128, 1536, -1, 1792, 1856, 4};
  }
  return {0, -1, -1, -1, 0, -1, 0, 0, 0};
}

// Bytes of a rows x cols matrix in tiles (rows % 16 == 0, cols % 256 == 0).
constexpr unsigned long long kTileMatrixBytes(KKind k, long long rows,
                                              long long cols) {
  return static_cast<unsigned long long>(rows / kKTileRows) *
         static_cast<unsigned long long>(cols / kKTileCols) *
         static_cast<unsigned long long>(kTileLayout(k).tileBytes);
}

} // namespace stc::rt
