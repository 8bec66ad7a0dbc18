// Helpers shared by the unit tests: scratch folders, synthetic checkpoints,
// byte edits.
#pragma once

#include "formats/DType.h"

#include <cstddef>
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
// A file of test/fixtures/ggml (ggml's own blocks and floats, made by
// make_fixtures.py); empty when missing.
std::string ggmlFixture(const std::string &name);
// How many of n floats differ in their bits (not values: -0.0 and NaN patterns
// count) from the little-endian float32 bytes `want`, and the first that does
// (n if none).
size_t bitMismatches(const float *got, const std::string &want, size_t n,
                     size_t &first);
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
