// DType: the weight element types stc reads and writes, their byte sizes, and
// the conversions to f32 (f16, bf16, and ggml's block types, bit-compatible
// with ggml's own dequantization).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace stc {

// Q8_0, Q4_0 and the K-quants Q4_K, Q5_K, Q6_K, Q3_K are the block types stc's
// kernels read; the others (ggml's legacy types, Q2_K and IQ4, as GGUF files
// store them) are read and converted.
enum class DType {
  F32,
  F16,
  BF16,
  Q8_0,
  Q4_0,
  Q4_1,
  Q5_0,
  Q5_1,
  Q2_K,
  Q3_K,
  Q4_K,
  Q5_K,
  Q6_K,
  IQ4_NL,
  IQ4_XS
};

constexpr int kQuantBlock = 32;            // elements per Q8_0/Q4_0 block
constexpr int kSuperBlock = 256;           // elements per K / IQ4_XS block
constexpr size_t kQ8_0BlockBytes = 2 + 32; // fp16 scale + 32 int8
constexpr size_t kQ4_0BlockBytes = 2 + 16; // fp16 scale + 32 nibbles

// "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", ..., "q6_k", "iq4_nl", "iq4_xs"
const char *dtypeName(DType t);
bool parseDTypeName(const std::string &name, DType &out);
// Any block type (elements stored in blocks of blockElements).
bool isQuantized(DType t);
// A block type stc's kernels read (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, Q3_K).
bool hasKernels(DType t);
// Elements per block (1 for f32/f16/bf16) and bytes per block.
int blockElements(DType t);
size_t blockBytes(DType t);
// The type a weight stored as `t` becomes when it is compiled without an
// explicit rule: itself when kernels read it; else the exact image in a type
// they read (Q5_0 and IQ4_NL: Q8_0 with the same scale, their values fit
// int8); else f32 (Q4_1, Q5_1, Q2_K, IQ4_XS: no exact image, no kernel yet).
DType exactKernelType(DType t);
// Bytes needed for `count` elements (a multiple of 32 for quantized types).
// Returns false on overflow or when a quantized count is not block-aligned.
bool dtypeBytes(DType t, uint64_t count, uint64_t &bytes);

float f16ToF32(uint16_t h);
uint16_t f32ToF16(float f); // round to nearest even, as ggml/numpy do
float bf16ToF32(uint16_t h);
uint16_t f32ToBf16(float f); // round to nearest even, as torch does

// Converts `count` elements stored as `t` at `src` to f32, with the operations
// of ggml's dequantize_row_* in the same order (so the same floats). Block
// counts must be multiples of blockElements and `src` must start at a block.
void dequantize(DType t, const void *src, float *dst, uint64_t count);
// Converts `count` elements from `from` to `to` when one type's values are
// exactly the other's: Q5_0 and IQ4_NL to Q8_0 (same scale, int8 values).
// False for any other pair.
bool convertExact(DType from, DType to, const void *src, void *dst,
                  uint64_t count);
// Converts `count` elements from `from` to `to`: exactly where convertExact
// can, else through f32 (`scratch` holds the f32 values).
void convert(DType from, DType to, const void *src, void *dst, uint64_t count,
             std::vector<float> &scratch);
// Converts `count` f32 values to `t`. Q8_0 and Q4_0 use ggml's reference
// rounding (quantize_row_q8_0_ref / quantize_row_q4_0_ref) so GGUF files match
// llama.cpp's; the other block types get valid blocks by a plain rule
// (BlockEncode.h). Counts are whole blocks.
bool quantize(DType t, const float *src, void *dst, uint64_t count);

} // namespace stc
