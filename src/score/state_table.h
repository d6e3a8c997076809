// state_table.h: the bounded per-pair state behind the scoring engine. A
// fixed slab of records, preallocated from a byte budget at configuration
// time, indexed by a chained hash table with a fixed number of buckets, and
// threaded on an intrusive least-recently-used list. When the slab is full
// the least recently used record is recycled and `evictions` counts it, so a
// flood of millions of unique names (attackers choose every name) never
// grows memory past the budget. Nothing here allocates after construction.
//
// A record type Rec must be trivially copyable and have the fields
//   uint64_t key; uint32_t lru_prev, lru_next, chain;
// Key 0 is reserved (empty slot); callers hash their pair to a non-zero key.
//
// A record that also has `uint16_t lru_stamp` is kept in a lazy LRU order:
// an access moves it to the front only when at least a quarter of the
// table's capacity of other records went to the front since it last did.
// Why: the move writes both list neighbours, two more cache misses on
// random records of a table of tens of megabytes, for every DNS query and
// response; a pair asked again soon (most are) now skips them. Eviction
// then goes by the last move rather than the last access, and a record is
// never more than a quarter of the capacity further back than exact LRU
// would keep it: still never the records in use, still bounded.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "common/hash.h"
#include "common/huge_array.h"
#include "common/slot_list.h"

namespace exfilwatch::score {

inline constexpr uint32_t kNil = 0xffffffffu;

template <class Rec>
class StateTable {
  static_assert(std::is_trivially_copyable_v<Rec>, "records are recycled with memset");

 public:
  // Capacity from a byte budget: records plus their share of bucket heads.
  static std::size_t capacityFor(std::size_t budget_bytes) {
    // Buckets are a power of two >= capacity/2 (load <= 2): at most 4 bytes
    // of head per record on top of the record itself.
    const std::size_t per = sizeof(Rec) + sizeof(uint32_t);
    std::size_t cap = budget_bytes / per;
    return cap < 2 ? 2 : cap;
  }

  explicit StateTable(std::size_t capacity) {
    if (capacity < 2) capacity = 2;
    if (capacity > 0xfffffff0u) capacity = 0xfffffff0u;
    // Lazy LRU epochs of capacity/16 moves: a record moved fewer than
    // kLazyEpochs epochs ago is within the front quarter of the list.
    while ((std::size_t{1} << (epoch_shift_ + 1)) <= capacity / 16) ++epoch_shift_;
    std::size_t buckets = 1;
    while (buckets < capacity / 2) buckets <<= 1;
    slab_ = HugeArray<Rec>(capacity);
    heads_ = HugeArray<uint32_t>(buckets);
    heads_.fill(kNil);
    mask_ = buckets - 1;
  }

  // Finds `key`; marks it most recently used. Null when absent.
  Rec* find(uint64_t key) {
    const uint32_t i = lookupToFront(key);
    if (i == kNil) return nullptr;
    touch(i);
    return &slab_[i];
  }
  // Starts loading the bucket head of `key` (a look-up soon after will not
  // wait for it).
  void prefetch(uint64_t key) const { __builtin_prefetch(&heads_[key & mask_]); }
  // The second step, once that head has had time to arrive: starts loading
  // every cache line of the chain's first record (the one a repeated key
  // is, after move-to-front), so that work done before the look-up
  // overlaps the record's miss instead of following it.
  void prefetchFirst(uint64_t key) const {
    const uint32_t i = heads_[key & mask_];
    if (i == kNil) return;
    const char* rec = reinterpret_cast<const char*>(&slab_[i]);
    for (std::size_t line = 0; line < sizeof(Rec); line += 64) __builtin_prefetch(rec + line);
  }
  // Finds without touching the LRU order (for readers such as explain).
  const Rec* peek(uint64_t key) const {
    const uint32_t i = lookup(key);
    return i == kNil ? nullptr : &slab_[i];
  }

