#include "ModelFile.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace stc::rt {

ModelFile::~ModelFile() {
  if (mapping_)
    ::munmap(mapping_, mappingSize_);
  if (fd_ >= 0)
    ::close(fd_);
  if (directFd_ >= 0)
    ::close(directFd_);
}

void ModelFile::populate() const {
#ifdef MADV_POPULATE_READ
  if (::madvise(const_cast<uint8_t *>(base_), size_, MADV_POPULATE_READ) == 0)
    return;
#endif
  // Older kernels: touch every page.
  volatile uint8_t sink = 0;
  const long page = ::sysconf(_SC_PAGESIZE);
  for (uint64_t i = 0; i < size_; i += static_cast<uint64_t>(page))
    sink = sink + base_[i];
  (void)sink;
}

namespace {

// Transparent huge pages on request (madvise) or always: the kernel's setting.
bool transparentHugePages() {
  FILE *f = std::fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (!f)
    return false;
  char line[128] = {};
  const bool read = std::fgets(line, sizeof(line), f) != nullptr;
  std::fclose(f);
  return read && std::strstr(line, "[never]") == nullptr;
}

} // namespace

bool ModelFile::copyToHugePages() {
  if (anonymous_)
    return true;
  if (!transparentHugePages())
    return false;
  // 2 MiB aligned, or the kernel cannot back the range with huge pages.
  const uint64_t huge = uint64_t(2) << 20;
  const uint64_t len = (size_ + huge - 1) / huge * huge + huge;
  void *raw = ::mmap(nullptr, len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED)
    return false;
  auto *copy = reinterpret_cast<uint8_t *>(
      (reinterpret_cast<uintptr_t>(raw) + huge - 1) & ~(huge - 1));
  ::madvise(copy, len - huge, MADV_HUGEPAGE);
  uint64_t at = 0;
  while (at < size_) {
    const uint64_t n = std::min<uint64_t>(size_ - at, uint64_t(64) << 20);
    const ssize_t got = ::pread(fd_, copy + at, n, static_cast<off_t>(at));
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0) { // keep the file mapping
      ::munmap(raw, len);
      return false;
    }
    at += static_cast<uint64_t>(got);
  }
  ::mprotect(raw, len, PROT_READ);
  // The verified plan and every pointer into it move with the bytes.
  const uint64_t planAt = reinterpret_cast<const uint8_t *>(model_) - base_;
  ::munmap(mapping_, mappingSize_);
  mapping_ = raw;
  mappingSize_ = len;
  base_ = copy;
  model_ = reinterpret_cast<const model::Model *>(base_ + planAt);
  anonymous_ = true;
  // The page cache keeps its copy: the kernel reclaims it under pressure, and
  // the next load of this file reads from it rather than from storage.
  return true;
}

namespace {

constexpr uint64_t kPage = 4096;

uint64_t pageDown(uint64_t v) { return v / kPage * kPage; }
uint64_t pageUp(uint64_t v) { return (v + kPage - 1) / kPage * kPage; }

} // namespace

bool ModelFile::readPagesIntoImage(uint64_t at, uint64_t n) {
  const uint64_t begin = pageDown(at), end = std::min(pageUp(at + n), size_);
  auto *dst = const_cast<uint8_t *>(base_) + begin;
  // O_DIRECT needs whole pages; the file's last page may be short.
  uint64_t pos = begin;
  while (pos < end) {
    const uint64_t want = std::min<uint64_t>(end - pos, uint64_t(64) << 20);
    const bool aligned = want % kPage == 0;
    const int fd = aligned ? directFd_ : fd_;
    const ssize_t got =
        ::pread(fd, dst + (pos - begin), want, static_cast<off_t>(pos));
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return false;
    pos += static_cast<uint64_t>(got);
  }
  return true;
}

