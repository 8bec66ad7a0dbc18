// Reservation: anonymous memory reserved (MAP_NORESERVE) whose pages are
// charged only as they are first written, so that what a memory budget counts
// is what is used (activation buffers sized for the largest batch, a KV cache
// sized for the whole context). Never zero-filled by hand: fresh pages read as
// zero.
#pragma once

#include <cstdint>
#include <sys/mman.h>

namespace stc::rt {

class Reservation {
public:
  Reservation() = default;
  ~Reservation() { release(); }
  Reservation(const Reservation &) = delete;
  Reservation &operator=(const Reservation &) = delete;

  // False when the address space cannot be had.
  bool reserve(uint64_t bytes) {
    release();
    void *p = ::mmap(nullptr, bytes ? bytes : 1, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
      return false;
    data_ = static_cast<uint8_t *>(p);
    size_ = bytes ? bytes : 1;
    return true;
  }
  uint8_t *data() const { return data_; }
  uint64_t size() const { return data_ ? size_ : 0; }

private:
  void release() {
    if (data_)
      ::munmap(data_, size_);
    data_ = nullptr;
  }
  uint8_t *data_ = nullptr;
  uint64_t size_ = 0;
};

} // namespace stc::rt
