#include "DType.h"

#include "BlockEncode.h"
#include "KTiles.h"

#include "Half.h"

#include <cmath>
#include <cstring>

namespace stc {

namespace {

struct TypeInfo {
  DType type;
  const char *name;
  int elements;   // per block
  unsigned bytes; // per block
};

// Block sizes as ggml-common.h lays the blocks out.
constexpr TypeInfo kTypes[] = {
    {DType::F32, "f32", 1, 4},
    {DType::F16, "f16", 1, 2},
    {DType::BF16, "bf16", 1, 2},
    {DType::Q8_0, "q8_0", 32, 34},       // d, qs[32]
    {DType::Q4_0, "q4_0", 32, 18},       // d, qs[16]
    {DType::Q4_1, "q4_1", 32, 20},       // d, m, qs[16]
    {DType::Q5_0, "q5_0", 32, 22},       // d, qh[4], qs[16]
    {DType::Q5_1, "q5_1", 32, 24},       // d, m, qh[4], qs[16]
    {DType::Q2_K, "q2_k", 256, 84},      // scales[16], qs[64], d, dmin
    {DType::Q3_K, "q3_k", 256, 110},     // hmask[32], qs[64], scales[12], d
    {DType::Q4_K, "q4_k", 256, 144},     // d, dmin, scales[12], qs[128]
    {DType::Q5_K, "q5_k", 256, 176},     // d, dmin, scales[12], qh[32], qs[128]
    {DType::Q6_K, "q6_k", 256, 210},     // ql[128], qh[64], scales[16], d
    {DType::IQ4_NL, "iq4_nl", 32, 18},   // d, qs[16]
    {DType::IQ4_XS, "iq4_xs", 256, 136}, // d, scales_h, scales_l[4], qs[128]
};

const TypeInfo &info(DType t) {
  for (const TypeInfo &i : kTypes)
    if (i.type == t)
      return i;
  return kTypes[0];
}

} // namespace

const char *dtypeName(DType t) { return info(t).name; }

bool parseDTypeName(const std::string &name, DType &out) {
  for (const TypeInfo &i : kTypes)
    if (name == i.name) {
      out = i.type;
      return true;
    }
  return false;
}

bool isQuantized(DType t) { return info(t).elements > 1; }
bool hasKernels(DType t) {
  return t == DType::Q8_0 || t == DType::Q4_0 || t == DType::Q4_K ||
         t == DType::Q5_K || t == DType::Q6_K || t == DType::Q3_K;
}
int blockElements(DType t) { return info(t).elements; }
size_t blockBytes(DType t) { return info(t).bytes; }

DType exactKernelType(DType t) {
  if (!isQuantized(t) || hasKernels(t))
    return t;
  if (t == DType::Q5_0 || t == DType::IQ4_NL)
    return DType::Q8_0;
  return DType::F32;
}

bool dtypeBytes(DType t, uint64_t count, uint64_t &bytes) {
  const uint64_t per = info(t).bytes, unit = info(t).elements;
  if (count % unit != 0)
    return false;
  uint64_t units = count / unit;
  if (units != 0 && per > UINT64_MAX / units)
    return false;
  bytes = units * per;
  return true;
}

float f16ToF32(uint16_t h) { return rt::halfToFloat(h); }

uint16_t f32ToF16(float f) { return rt::floatToHalf(f); }

float bf16ToF32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32ToBf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7FFFFFFF) > 0x7F800000)
    return static_cast<uint16_t>((x >> 16) | 0x40); // quiet nan
  uint32_t rounding = 0x7FFF + ((x >> 16) & 1);
  return static_cast<uint16_t>((x + rounding) >> 16);
}

using rt::loadU16;

static void storeU16(uint8_t *p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v & 0xFF);
  p[1] = static_cast<uint8_t>(v >> 8);
}

namespace {

// IQ4's non-linear levels (ggml's kvalues_iq4nl).
constexpr int8_t kIq4Levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                   1,    13,   25,  38,  53,  69,  89,  113};

// Each function below turns one block into blockElements floats with the
// arithmetic of ggml's dequantize_row_<type>, operation for operation (an
// integer times a float, then the float min), so the results are the same
// floats.

