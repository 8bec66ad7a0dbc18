// Encoders for ggml's block types beyond Q8_0/Q4_0 (Q4_1, Q5_0, Q5_1,
// Q2_K-Q6_K, IQ4_NL, IQ4_XS), for stc synth. They are not ggml's quantizers
// (which search for the best scales); they write valid blocks by the plainest
// rule, each the inverse of the matching decoder in DType.cpp: scales from the
// sub-block's range, values rounded to the nearest level.
#include "BlockEncode.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace stc {

namespace {

void put16(uint8_t *p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v & 0xFF);
  p[1] = static_cast<uint8_t>(v >> 8);
}

// The f16 the block stores, and its value as the decoder will see it.
float storeHalf(uint8_t *p, float v) {
  const uint16_t h = f32ToF16(v);
  put16(p, h);
  return f16ToF32(h);
}

int nearest(float v, int lo, int hi) {
  return std::clamp(static_cast<int>(std::lround(v)), lo, hi);
}

constexpr int8_t kIq4Levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                   1,    13,   25,  38,  53,  69,  89,  113};

int nearestIq4(float v) {
  int best = 0;
  for (int i = 1; i < 16; ++i)
    if (std::fabs(v - kIq4Levels[i]) < std::fabs(v - kIq4Levels[best]))
      best = i;
  return best;
}

// Q4_1 / Q5_1: x = q * d + m over the block's [min, max].
void encQ41Q51(const float *x, uint8_t *b, bool five) {
  const float mn = *std::min_element(x, x + 32),
              mx = *std::max_element(x, x + 32);
  const int top = five ? 31 : 15;
  const float d = storeHalf(b, (mx - mn) / top);
  const float m = storeHalf(b + 2, mn);
  uint8_t *qs = b + (five ? 8 : 4);
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const int q0 = d != 0 ? nearest((x[j] - m) / d, 0, top) : 0;
    const int q1 = d != 0 ? nearest((x[j + 16] - m) / d, 0, top) : 0;
    qs[j] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
    qh |= static_cast<uint32_t>(q0 >> 4) << j;
    qh |= static_cast<uint32_t>(q1 >> 4) << (j + 16);
  }
  if (five)
    std::memcpy(b + 4, &qh, 4);
}

// Q5_0: x = (q - 16) * d, d from the value of largest magnitude (-> -16).
void encQ50(const float *x, uint8_t *b) {
  float amax = 0, max = 0;
  for (int j = 0; j < 32; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  const float d = storeHalf(b, max / -16.0f);
  uint32_t qh = 0;
  uint8_t *qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    const int q0 = d != 0 ? nearest(x[j] / d + 16, 0, 31) : 16;
    const int q1 = d != 0 ? nearest(x[j + 16] / d + 16, 0, 31) : 16;
    qs[j] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
    qh |= static_cast<uint32_t>(q0 >> 4) << j;
    qh |= static_cast<uint32_t>(q1 >> 4) << (j + 16);
  }
  std::memcpy(b + 2, &qh, 4);
}

