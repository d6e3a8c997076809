// tls_sync.h: the fleet's shared TLS upload volume (issue 22, docs/fleet.md).
// Behind the NLB each TLS connection lands on one sensor: an upload split
// over many connections to one destination is seen 1/N per sensor. TlsSync
// is the TLS tracker's TlsSharedHook, as PairSync is the DNS scorer's: it
// notes which (client, destination) pairs changed and, at each flush, adds
// one EVALSHA per pair to the batch, which adds this sensor's deltas of the
// window counters (up, down, flows, upload flows) and returns the fleet's
// totals in the same round trip. Per pair it keeps what it sent to each
// window bucket and what the others added (total minus sent). Bounded and
// counted; nothing here touches the network (the drivers submit).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "fleet/redis_client.h"
#include "fleet/redis_protocol.h"
#include "score/tls_shared.h"
#include "score/tls_tracker.h"
#include "share/pair_sync.h"

namespace exfilwatch::share {

struct TlsShareStats {
  uint64_t flushes = 0, pairs_sent = 0, commands = 0, bytes = 0;
  uint64_t below_floor = 0;    // changed pairs not (yet) shared: local score under the floor
  uint64_t dirty_dropped = 0;  // changes not noted: too many pairs between flushes
  uint64_t pairs_full = 0;     // pairs not shared: the table was full
  uint64_t pairs_expired = 0;
  uint64_t replies_bad = 0, replies_lost = 0, noscript = 0;
  uint64_t claims = 0, claims_denied = 0, claims_unknown = 0, claims_full = 0;
};

// The Lua script's text and SHA-1 (for EVALSHA).
const std::string& tlsScript();
const std::string& tlsScriptSha();

// The script's reply: per window the fleet's totals of the current and the
// previous bucket. False on anything else.
struct TlsTotals {
  std::array<score::TlsSharedCounts, score::kWindows> cur{}, prev{};
};
bool parseTlsReply(const fleet::RedisReply& r, TlsTotals& out);

class TlsSync final : public score::TlsSharedHook {
 public:
  // options.floor_score: a pair reaches Redis once its local score (the
  // larger of bulk and drip) is this share of an alert.
  TlsSync(const score::TlsScoreConfig& cfg, ShareOptions options);
  void reconfigure(const score::TlsScoreConfig& cfg) { windows_ = cfg.windows; }

  // score::TlsSharedHook (the worker's thread).
  bool touched(uint64_t key, const IpAddress& client, const IpAddress& server,
               uint16_t port) override;
  const score::TlsSharedView* view(uint64_t key) const override;
  score::ClaimOutcome claim(const IpAddress& client, const IpAddress& server, uint16_t port,
                            uint32_t signature_id, int64_t now, uint32_t suppress_seconds) override;
  void setDeferClaims(bool on) { defer_claims_ = on; }
  bool defersClaims() const override { return defer_claims_; }
  bool deferClaim(DeferredAlert&& alert) override;
  // Replay's synchronous round trip for claims (null: Unknown, fail open).
  void setClaimRoundTrip(RoundTrip rt) { claim_rt_ = std::move(rt); }

  struct Flush {
    struct Item {
      std::size_t command = 0;  // its EVALSHA in the batch
      uint64_t key = 0;
      IpAddress client, server;
      uint16_t port = 0;
      uint32_t last_seen = 0;
      std::array<uint32_t, score::kWindows> bucket{};
      std::array<score::TlsSharedCounts, score::kWindows> sent_cur{}, sent_prev{};
      std::array<score::TlsSharedCounts, score::kWindows> before_cur{}, before_prev{};
    };
    std::vector<Item> items;
    std::vector<std::size_t> loads;  // SCRIPT LOAD commands
    std::vector<std::pair<std::size_t, DeferredAlert>> claims;
    bool empty() const { return items.empty() && claims.empty(); }
  };
  // Appends the flush of every pair changed since the last one to `batch`
  // (which may hold the DNS pairs' commands). False when it added nothing.
  bool collect(score::TlsTracker& tracker, uint32_t now, fleet::CommandBatch& batch, Flush& out);
  // Takes the replies of `batch`; changed(item) for each pair whose fleet
  // counts came back; emit(line, fields): a deferred alert let through.
  void apply(const fleet::CommandBatch& batch, const Flush& flush, const fleet::BatchResult& result,
             const std::function<void(const Flush::Item&)>& changed,
             const std::function<void(const std::string&, const std::any&)>& emit = nullptr);
  // Every shared pair read and judged again with the next flush.
  void refreshAll();

  const TlsShareStats& stats() const { return stats_; }
  std::size_t pairs() const { return pairs_.size(); }
  std::size_t memoryBytes() const;
  // prefix + "{t:<server>:<port>}": a destination's keys share a slot.
  std::string baseKey(const IpAddress& server, uint16_t port) const;

 private:
  struct Dirty {
    uint64_t key;
    IpAddress client, server;
    uint16_t port;
  };
  struct Shared {
    score::TlsSharedView view;
    std::array<uint32_t, score::kWindows> bucket{};
    std::array<score::TlsSharedCounts, score::kWindows> sent_cur{}, sent_prev{};
    uint32_t last_flush = 0;
    uint32_t first_seen = 0;  // the tracker record's: another one means it was evicted
    bool has_view = false;
    IpAddress client, server;
    uint16_t port = 0;
  };
  void expire(uint32_t now);
  bool addClaim(fleet::CommandBatch& batch, const IpAddress& client, const IpAddress& server,
                uint16_t port, int64_t now, uint32_t suppress_seconds) const;

  std::array<uint32_t, score::kWindows> windows_;
  ShareOptions opt_;
  std::vector<Dirty> dirty_;
  std::unordered_map<uint64_t, Shared> pairs_;
  ScriptSlots load_slots_;
  RoundTrip claim_rt_;
  bool defer_claims_ = false;
  std::vector<DeferredAlert> claims_;
  std::vector<DeferredAlert> unsent_claims_;
  uint32_t last_expire_ = 0;
  TlsShareStats stats_;
};

}  // namespace exfilwatch::share
