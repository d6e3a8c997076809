// fragments.cc: bounded-memory IPv4/IPv6 fragment reassembly (see fragments.h).
//
// Layout: a slot array (grown up to max_datagrams, then reused through a free
// list), an open-addressing index over it, and an intrusive age list in order
// of first fragment, which is both the timeout order and the eviction order.
// Payload bytes are written straight at their offset into one contiguous
// buffer per datagram, taken from a small pool of size classes, so a datagram
// completes without a final copy and steady-state traffic does not allocate.
//
// Overlap policy: a fragment whose bytes overlap bytes already received is
// accepted only when the overlapping bytes are identical (a mirror or the
// network duplicated it: counted as ip.fragment_duplicate when it adds
// nothing new). Overlap with different bytes drops the whole datagram
// (ip.fragment_overlap). That is what RFC 5722 requires for IPv6 and is the
// safe choice for IPv4 too: a sensor that picks "first wins" or "last wins"
// can be shown a different payload from the one the resolver reassembles.
//
// A refused datagram (overlap, too large, too many fragments, truncated,
// impossible lengths) stays in the table as a "dead" key with no buffer until
// it times out, so its remaining fragments are absorbed quietly instead of
// starting a new datagram that would later be counted as a timeout as well.
#include "decode/fragments.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "common/hash.h"

namespace exfilwatch {

namespace {

constexpr uint32_t kClassSize[] = {2048, 8192, 65536};

uint8_t classFor(uint32_t need) {
  uint8_t c = 0;
  while (c + 1 < 3 && kClassSize[c] < need) ++c;
  return c;
}

using hashing::fmix64;
using hashing::mixAddress;
using hashing::mixIn;
using hashing::randomSeed;

}  // namespace

uint64_t FragmentKey::hash(uint64_t seed) const {
  uint64_t h = mixAddress(seed, src);
  h = mixAddress(h, dst);
  h = mixIn(h, (uint64_t{id} << 8) | proto);
  return tunnel ? mixIn(h, tunnel) : h;
}

FragmentReassembler::FragmentReassembler(FragmentLimits limits)
    : limits_(limits), index_(std::max<uint32_t>(limits.max_datagrams, 1)) {
  // Degenerate limits would make every datagram unreassemblable; clamp them
  // to something that still works rather than failing at runtime.
  limits_.max_datagrams = std::max<uint32_t>(limits_.max_datagrams, 1);
  limits_.max_fragments_per_datagram = std::max<uint32_t>(limits_.max_fragments_per_datagram, 1);
  seed_ = randomSeed();
  free_slots_.reserve(limits_.max_datagrams);
  // Pool vectors never grow on the packet path: a buffer that does not fit
  // is simply freed.
  const uint64_t pool_limit = limits_.max_bytes / 8;
  for (std::size_t c = 0; c < kClasses; ++c)
    pool_[c].reserve(
        static_cast<std::size_t>(std::min<uint64_t>(pool_limit / kClassSize[c], 4096)));
}

uint32_t FragmentReassembler::find(const FragmentKey& key, uint64_t h) const {
  return index_.find(h, [&](uint32_t s) { return slots_[s].hash == h && slots_[s].key == key; });
}

void FragmentReassembler::indexInsert(uint32_t slot) { index_.insert(slot, slots_[slot].hash); }

void FragmentReassembler::indexErase(uint32_t slot) {
  index_.erase(slot, slots_[slot].hash, [&](uint32_t s) { return slots_[s].hash; });
}

void FragmentReassembler::releaseBuffer(Datagram& d) {
  if (!d.buf) return;
  bytes_ -= d.cap;
  auto& pool = pool_[d.cls];
  if (pooled_bytes_ + d.cap <= limits_.max_bytes / 8 && pool.size() < pool.capacity()) {
    pooled_bytes_ += d.cap;
    pool.push_back(std::move(d.buf));
  }
  d.buf.reset();
  d.cap = 0;
}

// Takes the slot out of the index and the age list; the slot itself (and its
// buffer) is freed by the caller or, for a completed datagram, lazily.
void FragmentReassembler::remove(uint32_t slot) {
  Datagram& d = slots_[slot];
  indexErase(slot);
  age_.unlink(slots_, slot);
  --live_;
  if (slot == completed_) return;  // its bytes are still on loan to the caller
  releaseBuffer(d);
  d.ranges.clear();
  d.in_use = false;
  free_slots_.push_back(slot);
}

void FragmentReassembler::releaseCompleted() {
  if (completed_ == kNone) return;
  Datagram& d = slots_[completed_];
  releaseBuffer(d);
  d.ranges.clear();
  d.in_use = false;
  free_slots_.push_back(completed_);
  completed_ = kNone;
}

void FragmentReassembler::kill(uint32_t slot) {
  Datagram& d = slots_[slot];
  releaseBuffer(d);
  d.ranges.clear();
  d.dead = true;
}

void FragmentReassembler::evictOldest(uint32_t keep, WeirdCounters& weird) {
  uint32_t s = age_.head;
  if (s == keep) s = slots_[s].next;
  if (s == kNone) return;
  if (!slots_[s].dead) weird.add(Weird::FragTableFull);
  remove(s);
}

uint32_t FragmentReassembler::create(const FragmentKey& key, uint64_t h, int64_t now_us,
                                     WeirdCounters& weird) {
  while (live_ >= limits_.max_datagrams && !age_.empty()) evictOldest(kNone, weird);
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    if (slots_.size() >= limits_.max_datagrams) return kNone;  // unreachable by construction
    slots_.emplace_back();
    slot = static_cast<uint32_t>(slots_.size() - 1);
    slots_[slot].ranges.reserve(std::min<uint32_t>(limits_.max_fragments_per_datagram, 256));
  }
  Datagram& d = slots_[slot];
  d.key = key;
  d.hash = h;
  d.first_us = now_us;
  d.total = 0;
  d.fragments = 0;
  d.total_known = false;
  d.dead = false;
  d.in_use = true;
  age_.pushBack(slots_, slot);
  indexInsert(slot);
  ++live_;
  return slot;
}