void deqQ4_1(const uint8_t *b, float *y) {
  const float d = f16ToF32(loadU16(b)), m = f16ToF32(loadU16(b + 2));
  const uint8_t *qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = (qs[j] & 0x0F) * d + m;
    y[j + 16] = (qs[j] >> 4) * d + m;
  }
}

// Q5_0 and Q5_1: the fifth bit of element j is bit j of qh.
void deqQ5(const uint8_t *b, float *y, bool withMin) {
  const float d = f16ToF32(loadU16(b));
  const float m = withMin ? f16ToF32(loadU16(b + 2)) : 0.0f;
  const uint8_t *qhp = b + (withMin ? 4 : 2), *qs = qhp + 4;
  const uint32_t qh = qhp[0] | (qhp[1] << 8) | (qhp[2] << 16) |
                      (static_cast<uint32_t>(qhp[3]) << 24);
  for (int j = 0; j < 16; ++j) {
    const int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
    const int x0 = (qs[j] & 0x0F) | h0, x1 = (qs[j] >> 4) | h1;
    if (withMin) {
      y[j] = x0 * d + m;
      y[j + 16] = x1 * d + m;
    } else {
      y[j] = (x0 - 16) * d;
      y[j + 16] = (x1 - 16) * d;
    }
  }
}

void deqQ2_K(const uint8_t *b, float *y) {
  const uint8_t *scales = b, *q = b + 16;
  const float d = f16ToF32(loadU16(b + 80)), min = f16ToF32(loadU16(b + 82));
  int is = 0;
  for (int n = 0; n < 256; n += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; ++half) {
        const uint8_t sc = scales[is++];
        const float dl = d * (sc & 0xF), ml = min * (sc >> 4);
        for (int l = 0; l < 16; ++l)
          *y++ = dl * ((q[l + 16 * half] >> shift) & 3) - ml;
      }
    }
    q += 32;
  }
}

