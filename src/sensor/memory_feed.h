// memory_feed.h: tunnel datagrams held in memory, served to one worker in
// recvmmsg-sized batches: the socket-less input of bench/worker_scaling.
// A WorkerPool built on feeds (instead of sockets) runs the very code the
// live sensor runs after recvmmsg returns: inner peek, owner by client hash,
// copy into the SPSC hand-off ring or run here, the owner's Engine, the EVE
// rings. Only the kernel is left out, so the workers' own scaling shows
// without a loopback sender sharing the cores.
//
// Same interface as UdpListener's receive side (receiveBatch, data, caplen,
// wirelen, batchTime, kind): the worker's receive loop is one template over
// both. Each batch is copied into slots (standing in for recvmmsg's copy to
// user space, so the engine reads cache-warm data as it does live) and
// stamped with the clock, once per batch, as the listener does.
#pragma once

#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "decode/packet.h"

namespace exfilwatch {

class MemoryFeed {
 public:
  MemoryFeed(LinkType kind, uint32_t batch_size, uint32_t max_datagram_bytes)
      : kind_(kind),
        batch_(std::max<uint32_t>(1, batch_size)),
        slot_((std::max<uint32_t>(max_datagram_bytes, 64) + 63) & ~63U),
        slots_(std::size_t{batch_} * slot_),
        lens_(batch_) {}

  // Before the pool starts: one datagram (its tunnel header first).
  void add(const uint8_t* data, uint32_t len) {
    offsets_.push_back(arena_.size());
    sizes_.push_back(len);
    arena_.insert(arena_.end(), data, data + len);
  }
  // The datagrams are served `passes` times over (default once).
  void setPasses(uint64_t passes) { passes_ = passes; }
  uint64_t total() const { return static_cast<uint64_t>(sizes_.size()) * passes_; }
  std::size_t datagrams() const { return sizes_.size(); }

  // ---- the worker thread ----
  // The next batch (valid until the next call); 0 when every pass was served.
  uint32_t receiveBatch() {
    uint32_t n = 0;
    while (n < batch_ && pass_ < passes_ && !sizes_.empty()) {
      const uint32_t len = sizes_[next_];
      const uint32_t cap = std::min(len, slot_);
      std::memcpy(slots_.data() + std::size_t{n} * slot_, arena_.data() + offsets_[next_], cap);
      lens_[n] = len;
      ++n;
      if (++next_ == sizes_.size()) {
        next_ = 0;
        ++pass_;
      }
    }
    if (n == 0) return 0;
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    batch_ts_.sec = now.tv_sec;
    batch_ts_.usec = static_cast<int32_t>(now.tv_nsec / 1000);
    return n;
  }
  const uint8_t* data(uint32_t i) const { return slots_.data() + std::size_t{i} * slot_; }
  uint32_t caplen(uint32_t i) const { return std::min(lens_[i], slot_); }
  uint32_t wirelen(uint32_t i) const { return lens_[i]; }
  Timestamp batchTime() const { return batch_ts_; }
  LinkType kind() const { return kind_; }
  bool filtering() const { return false; }  // no senders: listen.sources does not apply
  bool foreign(uint32_t) const { return false; }
  void outer(uint32_t, FrameOuter& out) const { out = FrameOuter{}; }  // no sockets

 private:
  LinkType kind_;
  uint32_t batch_;
  uint32_t slot_;
  std::vector<uint8_t> slots_;
  std::vector<uint32_t> lens_;
  std::vector<uint8_t> arena_;
  std::vector<std::size_t> offsets_;
  std::vector<uint32_t> sizes_;
  uint64_t passes_ = 1;
  uint64_t pass_ = 0;
  std::size_t next_ = 0;
  Timestamp batch_ts_;
};

}  // namespace exfilwatch
