#include "FileIO.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace stc {

static std::string errnoText() { return std::strerror(errno); }

InputFile::~InputFile() {
  if (fd_ >= 0)
    ::close(fd_);
}

InputFile::InputFile(InputFile &&other) noexcept
    : path_(std::move(other.path_)), fd_(other.fd_), size_(other.size_) {
  other.fd_ = -1;
}

InputFile &InputFile::operator=(InputFile &&other) noexcept {
  if (this != &other) {
    if (fd_ >= 0)
      ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = other.fd_;
    size_ = other.size_;
    other.fd_ = -1;
  }
  return *this;
}

Status InputFile::open(const std::string &path) {
  path_ = path;
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0)
    return Status::error(path + ": cannot open: " + errnoText());
  struct stat st;
  if (::fstat(fd_, &st) != 0)
    return Status::error(path + ": cannot stat: " + errnoText());
  if (!S_ISREG(st.st_mode))
    return Status::error(path + ": not a regular file");
  size_ = static_cast<uint64_t>(st.st_size);
  return Status::success();
}

Status InputFile::read(uint64_t offset, void *dst, uint64_t n,
                       const char *what) const {
  if (offset > size_ || n > size_ - offset)
    return Status::error(path_ + ": truncated: " + what + " needs bytes [" +
                         std::to_string(offset) + ", " +
                         std::to_string(offset + n) + ") but the file has " +
                         std::to_string(size_) + " bytes");
  auto *p = static_cast<char *>(dst);
  while (n > 0) {
    ssize_t got = ::pread(fd_, p, n, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR)
        continue;
      return Status::error(path_ + ": read error in " + what + ": " +
                           errnoText());
    }
    if (got == 0)
      return Status::error(path_ + ": file shrank while reading " + what);
    p += got;
    offset += static_cast<uint64_t>(got);
    n -= static_cast<uint64_t>(got);
  }
  return Status::success();
}

AtomicOutputFile::~AtomicOutputFile() { discard(); }

Status AtomicOutputFile::open(const std::string &path) {
  path_ = path;
  tmpPath_ = path + ".tmp." + std::to_string(::getpid());
  fd_ =
      ::open(tmpPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0)
    return Status::error(tmpPath_ + ": cannot create: " + errnoText());
  offset_ = 0;
  return Status::success();
}

Status AtomicOutputFile::flush() {
  const char *p = buffer_.data();
  size_t n = buffer_.size();
  while (n > 0) {
    ssize_t put = ::write(fd_, p, n);
    if (put < 0) {
      if (errno == EINTR)
        continue;
      return Status::error(path_ + ": write failed: " + errnoText());
    }
    p += put;
    n -= static_cast<size_t>(put);
  }
  buffer_.clear();
  return Status::success();
}

Status AtomicOutputFile::write(const void *data, uint64_t n) {
  if (fd_ < 0)
    return Status::error(path_ + ": write to a file that is not open");
  buffer_.append(static_cast<const char *>(data), n);
  offset_ += n;
  if (buffer_.size() >= (4u << 20))
    return flush();
  return Status::success();
}

Status AtomicOutputFile::writeZeros(uint64_t n) {
  static const char zeros[4096] = {};
  while (n > 0) {
    uint64_t k = n < sizeof(zeros) ? n : sizeof(zeros);
    STC_TRY(write(zeros, k));
    n -= k;
  }
  return Status::success();
}

Status AtomicOutputFile::commit() {
  if (fd_ < 0)
    return Status::error(path_ + ": commit of a file that is not open");
  STC_TRY(flush());
  if (::fsync(fd_) != 0 && errno != EINVAL)
    return Status::error(path_ + ": fsync failed: " + errnoText());
  if (::close(fd_) != 0) {
    fd_ = -1;
    return Status::error(path_ + ": close failed: " + errnoText());
  }
  fd_ = -1;
  if (::rename(tmpPath_.c_str(), path_.c_str()) != 0)
    return Status::error(path_ + ": rename from " + tmpPath_ +
                         " failed: " + errnoText());
  tmpPath_.clear();
  return Status::success();
}

void AtomicOutputFile::discard() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!tmpPath_.empty()) {
    ::unlink(tmpPath_.c_str());
    tmpPath_.clear();
  }
}

std::string joinPath(const std::string &dir, const std::string &name) {
  if (dir.empty())
    return name;
  if (dir.back() == '/')
    return dir + name;
  return dir + "/" + name;
}

Status readSmallFile(const std::string &path, uint64_t maxBytes,
                     std::string &out) {
  InputFile f;
  STC_TRY(f.open(path));
  if (f.size() > maxBytes)
    return Status::error(path + ": " + std::to_string(f.size()) +
                         " bytes, more than the " + std::to_string(maxBytes) +
                         " accepted for this kind of file");
  out.resize(f.size());
  return f.read(0, out.data(), f.size(), "the whole file");
}

bool isDirectory(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool fileExists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

Status makeDirectories(const std::string &path) {
  std::string cur;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      if (!cur.empty() && !isDirectory(cur) &&
          ::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST)
        return Status::error(cur + ": cannot create directory: " + errnoText());
    }
    if (i < path.size())
      cur.push_back(path[i]);
  }
  return Status::success();
}

} // namespace stc