void deqQ3_K(const uint8_t *b, float *y) {
  const uint8_t *hm = b, *q = b + 32, *packed = b + 96;
  const float dAll = f16ToF32(loadU16(b + 108));
  // 16 scales of 6 bits: low 4 bits from bytes 0-7, high 2 bits from 8-11.
  int8_t scales[16];
  for (int i = 0; i < 16; ++i) {
    const int low = i < 8 ? packed[i] & 0xF : packed[i - 8] >> 4;
    const int high = (packed[8 + i % 4] >> (2 * (i / 4))) & 3;
    scales[i] = static_cast<int8_t>((low | (high << 4)) - 32);
  }
  int is = 0;
  uint8_t m = 1;
  for (int n = 0; n < 256; n += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; ++half) {
        const float dl = dAll * scales[is++];
        for (int l = 16 * half; l < 16 * half + 16; ++l)
          *y++ = dl * (((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
      }
      m <<= 1;
    }
    q += 32;
  }
}

// Q4_K and Q5_K: eight sub-blocks of 32 with a 6-bit scale and min each.
void deqQ45_K(const uint8_t *b, float *y, bool fifthBit) {
  const float d = f16ToF32(loadU16(b)), min = f16ToF32(loadU16(b + 2));
  const uint8_t *scales = b + 4, *qh = b + 16;
  const uint8_t *q = fifthBit ? b + 48 : b + 16;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0, is = 0; j < 256; j += 64, is += 2) {
    uint8_t sc, m;
    scaleMinK4(is, scales, sc, m);
    const float d1 = d * sc, m1 = min * m;
    scaleMinK4(is + 1, scales, sc, m);
    const float d2 = d * sc, m2 = min * m;
    for (int l = 0; l < 32; ++l)
      *y++ = d1 * ((q[l] & 0xF) + (fifthBit && (qh[l] & u1) ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l)
      *y++ = d2 * ((q[l] >> 4) + (fifthBit && (qh[l] & u2) ? 16 : 0)) - m2;
    q += 32;
    u1 <<= 2;
    u2 <<= 2;
  }
}

void deqQ6_K(const uint8_t *b, float *y) {
  const uint8_t *ql = b, *qh = b + 128;
  const auto *sc = reinterpret_cast<const int8_t *>(b + 192);
  const float d = f16ToF32(loadU16(b + 208));
  for (int n = 0; n < 256; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * sc[is] * q1;
      y[l + 32] = d * sc[is + 2] * q2;
      y[l + 64] = d * sc[is + 4] * q3;
      y[l + 96] = d * sc[is + 6] * q4;
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

void deqIq4Nl(const uint8_t *b, float *y) {
  const float d = f16ToF32(loadU16(b));
  for (int j = 0; j < 16; ++j) {
    y[j] = d * kIq4Levels[b[2 + j] & 0xF];
    y[j + 16] = d * kIq4Levels[b[2 + j] >> 4];
  }
}

void deqIq4Xs(const uint8_t *b, float *y) {
  const float d = f16ToF32(loadU16(b));
  const uint16_t scalesH = loadU16(b + 2);
  const uint8_t *scalesL = b + 4, *qs = b + 8;
  for (int ib = 0; ib < 8; ++ib) {
    const int ls = ((scalesL[ib / 2] >> (4 * (ib % 2))) & 0xF) |
                   (((scalesH >> (2 * ib)) & 3) << 4);
    const float dl = d * (ls - 32);
    for (int j = 0; j < 16; ++j) {
      y[j] = dl * kIq4Levels[qs[j] & 0xF];
      y[j + 16] = dl * kIq4Levels[qs[j] >> 4];
    }
    y += 32;
    qs += 16;
  }
}

} // namespace

void dequantize(DType t, const void *src, float *dst, uint64_t count) {
  const auto *p = static_cast<const uint8_t *>(src);
  const uint64_t blocks = count / blockElements(t);
  const size_t bb = blockBytes(t);
  const int be = blockElements(t);
  auto each = [&](auto fn) {
    for (uint64_t b = 0; b < blocks; ++b)
      fn(p + b * bb, dst + b * be);
  };
  switch (t) {
  case DType::Q4_1:
    return each(deqQ4_1);
  case DType::Q5_0:
    return each([](const uint8_t *b, float *y) { deqQ5(b, y, false); });
  case DType::Q5_1:
    return each([](const uint8_t *b, float *y) { deqQ5(b, y, true); });
  case DType::Q2_K:
    return each(deqQ2_K);
  case DType::Q3_K:
    return each(deqQ3_K);
  case DType::Q4_K:
    return each([](const uint8_t *b, float *y) { deqQ45_K(b, y, false); });
  case DType::Q5_K:
    return each([](const uint8_t *b, float *y) { deqQ45_K(b, y, true); });
  case DType::Q6_K:
    return each(deqQ6_K);
  case DType::IQ4_NL:
    return each(deqIq4Nl);
  case DType::IQ4_XS:
    return each(deqIq4Xs);
  default:
    break;
  }
  switch (t) {
  case DType::F32:
    std::memcpy(dst, p, count * 4);
    return;
  case DType::F16:
    for (uint64_t i = 0; i < count; ++i)
      dst[i] = f16ToF32(loadU16(p + 2 * i));
    return;
  case DType::BF16:
    for (uint64_t i = 0; i < count; ++i)
      dst[i] = bf16ToF32(loadU16(p + 2 * i));
    return;
  case DType::Q8_0:
    for (uint64_t b = 0; b < count / kQuantBlock; ++b) {
      const uint8_t *blk = p + b * kQ8_0BlockBytes;
      float d = f16ToF32(loadU16(blk));
      for (int j = 0; j < kQuantBlock; ++j)
        dst[b * kQuantBlock + j] = d * static_cast<int8_t>(blk[2 + j]);
    }
    return;
  case DType::Q4_0:
    // ggml layout: byte j holds element j (low nibble) and element j+16 (high).
    for (uint64_t b = 0; b < count / kQuantBlock; ++b) {
      const uint8_t *blk = p + b * kQ4_0BlockBytes;
      float d = f16ToF32(loadU16(blk));
      for (int j = 0; j < 16; ++j) {
        dst[b * kQuantBlock + j] = d * ((blk[2 + j] & 0x0F) - 8);
        dst[b * kQuantBlock + j + 16] = d * ((blk[2 + j] >> 4) - 8);
      }
    }
    return;
  default:
    return; // the other block types were handled above
  }
}

bool quantize(DType t, const float *src, void *dst, uint64_t count) {
  auto *p = static_cast<uint8_t *>(dst);
  switch (t) {
  case DType::F32:
    std::memcpy(p, src, count * 4);
    return true;
  case DType::F16:
    for (uint64_t i = 0; i < count; ++i)
      storeU16(p + 2 * i, f32ToF16(src[i]));
    return true;
  case DType::BF16:
    for (uint64_t i = 0; i < count; ++i)
      storeU16(p + 2 * i, f32ToBf16(src[i]));
    return true;
  case DType::Q8_0:
    for (uint64_t b = 0; b < count / kQuantBlock; ++b) {
      uint8_t *blk = p + b * kQ8_0BlockBytes;
      storeU16(blk, rt::quantizeQ8Block(src + b * kQuantBlock,
                                        reinterpret_cast<int8_t *>(blk + 2)));
    }
    return true;
  case DType::Q4_0:
    for (uint64_t b = 0; b < count / kQuantBlock; ++b) {
      const float *x = src + b * kQuantBlock;
      uint8_t *blk = p + b * kQ4_0BlockBytes;
      float amax = 0, max = 0; // max keeps the sign of the largest magnitude
      for (int j = 0; j < kQuantBlock; ++j) {
        if (std::fabs(x[j]) > amax) {
          amax = std::fabs(x[j]);
          max = x[j];
        }
      }
      float d = max / -8.0f;
      float id = d != 0 ? 1.0f / d : 0.0f;
      storeU16(blk, f32ToF16(d));
      for (int j = 0; j < 16; ++j) {
        int lo = static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f));
        int hi = static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 8.5f));
        lo = lo < 15 ? lo : 15;
        hi = hi < 15 ? hi : 15;
        blk[2 + j] = static_cast<uint8_t>(lo | (hi << 4));
      }
    }
    return true;
  default:
    return encodeBlocks(t, src, dst, count);
  }
}

