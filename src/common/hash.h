// hash.h: the hashes behind every bounded table. Keys come from bytes an
// attacker picks (addresses, ports, names), so tables index by a mixed hash
// with a per-process random seed where output need not be reproducible, and
// never by the raw bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "common/net.h"

namespace exfilwatch::hashing {

// MurmurHash3's 64-bit finaliser: every input bit moves every output bit.
inline uint64_t fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

inline uint64_t mixIn(uint64_t h, uint64_t v) { return fmix64(h ^ (v + 0x9e3779b97f4a7c15ULL)); }

inline uint64_t mixAddress(uint64_t h, const IpAddress& a) {
  uint64_t w[2] = {0, 0};
  std::memcpy(w, a.bytes, a.size());
  h = mixIn(h, w[0] ^ (uint64_t{a.family} << 56));
  if (a.family == 6) h = mixIn(h, w[1]);
  return h;
}

// A byte string (a DNS name), for the caches keyed by names: XXH3 (libxxhash,
// inlined) hashes a short name in a few independent multiplies, so the slot's
// address is known sooner than with a byte-at-a-time hash. A collision only
// costs a cache miss: entries keep and compare the whole key.
inline uint64_t hashBytes(const void* data, std::size_t n, uint64_t seed) {
  return XXH3_64bits_withSeed(data, n, seed);
}

// FNV-1a, for short keys folded byte by byte (addresses, pair keys). Weak on
// its own: mix the result (fmix64) before it indexes a table. The default
// start is not FNV's published offset basis (0xcbf29ce484222325) but a fixed
// value of this project's own: keys and the `mirror` command's outer source
// ports are derived from it, so it must not change.
inline constexpr uint64_t kFnvOffset = 1469598103934665603ULL;
inline uint64_t fnv1a(const void* data, std::size_t n, uint64_t h = kFnvOffset) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

// Random per table; a fixed fallback when the system has no entropy source.
inline uint64_t randomSeed() {
  try {
    std::random_device rd;
    return (uint64_t{rd()} << 32) ^ rd();
  } catch (...) {
    return 0x5bd1e9955bd1e995ULL;
  }
}

}  // namespace exfilwatch::hashing
