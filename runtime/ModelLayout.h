// ModelLayout: the byte layout rules of the model file, shared by the runtime's
// loader and the compiler's writer (with the FlatBuffers schema, the only code
// they share).
#pragma once

#include "KQuantLayout.h"
#include "model_generated.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace stc::rt {

constexpr char kModelMagic[8] = {'S', 'T', 'C', 'M', 'O', 'D', 'L', '1'};
constexpr uint32_t kModelFormatVersion = 1;
constexpr uint64_t kDataAlignment = 4096; // data_start and each expert matrix
constexpr uint64_t kTensorAlignment = 64; // every other tensor

// The KV cache's element types by name ("f32", "f16", "q8_0": --kv-type, the
// IR's kv_type) and the bytes one position of one KV head takes in K (or in
// V): head_dim values and, for q8_0, an fp16 scale per 32 of them.
inline const char *kvTypeName(model::KvType t) {
  return t == model::KvType::F16    ? "f16"
         : t == model::KvType::Q8_0 ? "q8_0"
                                    : "f32";
}
inline bool parseKvType(const std::string &name, model::KvType &out) {
  for (model::KvType t :
       {model::KvType::F32, model::KvType::F16, model::KvType::Q8_0})
    if (name == kvTypeName(t)) {
      out = t;
      return true;
    }
  return false;
}
inline int kvElementBytes(model::KvType t) {
  return t == model::KvType::F32 ? 4 : t == model::KvType::F16 ? 2 : 1;
}
inline uint64_t kvRowBytes(model::KvType t, int headDim) {
  return static_cast<uint64_t>(headDim) * kvElementBytes(t) +
         (t == model::KvType::Q8_0 ? headDim / 32 * 2 : 0);
}

// Tiles of 16 blocks (512 values) a Blocks16 row of `cols` values occupies.
inline uint64_t blocks16Tiles(int64_t cols) {
  return static_cast<uint64_t>((cols / 32 + 15) / 16);
}

// Whether `t` is a K-quant (rows16k tiles) and which.
inline bool isKQuant(model::DType t) {
  return t == model::DType::Q4_K || t == model::DType::Q5_K ||
         t == model::DType::Q6_K || t == model::DType::Q3_K;
}
inline KKind kKindOf(model::DType t) {
  return t == model::DType::Q5_K   ? KKind::Q5_K
         : t == model::DType::Q6_K ? KKind::Q6_K
         : t == model::DType::Q3_K ? KKind::Q3_K
                                   : KKind::Q4_K;
}

// Bytes a tensor of `dtype` with `shape` occupies in `layout` (all experts), or
// 0 when the shape does not fit the layout. Rank-3 tensors are stacked experts:
// each expert's matrix is rounded up to whole pages and `expertStride` receives
// that size.
inline uint64_t tensorBytes(model::DType dtype, model::Layout layout,
                            const int64_t *shape, size_t rank,
                            uint64_t *expertStride) {
  if (rank == 0 || rank > 3)
    return 0;
  uint64_t count = 1;
  for (size_t i = 0; i < rank; ++i) {
    if (shape[i] <= 0 || shape[i] > (int64_t(1) << 32))
      return 0;
    count *= static_cast<uint64_t>(shape[i]);
  }
  uint64_t experts = rank == 3 ? static_cast<uint64_t>(shape[0]) : 1;
  uint64_t perExpert = count / experts, bytes = 0;
  if (layout == model::Layout::Blocks16 && dtype != model::DType::Q8_0 &&
      dtype != model::DType::Q4_0)
    return 0; // tiles of quantized blocks only
  switch (dtype) {
  case model::DType::F32:
    bytes = perExpert * 4;
    break;
  case model::DType::F16:
  case model::DType::BF16:
    bytes = perExpert * 2;
    break;
  case model::DType::Q8_0:
  case model::DType::Q4_0: {
    int64_t cols = shape[rank - 1], rows = rank >= 2 ? shape[rank - 2] : 1;
    const uint64_t blockBytes = dtype == model::DType::Q8_0 ? 34 : 18;
    if (cols % 32 != 0)
      return 0;
    // Transposed: values [F][D] in chunks of 64 along D, scales per 32 neurons.
    if (layout == model::Layout::Transposed && (rank < 2 || rows % 64 != 0))
      return 0;
    if (layout == model::Layout::Rows16 && (rank < 2 || rows % 16 != 0))
      return 0;
    // NeuronRows: [F][D] with the blocks along D (the logical rows).
    if (layout == model::Layout::NeuronRows && (rank < 2 || rows % 32 != 0))
      return 0;
    bytes = perExpert / 32 * blockBytes;
    if (layout == model::Layout::Blocks16)
      bytes =
          static_cast<uint64_t>(rows) * blocks16Tiles(cols) * 16 * blockBytes;
    break;
  }
  case model::DType::Q4_K:
  case model::DType::Q5_K:
  case model::DType::Q6_K:
  case model::DType::Q3_K: {
    // Rows16 only: 16-row x 256-column tiles.
    int64_t cols = shape[rank - 1], rows = rank >= 2 ? shape[rank - 2] : 1;
    if (layout != model::Layout::Rows16 || rank < 2 || rows % kKTileRows != 0 ||
        cols % kKTileCols != 0)
      return 0;
    bytes = kTileMatrixBytes(kKindOf(dtype), rows, cols);
    break;
  }
  default:
    return 0;
  }
  if (rank == 3) {
    // Each expert's matrix starts on a page so it can be read or dropped alone.
    bytes = (bytes + kDataAlignment - 1) / kDataAlignment * kDataAlignment;
  }
  if (expertStride)
    *expertStride = rank == 3 ? bytes : 0;
  return bytes * experts;
}

} // namespace stc::rt
