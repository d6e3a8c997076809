// tcp_stream.cc: DNS over TCP message reassembly (see tcp_stream.h).
//
// Per direction we keep only what is needed to cut the byte stream into
// messages: the next expected sequence number, the length prefix being read
// and, when a message spans segments, its bytes so far. Complete messages in a
// segment are handed to the sink straight from the packet (no copy), which is
// the common case: most DNS over TCP messages fit one segment.
//
// Policies, and why:
// - Sequence numbers are compared as signed 32-bit differences, so wrap-around
//   is invisible. Bytes before next_seq are retransmissions: ignored (the first
//   copy wins; a passive sensor cannot know which copy the receiver kept).
// - A segment beyond next_seq (loss, or reordering) is a gap: we do not queue
//   future segments. DNS over TCP is low-volume and reordering on a mirror is
//   rare; a queue would be state an attacker can fill. The partial message is
//   dropped (dns_tcp.gap) and the stream resynchronises at the first segment
//   that starts with a plausible message (dns_tcp.resync); when the segment
//   right after the loss is not plausible, dns_tcp.resync_failed is counted
//   once for that loss.
// - Bytes missing because of the snap length are a gap like any other.
// - A length prefix below 12 (no room for a DNS header) is counted as
//   dns_tcp.short_message and skipped; the framing itself stays valid.
// - Memory: the flow table holds at most max_flows directions (least recently
//   active evicted first, dns_tcp.flow_evicted); partial-message buffers come
//   from size classes, count against max_buffered_bytes and, when that budget
//   is exhausted, the oldest partial message of another flow is dropped
//   (dns_tcp.buffer_budget_exceeded). A buffer is returned as soon as its
//   message completes, so idle flows hold no payload bytes.
#include "dns/tcp_stream.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "common/hash.h"

