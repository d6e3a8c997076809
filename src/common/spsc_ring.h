// spsc_ring.h: a bounded single-producer single-consumer ring of
// variable-length records, in one preallocated buffer. Used for the
// receiver -> owning-worker hand-off of raw datagrams and for worker -> EVE
// writer lines. Variable-length records (not fixed slots) because datagrams
// range from 60-byte queries to 9000-byte jumbo frames: fixed 9 KiB slots
// would cost 150x the memory for the same number of DNS packets.
//
// Never allocates after construction, never blocks: a full ring refuses the
// record and the producer counts the drop. Producer and consumer batch their
// index updates (commit()/release()), so the shared cache lines are touched
// once per batch, not once per record.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

namespace exfilwatch {

class SpscByteRing {
 public:
  struct Record {
    const uint8_t* data = nullptr;
    uint32_t len = 0;
    uint32_t tag = 0;  // caller-defined (e.g. wire length and tunnel kind)
    int64_t aux = 0;   // caller-defined (e.g. receive time)
  };

  // Capacity rounds up to a power of two (at least 64 KiB).
  explicit SpscByteRing(std::size_t capacity_bytes) {
    std::size_t cap = 1u << 16;
    while (cap < capacity_bytes) cap <<= 1;
    cap_ = cap;
    mask_ = cap - 1;
    buf_ = std::make_unique<uint8_t[]>(cap);  // construction time, not the packet path
  }
  SpscByteRing(const SpscByteRing&) = delete;
  SpscByteRing& operator=(const SpscByteRing&) = delete;

  std::size_t capacity() const { return cap_; }
  // The largest record that can ever fit (half the ring keeps wrap padding possible).
  std::size_t maxRecord() const { return cap_ / 2 - kHeader; }

  // ---- producer thread ----
  // Space for one record of `len` bytes, or nullptr when the ring is full.
  // The record becomes visible to the consumer at the next commit().
  uint8_t* reserve(uint32_t len, uint32_t tag, int64_t aux) {
    if (len > maxRecord()) return nullptr;
    const uint64_t need = kHeader + round16(len);
    uint64_t off = head_local_ & mask_;
    const uint64_t contiguous = cap_ - off;
    const uint64_t pad = need > contiguous ? contiguous : 0;  // records never wrap
    if (head_local_ + pad + need - tail_cache_ > cap_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (head_local_ + pad + need - tail_cache_ > cap_) return nullptr;
    }
    if (pad != 0) {
      writeHeader(off, kPadding, 0, 0);
      head_local_ += pad;
      off = 0;
    }
    writeHeader(off, len, tag, aux);
    head_local_ += need;
    return buf_.get() + off + kHeader;
  }

  // Publishes the reserved records. True when the consumer had consumed
  // everything published before (it may be asleep: wake it).
  bool commit() {
    if (head_local_ == head_published_) return false;
    head_published_ = head_local_;
    // seq_cst store then load: pairs with the consumer's release()+empty()
    // re-check, so a consumer going to sleep cannot miss this commit.
    head_.store(head_local_, std::memory_order_seq_cst);
    const uint64_t before = prev_commit_;
    prev_commit_ = head_local_;
    return tail_.load(std::memory_order_seq_cst) >= before;
  }

  // ---- consumer thread ----
  // The next published record, or false when there is none.
  bool peek(Record& r) {
    for (;;) {
      if (tail_local_ == head_cache_) {
        head_cache_ = head_.load(std::memory_order_acquire);
        if (tail_local_ == head_cache_) return false;
      }
      const uint64_t off = tail_local_ & mask_;
      uint32_t len = 0;
      std::memcpy(&len, buf_.get() + off, 4);
      if (len == kPadding) {
        tail_local_ += cap_ - off;
        continue;
      }
      r.len = len;
      std::memcpy(&r.tag, buf_.get() + off + 4, 4);
      std::memcpy(&r.aux, buf_.get() + off + 8, 8);
      r.data = buf_.get() + off + kHeader;
      return true;
    }
  }
  // Drops the record peek() returned; its space is reusable after release().
  void pop(const Record& r) { tail_local_ += kHeader + round16(r.len); }
  void release() { tail_.store(tail_local_, std::memory_order_seq_cst); }

  // ---- any thread ----
  bool empty() const {
    return head_.load(std::memory_order_seq_cst) == tail_.load(std::memory_order_seq_cst);
  }
  // Bytes in use (records, their headers and wrap padding) as last published
  // by commit() and release(): a queue-depth gauge for monitoring threads (a
  // metrics scrape). Two plain loads, nothing written, so reading it never
  // slows producer or consumer. Tail is read before head: head only grows
  // and never passes below a tail already released, so the difference
  // cannot underflow; clamped anyway.
  std::size_t usedBytes() const {
    const uint64_t t = tail_.load(std::memory_order_acquire);
    const uint64_t h = head_.load(std::memory_order_relaxed);
    if (h <= t) return 0;
    return h - t >= cap_ ? cap_ : static_cast<std::size_t>(h - t);
  }

 private:
  static constexpr uint32_t kHeader = 16;
  static constexpr uint32_t kPadding = 0xFFFFFFFFU;
  static uint64_t round16(uint64_t n) { return (n + 15) & ~uint64_t{15}; }
  void writeHeader(uint64_t off, uint32_t len, uint32_t tag, int64_t aux) {
    std::memcpy(buf_.get() + off, &len, 4);
    std::memcpy(buf_.get() + off + 4, &tag, 4);
    std::memcpy(buf_.get() + off + 8, &aux, 8);
  }

  std::unique_ptr<uint8_t[]> buf_;
  std::size_t cap_ = 0;
  uint64_t mask_ = 0;
  // Producer-owned.
  alignas(64) uint64_t head_local_ = 0;
  uint64_t head_published_ = 0;
  uint64_t prev_commit_ = 0;
  uint64_t tail_cache_ = 0;
  alignas(64) std::atomic<uint64_t> head_{0};
  alignas(64) std::atomic<uint64_t> tail_{0};
  // Consumer-owned.
  alignas(64) uint64_t tail_local_ = 0;
  uint64_t head_cache_ = 0;
};

}  // namespace exfilwatch
