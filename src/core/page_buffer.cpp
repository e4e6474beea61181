#include "alspec/core/page_buffer.h"

#include <sys/mman.h>

#include <string>
#include <utility>

#include "alspec/core/error.h"

namespace alspec {

PageBuffer::PageBuffer(size_t bytes, bool reserve) {
  if (bytes == 0) throw_invalid_argument("PageBuffer: size must be positive");
  const int flags = MAP_PRIVATE | MAP_ANONYMOUS | (reserve ? 0 : MAP_NORESERVE);
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED) {
    throw Error(ErrorKind::kRuntime, "cannot map " + std::to_string(bytes >> 20) + " MiB of memory");
  }
  data_ = static_cast<uint8_t*>(p);
  size_ = bytes;
#ifdef MADV_HUGEPAGE
  // Advice only: kernels without THP, or with it disabled, refuse and the buffer still works.
  huge_ = ::madvise(p, bytes, MADV_HUGEPAGE) == 0;
#endif
}

PageBuffer::~PageBuffer() { release(); }

PageBuffer::PageBuffer(PageBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)),
      huge_(std::exchange(other.huge_, false)) {}

PageBuffer& PageBuffer::operator=(PageBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    huge_ = std::exchange(other.huge_, false);
  }
  return *this;
}

void PageBuffer::release() {
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

}  // namespace alspec