  // Finds `key` or makes a zeroed record for it (recycling the least recently
  // used one when full). `inserted` tells which.
  Rec& findOrInsert(uint64_t key, bool& inserted) {
    return findOrInsert(key, inserted, [](Rec&) {});
  }
  // As above; `on_evict(rec)` sees a recycled record before it is cleared
  // (to release what it points at, such as a reassembly buffer).
  template <class F>
  Rec& findOrInsert(uint64_t key, bool& inserted, F&& on_evict) {
    uint32_t i = lookupToFront(key);
    if (i != kNil) {
      inserted = false;
      touch(i);
      return slab_[i];
    }
    inserted = true;
    if (free_ != kNil) {
      i = free_;
      free_ = slab_[i].chain;
    } else if (used_ < slab_.size()) {
      i = static_cast<uint32_t>(used_++);
    } else {
      i = lru_.tail;
      on_evict(slab_[i]);
      unlinkChain(i);
      lru_.unlink(slab_, i);
      ++evictions_;
      --live_;
    }
    std::memset(static_cast<void*>(&slab_[i]), 0, sizeof(Rec));
    Rec& r = slab_[i];
    r.key = key;
    const std::size_t b = key & mask_;
    r.chain = heads_[b];
    heads_[b] = i;
    lru_.pushFront(slab_, i);
    stampMove(r);
    ++live_;
    return r;
  }

  // Removes least recently used records while `stale(rec)` says so (idle
  // expiry); `stale` also releases what the record holds. Returns how many.
  template <class F>
  std::size_t expireLru(F&& stale) {
    std::size_t n = 0;
    while (lru_.tail != kNil && stale(slab_[lru_.tail])) {
      const uint32_t i = lru_.tail;
      unlinkChain(i);
      lru_.unlink(slab_, i);
      slab_[i].key = 0;
      slab_[i].chain = free_;
      free_ = i;
      --live_;
      ++n;
    }
    return n;
  }

  std::size_t capacity() const { return slab_.size(); }
  std::size_t size() const { return live_; }
  uint64_t evictions() const { return evictions_; }
  // Bytes this table holds, all preallocated.
  std::size_t memoryBytes() const {
    return slab_.size() * sizeof(Rec) + heads_.size() * sizeof(uint32_t);
  }
  double bytesPerRecord() const { return static_cast<double>(memoryBytes()) / slab_.size(); }

 private:
  uint32_t lookup(uint64_t key) const {
    for (uint32_t i = heads_[key & mask_]; i != kNil; i = slab_[i].chain) {
      if (slab_[i].key == key) return i;
    }
    return kNil;
  }
  // As lookup(), and a record found further down its chain moves to the
  // chain's front: a pair asked again soon (most are) is then found by the
  // first compare instead of a second dependent cache miss. Its
  // predecessor and the head were just read, so the relink is two stores.
  uint32_t lookupToFront(uint64_t key) {
    uint32_t* const head = &heads_[key & mask_];
    uint32_t i = *head;
    if (i == kNil || slab_[i].key == key) return i;
    for (uint32_t prev = i; (i = slab_[prev].chain) != kNil; prev = i) {
      if (slab_[i].key == key) {
        slab_[prev].chain = slab_[i].chain;
        slab_[i].chain = *head;
        *head = i;
        return i;
      }
    }
    return kNil;
  }
  static constexpr bool kLazy = requires(Rec r) { r.lru_stamp; };
  static constexpr uint16_t kLazyEpochs = 4;
  uint16_t epochNow() const { return static_cast<uint16_t>(moves_ >> epoch_shift_); }
  void stampMove(Rec& r) {
    if constexpr (kLazy) r.lru_stamp = epochNow();
    ++moves_;
  }
  void touch(uint32_t i) {
    if (lru_.head == i) return;
    if constexpr (kLazy) {
      // Fewer than kLazyEpochs epochs (capacity/4 moves) since its last move:
      // it is still in the front quarter of the list. Wrapping 16-bit epochs
      // only ever delay a move by kLazyEpochs epochs once per 65536.
      if (static_cast<uint16_t>(epochNow() - slab_[i].lru_stamp) < kLazyEpochs) return;
    }
    lru_.unlink(slab_, i);
    stampMove(slab_[i]);
    lru_.pushFront(slab_, i);
  }
  void unlinkChain(uint32_t i) {
    uint32_t* link = &heads_[slab_[i].key & mask_];
    while (*link != kNil) {
      if (*link == i) {
        *link = slab_[i].chain;
        return;
      }
      link = &slab_[*link].chain;
    }
  }