bool ModelFile::loadResident(const std::vector<bool> &resident,
                             std::string &error) {
  if (!readFromStorage(error))
    return false;
  const uint64_t len = pageUp(size_);
  void *raw = ::mmap(nullptr, len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED)
    return fail(error, "cannot reserve the memory image of the model");
  // The image's pages are charged as the reads fill them: no huge pages,
  // which would charge 2 MiB around a tensor that is not resident.
  ::madvise(raw, len, MADV_NOHUGEPAGE);
  const uint64_t planAt = reinterpret_cast<const uint8_t *>(model_) - base_;
  const uint8_t *fileBase = base_;
  base_ = static_cast<const uint8_t *>(raw);
  // The plan (header, FlatBuffer, tokenizer), then each resident tensor.
  struct Range {
    uint64_t at, end;
  };
  std::vector<Range> ranges = {{0, dataStart_}};
  const auto *tensors = model_->tensors();
  for (uint32_t i = 0; i < tensors->size() && i < resident.size(); ++i)
    if (resident[i]) {
      const model::Tensor *t = tensors->Get(i);
      const uint64_t at = dataStart_ + t->offset();
      ranges.push_back({pageDown(at), pageUp(at + t->size())});
    }
  std::sort(ranges.begin(), ranges.end(),
            [](const Range &a, const Range &b) { return a.at < b.at; });
  residentBytes_ = 0;
  uint64_t covered = 0; // pages below this are read
  for (const Range &r : ranges) {
    const uint64_t at = std::max(r.at, covered);
    if (at >= r.end)
      continue;
    if (!readPagesIntoImage(at, r.end - at)) {
      ::munmap(raw, len);
      base_ = fileBase;
      return fail(error, std::string("cannot read the resident weights: ") +
                             std::strerror(errno));
    }
    residentBytes_ += r.end - at;
    covered = r.end;
  }
  // The verified plan and every pointer into it move with the bytes; the
  // file's mapping goes, and with it the page cache its reads left.
  ::munmap(mapping_, mappingSize_);
  ::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED);
  mapping_ = raw;
  mappingSize_ = len;
  model_ = reinterpret_cast<const model::Model *>(base_ + planAt);
  anonymous_ = true;
  partial_ = true;
  return true;
}

bool ModelFile::readIntoImage(const model::Tensor *t, uint64_t offset,
                              uint64_t n) {
  return partial_ && offset <= t->size() && n <= t->size() - offset &&
         readPagesIntoImage(dataStart_ + t->offset() + offset, n);
}

void ModelFile::releaseFromImage(const model::Tensor *t, uint64_t offset,
                                 uint64_t n) {
  if (!partial_)
    return;
  // Only pages wholly inside the tensor: one it shares with a neighbour may
  // hold resident bytes.
  const uint64_t start = dataStart_ + t->offset();
  const uint64_t begin = std::max(pageDown(start + offset), pageUp(start));
  const uint64_t end =
      std::min(pageUp(start + offset + n), pageDown(start + t->size()));
  if (begin < end)
    ::madvise(const_cast<uint8_t *>(base_) + begin, end - begin, MADV_DONTNEED);
}

bool ModelFile::readTensor(const model::Tensor *t, uint64_t offset, void *dst,
                           uint64_t n) const {
  if (offset > t->size() || n > t->size() - offset)
    return false;
  auto *p = static_cast<uint8_t *>(dst);
  uint64_t at = dataStart_ + t->offset() + offset;
  const bool aligned =
      (at | n | reinterpret_cast<uintptr_t>(p)) % kDataAlignment == 0;
  const int fd = directFd_ >= 0 && aligned ? directFd_ : fd_;
  while (n > 0) {
    ssize_t got = ::pread(fd, p, n, static_cast<off_t>(at));
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return false;
    p += got;
    at += static_cast<uint64_t>(got);
    n -= static_cast<uint64_t>(got);
  }
  return true;
}