namespace exfilwatch::dns {

namespace {

constexpr uint32_t kClassSize[] = {512, 2048, 8192, 65536};
constexpr uint32_t kDnsHeader = 12;

uint8_t classFor(uint32_t need) {
  uint8_t c = 0;
  while (c + 1 < 4 && kClassSize[c] < need) ++c;
  return c;
}

using hashing::fmix64;
using hashing::mixAddress;
using hashing::mixIn;
using hashing::randomSeed;

}  // namespace

bool plausibleMessageStart(const uint8_t* p, std::size_t n) {
  if (p == nullptr || n < 2) return false;
  const uint32_t len = loadBe16(p);
  if (len < kDnsHeader) return false;
  if (n < 2 + kDnsHeader) return true;  // only the prefix is visible: it is all we can judge
  const uint8_t* h = p + 2;
  // Opcodes in use: QUERY, IQUERY, STATUS, NOTIFY, UPDATE, DSO (RFC 8490).
  const unsigned opcode = (h[2] >> 3) & 0x0f;
  if (opcode == 3 || opcode > 6) return false;
  // A query carries no RCODE, and a standard query asks one question (RFC
  // 9619). This is what rejects a message body whose length prefix was lost:
  // its ID reads as the length and its flags/QDCOUNT as the header.
  const bool is_query = (h[2] & 0x80) == 0;
  if (is_query && (h[3] & 0x0f) != 0) return false;
  if (opcode == 0 && loadBe16(h + 4) > 1) return false;
  // Every question needs at least 5 bytes (root name, type, class) and every
  // record at least 11; counts that cannot fit the length are not a header.
  const uint64_t qd = loadBe16(h + 4);
  const uint64_t rr = uint64_t{loadBe16(h + 6)} + loadBe16(h + 8) + loadBe16(h + 10);
  return kDnsHeader + qd * 5 + rr * 11 <= len;
}

TcpReassembler::TcpReassembler(TcpLimits limits)
    : limits_(limits), index_(std::max<uint32_t>(limits.max_flows, 1)) {
  limits_.max_flows = std::max<uint32_t>(limits_.max_flows, 1);
  seed_ = randomSeed();
  free_slots_.reserve(limits_.max_flows);
  // Pool vectors never grow on the packet path: a buffer that does not fit
  // is simply freed.
  const uint64_t pool_limit = limits_.max_buffered_bytes / 8;
  for (std::size_t c = 0; c < kClasses; ++c)
    pool_[c].reserve(
        static_cast<std::size_t>(std::min<uint64_t>(pool_limit / kClassSize[c], 4096)));
}

uint64_t TcpReassembler::hashKey(const FlowKey& k) const {
  uint64_t h = mixAddress(seed_, k.src);
  h = mixAddress(h, k.dst);
  return mixIn(h, (uint64_t{k.sport} << 48) | (uint64_t{k.dport} << 32) | k.tunnel);
}

uint32_t TcpReassembler::find(const FlowKey& key, uint64_t h) const {
  return index_.find(h, [&](uint32_t s) { return slots_[s].hash == h && slots_[s].key == key; });
}

void TcpReassembler::indexInsert(uint32_t slot) { index_.insert(slot, slots_[slot].hash); }

void TcpReassembler::indexErase(uint32_t slot) {
  index_.erase(slot, slots_[slot].hash, [&](uint32_t s) { return slots_[s].hash; });
}

void TcpReassembler::releaseBuffer(uint32_t slot) {
  Flow& f = slots_[slot];
  if (!f.buf) return;
  bytes_ -= f.cap;
  buffered_.unlink(slots_, slot);
  auto& pool = pool_[f.cls];
  if (pooled_bytes_ + f.cap <= limits_.max_buffered_bytes / 8 && pool.size() < pool.capacity()) {
    pooled_bytes_ += f.cap;
    pool.push_back(std::move(f.buf));
  }
  f.buf.reset();
  f.cap = 0;
}

void TcpReassembler::resetMessage(Flow& f) {
  f.prefix_have = 0;
  f.have = 0;
  releaseBuffer(static_cast<uint32_t>(&f - slots_.data()));
}

void TcpReassembler::loseSync(Flow& f) {
  resetMessage(f);
  f.state = State::Lost;
  f.lost_reported = false;
}

void TcpReassembler::removeFlow(uint32_t slot) {
  Flow& f = slots_[slot];
  indexErase(slot);
  lru_.unlink(slots_, slot);
  resetMessage(f);
  f.in_use = false;
  free_slots_.push_back(slot);
  --live_;
}

void TcpReassembler::touch(uint32_t slot, int64_t now_us) {
  Flow& f = slots_[slot];
  f.last_us = now_us;
  if (lru_.tail == slot) return;
  lru_.unlink(slots_, slot);
  lru_.pushBack(slots_, slot);
}

uint32_t TcpReassembler::create(const FlowKey& key, uint64_t h, WeirdCounters& weird) {
  while (live_ >= limits_.max_flows && !lru_.empty()) {
    weird.add(Weird::DnsTcpFlowTableFull);
    ++evictions_;
    removeFlow(lru_.head);
  }
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    if (slots_.size() >= limits_.max_flows) return kNone;  // unreachable by construction
    slots_.emplace_back();
    slot = static_cast<uint32_t>(slots_.size() - 1);
  }
  Flow& f = slots_[slot];
  f.key = key;
  f.hash = h;
  f.next_seq = 0;
  f.syn_seq = 0;
  f.has_syn = false;
  f.in_use = true;
  f.lost_reported = false;
  f.state = State::Lost;
  f.prefix_have = 0;
  f.have = 0;
  // Link at the LRU tail; touch() sets the time.
  lru_.pushBack(slots_, slot);
  indexInsert(slot);
  ++live_;
  return slot;
}