bool convertExact(DType from, DType to, const void *src, void *dst,
                  uint64_t count) {
  if (to != DType::Q8_0 || (from != DType::Q5_0 && from != DType::IQ4_NL))
    return false;
  const auto *p = static_cast<const uint8_t *>(src);
  auto *q = static_cast<uint8_t *>(dst);
  for (uint64_t b = 0; b < count / kQuantBlock; ++b) {
    const uint8_t *in = p + b * blockBytes(from);
    uint8_t *out = q + b * kQ8_0BlockBytes;
    out[0] = in[0]; // the same fp16 scale
    out[1] = in[1];
    int8_t v[32];
    if (from == DType::Q5_0) {
      const uint8_t *qh = in + 2, *qs = in + 6;
      const uint32_t h = qh[0] | (qh[1] << 8) | (qh[2] << 16) |
                         (static_cast<uint32_t>(qh[3]) << 24);
      for (int j = 0; j < 16; ++j) {
        v[j] = static_cast<int8_t>(((qs[j] & 0xF) | (((h >> j) << 4) & 0x10)) -
                                   16);
        v[j + 16] =
            static_cast<int8_t>(((qs[j] >> 4) | ((h >> (j + 12)) & 0x10)) - 16);
      }
    } else {
      for (int j = 0; j < 16; ++j) {
        v[j] = kIq4Levels[in[2 + j] & 0xF];
        v[j + 16] = kIq4Levels[in[2 + j] >> 4];
      }
    }
    std::memcpy(out + 2, v, 32);
  }
  return true;
}

void convert(DType from, DType to, const void *src, void *dst, uint64_t count,
             std::vector<float> &scratch) {
  if (convertExact(from, to, src, dst, count))
    return;
  scratch.resize(count);
  dequantize(from, src, scratch.data(), count);
  quantize(to, scratch.data(), dst, count);
}

} // namespace stc
