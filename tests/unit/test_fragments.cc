// test_fragments.cc: IPv4/IPv6 fragment reassembly: ordering, duplicates,
// overlap policy, limits (time, table, bytes, size, count) and truncation.
// Fragments are fed by hand; no decoder is involved.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "decode/fragments.h"

using namespace exfilwatch;

namespace {

std::vector<uint8_t> pattern(std::size_t n, uint8_t seed = 1) {
  std::vector<uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 8));
  return v;
}

FragmentKey v4key(uint32_t id, uint8_t last_octet = 1) {
  const uint8_t s[4] = {10, 0, 0, last_octet};
  const uint8_t d[4] = {192, 0, 2, 53};
  FragmentKey k;
  k.src = IpAddress::v4(s);
  k.dst = IpAddress::v4(d);
  k.id = id;
  k.proto = 17;
  return k;
}

FragmentKey v6key(uint32_t id, uint8_t last = 1) {
  uint8_t s[16] = {0x20, 0x01, 0x0d, 0xb8};
  uint8_t d[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x35};
  s[15] = last;
  FragmentKey k;
  k.src = IpAddress::v6(s);
  k.dst = IpAddress::v6(d);
  k.id = id;
  k.proto = 17;
  return k;
}

struct Result {
  bool done = false;
  const uint8_t* out = nullptr;
  uint32_t out_len = 0;
};

// Feeds bytes [off, off+n) of `payload` as one fragment.
Result feed(FragmentReassembler& r, const FragmentKey& k, const std::vector<uint8_t>& payload,
            uint32_t off, uint32_t n, bool more, WeirdCounters& w, Timestamp ts = {}) {
  Result res;
  res.done = r.add(k, ts, off, more, payload.data() + off, n, n, res.out, res.out_len, w);
  return res;
}

bool sameBytes(const Result& r, const std::vector<uint8_t>& want) {
  return r.done && r.out_len == want.size() && std::memcmp(r.out, want.data(), want.size()) == 0;
}

}  // namespace

TEST_CASE("fragments: in order, reverse order and interleaved reassemble the same payload") {
  const auto payload = pattern(3000);
  WeirdCounters w;
  FragmentReassembler r;

  SUBCASE("in order") {
    CHECK_FALSE(feed(r, v4key(1), payload, 0, 1480, true, w).done);
    CHECK(r.pending() == 1);
    CHECK_FALSE(feed(r, v4key(1), payload, 1480, 1480, true, w).done);
    const Result res = feed(r, v4key(1), payload, 2960, 40, false, w);
    CHECK(sameBytes(res, payload));
  }
  SUBCASE("reverse order") {
    CHECK_FALSE(feed(r, v4key(2), payload, 2960, 40, false, w).done);
    CHECK_FALSE(feed(r, v4key(2), payload, 1480, 1480, true, w).done);
    const Result res = feed(r, v4key(2), payload, 0, 1480, true, w);
    CHECK(sameBytes(res, payload));
  }
  SUBCASE("middle first") {
    CHECK_FALSE(feed(r, v4key(3), payload, 1480, 1480, true, w).done);
    CHECK_FALSE(feed(r, v4key(3), payload, 0, 1480, true, w).done);
    CHECK(sameBytes(feed(r, v4key(3), payload, 2960, 40, false, w), payload));
  }
  CHECK(r.pending() == 0);
  CHECK(w.total() == 0);
  // The completed datagram's buffer is released on the next call.
  r.expire(Timestamp{}, w);
  CHECK(r.bufferedBytes() == 0);
}

TEST_CASE("fragments: an atomic fragment is returned as is, without table state") {
  const auto payload = pattern(100);
  WeirdCounters w;
  FragmentReassembler r;
  const Result res = feed(r, v4key(9), payload, 0, 100, false, w);
  CHECK(res.done);
  CHECK(res.out == payload.data());
  CHECK(res.out_len == 100);
  CHECK(r.pending() == 0);
}

