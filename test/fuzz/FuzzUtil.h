// FuzzUtil: the readers take paths, so each input is written to a scratch file
// first (in /dev/shm when available, so the fuzzers stay fast).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <unistd.h>

namespace stc::fuzz {

inline std::string scratchPath(const char *name) {
  const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  return std::string(dir) + "/stc-fuzz-" + std::to_string(getpid()) + "-" +
         name;
}

inline void writeInput(const std::string &path, const uint8_t *data,
                       size_t size) {
  FILE *f = std::fopen(path.c_str(), "wb");
  if (!f)
    return;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
}

} // namespace stc::fuzz