  HugeArray<Rec> slab_;        // zeroed, huge pages where offered
  HugeArray<uint32_t> heads_;  // chain heads, kNil when empty
  std::size_t mask_ = 0;
  std::size_t used_ = 0;
  std::size_t live_ = 0;
  SlotList<&Rec::lru_prev, &Rec::lru_next, kNil> lru_;  // head: most recently used
  uint32_t free_ = kNil;                                // expired slots, chained through `chain`
  uint64_t evictions_ = 0;
  uint64_t moves_ = 0;        // records moved to the front of the list, ever
  unsigned epoch_shift_ = 0;  // lazy LRU: an epoch is 2^epoch_shift_ moves
};

// "Have we seen this name under this pair before?": a direct-mapped table of
// 64-bit fingerprints. A hit is a repeat (false hit odds ~2^-64 per probe); a
// fingerprint overwritten by another only makes a later repeat count as new,
// which errs towards detection. Bounded, one probe, no allocation.
class SeenSet {
 public:
  explicit SeenSet(std::size_t budget_bytes) : storage_(std::make_shared<Storage>(budget_bytes)) {}
  // True when `fp` was already there; inserts it otherwise. Relaxed atomics:
  // the set may be shared by every worker's scorer (shareWith), and as a
  // lossy cache a race only loses an insert, never corrupts anything.
  bool testAndSet(uint64_t fp) {
    fp |= 1;  // 0 marks an empty slot
    std::atomic_ref<uint64_t> s(slotOf(fp));
    if (s.load(std::memory_order_relaxed) == fp) return true;
    s.store(fp, std::memory_order_relaxed);
    return false;
  }
  // Starts loading the slot of `fp` (testAndSet soon after will not wait).
  void prefetch(uint64_t fp) const { __builtin_prefetch(&slotOf(fp | 1)); }
  std::size_t memoryBytes() const { return (storage_->mask + 1) * sizeof(uint64_t); }
  // Use `other`'s slots from now on: names seen by any worker count as seen
  // for all, as they do with one worker (clients spread over workers by the
  // hand-off still share antivirus and CDN names).
  void shareWith(const SeenSet& other) { storage_ = other.storage_; }

 private:
  // The one slot `fp` (with its low bit set) may occupy.
  uint64_t& slotOf(uint64_t fp) const {
    return storage_->slots[hashing::fmix64(fp) & storage_->mask];
  }

  struct Storage {
    // Zeroed at construction, on huge pages where offered (16 MB read at
    // random: on small pages nearly every probe also missed the TLB).
    // Accessed only through std::atomic_ref.
    static_assert(std::atomic_ref<uint64_t>::required_alignment <= alignof(uint64_t));
    explicit Storage(std::size_t budget_bytes) : slots(slotsFor(budget_bytes)) {
      mask = slots.size() - 1;
    }
    static std::size_t slotsFor(std::size_t budget_bytes) {
      std::size_t n = 1;
      while (n * 2 * sizeof(uint64_t) <= budget_bytes) n <<= 1;
      return n;
    }
    HugeArray<uint64_t> slots;
    std::size_t mask = 0;
  };
  std::shared_ptr<Storage> storage_;
};

}  // namespace exfilwatch::score
