// slot_index.h: the hash index of the fixed-capacity state tables (IP
// fragments, DNS-over-TCP streams): open addressing with linear probing over
// slot numbers, sized to at least twice the table's capacity, so a probe
// always ends at an empty cell. Deletion shifts later entries back instead
// of leaving tombstones, so a long-running table under churn never degrades.
// The table owns its slots; the index stores only their numbers and asks the
// table for a slot's hash and key.
#pragma once

#include <cstdint>
#include <vector>

namespace exfilwatch {

class SlotIndex {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  // Sized for a table of `capacity` slots (allocation at construction only).
  explicit SlotIndex(std::size_t capacity) {
    std::size_t cells = 8;
    while (cells < capacity * 2) cells <<= 1;
    cells_.assign(cells, kNone);
    mask_ = cells - 1;
  }

  // The slot whose hash is `h` and for which holds(slot) is true, or kNone.
  template <typename Holds>
  uint32_t find(uint64_t h, Holds holds) const {
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const uint32_t s = cells_[i];
      if (s == kNone || holds(s)) return s;
    }
  }

  void insert(uint32_t slot, uint64_t h) {
    std::size_t i = h & mask_;
    while (cells_[i] != kNone) i = (i + 1) & mask_;
    cells_[i] = slot;
  }

  // Removes `slot` (stored with hash `h`); hashOf(s) gives any slot's hash.
  template <typename HashOf>
  void erase(uint32_t slot, uint64_t h, HashOf hash_of) {
    std::size_t i = h & mask_;
    while (cells_[i] != slot) i = (i + 1) & mask_;
    std::size_t j = i;
    for (;;) {
      j = (j + 1) & mask_;
      const uint32_t s = cells_[j];
      if (s == kNone) break;
      const std::size_t home = hash_of(s) & mask_;
      if (((j - home) & mask_) >= ((j - i) & mask_)) {
        cells_[i] = s;
        i = j;
      }
    }
    cells_[i] = kNone;
  }

  std::size_t memoryBytes() const { return cells_.size() * sizeof(uint32_t); }

 private:
  std::vector<uint32_t> cells_;
  std::size_t mask_ = 0;
};

}  // namespace exfilwatch