TEST_CASE("fragments: identical duplicates are tolerated and counted") {
  const auto payload = pattern(2000);
  WeirdCounters w;
  FragmentReassembler r;
  CHECK_FALSE(feed(r, v4key(5), payload, 0, 1480, true, w).done);
  CHECK_FALSE(feed(r, v4key(5), payload, 0, 1480, true, w).done);
  CHECK(w.get(Weird::FragDuplicate) == 1);
  // A re-fragmented copy that overlaps with identical bytes is also fine.
  CHECK_FALSE(feed(r, v4key(5), payload, 1472, 16, true, w).done);
  CHECK(sameBytes(feed(r, v4key(5), payload, 1480, 520, false, w), payload));
  CHECK(w.get(Weird::FragOverlap) == 0);
}

TEST_CASE("fragments: a duplicate last fragment can complete the datagram") {
  const auto payload = pattern(32);
  WeirdCounters w;
  FragmentReassembler r;
  CHECK_FALSE(feed(r, v4key(6), payload, 0, 32, true, w).done);
  CHECK(sameBytes(feed(r, v4key(6), payload, 16, 16, false, w), payload));
  CHECK(w.get(Weird::FragDuplicate) == 1);
}

TEST_CASE("fragments: conflicting overlap drops the datagram and absorbs the rest") {
  auto payload = pattern(64);
  auto evil = payload;
  evil[20] ^= 0xff;
  WeirdCounters w;
  FragmentReassembler r;
  CHECK_FALSE(feed(r, v6key(7), payload, 0, 24, true, w).done);
  // Same offsets, different bytes: a resolver and the sensor could disagree.
  CHECK_FALSE(feed(r, v6key(7), evil, 16, 16, true, w).done);
  CHECK(w.get(Weird::FragOverlap) == 1);
  CHECK(r.bufferedBytes() == 0);
  // The remaining fragments do not resurrect it.
  CHECK_FALSE(feed(r, v6key(7), payload, 24, 40, false, w).done);
  CHECK_FALSE(feed(r, v6key(7), payload, 0, 24, true, w).done);
  CHECK(w.get(Weird::FragOverlap) == 1);
  // Nor is it reported again when it times out.
  r.expire(Timestamp{100, 0}, w);
  CHECK(w.get(Weird::FragTimeout) == 0);
  CHECK(r.pending() == 0);
}

TEST_CASE("fragments: timeout follows packet time") {
  const auto payload = pattern(3000);
  WeirdCounters w;
  FragmentReassembler r;  // 30 s
  feed(r, v4key(10), payload, 0, 1480, true, w, Timestamp{1000, 0});
  feed(r, v4key(11), payload, 0, 1480, true, w, Timestamp{1010, 0});
  r.expire(Timestamp{1029, 999999}, w);
  CHECK(r.pending() == 2);
  r.expire(Timestamp{1030, 1}, w);
  CHECK(r.pending() == 1);
  CHECK(w.get(Weird::FragTimeout) == 1);
  // add() expires too, so a caller that never calls expire() stays bounded.
  feed(r, v4key(12), payload, 0, 1480, true, w, Timestamp{1041, 0});
  CHECK(r.pending() == 1);
  CHECK(w.get(Weird::FragTimeout) == 2);
  // A late fragment of an expired datagram starts over and cannot complete alone.
  CHECK_FALSE(feed(r, v4key(10), payload, 1480, 1520, false, w, Timestamp{1041, 0}).done);
}

TEST_CASE("fragments: a flood of never-completing datagrams stays within the limits") {
  FragmentLimits lim;
  lim.max_datagrams = 64;
  lim.max_bytes = 256 * 1024;
  FragmentReassembler r(lim);
  WeirdCounters w;
  const auto payload = pattern(65535);
  for (uint32_t i = 0; i < 20000; ++i) {
    // Alternate small first fragments and far-offset fragments that force the
    // largest buffer class: both the count and the byte budget must hold.
    const uint32_t off = (i % 3 == 0) ? 60000 : 0;
    feed(r, v4key(i, static_cast<uint8_t>(i)), payload, off, 1480, true, w,
         Timestamp{0, static_cast<int32_t>(i)});
    REQUIRE(r.pending() <= lim.max_datagrams);
    REQUIRE(r.bufferedBytes() <= lim.max_bytes);
  }
  CHECK(w.get(Weird::FragTableFull) > 0);
  // The table still works for a legitimate datagram afterwards.
  const auto good = pattern(3000, 9);
  feed(r, v4key(777777), good, 0, 1480, true, w);
  feed(r, v4key(777777), good, 1480, 1480, true, w);
  CHECK(sameBytes(feed(r, v4key(777777), good, 2960, 40, false, w), good));
}

