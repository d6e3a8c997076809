// sync_link.h: the fleet for `exfilwatch replay --fleet` (issue 22): a
// Redis client on its own thread and one synchronous round trip per flush.
// Replay may wait on Redis: its windows follow packet time, so a flush every
// flush_ms of packet time, waited for, gives each shard's process the
// others' counts as a live sensor would have them. A flush that fails is
// counted and replay goes on with local state (as a sensor does).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>

#include "fleet/redis_client.h"
#include "share/pair_sync.h"
#include "share/tls_sync.h"

namespace exfilwatch::share {

struct SyncLinkStats {
  uint64_t flushes = 0, failed = 0, round_trip_ns = 0;
  uint64_t skipped = 0;  // flush times passed while the previous flush was in flight
};

class SyncLink {
 public:
  // Throws fleet::SettingsError (naming the key) when the start-up check
  // fails: a wrong password or URL stops replay before it begins.
  SyncLink(const fleet::ConnectionSettings& settings, std::chrono::milliseconds check_timeout);
  ~SyncLink();

  // One round trip; false when it could not be made (the result then holds
  // a Failure for every command).
  bool roundTrip(fleet::CommandBatch&& batch, fleet::BatchResult& out);

  // Takes the reply of the previous flush and sends the next: collects
  // `sync`'s deltas at `now`. One flush is in flight while replay reads on;
  // while it is, up to kMaxSkips flush times pass before replay waits for
  // it. changed(item) for each pair whose fleet counts came back.
  void flush(PairSync& sync, score::DnsScorer& scorer, uint32_t now,
             const std::function<void(const PairSync::Flush::Item&)>& changed);
  // The TLS pairs go in the same batches as the DNS pairs (before the
  // first flush; null: none).
  void attachTls(TlsSync* sync, score::TlsTracker* tracker,
                 std::function<void(const TlsSync::Flush::Item&)> changed) {
    tls_ = sync;
    tracker_ = tracker;
    tls_changed_ = std::move(changed);
  }
  // Waits for the flush in flight and applies it.
  void finish(PairSync& sync, const std::function<void(const PairSync::Flush::Item&)>& changed);

  const SyncLinkStats& stats() const { return stats_; }
  fleet::ClientStats clientStats() const { return client_->stats(); }

 private:
  std::unique_ptr<fleet::RedisClient> client_;
  std::chrono::milliseconds wait_;
  SyncLinkStats stats_;
  std::unique_ptr<PairSync::Flush> pending_;
  std::unique_ptr<TlsSync::Flush> pending_tls_;
  TlsSync* tls_ = nullptr;
  score::TlsTracker* tracker_ = nullptr;
  std::function<void(const TlsSync::Flush::Item&)> tls_changed_;
  std::future<fleet::BatchResult> pending_result_;
  static constexpr uint32_t kMaxSkips = 32;
  uint32_t skipped_ = 0;
};

}  // namespace exfilwatch::share