// Makes the flow's buffer hold `need` bytes within the global budget,
// dropping the oldest partial messages of other flows if needed.
bool TcpReassembler::reserve(uint32_t slot, uint32_t need, WeirdCounters& weird) {
  if (need <= slots_[slot].cap) return true;
  const uint8_t cls = classFor(need);
  const uint32_t size = kClassSize[cls];
  while (bytes_ + size > limits_.max_buffered_bytes) {
    weird.add(Weird::DnsTcpBufferBudget);
    uint32_t victim = buffered_.head;
    if (victim == slot) victim = slots_[victim].buf_next;
    if (victim == kNone) return false;
    loseSync(slots_[victim]);
  }
  std::unique_ptr<uint8_t[]> buf;
  if (!pool_[cls].empty()) {
    buf = std::move(pool_[cls].back());
    pool_[cls].pop_back();
    pooled_bytes_ -= size;
  } else {
    buf.reset(new (std::nothrow) uint8_t[size]);
    if (!buf) {
      weird.add(Weird::DnsTcpBufferBudget);
      return false;
    }
  }
  Flow& f = slots_[slot];
  const bool listed = static_cast<bool>(f.buf);
  if (listed) {
    std::memcpy(buf.get(), f.buf.get(), f.have);
    // Swap in place: keep the flow's position in the buffer-age list.
    bytes_ -= f.cap;
    auto& pool = pool_[f.cls];
    if (pooled_bytes_ + f.cap <= limits_.max_buffered_bytes / 8 && pool.size() < pool.capacity()) {
      pooled_bytes_ += f.cap;
      pool.push_back(std::move(f.buf));
    }
  } else {
    buffered_.pushBack(slots_, slot);
  }
  f.buf = std::move(buf);
  f.cap = size;
  f.cls = cls;
  bytes_ += size;
  return true;
}

void TcpReassembler::emit(const PacketContext& pkt, const uint8_t* msg, uint32_t len,
                          WeirdCounters& weird, TcpMessageSink& sink) {
  if (len < kDnsHeader) {
    weird.add(Weird::DnsTcpShortMessage);
    return;
  }
  sink.onTcpDnsMessage(pkt, msg, len);
}

// Cuts p[0..n), which continues the stream exactly at next_seq of a synced
// flow, into messages. On a budget failure the flow loses sync and the rest of
// the bytes are discarded.
void TcpReassembler::consume(uint32_t slot, const PacketContext& pkt, const uint8_t* p, uint32_t n,
                             WeirdCounters& weird, TcpMessageSink& sink) {
  Flow& f = slots_[slot];
  while (n > 0) {
    if (f.prefix_have < 2) {
      if (f.prefix_have == 0 && n >= 2) {
        const uint32_t len = loadBe16(p);
        if (n - 2 >= len) {  // fast path: the whole message is here, no copy
          emit(pkt, p + 2, len, weird, sink);
          p += 2 + len;
          n -= 2 + len;
          continue;
        }
        f.prefix[0] = p[0];
        f.prefix[1] = p[1];
        f.prefix_have = 2;
        p += 2;
        n -= 2;
      } else {
        f.prefix[f.prefix_have++] = *p++;
        --n;
        if (f.prefix_have < 2) continue;
      }
      f.have = 0;
    }
    const uint32_t len = (uint32_t{f.prefix[0]} << 8) | f.prefix[1];
    const uint32_t take = std::min(n, len - f.have);
    if (f.have == 0 && take == len) {  // only the prefix was split: still no copy
      emit(pkt, p, len, weird, sink);
    } else {
      if (take == 0) return;  // the segment ended right after the prefix
      if (!reserve(slot, f.have + take, weird)) {
        loseSync(f);
        return;
      }
      std::memcpy(f.buf.get() + f.have, p, take);
      f.have += take;
      if (f.have < len) return;  // take == n: the segment is used up
      emit(pkt, f.buf.get(), len, weird, sink);
    }
    p += take;
    n -= take;
    resetMessage(f);  // message done; its buffer goes back to the pool
  }
}

void TcpReassembler::expireBefore(int64_t now_us) {
  const int64_t timeout_us = int64_t{limits_.idle_timeout_sec} * 1000000;
  while (!lru_.empty() && now_us - slots_[lru_.head].last_us > timeout_us) removeFlow(lru_.head);
}

void TcpReassembler::expire(Timestamp now) { expireBefore(now.micros()); }