TEST_CASE("fragments: byte budget smaller than one datagram refuses it cleanly") {
  FragmentLimits lim;
  lim.max_bytes = 4096;
  FragmentReassembler r(lim);
  WeirdCounters w;
  const auto payload = pattern(20000);
  CHECK_FALSE(feed(r, v4key(1), payload, 16000, 1480, true, w).done);
  CHECK(w.get(Weird::FragTableFull) == 1);
  CHECK(r.bufferedBytes() == 0);
}

TEST_CASE("fragments: reassembled size above 65535 is refused") {
  const auto payload = pattern(65535 + 100);
  WeirdCounters w;
  FragmentReassembler r;
  CHECK_FALSE(feed(r, v4key(20), payload, 0, 1480, true, w).done);
  CHECK_FALSE(feed(r, v4key(20), payload, 65528, 16, false, w).done);
  CHECK(w.get(Weird::FragTooLarge) == 1);
  CHECK(r.bufferedBytes() == 0);
}

TEST_CASE("fragments: snaplen-truncated fragment drops the datagram once") {
  const auto payload = pattern(3000);
  WeirdCounters w;
  FragmentReassembler r;
  const uint8_t* out = nullptr;
  uint32_t out_len = 0;
  CHECK_FALSE(r.add(v4key(30), {}, 0, true, payload.data(), 96, 1480, out, out_len, w));
  CHECK(w.get(Weird::FragTruncated) == 1);
  CHECK_FALSE(r.add(v4key(30), {}, 1480, true, payload.data() + 1480, 96, 1480, out, out_len, w));
  CHECK_FALSE(feed(r, v4key(30), payload, 2960, 40, false, w).done);
  CHECK(w.get(Weird::FragTruncated) == 1);
  r.expire(Timestamp{60, 0}, w);
  CHECK(w.get(Weird::FragTimeout) == 0);
  // A truncated atomic fragment is counted as well.
  CHECK_FALSE(r.add(v4key(31), {}, 0, false, payload.data(), 10, 20, out, out_len, w));
  CHECK(w.get(Weird::FragTruncated) == 2);
}

TEST_CASE("fragments: too many fragments and impossible lengths") {
  const auto payload = pattern(4096);
  WeirdCounters w;
  FragmentLimits lim;
  lim.max_fragments_per_datagram = 4;
  FragmentReassembler r(lim);
  for (uint32_t i = 0; i < 6; ++i) feed(r, v4key(40), payload, i * 8, 8, true, w);
  CHECK(w.get(Weird::FragTooMany) == 1);

  feed(r, v4key(41), payload, 0, 7, true, w);  // non-last fragment not a multiple of 8
  CHECK(w.get(Weird::FragBadLength) == 1);
  feed(r, v4key(42), payload, 8, 0, true, w);  // empty fragment
  CHECK(w.get(Weird::FragBadLength) == 2);
  feed(r, v4key(43), payload, 3, 8, true, w);  // offset not a multiple of 8
  CHECK(w.get(Weird::FragBadLength) == 3);
  // Two different "last" fragments.
  feed(r, v4key(44), payload, 8, 8, false, w);
  feed(r, v4key(44), payload, 16, 8, false, w);
  CHECK(w.get(Weird::FragBadLength) == 4);
  // Data past the end announced by the last fragment.
  feed(r, v4key(45), payload, 8, 8, false, w);
  feed(r, v4key(45), payload, 16, 16, true, w);
  CHECK(w.get(Weird::FragBadLength) == 5);
}