// Makes the slot's buffer hold at least `need` bytes within the byte budget,
// evicting the oldest other datagrams that hold buffers if necessary.
bool FragmentReassembler::grow(uint32_t slot, uint32_t need, WeirdCounters& weird) {
  Datagram& d = slots_[slot];
  if (need <= d.cap) return true;
  const uint8_t cls = classFor(need);
  const uint32_t size = kClassSize[cls];
  while (bytes_ + size > limits_.max_bytes) {
    uint32_t victim = age_.head;
    while (victim != kNone && (victim == slot || !slots_[victim].buf)) victim = slots_[victim].next;
    if (victim == kNone) {  // the budget cannot hold even this one datagram
      weird.add(Weird::FragTableFull);
      kill(slot);
      return false;
    }
    weird.add(Weird::FragTableFull);
    remove(victim);
  }
  std::unique_ptr<uint8_t[]> buf;
  if (!pool_[cls].empty()) {
    buf = std::move(pool_[cls].back());
    pool_[cls].pop_back();
    pooled_bytes_ -= size;
  } else {
    buf.reset(new (std::nothrow) uint8_t[size]);
    if (!buf) {
      weird.add(Weird::FragTableFull);
      kill(slot);
      return false;
    }
  }
  if (d.buf && !d.ranges.empty()) std::memcpy(buf.get(), d.buf.get(), d.ranges.back().end);
  releaseBuffer(d);
  d.buf = std::move(buf);
  d.cap = size;
  d.cls = cls;
  bytes_ += size;
  return true;
}

void FragmentReassembler::expireBefore(int64_t now_us, WeirdCounters& weird) {
  const int64_t timeout_us = int64_t{limits_.timeout_sec} * 1000000;
  // The age list is in arrival order; with timestamps that go backwards it is
  // only approximately sorted, which can delay (never skip) an expiry.
  while (!age_.empty() && now_us - slots_[age_.head].first_us > timeout_us) {
    if (!slots_[age_.head].dead) weird.add(Weird::FragTimeout);
    remove(age_.head);
  }
}

void FragmentReassembler::expire(Timestamp now, WeirdCounters& weird) {
  releaseCompleted();
  expireBefore(now.micros(), weird);
}

