// Half: IEEE fp16 <-> f32 (the scale type of GGUF's blocks and the f16 KV
// cache's element), the u16 load that reads one, and ggml's Q8_0 block
// quantization (the q8_0 KV cache, the compiler's Q8_0 weights). Shared by the
// runtime and the compiler (header-only, plain C++).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace stc::rt {

// A little-endian u16 (an fp16 scale in a GGUF block or a model-file tile).
inline uint16_t loadU16(const uint8_t *p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

inline float halfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else { // subnormal: renormalize
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) |
             ((mant & 0x3FF) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even, as ggml (F16C) and numpy do; overflow gives inf.
inline uint16_t floatToHalf(float f) {
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

// The f16 KV cache's rounding: floatToHalf, with values past f16's range
// saturated to +-65504 (not inf), so the attention kernels' short conversion
// (no inf path: targets/kernelgen/attention_generator.cpp) reads back exactly
// what was stored. Equal to IEEE's rounding for every |x| < 65520.
inline uint16_t floatToHalfKv(float f) {
  const uint16_t h = floatToHalf(f);
  return (h & 0x7fff) == 0x7c00 ? static_cast<uint16_t>(h - 1) : h;
}

// One Q8_0 block of 32 values as ggml's quantize_row_q8_0 makes it: scale
// d = max|x| / 127 (stored as fp16), q = round(x / d) with the f32 d. Returns
// the fp16 bits of d.
inline uint16_t quantizeQ8Block(const float *x, int8_t *q) {
  float amax = 0;
  for (int j = 0; j < 32; ++j)
    amax = std::fmax(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  for (int j = 0; j < 32; ++j)
    q[j] = static_cast<int8_t>(std::lround(x[j] * id));
  return floatToHalf(d);
}

} // namespace stc::rt