void encIq4Nl(const float *x, uint8_t *b) {
  float amax = 0, max = 0;
  for (int j = 0; j < 32; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  const float d = storeHalf(b, max / -127.0f);
  for (int j = 0; j < 16; ++j) {
    const int q0 = d != 0 ? nearestIq4(x[j] / d) : 8;
    const int q1 = d != 0 ? nearestIq4(x[j + 16] / d) : 8;
    b[2 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}

// Sub-block scale and min (both >= 0) for x = d*sc*q - dmin*m with q in
// [0, top]: the range [min(0, lo), max(0, hi)].
void scaleMin(const float *x, int n, int top, float &scale, float &min) {
  const float lo = std::min(0.0f, *std::min_element(x, x + n));
  const float hi = std::max(0.0f, *std::max_element(x, x + n));
  scale = (hi - lo) / top;
  min = -lo;
}

// Q4_K / Q5_K: eight sub-blocks of 32, 6-bit scales and mins.
void encQ45K(const float *x, uint8_t *b, bool five) {
  const int top = five ? 31 : 15;
  float scale[8], min[8];
  for (int j = 0; j < 8; ++j)
    scaleMin(x + 32 * j, 32, top, scale[j], min[j]);
  const float d = storeHalf(b, *std::max_element(scale, scale + 8) / 63);
  const float dmin = storeHalf(b + 2, *std::max_element(min, min + 8) / 63);
  uint8_t sc[8], m[8], *packed = b + 4;
  for (int j = 0; j < 8; ++j) {
    sc[j] = static_cast<uint8_t>(d != 0 ? nearest(scale[j] / d, 0, 63) : 0);
    m[j] = static_cast<uint8_t>(dmin != 0 ? nearest(min[j] / dmin, 0, 63) : 0);
  }
  std::memset(packed, 0, 12);
  for (int j = 0; j < 4; ++j) {
    packed[j] = sc[j];
    packed[j + 4] = m[j];
  }
  for (int j = 4; j < 8; ++j) {
    packed[j + 4] = static_cast<uint8_t>((sc[j] & 0xF) | ((m[j] & 0xF) << 4));
    packed[j - 4] |= static_cast<uint8_t>((sc[j] >> 4) << 6);
    packed[j] |= static_cast<uint8_t>((m[j] >> 4) << 6);
  }
  uint8_t *qh = b + 16, *qs = five ? b + 48 : b + 16;
  if (five)
    std::memset(qh, 0, 32);
  for (int j = 0; j < 8; ++j) {
    const float step = d * sc[j], off = dmin * m[j];
    for (int l = 0; l < 32; ++l) {
      const int q =
          step != 0 ? nearest((x[32 * j + l] + off) / step, 0, top) : 0;
      // Sub-blocks 2k and 2k+1 share the 32 bytes qs[32k..]: low, high nibble.
      uint8_t &byte = qs[32 * (j / 2) + l];
      byte = j % 2 ? static_cast<uint8_t>((byte & 0x0F) | ((q & 0xF) << 4))
                   : static_cast<uint8_t>(q & 0xF);
      if (five && (q >> 4))
        qh[l] |= static_cast<uint8_t>(1 << j);
    }
  }
}

// Q6_K: sixteen sub-blocks of 16, int8 scales, q in [-32, 31].
void encQ6K(const float *x, uint8_t *b) {
  float scale[16];
  for (int j = 0; j < 16; ++j) {
    float amax = 0;
    for (int l = 0; l < 16; ++l)
      amax = std::max(amax, std::fabs(x[16 * j + l]));
    scale[j] = amax / 31;
  }
  const float d =
      storeHalf(b + 208, *std::max_element(scale, scale + 16) / 127);
  auto *sc = reinterpret_cast<int8_t *>(b + 192);
  uint8_t *ql = b, *qh = b + 128;
  std::memset(ql, 0, 192);
  for (int j = 0; j < 16; ++j)
    sc[j] = static_cast<int8_t>(d != 0 ? nearest(scale[j] / d, 0, 127) : 0);
  for (int i = 0; i < 256; ++i) {
    const int j = i / 16;
    const float step = d * sc[j];
    const int q = (step != 0 ? nearest(x[i] / step, -32, 31) : 0) + 32;
    // Element i = 128 n + 32 part + l: ql[64 n + l (+32 for parts 1, 3)]
    // holds its low 4 bits (high nibble for parts 2, 3), qh[32 n + l] its
    // high 2 bits at 2 * part.
    const int n = i / 128, part = (i % 128) / 32, l = i % 32;
    uint8_t &low = ql[64 * n + l + (part % 2 ? 32 : 0)];
    low |= static_cast<uint8_t>((q & 0xF) << (part >= 2 ? 4 : 0));
    qh[32 * n + l] |= static_cast<uint8_t>((q >> 4) << (2 * part));
  }
}

// Q3_K: sixteen sub-blocks of 16, 6-bit signed scales, q in [-4, 3].
void encQ3K(const float *x, uint8_t *b) {
  float scale[16];
  for (int j = 0; j < 16; ++j) {
    float amax = 0;
    for (int l = 0; l < 16; ++l)
      amax = std::max(amax, std::fabs(x[16 * j + l]));
    scale[j] = amax / 4;
  }
  const float d = storeHalf(b + 108, *std::max_element(scale, scale + 16) / 31);
  int sc[16];
  for (int j = 0; j < 16; ++j)
    sc[j] = d != 0 ? nearest(scale[j] / d, 0, 31) : 0;
  uint8_t *hm = b, *qs = b + 32, *packed = b + 96;
  std::memset(b, 0, 108);
  for (int j = 0; j < 16; ++j) { // 6-bit sc + 32: low 4 bits, high 2 bits
    const int v = sc[j] + 32;
    packed[j % 8] |= static_cast<uint8_t>((v & 0xF) << (j < 8 ? 0 : 4));
    packed[8 + j % 4] |= static_cast<uint8_t>((v >> 4) << (2 * (j / 4)));
  }
  for (int i = 0; i < 256; ++i) {
    const float step = d * sc[i / 16];
    const int q = (step != 0 ? nearest(x[i] / step, -4, 3) : 0) + 4;
    // Element i = 128 n + 32 shiftStep + l: 2 bits at 2 * shiftStep of
    // qs[32 n + l]; its high bit in hm[l] at bit 4 n + shiftStep.
    const int n = i / 128, s = (i % 128) / 32, l = i % 32;
    qs[32 * n + l] |= static_cast<uint8_t>((q & 3) << (2 * s));
    if (q >> 2)
      hm[l] |= static_cast<uint8_t>(1 << (4 * n + s));
  }
}

// Q2_K: sixteen sub-blocks of 16, 4-bit scales and mins, q in [0, 3].
void encQ2K(const float *x, uint8_t *b) {
  float scale[16], min[16];
  for (int j = 0; j < 16; ++j)
    scaleMin(x + 16 * j, 16, 3, scale[j], min[j]);
  const float d = storeHalf(b + 80, *std::max_element(scale, scale + 16) / 15);
  const float dmin = storeHalf(b + 82, *std::max_element(min, min + 16) / 15);
  uint8_t *scales = b, *qs = b + 16;
  std::memset(qs, 0, 64);
  int sc[16], m[16];
  for (int j = 0; j < 16; ++j) {
    sc[j] = d != 0 ? nearest(scale[j] / d, 0, 15) : 0;
    m[j] = dmin != 0 ? nearest(min[j] / dmin, 0, 15) : 0;
    scales[j] = static_cast<uint8_t>(sc[j] | (m[j] << 4));
  }
  for (int i = 0; i < 256; ++i) {
    const int j = i / 16;
    const float step = d * sc[j], off = dmin * m[j];
    const int q = step != 0 ? nearest((x[i] + off) / step, 0, 3) : 0;
    const int n = i / 128, s = (i % 128) / 32, l = i % 32;
    qs[32 * n + l] |= static_cast<uint8_t>(q << (2 * s));
  }
}

// IQ4_XS: eight sub-blocks of 32, 6-bit signed scales times the IQ4 levels.
void encIq4Xs(const float *x, uint8_t *b) {
  float scale[8];
  for (int j = 0; j < 8; ++j) {
    float amax = 0;
    for (int l = 0; l < 32; ++l)
      amax = std::max(amax, std::fabs(x[32 * j + l]));
    scale[j] = amax / 127;
  }
  const float d = storeHalf(b, *std::max_element(scale, scale + 8) / 31);
  uint16_t scalesH = 0;
  uint8_t *scalesL = b + 4, *qs = b + 8;
  std::memset(scalesL, 0, 4);
  for (int ib = 0; ib < 8; ++ib) {
    const int ls = (d != 0 ? nearest(scale[ib] / d, 0, 31) : 0) + 32;
    scalesL[ib / 2] |= static_cast<uint8_t>((ls & 0xF) << (4 * (ib % 2)));
    scalesH |= static_cast<uint16_t>((ls >> 4) << (2 * ib));
    const float step = d * (ls - 32);
    for (int j = 0; j < 16; ++j) {
      const int q0 = step != 0 ? nearestIq4(x[32 * ib + j] / step) : 8;
      const int q1 = step != 0 ? nearestIq4(x[32 * ib + j + 16] / step) : 8;
      qs[16 * ib + j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
  put16(b + 2, scalesH);
}

} // namespace

bool encodeBlocks(DType t, const float *src, void *dst, uint64_t count) {
  auto *p = static_cast<uint8_t *>(dst);
  const int be = blockElements(t);
  const size_t bb = blockBytes(t);
  for (uint64_t i = 0; i < count / be; ++i) {
    const float *x = src + i * be;
    uint8_t *b = p + i * bb;
    switch (t) {
    case DType::Q4_1:
      encQ41Q51(x, b, false);
      break;
    case DType::Q5_1:
      encQ41Q51(x, b, true);
      break;
    case DType::Q5_0:
      encQ50(x, b);
      break;
    case DType::IQ4_NL:
      encIq4Nl(x, b);
      break;
    case DType::Q2_K:
      encQ2K(x, b);
      break;
    case DType::Q3_K:
      encQ3K(x, b);
      break;
    case DType::Q4_K:
      encQ45K(x, b, false);
      break;
    case DType::Q5_K:
      encQ45K(x, b, true);
      break;
    case DType::Q6_K:
      encQ6K(x, b);
      break;
    case DType::IQ4_XS:
      encIq4Xs(x, b);
      break;
    default:
      return false;
    }
  }
  return true;
}

} // namespace stc
