// Helpers shared by the runtime's step implementations (Runtime.cpp, Gemm.cpp,
// Attention.cpp, Moe.cpp, SparseMoe.cpp, Profile.cpp); not part of the API.
#pragma once

#include "ModelFile.h"

#include <chrono>
#include <cstdint>
#include <string>

namespace stc::rt {

inline bool isQuant(model::DType t) {
  return t == model::DType::Q4_0 || t == model::DType::Q8_0;
}

// Quads of four bytes per 16-row tile lane and 32-value block: the Q4_0 block's
// 16 bytes, the Q8_0 block's 32.
inline int quads(model::DType t) { return t == model::DType::Q4_0 ? 4 : 8; }

inline double seconds() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline uint16_t loadU16(const uint8_t *p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

// "<what>: <the last Halide error message of this thread>".
std::string kernelError(const std::string &what);

} // namespace stc::rt
