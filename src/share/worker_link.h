// worker_link.h: the live sensor's fleet (issue 22). One FleetService per
// sensor owns the Redis client (its own thread, src/fleet); each worker has
// a WorkerLink with its own PairSync. At the worker's housekeeping the link
// hands a flush to the client when flush_ms has passed and none is in
// flight; submit() never blocks (beyond its bound the batch is dropped and
// counted) and the reply comes back to the worker's own thread through
// `post`, where the overlay is updated and pairs are judged again. The
// packet path never waits on Redis: when it is down, flushes fail, deltas
// stay local and are resent, and alerts go out on local suppression.
#pragma once

#include <any>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "common/counters.h"
#include "fleet/redis_client.h"
#include "share/pair_sync.h"
#include "share/tls_sync.h"

namespace exfilwatch::share {

// Counters for exfilwatch_fleet_* (any thread reads them; every worker
// writes the first three, rarely: atomic adds).
struct FleetCounters {
  std::atomic<uint64_t> flushes{0};       // flushes handed to the client
  std::atomic<uint64_t> flush_failed{0};  // flushes with at least one command unanswered
  std::atomic<uint64_t> dropped{0};       // flushes the client refused (queue full)
  LatencyHistogram round_trip;            // per completed batch (the client's thread only)
};

class FleetService {
 public:
  // The start-up check runs first: throws fleet::SettingsError naming the
  // key when it fails (the sensor does not start). Logs each change of
  // state once (stderr).
  FleetService(const fleet::ConnectionSettings& settings, std::chrono::milliseconds check_timeout);
  ~FleetService();
  void stop();

  fleet::RedisClient& client() { return *client_; }
  const fleet::ConnectionSettings& settings() const { return settings_; }
  bool up() const { return client_->up(); }
  FleetCounters& counters() { return counters_; }
  const FleetCounters& counters() const { return counters_; }

 private:
  fleet::ConnectionSettings settings_;
  FleetCounters counters_;
  std::unique_ptr<fleet::RedisClient> client_;
};

class WorkerLink {
 public:
  using Post = std::function<void(std::function<void()>)>;
  WorkerLink(FleetService& service, const score::DnsScoreConfig& cfg, Post post);
  ~WorkerLink();

  PairSync& sync() { return sync_; }
  // The TLS pairs join the same flushes (before start): `changed` and
  // `emit` as tick's.
  TlsSync& attachTls(const score::TlsScoreConfig& cfg, score::TlsTracker& tracker,
                     std::function<void(const TlsSync::Flush::Item&)> changed,
                     std::function<void(const std::string&, const std::any&)> emit);

  // The worker's housekeeping: a flush when due. `changed` and `emit` run
  // later on the worker's thread (through post) with the reply.
  void tick(score::DnsScorer& scorer, uint32_t now_sec,
            const std::function<void(const PairSync::Flush::Item&)>& changed,
            const std::function<void(const std::string&, const std::any&)>& emit);

 private:
  struct Alive {
    std::mutex mu;
    bool alive = true;
  };
  FleetService& service_;
  PairSync sync_;
  Post post_;
  std::shared_ptr<Alive> alive_;
  std::shared_ptr<PairSync::Flush> in_flight_;
  std::unique_ptr<TlsSync> tls_;
  score::TlsTracker* tracker_ = nullptr;
  std::function<void(const TlsSync::Flush::Item&)> tls_changed_;
  std::function<void(const std::string&, const std::any&)> tls_emit_;
  std::chrono::steady_clock::time_point last_flush_{};
  std::chrono::milliseconds every_;
};

}  // namespace exfilwatch::share