bool ModelFile::readFromStorage(std::string &error) {
  if (directFd_ >= 0)
    return true;
  directFd_ = ::open(path_.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (directFd_ < 0)
    return fail(error, std::string("cannot read from storage (O_DIRECT): ") +
                           std::strerror(errno));
  return true;
}

bool ModelFile::fail(std::string &error, const std::string &what) {
  error = path_ + ": " + what;
  return false;
}

bool ModelFile::open(const std::string &path, std::string &error,
                     bool populate) {
  path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail(error, std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail(error, "not a regular file");
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ < 16) {
    ::close(fd);
    return fail(error, "truncated: " + std::to_string(size_) +
                           " bytes is shorter than the 16-byte header");
  }
  void *p = ::mmap(nullptr, size_, PROT_READ,
                   MAP_PRIVATE | (populate ? MAP_POPULATE : 0), fd, 0);
  fd_ = fd; // kept for pread (the expert cache)
  if (p == MAP_FAILED)
    return fail(error, std::string("cannot map: ") + std::strerror(errno));
  base_ = static_cast<const uint8_t *>(p);
  mapping_ = p;
  mappingSize_ = size_;

  if (std::memcmp(base_, kModelMagic, 8) != 0)
    return fail(error, "not an stc model file (bad magic)");
  uint64_t fbSize;
  std::memcpy(&fbSize, base_ + 8, 8);
  if (fbSize > size_ - 16)
    return fail(error, "truncated: the plan needs " + std::to_string(fbSize) +
                           " bytes but the file has " +
                           std::to_string(size_ - 16) + " after the header");
  flatbuffers::Verifier verifier(base_ + 16, fbSize, 64, 10000000);
  if (!model::VerifyModelBuffer(verifier))
    return fail(error, "corrupted plan (FlatBuffers verification failed)");
  model_ = model::GetModel(base_ + 16);
  if (model_->format_version() != kModelFormatVersion)
    return fail(error, "format version " +
                           std::to_string(model_->format_version()) +
                           ", this runtime reads version " +
                           std::to_string(kModelFormatVersion));
  dataStart_ =
      (16 + fbSize + kDataAlignment - 1) / kDataAlignment * kDataAlignment;
  if (dataStart_ > size_)
    return fail(error, "truncated: no weight data after the plan");
  const uint64_t dataSize = size_ - dataStart_;

  const model::Config *c = model_->config();
  if (!c || !model_->tensors() || !model_->buffers() || !model_->steps())
    return fail(error, "the plan lacks its config, tensors, buffers or steps");
  if (c->hidden_size() <= 0 || c->num_heads() <= 0 || c->num_kv_heads() <= 0 ||
      c->head_dim() <= 0 || c->vocab_size() <= 0 || c->num_layers() <= 0 ||
      c->num_experts() <= 0 || c->top_k() <= 0 ||
      c->top_k() > c->num_experts() ||
      c->num_heads() % c->num_kv_heads() != 0 || c->max_positions() <= 0)
    return fail(error, "the model config is inconsistent");

  for (const model::Tensor *t : *model_->tensors()) {
    std::string name = t->name() ? t->name()->str() : "?";
    if (!t->shape())
      return fail(error, "tensor '" + name + "' has no shape");
    uint64_t stride = 0;
    uint64_t expected = tensorBytes(t->dtype(), t->layout(), t->shape()->data(),
                                    t->shape()->size(), &stride);
    if (expected == 0 || expected != t->size() || stride != t->expert_stride())
      return fail(error, "tensor '" + name + "' declares " +
                             std::to_string(t->size()) +
                             " bytes, its shape and type need " +
                             std::to_string(expected));
    if (t->offset() % 64 != 0)
      return fail(error, "tensor '" + name + "' is not 64-byte aligned");
    if (t->offset() > dataSize || t->size() > dataSize - t->offset())
      return fail(error, "truncated: tensor '" + name + "' needs bytes [" +
                             std::to_string(t->offset()) + ", " +
                             std::to_string(t->offset() + t->size()) +
                             ") of a data segment of " +
                             std::to_string(dataSize));
  }
  const int32_t nBuffers = static_cast<int32_t>(model_->buffers()->size());
  const int32_t nTensors = static_cast<int32_t>(model_->tensors()->size());
  for (const model::Buffer *b : *model_->buffers())
    if (b->width() <= 0 || b->width() > (int64_t(1) << 24))
      return fail(error, "buffer width out of range");
  auto bufferOk = [&](int32_t i) { return i >= 0 && i < nBuffers; };
  if (!bufferOk(model_->ids_buffer()) ||
      !bufferOk(model_->positions_buffer()) ||
      !bufferOk(model_->logits_buffer()))
    return fail(error, "input or output buffer index out of range");
  size_t index = 0;
  for (const model::Step *s : *model_->steps()) {
    std::string where = "step " + std::to_string(index++);
    for (auto *list : {s->inputs(), s->outputs()})
      if (list)
        for (int32_t i : *list)
          if (!bufferOk(i))
            return fail(error, where + " refers to buffer " +
                                   std::to_string(i) + " of " +
                                   std::to_string(nBuffers));
    if (s->weights())
      for (int32_t i : *s->weights())
        if (i < 0 || i >= nTensors)
          return fail(error, where + " refers to tensor " + std::to_string(i) +
                                 " of " + std::to_string(nTensors));
    if (s->layer() >= c->num_layers())
      return fail(error, where + " names layer " + std::to_string(s->layer()));
  }
  return true;
}

} // namespace stc::rt
