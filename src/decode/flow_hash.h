// flow_hash.h: hashing for the bounded state tables keyed by addresses
// (IP fragments, DNS-over-TCP streams): a 64-bit finaliser (MurmurHash3's
// fmix64) and a per-process random seed, so an attacker who controls the
// addresses and ports cannot aim every key at one bucket.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "decode/packet.h"

namespace exfilwatch::flowhash {

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

// A byte string (a DNS name), for the direct-mapped caches keyed by names
// (registered domains, rule scan verdicts): XXH3 (libxxhash, inlined), which
// hashes a short name in a few independent 128-bit multiplies instead of a
// dependent multiply per eight bytes, so the cache slot's address is known
// sooner. Seeded per table like the flow tables; a collision there only
// costs a cache miss, since entries keep and compare the whole key.
inline uint64_t hashBytes(const void* data, std::size_t n, uint64_t seed) {
  return XXH3_64bits_withSeed(data, n, seed);
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

}  // namespace exfilwatch::flowhash
