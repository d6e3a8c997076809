// counters.h: statistics written by one thread and read by any other (a
// metrics scrape, the stats log) without a locked read-modify-write on the
// writer's path: a relaxed load and store each.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace exfilwatch {

struct RelaxedCounter {
  std::atomic<uint64_t> v{0};
  // Single writer: a load and a store, not a locked read-modify-write.
  void add(uint64_t n) {
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void set(uint64_t n) { v.store(n, std::memory_order_relaxed); }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

// Fixed-bucket latency histogram with a single writer and any number of
// readers.
struct LatencyHistogram {
  // Upper bounds in seconds (10 us .. 1 s); the last bucket is +Inf.
  static constexpr std::array<double, 11> kBounds{1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4,
                                                  1e-3, 5e-3,   1e-2, 1e-1, 1.0};
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets{};
  std::atomic<uint64_t> count{0};
  std::atomic<uint64_t> sum_ns{0};
  void observeNs(uint64_t ns) {
    std::size_t i = 0;
    while (i < kBounds.size() && static_cast<double>(ns) > kBounds[i] * 1e9) ++i;
    auto bump = [](std::atomic<uint64_t>& a, uint64_t n) {
      a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    };
    bump(buckets[i], 1);
    bump(sum_ns, ns);
    bump(count, 1);
  }
};

}  // namespace exfilwatch