bool FragmentReassembler::add(const FragmentKey& key, Timestamp ts, uint32_t offset, bool more,
                              const uint8_t* data, uint32_t len, uint32_t wire_len,
                              const uint8_t*& out, uint32_t& out_len, WeirdCounters& weird) {
  out = nullptr;
  out_len = 0;
  releaseCompleted();
  const int64_t now_us = ts.micros();
  expireBefore(now_us, weird);

  // Caller contract violations: nothing sensible can be stored.
  if (len > wire_len || (len > 0 && data == nullptr)) {
    weird.add(Weird::FragBadLength);
    return false;
  }

  // An atomic fragment (offset 0, no more fragments) is a whole datagram and,
  // per RFC 6946, is processed in isolation from any pending reassembly.
  if (offset == 0 && !more) {
    if (wire_len == 0) {
      weird.add(Weird::FragBadLength);
      return false;
    }
    if (wire_len > kMaxDatagram) {
      weird.add(Weird::FragTooLarge);
      return false;
    }
    if (len < wire_len) {
      weird.add(Weird::FragTruncated);
      return false;
    }
    out = data;
    out_len = len;
    return true;
  }

  const uint64_t h = key.hash(seed_);
  uint32_t slot = find(key, h);
  if (slot != kNone && slots_[slot].dead) return false;  // already refused and counted

  // Fragments that can never be part of a valid datagram. Non-last fragments
  // must carry a multiple of 8 bytes (RFC 791, RFC 8200); offsets come from
  // 8-byte units, so anything else is a caller or wire error.
  Weird refuse = Weird::Count_;
  if (wire_len == 0 || (offset & 7) != 0 || (more && (wire_len & 7) != 0))
    refuse = Weird::FragBadLength;
  else if (uint64_t{offset} + wire_len > kMaxDatagram)
    refuse = Weird::FragTooLarge;
  else if (len < wire_len)
    refuse = Weird::FragTruncated;
  if (refuse != Weird::Count_) {
    weird.add(refuse);
    if (slot == kNone) slot = create(key, h, now_us, weird);
    if (slot != kNone) kill(slot);
    return false;
  }

  if (slot == kNone) {
    slot = create(key, h, now_us, weird);
    if (slot == kNone) return false;
  }

  const uint32_t begin = offset;
  const uint32_t end = offset + wire_len;
  Datagram* d = &slots_[slot];
  // The last fragment fixes the length; everything must agree with it.
  const uint32_t seen_end = d->ranges.empty() ? 0 : d->ranges.back().end;
  const bool inconsistent = more ? (d->total_known && end > d->total)
                                 : ((d->total_known && d->total != end) || seen_end > end);
  if (inconsistent) {
    weird.add(Weird::FragBadLength);
    kill(slot);
    return false;
  }

  // Overlap check against the bytes already in the buffer.
  uint32_t covered = 0;
  for (const Range& r : d->ranges) {
    if (r.begin >= end) break;
    const uint32_t ob = std::max(r.begin, begin);
    const uint32_t oe = std::min(r.end, end);
    if (ob >= oe) continue;
    if (std::memcmp(d->buf.get() + ob, data + (ob - begin), oe - ob) != 0) {
      weird.add(Weird::FragOverlap);
      kill(slot);
      return false;
    }
    covered += oe - ob;
  }

  if (covered == wire_len) {
    // Nothing new (a duplicate); it may still be the one that says "last".
    weird.add(Weird::FragDuplicate);
  } else {
    if (++d->fragments > limits_.max_fragments_per_datagram) {
      weird.add(Weird::FragTooMany);
      kill(slot);
      return false;
    }
    if (!grow(slot, end, weird)) return false;
    d = &slots_[slot];
    // Overlapping bytes are identical, so copying the whole fragment is safe.
    std::memcpy(d->buf.get() + begin, data, wire_len);
    // Insert [begin, end) and merge with every range it touches or abuts.
    auto& rs = d->ranges;
    auto it = std::lower_bound(rs.begin(), rs.end(), begin,
                               [](const Range& r, uint32_t b) { return r.end < b; });
    Range merged{begin, end};
    auto last = it;
    while (last != rs.end() && last->begin <= end) {
      merged.begin = std::min(merged.begin, last->begin);
      merged.end = std::max(merged.end, last->end);
      ++last;
    }
    if (it == last) {
      rs.insert(it, merged);
    } else {
      *it = merged;
      rs.erase(it + 1, last);
    }
  }
  if (!more) {
    d->total = end;
    d->total_known = true;
  }

  if (d->total_known && d->ranges.size() == 1 && d->ranges[0].begin == 0 &&
      d->ranges[0].end == d->total) {
    out = d->buf.get();
    out_len = d->total;
    completed_ = slot;  // unlinked now, its buffer is released on the next call
    remove(slot);
    return true;
  }
  return false;
}

}  // namespace exfilwatch
