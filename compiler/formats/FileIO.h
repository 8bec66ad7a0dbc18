// FileIO: bounded reads from checkpoint files and all-or-nothing output files.
#pragma once

#include "Status.h"

#include <cstdint>
#include <string>

namespace stc {

// A read-only file read with pread at explicit offsets. Every read is
// bounds-checked against the size seen at open, so a truncated file is an
// error, never a short read.
class InputFile {
public:
  InputFile() = default;
  ~InputFile();
  InputFile(const InputFile &) = delete;
  InputFile &operator=(const InputFile &) = delete;
  InputFile(InputFile &&other) noexcept;
  InputFile &operator=(InputFile &&other) noexcept;

  Status open(const std::string &path);
  const std::string &path() const { return path_; }
  uint64_t size() const { return size_; }
  // Reads exactly `n` bytes at `offset`; `what` names the thing being read for
  // the error.
  Status read(uint64_t offset, void *dst, uint64_t n, const char *what) const;

private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// Writes to "<path>.tmp.<pid>" and renames onto `path` only in commit(), so an
// interrupted or failed write never leaves a half-written file under the final
// name.
class AtomicOutputFile {
public:
  AtomicOutputFile() = default;
  ~AtomicOutputFile(); // discards the temporary unless committed
  AtomicOutputFile(const AtomicOutputFile &) = delete;
  AtomicOutputFile &operator=(const AtomicOutputFile &) = delete;

  Status open(const std::string &path);
  Status write(const void *data, uint64_t n);
  Status writeZeros(uint64_t n);
  uint64_t offset() const { return offset_; }
  Status commit();
  void discard();

private:
  Status flush();
  std::string path_, tmpPath_;
  int fd_ = -1;
  uint64_t offset_ = 0;
  std::string buffer_;
};

// Joins a directory and a file name with exactly one '/'.
std::string joinPath(const std::string &dir, const std::string &name);
// Reads a whole (small) file, refusing anything larger than `maxBytes`.
Status readSmallFile(const std::string &path, uint64_t maxBytes,
                     std::string &out);
bool isDirectory(const std::string &path);
bool fileExists(const std::string &path);
Status makeDirectories(const std::string &path);

} // namespace stc
