// Large zero-filled buffer taken straight from the kernel (anonymous mapping), with transparent
// huge pages requested. Used for the KV cache and the bandwidth probe: streaming a cache of 4 KiB
// pages costs a TLB miss (a nested page walk in a VM) every 4 KiB, which measured up to 2.5x
// slower attention on the development VM, where huge pages are only given on request
// (/sys/kernel/mm/transparent_hugepage/enabled = madvise).
#pragma once

#include <cstddef>
#include <cstdint>

namespace alspec {

class PageBuffer {
 public:
  PageBuffer() = default;
  // Maps `bytes` (> 0) of zeroed memory. With `reserve` false the pages are not reserved in
  // swap (MAP_NORESERVE): for caches sized to a maximum and touched only as far as used.
  // Throws Error(kRuntime) naming the size when the mapping fails.
  explicit PageBuffer(size_t bytes, bool reserve = true);
  ~PageBuffer();
  PageBuffer(PageBuffer&& other) noexcept;
  PageBuffer& operator=(PageBuffer&& other) noexcept;
  PageBuffer(const PageBuffer&) = delete;
  PageBuffer& operator=(const PageBuffer&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // Whether the kernel accepted the huge-page request (it is only advice either way).
  bool huge_pages_requested() const { return huge_; }

 private:
  void release();
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool huge_ = false;
};

}  // namespace alspec
