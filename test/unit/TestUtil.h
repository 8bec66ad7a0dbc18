// Helpers shared by the unit tests: scratch folders, synthetic checkpoints,
// byte edits.
#pragma once

#include "formats/DType.h"

#include <functional>
#include <string>

namespace stc::test {

// A fresh, empty folder for one test (under the gtest temp dir).
std::string scratchDir(const std::string &name);

// Writes a synthetic checkpoint and returns its path (a folder for hf, a file
// for gguf).
std::string synthCheckpoint(const std::string &dir, const std::string &preset,
                            const std::string &format, DType dtype,
                            unsigned seed = 7, int shards = 1,
                            bool omitLayoutKeys = false);

std::string readFile(const std::string &path);
void writeFile(const std::string &path, const std::string &data);
// Copies an HF checkpoint folder so a test can damage its copy.
std::string copyDir(const std::string &from, const std::string &to);

// Rewrites a safetensors file's JSON header with `edit`, keeping the data
// bytes.
void editSafetensorsHeader(const std::string &path,
                           const std::function<void(std::string &)> &edit);
// Replaces the first occurrence of `from` in `s` (the test fails if absent).
void replaceOnce(std::string &s, const std::string &from,
                 const std::string &to);

} // namespace stc::test
