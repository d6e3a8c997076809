// window.h: sliding windows in constant space, and a small HyperLogLog.
//
// Windows: each window keeps the counters of its current fixed bucket (width
// = the window length) and of the previous one; the value over the last
// `width` seconds is estimated as prev * (1 - elapsed/width) + cur, assuming
// the previous bucket's events were spread evenly (the "sliding window
// counter" of rate limiters). Why not a ring of 60 one-minute buckets: per
// (client, domain) pair that costs 60 x counters, four times the 256-byte
// record budget; two buckets per window keep three windows (1 m, 10 m, 1 h)
// with eight counters each inside it. The estimate is exact for the current
// bucket and off at most by the previous bucket's unevenness, never by more
// than prev; explain shows both buckets so an analyst can see it.
#pragma once

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>

namespace exfilwatch::score {

template <class C>
struct SlidingWindow {
  uint32_t bucket = 0;  // now / width of `cur`
  C cur{};
  C prev{};

  // Moves the window to `now` (seconds). Time that goes backwards (merged
  // captures, clock steps) is counted in the current bucket.
  void advance(uint32_t now, uint32_t width) { advanceTo(now / width); }
  // The same with the bucket number now / width already worked out.
  void advanceTo(uint32_t b) {
    if (b <= bucket) return;
    prev = (b == bucket + 1) ? cur : C{};
    cur = C{};
    bucket = b;
  }
  // Weight of the previous bucket in the window ending at `now`.
  double prevWeight(uint32_t now, uint32_t width) const {
    const uint32_t b = now / width;
    return prevWeightAt(b, static_cast<double>(now - uint64_t{b} * width) / width);
  }
  // The same from `now`'s bucket number b = now / width and the share of
  // that bucket elapsed at `now` (a WindowClock keeps both).
  double prevWeightAt(uint32_t b, double elapsed) const {
    if (b < bucket) return 1.0;  // time went back
    return b == bucket ? 1.0 - elapsed : 0.0;
  }
};

// Where `now` falls in each of n windows' buckets. Worked out once per
// second of packet time rather than per query: it costs two divisions per
// window.
template <int N>
struct WindowClock {
  bool valid = false;
  uint32_t now = 0;
  uint32_t bucket[N] = {};  // now / width
  double elapsed[N] = {};   // (now - bucket * width) / width, in [0, 1)

  void set(uint32_t t, const std::array<uint32_t, N>& widths) {
    valid = true;
    now = t;
    for (int i = 0; i < N; ++i) {
      bucket[i] = t / widths[i];
      elapsed[i] = static_cast<double>(t - uint64_t{bucket[i]} * widths[i]) / widths[i];
    }
  }
};

// Saturating add for the narrow counters of a record.
template <class T>
inline void satAdd(T& a, uint64_t b) {
  constexpr uint64_t kMax = static_cast<T>(~T{0});
  const uint64_t s = uint64_t{a} + b;
  a = static_cast<T>(s > kMax ? kMax : s);
}

// HyperLogLog with 64 four-bit registers in 32 bytes (Flajolet et al. 2007).
// Standard error 1.04/sqrt(64) = 13%. Four bits saturate at rank 15, which
// caps the estimate near 64 * 2^15 = 2 million distinct names per pair: far
// beyond every threshold, and it keeps the per-pair record small.
struct Hll64 {
  uint8_t regs[32] = {};

  void add(uint64_t hash) {
    const unsigned idx = static_cast<unsigned>(hash >> 58);  // top 6 bits
    const uint64_t rest = (hash << 6) | (uint64_t{1} << 5);  // guard bit bounds the rank
    unsigned rank = static_cast<unsigned>(std::countl_zero(rest)) + 1;
    if (rank > 15) rank = 15;
    const unsigned cur = get(idx);
    if (rank > cur) set(idx, rank);
  }
  unsigned get(unsigned i) const { return (regs[i >> 1] >> ((i & 1) * 4)) & 0xf; }
  void set(unsigned i, unsigned v) {
    const unsigned shift = (i & 1) * 4;
    regs[i >> 1] = static_cast<uint8_t>((regs[i >> 1] & ~(0xf << shift)) | (v << shift));
  }
  double estimate() const {
    constexpr double m = 64.0;
    constexpr double alpha = 0.709;  // alpha_64
    double sum = 0.0;
    unsigned zeros = 0;
    for (unsigned i = 0; i < 64; ++i) {
      const unsigned r = get(i);
      sum += std::ldexp(1.0, -static_cast<int>(r));
      if (r == 0) ++zeros;
    }
    const double e = alpha * m * m / sum;
    if (e <= 2.5 * m && zeros) return m * std::log(m / zeros);  // linear counting
    return e;
  }
};

}  // namespace exfilwatch::score
