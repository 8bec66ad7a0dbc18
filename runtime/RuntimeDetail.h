// Helpers shared by the runtime's step implementations (Runtime.cpp, Gemm.cpp,
// Attention.cpp, Moe.cpp, SparseMoe.cpp, Profile.cpp); not part of the API.
#pragma once

#include "Half.h"
#include "ModelFile.h"

#include <chrono>
#include <cstdint>
#include <string>

namespace stc::rt {

// A matrix the int8-dot kernels read (after quantize_q8 of its input): Q4_0,
// Q8_0 and the K-quants, all in rows16 (the K-quants in rows16k tiles).
inline bool isQuant(model::DType t) {
  return t == model::DType::Q4_0 || t == model::DType::Q8_0 || isKQuant(t);
}

// Quads of four bytes per 16-row tile lane and 32-value block: the Q4_0 block's
// 16 bytes, the Q8_0 block's 32 (not for the K-quants).
inline int quads(model::DType t) { return t == model::DType::Q4_0 ? 4 : 8; }

inline double seconds() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// "<what>: <the last Halide error message of this thread>".
std::string kernelError(const std::string &what);

} // namespace stc::rt
