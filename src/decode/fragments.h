// fragments.h: bounded-memory IPv4/IPv6 fragment reassembly.
//
// DNS responses larger than the path MTU (big TXT/NULL answers, DNSSEC, EDNS
// payloads of 4096) arrive as IP fragments, and tunnels use exactly those
// records, so the sensor must reassemble them. A mirror is also an attacker's
// playground: fragments that never complete, overlapping fragments that say
// different things, tiny-fragment floods. Every pending datagram therefore
// lives in a fixed-size table with a byte budget, and everything refused is
// counted as a named weird (ip.fragment_*), never thrown.
//
// Time is the packets' own time (pcap replay must behave like live capture),
// so expiry is driven by the timestamps handed to add() and expire().
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/slot_index.h"
#include "common/slot_list.h"
#include "decode/packet.h"
#include "decode/weird.h"

namespace exfilwatch {

struct FragmentLimits {
  uint32_t max_datagrams = 1024;             // pending datagrams (table slots)
  uint64_t max_bytes = 8u << 20;             // reassembly buffers of pending datagrams
  uint32_t timeout_sec = 30;                 // since the first fragment was seen
  uint32_t max_fragments_per_datagram = 64;  // distinct fragments carrying new bytes
};

// Identifies one datagram: RFC 791 (src, dst, protocol, id) for IPv4, RFC 8200
// (src, dst, id) for IPv6. For IPv6 the caller passes the Next Header of the
// fragment header as `proto`, which is the same for all fragments of a datagram.
struct FragmentKey {
  IpAddress src;
  IpAddress dst;
  uint32_t id = 0;
  uint8_t proto = 0;
  // Optional: the mirror session (e.g. (type << 24) | VNI of the innermost
  // tunnel). Mirrored VPCs may reuse the same private addresses; without it
  // two sessions' fragments with equal ids would be seen as one datagram and
  // dropped as a conflicting overlap. 0 when unused.
  uint32_t tunnel = 0;

  // Hashes only the meaningful address bytes; `seed` lets a table randomise
  // its layout so crafted keys cannot be aimed at one probe chain.
  uint64_t hash(uint64_t seed = 0) const;
  bool operator==(const FragmentKey& o) const {
    return id == o.id && proto == o.proto && tunnel == o.tunnel && src == o.src && dst == o.dst;
  }
  bool operator!=(const FragmentKey& o) const { return !(*this == o); }
};

struct FragmentKeyHash {
  std::size_t operator()(const FragmentKey& k) const { return static_cast<std::size_t>(k.hash()); }
};

class FragmentReassembler {
 public:
  explicit FragmentReassembler(FragmentLimits limits = {});
  FragmentReassembler(const FragmentReassembler&) = delete;
  FragmentReassembler& operator=(const FragmentReassembler&) = delete;
  FragmentReassembler(FragmentReassembler&&) = default;  // e.g. one per tunnel depth in an array
  FragmentReassembler& operator=(FragmentReassembler&&) = default;

  // Adds one fragment. `offset` is in bytes, `more` is the MF flag, data/len
  // are the captured payload bytes of the fragment (after the IPv4 header or
  // the IPv6 fragment header) and `wire_len` is how many payload bytes it
  // carried on the wire. When len < wire_len the datagram can never complete:
  // it is counted as ip.fragment_truncated and dropped.
  // Returns true when the datagram is complete; then out/out_len view the
  // reassembled transport payload, valid until the next add() or expire().
  bool add(const FragmentKey& key, Timestamp ts, uint32_t offset, bool more, const uint8_t* data,
           uint32_t len, uint32_t wire_len, const uint8_t*& out, uint32_t& out_len,
           WeirdCounters& weird);

  // Drops datagrams whose first fragment is older than the timeout
  // (ip.fragment_timeout for those that were still live).
  void expire(Timestamp now, WeirdCounters& weird);

  std::size_t pending() const { return live_; }      // datagrams in the table
  uint64_t bufferedBytes() const { return bytes_; }  // buffer capacity they hold
  const FragmentLimits& limits() const { return limits_; }

  static constexpr uint32_t kMaxDatagram = 65535;  // largest reassembled payload

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr std::size_t kClasses = 3;  // buffer size classes: 2 KiB, 8 KiB, 64 KiB

  struct Range {
    uint32_t begin;
    uint32_t end;
  };

  struct Datagram {
    FragmentKey key;
    uint64_t hash = 0;
    int64_t first_us = 0;
    std::unique_ptr<uint8_t[]> buf;
    uint32_t cap = 0;
    uint8_t cls = 0;
    std::vector<Range> ranges;  // sorted, disjoint, merged when adjacent
    uint32_t total = 0;         // payload length, once the last fragment was seen
    uint32_t fragments = 0;     // fragments that brought new bytes
    bool total_known = false;
    bool dead = false;  // refused: absorbs its remaining fragments quietly
    bool in_use = false;
    uint32_t prev = kNone;  // age list (oldest first)
    uint32_t next = kNone;
  };

  uint32_t find(const FragmentKey& key, uint64_t h) const;
  uint32_t create(const FragmentKey& key, uint64_t h, int64_t now_us, WeirdCounters& weird);
  void remove(uint32_t slot);  // out of index and age list, buffer back to the pool
  void kill(uint32_t slot);    // keep the key (absorbs stragglers), free the bytes
  void evictOldest(uint32_t keep, WeirdCounters& weird);
  bool grow(uint32_t slot, uint32_t need, WeirdCounters& weird);
  void releaseBuffer(Datagram& d);
  void releaseCompleted();
  void expireBefore(int64_t now_us, WeirdCounters& weird);
  void indexInsert(uint32_t slot);
  void indexErase(uint32_t slot);

  FragmentLimits limits_;
  uint64_t seed_ = 0;
  std::vector<Datagram> slots_;  // grows up to max_datagrams, then reused
  std::vector<uint32_t> free_slots_;
  SlotIndex index_;                                 // slot numbers by key hash
  SlotList<&Datagram::prev, &Datagram::next> age_;  // head: oldest
  uint32_t completed_ = kNone;                      // returned by the last add(), released lazily
  std::size_t live_ = 0;
  uint64_t bytes_ = 0;
  uint64_t pooled_bytes_ = 0;
  std::array<std::vector<std::unique_ptr<uint8_t[]>>, kClasses> pool_;
};

}  // namespace exfilwatch
