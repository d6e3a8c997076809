// top_k.h: a bounded "top K" counter (Space-Saving, Metwally, Agrawal and
// El Abbadi, ICDT 2005) for labels whose number is unbounded, such as the
// domains alerts name. At most `capacity` keys are kept; a new key arriving
// when the table is full takes the place of the key with the smallest count
// and inherits that count (+n) as its possible over-estimate (`error`).
//
// Guarantees, for a stream of m counted occurrences and capacity k:
//   count - error <= true count <= count   for every key kept;
//   every key whose true count exceeds m / k is kept.
// So the heavy hitters are always there, with bounded error, and the number
// of metric series built from the table never exceeds k.
//
// Not thread-safe: the owner serialises add() and the readers (a mutex in
// AlertDelivery; alerts are rare, this is never on the packet path).
// add() is O(log k): the entries form a binary min-heap on count, indexed by
// key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace exfilwatch {

class SpaceSaving {
 public:
  struct Entry {
    std::string key;
    uint64_t count = 0;  // estimate: an upper bound of the true count
    uint64_t error = 0;  // count - error is a lower bound
  };

  // capacity 0: disabled, add() does nothing.
  explicit SpaceSaving(std::size_t capacity) : capacity_(capacity) { heap_.reserve(capacity); }

  // Counts `n` occurrences of `key`.
  void add(std::string_view key, uint64_t n = 1);

  std::size_t capacity() const { return capacity_; }
  std::size_t size() const { return heap_.size(); }
  // Keys that lost their place to a newcomer.
  uint64_t evictions() const { return evictions_; }
  // The entry of `key`, or nullptr when it is not kept.
  const Entry* find(std::string_view key) const;
  // Every kept entry, highest count first (ties: by key, so output is stable).
  std::vector<Entry> sorted() const;

 private:
  void siftUp(std::size_t i);
  void siftDown(std::size_t i);
  void swapAt(std::size_t a, std::size_t b);

  std::size_t capacity_;
  std::vector<Entry> heap_;                          // min-heap on count
  std::unordered_map<std::string, std::size_t> at_;  // key -> position in heap_
  uint64_t evictions_ = 0;
};

}  // namespace exfilwatch
