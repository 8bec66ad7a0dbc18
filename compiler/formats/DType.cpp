#include "DType.h"

#include "Half.h"

#include <cmath>
#include <cstring>

namespace stc {

const char *dtypeName(DType t) {
  switch (t) {
  case DType::F32:
    return "f32";
  case DType::F16:
    return "f16";
  case DType::BF16:
    return "bf16";
  case DType::Q8_0:
    return "q8_0";
  case DType::Q4_0:
    return "q4_0";
  }
  return "?";
}

bool parseDTypeName(const std::string &name, DType &out) {
  for (DType t :
       {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    if (name == dtypeName(t)) {
      out = t;
      return true;
    }
  }
  return false;
}

bool isQuantized(DType t) { return t == DType::Q8_0 || t == DType::Q4_0; }

bool dtypeBytes(DType t, uint64_t count, uint64_t &bytes) {
  uint64_t per = 0, unit = 1;
  switch (t) {
  case DType::F32:
    per = 4;
    break;
  case DType::F16:
  case DType::BF16:
    per = 2;
    break;
  case DType::Q8_0:
    per = kQ8_0BlockBytes;
    unit = kQuantBlock;
    break;
  case DType::Q4_0:
    per = kQ4_0BlockBytes;
    unit = kQuantBlock;
    break;
  }
  if (count % unit != 0)
    return false;
  uint64_t units = count / unit;
  if (units != 0 && per > UINT64_MAX / units)
    return false;
  bytes = units * per;
  return true;
}

float f16ToF32(uint16_t h) { return rt::halfToFloat(h); }

uint16_t f32ToF16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t absx = x & 0x7FFFFFFF;
  if (absx >= 0x7F800000) // inf or nan
    return static_cast<uint16_t>(sign | 0x7C00 |
                                 (absx > 0x7F800000 ? 0x200 : 0));
  if (absx >= 0x477FF000) // rounds to >= 65520: overflow to inf
    return static_cast<uint16_t>(sign | 0x7C00);
  if (absx < 0x38800000) { // below the smallest normal half: subnormal or zero
    // Scale into the subnormal range and let the FPU round to nearest even.
    float a;
    std::memcpy(&a, &absx, 4);
    float scaled = a * 16777216.0f; // 2^24: one half-subnormal ulp becomes 1.0
    uint32_t m = static_cast<uint32_t>(std::nearbyint(scaled));
    return static_cast<uint16_t>(sign | m);
  }
  uint32_t exp = (absx >> 23) - 127 + 15;
  uint32_t mant = absx & 0x7FFFFF;
  uint32_t h = (exp << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1FFF;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
    ++h; // may carry into the exponent, which is the correct rounding
  return static_cast<uint16_t>(sign | h);
}

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

static uint16_t loadU16(const uint8_t *p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

static void storeU16(uint8_t *p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v & 0xFF);
  p[1] = static_cast<uint8_t>(v >> 8);
}

void dequantize(DType t, const void *src, float *dst, uint64_t count) {
  const auto *p = static_cast<const uint8_t *>(src);
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
  }
}

void quantize(DType t, const float *src, void *dst, uint64_t count) {
  auto *p = static_cast<uint8_t *>(dst);
  switch (t) {
  case DType::F32:
    std::memcpy(p, src, count * 4);
    return;
  case DType::F16:
    for (uint64_t i = 0; i < count; ++i)
      storeU16(p + 2 * i, f32ToF16(src[i]));
    return;
  case DType::BF16:
    for (uint64_t i = 0; i < count; ++i)
      storeU16(p + 2 * i, f32ToBf16(src[i]));
    return;
  case DType::Q8_0:
    for (uint64_t b = 0; b < count / kQuantBlock; ++b) {
      const float *x = src + b * kQuantBlock;
      uint8_t *blk = p + b * kQ8_0BlockBytes;
      float amax = 0;
      for (int j = 0; j < kQuantBlock; ++j)
        amax = std::fmax(amax, std::fabs(x[j]));
      float d = amax / 127.0f;
      float id = d != 0 ? 1.0f / d : 0.0f;
      storeU16(blk, f32ToF16(d));
      for (int j = 0; j < kQuantBlock; ++j)
        blk[2 + j] =
            static_cast<uint8_t>(static_cast<int8_t>(std::lround(x[j] * id)));
    }
    return;
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
    return;
  }
}

} // namespace stc
