// striped_table.h: a StateTable that the workers of one sensor process can
// share. The DNS scorer's domain view (DomainTable, dns_scorer.h) keeps its
// records in one, in one budget per sensor process. A replay or a one-worker sensor owns a
// private table (one stripe, no lock); a multi-worker sensor gives every
// worker's scorer the same shared table, so that a leak spread over hosts
// that the hand-off puts on different workers is still one domain.
//
// Shared: K stripes by key, each a StateTable of budget/K with its own
// mutex. The scorer holds a stripe's lock (Locked) across everything it
// does with a record, verdict and suppression included, so no record is
// torn and two workers cannot both raise a domain's first alert. Records
// are touched only by names new under a repeatedly used domain, so the
// locks are rare and short. Readers on other threads (metrics) see the
// record count and evictions through relaxed per-stripe copies.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "score/state_table.h"

namespace exfilwatch::score {

template <class Rec>
class StripedTable {
 public:
  static constexpr std::size_t kMaxStripes = 64;
  // Each stripe keeps at least this much, so a small budget is not cut
  // into stripes of a handful of records.
  static constexpr std::size_t kMinStripeBytes = 16 << 10;

  // `shared`: several threads use it (stripes and locks); otherwise one
  // stripe and no locking.
  StripedTable(std::size_t budget_bytes, bool shared) : shared_(shared) {
    std::size_t k = 1;
    while (shared && k < kMaxStripes && budget_bytes / (k * 2) >= kMinStripeBytes) k *= 2;
    while ((std::size_t{1} << shift_) < k) ++shift_;
    const std::size_t cap = StateTable<Rec>::capacityFor(budget_bytes / k);
    stripes_.reserve(k);
    for (std::size_t i = 0; i < k; ++i) stripes_.push_back(std::make_unique<Stripe>(cap));
  }

  class alignas(64) Stripe {
   public:
    explicit Stripe(std::size_t capacity) : table(capacity) {}
    std::mutex mu;
    StateTable<Rec> table;
    // Copies for readers on other threads; written by the lock's holder
    // (plain stores: no read-modify-write).
    std::atomic<uint64_t> records{0}, evictions{0};
    void publish() {
      records.store(table.size(), std::memory_order_relaxed);
      evictions.store(table.evictions(), std::memory_order_relaxed);
    }
  };

  // A stripe's table for as long as it lives, locked when shared.
  class Locked {
   public:
    Locked(Stripe& s, bool lock) : s_(s), locked_(lock) {
      if (locked_) s_.mu.lock();
    }
    ~Locked() {
      s_.publish();
      if (locked_) s_.mu.unlock();
    }
    Locked(const Locked&) = delete;
    Locked& operator=(const Locked&) = delete;
    StateTable<Rec>* operator->() const { return &s_.table; }
    StateTable<Rec>& operator*() const { return s_.table; }

   private:
    Stripe& s_;
    bool locked_;
  };

  // The stripe of `key`, locked when shared.
  Locked lock(uint64_t key) const { return Locked(*stripes_[stripeOf(key)], shared_); }

  bool shared() const { return shared_; }
  std::size_t stripes() const { return stripes_.size(); }
  // Any thread: records in use and records recycled because a stripe was full.
  std::size_t size() const {
    std::size_t n = 0;
    for (const auto& s : stripes_) n += s->records.load(std::memory_order_relaxed);
    return n;
  }
  uint64_t evictions() const {
    uint64_t n = 0;
    for (const auto& s : stripes_) n += s->evictions.load(std::memory_order_relaxed);
    return n;
  }
  std::size_t capacity() const { return stripes_.size() * stripes_.front()->table.capacity(); }
  std::size_t memoryBytes() const {
    return stripes_.size() * stripes_.front()->table.memoryBytes();
  }

 private:
  // The top bits: StateTable's buckets use the low ones.
  std::size_t stripeOf(uint64_t key) const { return shift_ ? key >> (64 - shift_) : 0; }

  bool shared_;
  unsigned shift_ = 0;
  std::vector<std::unique_ptr<Stripe>> stripes_;
};

}  // namespace exfilwatch::score
