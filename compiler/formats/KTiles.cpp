#include "KTiles.h"

#include "Half.h"

#include <cstring>

namespace stc {

namespace {

using rt::loadU16;

// Q4_K / Q5_K: d, dmin, scales[12], (Q5_K: qh[32],) qs[128]; each 64 values
// share 32 bytes of qs, the low nibbles for the first 32, the high for the
// next, and Q5_K's fifth bits are bits 2c, 2c + 1 of qh.
void unpackQ45K(const uint8_t *b, bool fifthBit, KBlockLevels &o) {
  o.d = loadU16(b);
  o.dmin = loadU16(b + 2);
  const uint8_t *scales = b + 4, *qh = b + 16, *qs = fifthBit ? b + 48 : b + 16;
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    scaleMinK4(j, scales, sc, m);
    o.scale[j] = static_cast<int8_t>(sc);
    o.min[j] = m;
  }
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      const uint8_t q = qs[32 * c + l];
      int lo = q & 0xF, hi = q >> 4;
      if (fifthBit) {
        lo |= ((qh[l] >> (2 * c)) & 1) << 4;
        hi |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
      }
      o.u[64 * c + l] = static_cast<uint8_t>(lo);
      o.u[64 * c + 32 + l] = static_cast<uint8_t>(hi);
    }
}

// Q6_K: ql[128], qh[64], scales[16], d; each 128 values take 64 bytes of ql
// (low nibbles of values 0-63, high of 64-127) and 32 of qh (2 bits each).
void unpackQ6K(const uint8_t *b, KBlockLevels &o) {
  const uint8_t *ql = b, *qh = b + 128;
  std::memcpy(o.scale, b + 192, 16);
  o.d = loadU16(b + 208);
  for (int n = 0; n < 2; ++n, ql += 64, qh += 32)
    for (int l = 0; l < 32; ++l) {
      uint8_t *u = o.u + 128 * n;
      u[l] = static_cast<uint8_t>((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4));
      u[l + 32] =
          static_cast<uint8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
      u[l + 64] =
          static_cast<uint8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
      u[l + 96] =
          static_cast<uint8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
    }
}

// Q3_K: hmask[32], qs[64], scales[12], d; value 128n + 32s + l has its low 2
// bits at bits 2s of qs[32n + l] and its third bit (set: +4) at bit 4n + s of
// hmask[l]; the 16 scales are 6 bits, low 4 from bytes 0-7, high 2 from 8-11.
void unpackQ3K(const uint8_t *b, KBlockLevels &o) {
  const uint8_t *hm = b, *qs = b + 32, *packed = b + 96;
  o.d = loadU16(b + 108);
  for (int i = 0; i < 16; ++i) {
    const int low = i < 8 ? packed[i] & 0xF : packed[i - 8] >> 4;
    const int high = (packed[8 + i % 4] >> (2 * (i / 4))) & 3;
    o.scale[i] = static_cast<int8_t>((low | (high << 4)) - 32);
  }
  for (int n = 0; n < 2; ++n)
    for (int s = 0; s < 4; ++s)
      for (int l = 0; l < 32; ++l) {
        const int low = (qs[32 * n + l] >> (2 * s)) & 3;
        const int high = (hm[l] >> (4 * n + s)) & 1;
        o.u[128 * n + 32 * s + l] = static_cast<uint8_t>(low | (high << 2));
      }
}

} // namespace

void scaleMinK4(int j, const uint8_t *q, uint8_t &d, uint8_t &m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

bool isKTileType(DType t) {
  return t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K ||
         t == DType::Q3_K;
}

rt::KKind kKindOf(DType t) {
  switch (t) {
  case DType::Q5_K:
    return rt::KKind::Q5_K;
  case DType::Q6_K:
    return rt::KKind::Q6_K;
  case DType::Q3_K:
    return rt::KKind::Q3_K;
  default:
    return rt::KKind::Q4_K;
  }
}

void unpackKBlock(DType t, const uint8_t *block, KBlockLevels &out) {
  out = KBlockLevels();
  switch (t) {
  case DType::Q4_K:
  case DType::Q5_K:
    return unpackQ45K(block, t == DType::Q5_K, out);
  case DType::Q6_K:
    return unpackQ6K(block, out);
  case DType::Q3_K:
    return unpackQ3K(block, out);
  default:
    return;
  }
}

float kLevelValue(DType t, const KBlockLevels &o, int i) {
  const float d = rt::halfToFloat(o.d);
  if (t == DType::Q4_K || t == DType::Q5_K) {
    const float d1 = d * o.scale[i / 32],
                m1 = rt::halfToFloat(o.dmin) * o.min[i / 32];
    return d1 * o.u[i] - m1;
  }
  const int offset = rt::kTileLayout(kKindOf(t)).offset;
  const float dl = d * o.scale[i / 16];
  return dl * (o.u[i] - offset);
}

void packKTiles(DType t, const uint8_t *blocks, int64_t rows, int64_t cols,
                uint8_t *tiles) {
  const rt::KTileLayout L = rt::kTileLayout(kKindOf(t));
  const int64_t SB = cols / 256, G = rows / 16;
  const size_t bb = blockBytes(t);
  std::memset(tiles, 0, rt::kTileMatrixBytes(kKindOf(t), rows, cols));
  KBlockLevels lv;
  for (int64_t g = 0; g < G; ++g)
    for (int64_t sb = 0; sb < SB; ++sb) {
      uint8_t *tile = tiles + (g * SB + sb) * L.tileBytes;
      for (int l = 0; l < 16; ++l) {
        unpackKBlock(t, blocks + ((g * 16 + l) * SB + sb) * bb, lv);
        for (int i = 0; i < 256; ++i) {
          const int b = i / 32, k = i % 32, z = k / 16, j = (k % 16) / 4,
                    r = k % 4;
          uint8_t *blk = tile + b * L.blockBytes;
          const int lane = l * 4 + r;
          int rest = lv.u[i];
          if (L.nibbles >= 0) {
            blk[L.nibbles + j * 64 + lane] |=
                static_cast<uint8_t>((rest & 15) << (4 * z));
            rest >>= 4;
          }
          if (L.twoBits >= 0) {
            blk[L.twoBits + z * 64 + lane] |=
                static_cast<uint8_t>((rest & 3) << (2 * j));
            rest >>= 2;
          }
          if (L.oneBit >= 0)
            blk[L.oneBit + lane] |=
                static_cast<uint8_t>((rest & 1) << (j + 4 * z));
        }
        if (L.mins >= 0) {
          for (int b = 0; b < 8; ++b) {
            tile[L.scales + b * 16 + l] = static_cast<uint8_t>(lv.scale[b]);
            tile[L.mins + b * 16 + l] = lv.min[b];
          }
        } else {
          for (int s = 0; s < 16; ++s)
            tile[L.scales + s * 16 + l] = static_cast<uint8_t>(lv.scale[s]);
        }
        tile[L.supers + 2 * l] = static_cast<uint8_t>(lv.d & 0xFF);
        tile[L.supers + 2 * l + 1] = static_cast<uint8_t>(lv.d >> 8);
        if (L.mins >= 0) {
          tile[L.supers + 32 + 2 * l] = static_cast<uint8_t>(lv.dmin & 0xFF);
          tile[L.supers + 32 + 2 * l + 1] = static_cast<uint8_t>(lv.dmin >> 8);
        }
      }
    }
}

} // namespace stc
