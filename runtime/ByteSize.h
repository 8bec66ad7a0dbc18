// ByteSize: parses sizes such as "1GiB", "512MiB", "8G" or "1073741824"
// (bytes).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>

namespace stc::rt {

// Returns false for anything that is not a positive size with an optional unit
// (K, M, G, KiB, MiB, GiB: powers of 1024; KB, MB, GB: powers of 1000).
inline bool parseByteSize(const std::string &text, uint64_t &out) {
  char *end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || !(v > 0))
    return false;
  std::string unit(end);
  double scale = 1;
  if (unit.empty() || unit == "B")
    scale = 1;
  else if (unit == "K" || unit == "KiB")
    scale = 1024.0;
  else if (unit == "M" || unit == "MiB")
    scale = 1024.0 * 1024;
  else if (unit == "G" || unit == "GiB")
    scale = 1024.0 * 1024 * 1024;
  else if (unit == "KB")
    scale = 1e3;
  else if (unit == "MB")
    scale = 1e6;
  else if (unit == "GB")
    scale = 1e9;
  else
    return false;
  out = static_cast<uint64_t>(v * scale);
  return true;
}

} // namespace stc::rt
