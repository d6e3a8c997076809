// top_k.cc: Space-Saving over an indexed binary min-heap.
#include "common/top_k.h"

#include <algorithm>
#include <utility>

namespace exfilwatch {

void SpaceSaving::swapAt(std::size_t a, std::size_t b) {
  std::swap(heap_[a], heap_[b]);
  at_[heap_[a].key] = a;
  at_[heap_[b].key] = b;
}

void SpaceSaving::siftUp(std::size_t i) {
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (heap_[parent].count <= heap_[i].count) break;
    swapAt(parent, i);
    i = parent;
  }
}

void SpaceSaving::siftDown(std::size_t i) {
  for (;;) {
    const std::size_t l = 2 * i + 1;
    const std::size_t r = l + 1;
    std::size_t smallest = i;
    if (l < heap_.size() && heap_[l].count < heap_[smallest].count) smallest = l;
    if (r < heap_.size() && heap_[r].count < heap_[smallest].count) smallest = r;
    if (smallest == i) return;
    swapAt(i, smallest);
    i = smallest;
  }
}

void SpaceSaving::add(std::string_view key, uint64_t n) {
  if (capacity_ == 0 || n == 0) return;
  std::string k(key);
  if (const auto it = at_.find(k); it != at_.end()) {
    const std::size_t i = it->second;
    heap_[i].count += n;
    siftDown(i);  // a larger count moves away from the root
    return;
  }
  if (heap_.size() < capacity_) {
    heap_.push_back(Entry{k, n, 0});
    at_.emplace(std::move(k), heap_.size() - 1);
    siftUp(heap_.size() - 1);
    return;
  }
  // Full: the newcomer replaces the minimum and inherits its count as error.
  Entry& root = heap_.front();
  at_.erase(root.key);
  ++evictions_;
  const uint64_t min = root.count;
  root.key = k;
  root.count = min + n;
  root.error = min;
  at_.emplace(std::move(k), 0);
  siftDown(0);
}

const SpaceSaving::Entry* SpaceSaving::find(std::string_view key) const {
  const auto it = at_.find(std::string(key));
  return it == at_.end() ? nullptr : &heap_[it->second];
}

std::vector<SpaceSaving::Entry> SpaceSaving::sorted() const {
  std::vector<Entry> out = heap_;
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
    return a.count != b.count ? a.count > b.count : a.key < b.key;
  });
  return out;
}

}  // namespace exfilwatch
