// tcp_stream.h: DNS over TCP (RFC 1035 4.2.2, RFC 7766) message reassembly
// for a passive sensor with bounded memory.
//
// Each direction of a connection is its own byte stream of 2-byte-length-
// prefixed messages. A mirror sees what it sees: it may start mid-flow, see one
// direction only, lose segments, duplicate them or cut them at the snap length.
// The reassembler therefore trusts nothing: it follows sequence numbers
// (modulo 2^32), drops a message it cannot complete and resynchronises on the
// next segment that starts with a plausible DNS message. State lives in a
// fixed-capacity flow table with LRU eviction and a global byte budget, and
// every anomaly is a named weird (dns_tcp.*), never an exception.
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

namespace exfilwatch::dns {

struct TcpLimits {
  uint32_t max_flows = 16384;               // directions tracked at once
  uint64_t max_buffered_bytes = 16u << 20;  // partial-message buffers, all flows
  uint32_t idle_timeout_sec = 60;
};

class TcpMessageSink {
 public:
  virtual ~TcpMessageSink() = default;
  // One complete DNS message without its 2-byte length prefix. `msg` points
  // into the packet or into a reassembly buffer and is valid for the call only;
  // `pkt` is the segment that completed the message.
  virtual void onTcpDnsMessage(const PacketContext& pkt, const uint8_t* msg, std::size_t len) = 0;
};

// True when p[0..n) can be the start of a length-prefixed DNS message: the
// prefix is >= 12 and, when the header is present, its counts fit the length.
// Used to pick up a flow mid-stream and to resynchronise after a gap.
bool plausibleMessageStart(const uint8_t* p, std::size_t n);

class TcpReassembler {
 public:
  explicit TcpReassembler(TcpLimits limits = {});
  TcpReassembler(const TcpReassembler&) = delete;
  TcpReassembler& operator=(const TcpReassembler&) = delete;
  TcpReassembler(TcpReassembler&&) = default;
  TcpReassembler& operator=(TcpReassembler&&) = default;

  // pkt is a decoded TCP segment (pkt.ip_proto == 6). Calls
  // sink.onTcpDnsMessage once per complete DNS message in this direction.
  void onSegment(const PacketContext& pkt, WeirdCounters& weird, TcpMessageSink& sink);

  // Forgets flows idle for longer than idle_timeout_sec (packet time).
  void expire(Timestamp now);

  std::size_t flows() const { return live_; }
  uint64_t bufferedBytes() const { return bytes_; }  // capacity of partial-message buffers
  uint64_t evictions() const { return evictions_; }  // flows evicted because the table was full
  const TcpLimits& limits() const { return limits_; }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr std::size_t kClasses = 4;  // buffer size classes: 512 B, 2 KiB, 8 KiB, 64 KiB

  struct FlowKey {
    IpAddress src;
    IpAddress dst;
    uint16_t sport = 0;
    uint16_t dport = 0;
    uint32_t tunnel = 0;  // (type << 24) | VNI of the innermost tunnel, 0 without one
    bool operator==(const FlowKey& o) const {
      return sport == o.sport && dport == o.dport && tunnel == o.tunnel && src == o.src &&
             dst == o.dst;
    }
  };

  enum class State : uint8_t {
    Synced,  // next_seq is at a known position in the message framing
    Lost,    // bytes were lost: waiting for a segment that starts a message
  };

  struct Flow {
    FlowKey key;
    uint64_t hash = 0;
    int64_t last_us = 0;
    uint32_t next_seq = 0;  // first byte not yet consumed
    uint32_t syn_seq = 0;
    bool has_syn = false;
    bool in_use = false;
    bool lost_reported = false;  // resync_failed already counted for this loss
    State state = State::Lost;
    uint8_t prefix_have = 0;  // bytes of the length prefix seen (0..2)
    uint8_t prefix[2] = {};
    uint32_t have = 0;  // message bytes buffered (after the prefix)
    std::unique_ptr<uint8_t[]> buf;
    uint32_t cap = 0;
    uint8_t cls = 0;
    uint32_t lru_prev = kNone, lru_next = kNone;  // activity order, oldest first
    uint32_t buf_prev = kNone, buf_next = kNone;  // flows holding a buffer, oldest first
  };

  uint64_t hashKey(const FlowKey& k) const;
  uint32_t find(const FlowKey& key, uint64_t h) const;
  uint32_t create(const FlowKey& key, uint64_t h, WeirdCounters& weird);
  void removeFlow(uint32_t slot);
  void touch(uint32_t slot, int64_t now_us);
  void resetMessage(Flow& f);  // forget a partial message and its buffer
  void loseSync(Flow& f);      // partial message dropped: wait for resync
  bool reserve(uint32_t slot, uint32_t need, WeirdCounters& weird);
  void releaseBuffer(uint32_t slot);
  void expireBefore(int64_t now_us);
  void consume(uint32_t slot, const PacketContext& pkt, const uint8_t* p, uint32_t n,
               WeirdCounters& weird, TcpMessageSink& sink);
  static void emit(const PacketContext& pkt, const uint8_t* msg, uint32_t len, WeirdCounters& weird,
                   TcpMessageSink& sink);
  void indexInsert(uint32_t slot);
  void indexErase(uint32_t slot);

  TcpLimits limits_;
  uint64_t seed_ = 0;
  std::vector<Flow> slots_;  // grows up to max_flows, then reused
  std::vector<uint32_t> free_slots_;
  SlotIndex index_;                                      // slot numbers by key hash
  SlotList<&Flow::lru_prev, &Flow::lru_next> lru_;       // head: least recently active
  SlotList<&Flow::buf_prev, &Flow::buf_next> buffered_;  // head: oldest buffer
  std::size_t live_ = 0;
  uint64_t bytes_ = 0;
  uint64_t pooled_bytes_ = 0;
  uint64_t evictions_ = 0;
  std::array<std::vector<std::unique_ptr<uint8_t[]>>, kClasses> pool_;
};

}  // namespace exfilwatch::dns