TEST_CASE("fragments: IPv6 keys separate datagrams by address and id") {
  const auto a = pattern(2000, 1);
  const auto b = pattern(2000, 2);
  const auto c = pattern(2000, 3);
  WeirdCounters w;
  FragmentReassembler r;

  CHECK(v6key(1) == v6key(1));
  CHECK(v6key(1) != v6key(1, 2));
  CHECK(v6key(1) != v6key(2));
  CHECK(v6key(1).hash(42) == v6key(1).hash(42));
  CHECK(v6key(1).hash() != v6key(1, 2).hash());
  // An IPv4 key whose bytes match the first bytes of an IPv6 key is different.
  FragmentKey k4 = v4key(1);
  FragmentKey k6 = k4;
  k6.src.family = 6;
  k6.dst.family = 6;
  CHECK(k4 != k6);

  // Same id from two sources, and a second id from the first source, interleaved.
  CHECK_FALSE(feed(r, v6key(100, 1), a, 0, 1232, true, w).done);
  CHECK_FALSE(feed(r, v6key(100, 2), b, 0, 1232, true, w).done);
  CHECK_FALSE(feed(r, v6key(101, 1), c, 1232, 768, false, w).done);
  CHECK(r.pending() == 3);
  CHECK(sameBytes(feed(r, v6key(100, 2), b, 1232, 768, false, w), b));
  CHECK(sameBytes(feed(r, v6key(100, 1), a, 1232, 768, false, w), a));
  CHECK(sameBytes(feed(r, v6key(101, 1), c, 0, 1232, true, w), c));
  CHECK(r.pending() == 0);
  CHECK(w.total() == 0);
}

TEST_CASE("fragments: random fragment soup never breaks the invariants") {
  FragmentLimits lim;
  lim.max_datagrams = 32;
  lim.max_bytes = 128 * 1024;
  FragmentReassembler r(lim);
  WeirdCounters w;
  std::mt19937 rng(12345);
  const auto payload = pattern(70000);
  for (int i = 0; i < 50000; ++i) {
    const uint32_t id = rng() % 48;
    const uint32_t off = (rng() % 8300) * 8;
    uint32_t wire = (rng() % 3 == 0) ? rng() % 64 : (rng() % 200) * 8;
    const bool more = rng() % 4 != 0;
    const uint32_t len = (rng() % 20 == 0) ? wire / 2 : wire;
    if (off + wire > payload.size()) wire = 0;
    const uint8_t* out = nullptr;
    uint32_t out_len = 0;
    const bool done = r.add(v4key(id), Timestamp{i / 1000, 0}, off, more, payload.data() + off,
                            std::min(len, wire), wire, out, out_len, w);
    if (done) {
      // Fragments all come from one payload, so a complete datagram must match it.
      REQUIRE(out_len <= 65535);
      REQUIRE(std::memcmp(out, payload.data(), out_len) == 0);
    }
    REQUIRE(r.pending() <= lim.max_datagrams);
    REQUIRE(r.bufferedBytes() <= lim.max_bytes);
  }
}

TEST_CASE("fragments: the mirror session separates datagrams with equal addresses and ids") {
  const auto a = pattern(2000, 1);
  const auto b = pattern(2000, 5);
  WeirdCounters w;
  FragmentReassembler r;
  FragmentKey ka = v4key(300), kb = v4key(300);
  ka.tunnel = (1u << 24) | 100;
  kb.tunnel = (1u << 24) | 200;
  CHECK(ka != kb);
  CHECK_FALSE(feed(r, ka, a, 0, 1480, true, w).done);
  CHECK_FALSE(feed(r, kb, b, 0, 1480, true, w).done);  // different bytes, no overlap conflict
  CHECK(sameBytes(feed(r, ka, a, 1480, 520, false, w), a));
  CHECK(sameBytes(feed(r, kb, b, 1480, 520, false, w), b));
  CHECK(w.total() == 0);
}
