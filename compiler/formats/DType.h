// DType: the weight element types stc reads and writes, their byte sizes, and
// the conversions to f32 (f16, bf16, and GGUF's Q8_0/Q4_0 blocks,
// bit-compatible with ggml).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace stc {

enum class DType { F32, F16, BF16, Q8_0, Q4_0 };

constexpr int kQuantBlock = 32;            // elements per Q8_0/Q4_0 block
constexpr size_t kQ8_0BlockBytes = 2 + 32; // fp16 scale + 32 int8
constexpr size_t kQ4_0BlockBytes = 2 + 16; // fp16 scale + 32 nibbles

const char *dtypeName(DType t); // "f32", "f16", "bf16", "q8_0", "q4_0"
bool parseDTypeName(const std::string &name, DType &out);
bool isQuantized(DType t);
// Bytes needed for `count` elements (a multiple of 32 for quantized types).
// Returns false on overflow or when a quantized count is not block-aligned.
bool dtypeBytes(DType t, uint64_t count, uint64_t &bytes);

float f16ToF32(uint16_t h);
uint16_t f32ToF16(float f); // round to nearest even, as ggml/numpy do
float bf16ToF32(uint16_t h);
uint16_t f32ToBf16(float f); // round to nearest even, as torch does

// Converts `count` elements stored as `t` at `src` to f32. Quantized counts
// must be multiples of 32 and `src` must start at a block boundary.
void dequantize(DType t, const void *src, float *dst, uint64_t count);
// Converts `count` f32 values to `t`; quantized types use ggml's reference
// rounding (quantize_row_q8_0_ref / quantize_row_q4_0_ref) so GGUF files match
// llama.cpp's.
void quantize(DType t, const float *src, void *dst, uint64_t count);

} // namespace stc
