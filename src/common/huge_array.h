// huge_array.h: a fixed-size array of trivially copyable records in memory
// backed by transparent huge pages where the kernel offers them.
//
// Why: the per-pair state tables are tens of megabytes read at random, one
// record per packet. With 4 KiB pages each such read also misses the TLB;
// with 2 MiB pages the whole table fits in a few dozen TLB entries. The
// kernel gives huge pages to anonymous memory that asks (MADV_HUGEPAGE) in
// THP "madvise" or "always" mode; otherwise the array works the same on
// small pages.
//
// The memory is filled at construction, so every page is faulted in at
// configuration time, not on the packet path. Move-only; nothing allocates
// after construction.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace exfilwatch {

template <class T>
class HugeArray {
  static_assert(std::is_trivially_copyable_v<T>, "records are filled with memset");

 public:
  static constexpr std::size_t kHugePage = std::size_t{2} << 20;

  HugeArray() = default;
  // `n` zeroed records. Throws std::bad_alloc (configuration time only).
  explicit HugeArray(std::size_t n) : size_(n) {
    if (n == 0) return;
    const std::size_t bytes = n * sizeof(T);
    if (bytes >= kHugePage) {
      // Round up to whole huge pages and align the start to one, so that the
      // whole array can be huge pages: map one page extra, trim both ends.
      mapped_ = (bytes + kHugePage - 1) / kHugePage * kHugePage;
      void* raw = mmap(nullptr, mapped_ + kHugePage, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (raw == MAP_FAILED) throw std::bad_alloc();
      auto* base = static_cast<char*>(raw);
      const auto addr = reinterpret_cast<std::uintptr_t>(base);
      const std::size_t lead = (kHugePage - addr % kHugePage) % kHugePage;
      if (lead) munmap(base, lead);
      const std::size_t trail = kHugePage - lead;
      if (trail) munmap(base + lead + mapped_, trail);
      data_ = reinterpret_cast<T*>(base + lead);
      madvise(data_, mapped_, MADV_HUGEPAGE);  // best effort: small pages otherwise
    } else {
      mapped_ = bytes;
      void* raw =
          mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (raw == MAP_FAILED) throw std::bad_alloc();
      data_ = static_cast<T*>(raw);
    }
    // Fault every page in now (configuration time), not on the packet path.
    std::memset(static_cast<void*>(data_), 0, bytes);
  }
  ~HugeArray() { release(); }

  HugeArray(const HugeArray&) = delete;
  HugeArray& operator=(const HugeArray&) = delete;
  HugeArray(HugeArray&& o) noexcept { swap(o); }
  HugeArray& operator=(HugeArray&& o) noexcept {
    if (this != &o) {
      release();
      swap(o);
    }
    return *this;
  }

  // Sets every record to `v`.
  void fill(const T& v) {
    for (std::size_t i = 0; i < size_; ++i) data_[i] = v;
  }

  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  void swap(HugeArray& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(mapped_, o.mapped_);
  }
  void release() {
    if (data_ != nullptr) munmap(data_, mapped_);
    data_ = nullptr;
    size_ = mapped_ = 0;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t mapped_ = 0;  // bytes mapped at data_
};

}  // namespace exfilwatch