void TcpReassembler::onSegment(const PacketContext& pkt, WeirdCounters& weird,
                               TcpMessageSink& sink) {
  if (pkt.ip_proto != ipproto::kTcp) return;
  const int64_t now_us = pkt.ts.micros();
  expireBefore(now_us);

  FlowKey key;
  key.src = pkt.src;
  key.dst = pkt.dst;
  key.sport = pkt.src_port;
  key.dport = pkt.dst_port;
  if (const TunnelLayer* t = pkt.innerTunnel())
    key.tunnel = (uint32_t{static_cast<uint8_t>(t->type)} << 24) | (t->vni & 0xffffff);
  const uint64_t h = hashKey(key);
  uint32_t slot = find(key, h);

  const uint8_t flags = pkt.tcp_flags;
  if (flags & tcpflag::kRst) {  // the connection is gone; RST data is not stream data
    if (slot != kNone) removeFlow(slot);
    return;
  }

  const uint32_t wire = pkt.payload_wire_len;
  const uint32_t have = pkt.payload ? std::min(pkt.payload_len, wire) : 0;
  uint32_t seq = pkt.tcp_seq;

  if (flags & tcpflag::kSyn) {
    const bool retransmitted_syn =
        slot != kNone && slots_[slot].has_syn && slots_[slot].syn_seq == seq;
    if (!retransmitted_syn) {
      if (slot == kNone) {
        slot = create(key, h, weird);
        if (slot == kNone) return;
      } else {
        resetMessage(slots_[slot]);  // a new connection on the same ports
      }
      Flow& f = slots_[slot];
      f.has_syn = true;
      f.syn_seq = seq;
      f.next_seq = seq + 1;
      f.state = State::Synced;
      f.lost_reported = false;
    }
    seq += 1;  // data on a SYN (TCP Fast Open) starts after it
  }

  if (wire == 0) {  // pure ACK, SYN or FIN: nothing for the stream
    if (slot != kNone) {
      if (flags & tcpflag::kFin)
        removeFlow(slot);
      else
        touch(slot, now_us);
    }
    return;
  }

  uint32_t skip = 0;  // leading bytes of this segment already consumed
  if (slot == kNone) {
    // First sight of this direction mid-flow (no SYN): a message start is all
    // we can trust, so require one.
    slot = create(key, h, weird);
    if (slot == kNone) return;
    Flow& f = slots_[slot];
    f.next_seq = seq;
    if (plausibleMessageStart(pkt.payload, have)) {
      f.state = State::Synced;
    } else {
      weird.add(Weird::DnsTcpResyncFailed);
      f.lost_reported = true;
    }
  } else {
    Flow& f = slots_[slot];
    const int32_t delta = static_cast<int32_t>(seq - f.next_seq);  // mod 2^32
    if (delta < 0) {
      const uint32_t behind = f.next_seq - seq;
      weird.add(Weird::DnsTcpRetransmit);
      if (behind >= wire) {  // nothing new
        touch(slot, now_us);
        if (flags & tcpflag::kFin) removeFlow(slot);
        return;
      }
      skip = behind;
    } else if (delta > 0) {
      if (f.state == State::Synced) {
        weird.add(Weird::DnsTcpGap);
        loseSync(f);
      }
      f.next_seq = seq;
    }
  }

  Flow& f = slots_[slot];
  const uint8_t* p = pkt.payload ? pkt.payload + std::min(skip, have) : nullptr;
  const uint32_t avail = have > skip ? have - skip : 0;
  const uint32_t fresh = wire - skip;  // new bytes on the wire

  if (f.state == State::Lost) {
    if (plausibleMessageStart(p, avail)) {
      weird.add(Weird::DnsTcpResync);
      f.state = State::Synced;
      f.lost_reported = false;
    } else if (!f.lost_reported) {
      weird.add(Weird::DnsTcpResyncFailed);
      f.lost_reported = true;
    }
  }
  if (f.state == State::Synced) {
    consume(slot, pkt, p, avail, weird, sink);
    // Bytes the capture did not keep: whatever they belonged to is lost.
    if (avail < fresh && f.state == State::Synced) {
      weird.add(Weird::DnsTcpGap);
      loseSync(f);
    }
  }
  f.next_seq += fresh;
  touch(slot, now_us);
  if (flags & tcpflag::kFin) removeFlow(slot);
}

}  // namespace exfilwatch::dns
