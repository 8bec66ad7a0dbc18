// ModelFile: maps a model file and verifies it (FlatBuffers Verifier, every
// segment's bounds and size, every plan index) before any byte of it is
// trusted.
#pragma once

#include "ModelLayout.h"
#include "model_generated.h"

#include <cstdint>
#include <string>
#include <vector>

namespace stc::rt {

class ModelFile {
public:
  ModelFile() = default;
  ~ModelFile();
  ModelFile(const ModelFile &) = delete;
  ModelFile &operator=(const ModelFile &) = delete;

  // Maps and verifies `path`; on failure returns false with a one-line `error`.
  // `populate` reads the whole file into memory at once (as an engine that
  // loads its weights into RAM does) instead of faulting pages in during the
  // first tokens.
  bool open(const std::string &path, std::string &error, bool populate = false);
  // Reads the whole file into memory now (after open without populate).
  void populate() const;
  // Reads the whole file into private anonymous memory in 2 MiB transparent
  // huge pages and reads the weights from there: decode streams every weight
  // once per token, and 4 KiB page-cache pages can cost a TLB walk every
  // 4 KiB (measured on the 4b q4_0 shape, 2 threads: prefill +20-45%, decode
  // +0-9% depending on how the page cache happens to hold the file). The copy
  // is private: another process mapping the file does not share it. Returns
  // false, the file mapping kept, where the OS has no transparent huge pages
  // or the memory cannot be had.
  bool copyToHugePages();
  bool inHugePages() const { return anonymous_ && !partial_; }

  // Under a memory budget: a private anonymous image of the file holding the
  // plan and only the tensors `resident` marks (by index), read with O_DIRECT
  // so that the page cache, which a memory cgroup charges too, keeps none of
  // them; the file's mapping and page cache are dropped. The other tensors'
  // bytes stay on storage: readTensor (the expert cache) or readIntoImage
  // (an embedding row) fetch them. False with `error` where the file system
  // refuses O_DIRECT.
  bool loadResident(const std::vector<bool> &resident, std::string &error);
  // With loadResident: reads [offset, offset + n) of tensor `t` into the image
  // (whole aligned pages around it, with O_DIRECT), and gives those pages
  // back afterwards (releaseFromImage), so a row looked up costs no memory.
  bool readIntoImage(const model::Tensor *t, uint64_t offset, uint64_t n);
  void releaseFromImage(const model::Tensor *t, uint64_t offset, uint64_t n);
  // Bytes of the image loadResident filled (the plan and resident tensors,
  // page-rounded).
  uint64_t residentBytes() const { return residentBytes_; }

  const model::Model *model() const { return model_; }
  const uint8_t *data() const { return base_ + dataStart_; }
  const uint8_t *tensorData(const model::Tensor *t) const {
    return data() + t->offset();
  }
  uint64_t fileSize() const { return size_; }
  // Bytes before the weights: the header, the plan and the tokenizer.
  uint64_t planBytes() const { return dataStart_; }
  // Reads n bytes of tensor `t` from byte `offset` with pread, without touching
  // the mapping (the expert cache streams experts this way so they never enter
  // RSS).
  bool readTensor(const model::Tensor *t, uint64_t offset, void *dst,
                  uint64_t n) const;
  // From now on readTensor reads aligned ranges (4 KiB offsets, sizes and
  // destinations: every expert matrix) with O_DIRECT, from storage and past
  // the page cache, as on a device whose memory is the budget; false (with a
  // one-line error) where the file system does not support it.
  bool readFromStorage(std::string &error);
  const std::string &path() const { return path_; }

private:
  bool fail(std::string &error, const std::string &what);
  std::string path_;
  const uint8_t *base_ = nullptr;
  void *mapping_ = nullptr; // what to munmap: the file, or the anonymous copy
  uint64_t mappingSize_ = 0;
  bool anonymous_ = false;
  bool partial_ = false; // loadResident's image: only some tensors are in it
  uint64_t residentBytes_ = 0;
  // O_DIRECT pread of the aligned pages around [at, at + n) of the file into
  // the image at the same offsets.
  bool readPagesIntoImage(uint64_t at, uint64_t n);
  int fd_ = -1;
  int directFd_ = -1; // O_DIRECT, after readFromStorage
  uint64_t size_ = 0;
  uint64_t dataStart_ = 0;
  const model::Model *model_ = nullptr;
};

} // namespace stc::rt
