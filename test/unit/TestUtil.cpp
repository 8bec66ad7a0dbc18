#include "TestUtil.h"

#include "formats/FileIO.h"
#include "synth/Synth.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace stc::test {

namespace {

// The scratch folders this process made, removed when it exits (ctest runs
// each test in its own process). Left behind, a few hundred test runs filled
// the disk's /tmp with 14 GB of checkpoints, and the linker then failed in
// whatever test ran next.
struct ScratchDirs {
  std::vector<std::string> dirs;
  ~ScratchDirs() {
    for (const std::string &d : dirs) {
      std::error_code ec;
      std::filesystem::remove_all(d, ec);
    }
  }
};

ScratchDirs &scratchDirs() {
  static ScratchDirs dirs;
  return dirs;
}

} // namespace

std::string scratchDir(const std::string &name) {
  std::string dir = ::testing::TempDir() + "stc-unit-" + name + "-" +
                    std::to_string(::getpid());
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  EXPECT_FALSE(ec) << dir << ": " << ec.message();
  EXPECT_TRUE(makeDirectories(dir).ok());
  std::vector<std::string> &dirs = scratchDirs().dirs;
  if (std::find(dirs.begin(), dirs.end(), dir) == dirs.end())
    dirs.push_back(dir);
  return dir;
}

std::string synthCheckpoint(const std::string &dir, const std::string &preset,
                            const std::string &format, DType dtype,
                            unsigned seed, int shards, bool omitLayoutKeys) {
  SynthOptions o;
  o.preset = preset;
  o.format = format;
  o.dtype = dtype;
  o.seed = seed;
  o.shards = shards;
  o.omitLayoutKeys = omitLayoutKeys;
  o.output = joinPath(dir, preset + "-" + dtypeName(dtype) + "-s" +
                               std::to_string(shards) +
                               (omitLayoutKeys ? "-nolayout" : "") +
                               (format == "gguf" ? ".gguf" : ""));
  Status st = writeSynthCheckpoint(o);
  EXPECT_TRUE(st.ok()) << st.message();
  return o.output;
}

std::string readFile(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string ggmlFixture(const std::string &name) {
  std::string dir = __FILE__;
  dir = dir.substr(0, dir.rfind('/'));
  return readFile(dir + "/../fixtures/ggml/" + name);
}

size_t bitMismatches(const float *got, const std::string &want, size_t n,
                     size_t &first) {
  size_t bad = 0;
  first = n;
  for (size_t i = 0; i < n; ++i)
    if (std::memcmp(&got[i], want.data() + 4 * i, 4) != 0) {
      ++bad;
      first = std::min(first, i);
    }
  return bad;
}

void writeFile(const std::string &path, const std::string &data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::string copyDir(const std::string &from, const std::string &to) {
  std::string cmd = "rm -rf '" + to + "' && cp -r '" + from + "' '" + to + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  return to;
}

void editSafetensorsHeader(const std::string &path,
                           const std::function<void(std::string &)> &edit) {
  std::string bytes = readFile(path);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  std::string header = bytes.substr(8, n);
  std::string data = bytes.substr(8 + n);
  edit(header);
  std::string out(8, '\0');
  uint64_t m = header.size();
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<char>(m >> (8 * i));
  writeFile(path, out + header + data);
}

void replaceOnce(std::string &s, const std::string &from,
                 const std::string &to) {
  size_t p = s.find(from);
  ASSERT_NE(p, std::string::npos) << "'" << from << "' not found";
  s.replace(p, from.size(), to);
}

} // namespace stc::test
