// pair_sync.h: one worker's side of the fleet's shared state (issue 22,
// docs/fleet.md). It is the DNS scorer's SharedStateHook: it notes which
// pairs changed and which names were new to this sensor, and at each flush
// turns them into one Lua call per pair (EVALSHA) that adds this sensor's
// deltas to Redis and returns the fleet's totals in the same round trip.
// Per pair it keeps what it has sent to each window bucket and what the
// others added (fleet total minus sent), which the scorer adds to its own
// counts. Everything is bounded and counted; nothing here touches the
// network: a driver (replay: synchronous; run: the fleet thread) submits.
#pragma once

#include <any>
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "fleet/redis_client.h"
#include "fleet/redis_protocol.h"
#include "score/dns_scorer.h"
#include "score/shared_state.h"
#include "share/script_util.h"

namespace exfilwatch::share {

struct ShareOptions {
  std::string key_prefix = "exfilwatch:";
  // A pair reaches Redis once its local score is this share of the alert
  // score: the many pairs of repeated look-ups stay local. A tunnel spread
  // evenly over N sensors shows each of them 1/N of its score, so 0.1 keeps
  // fleets of up to 10 sensors exact for pairs just over the threshold.
  double floor_score = 0.1;
  std::size_t max_pairs = 65536;   // pairs with shared state, per worker
  std::size_t max_dirty = 65536;   // pairs changed between two flushes
  std::size_t max_names = 262144;  // new names between two flushes
  std::size_t max_claims = 4096;   // deferred alerts between two flushes
  uint32_t ttl_slack_seconds = 60;
  // A shared pair whose changes since its last flush carry no information
  // (repeated names: only its query, answer, NXDOMAIN or type counts moved)
  // goes at most this often (packet time): most flushed pairs are such.
  uint32_t quiet_seconds = 30;
};

struct ShareStats {
  uint64_t flushes = 0, pairs_sent = 0, names_sent = 0, commands = 0, bytes = 0;
  uint64_t below_floor = 0;    // changed pairs not (yet) shared: local score under the floor
  uint64_t quiet = 0;          // shared pairs held back: no new information (quiet_seconds)
  uint64_t dirty_dropped = 0;  // changes not noted: too many pairs between flushes
  uint64_t names_dropped = 0;  // new names not sent: too many between flushes
  uint64_t pairs_full = 0;     // pairs not shared: the table was full
  uint64_t pairs_expired = 0;
  uint64_t replies_bad = 0;   // error or unexpected replies (the pair's delta is resent)
  uint64_t replies_lost = 0;  // no reply (timeout, connection lost, not sent)
  uint64_t noscript = 0;
  uint64_t claims = 0, claims_denied = 0, claims_unknown = 0, claims_full = 0;
};

// The Lua scripts' text and SHA-1 (for EVALSHA).
const std::string& pairScript();
const std::string& pairScriptSha();
const std::string& claimScript();
const std::string& claimScriptSha();

// The pair script's reply: per window the fleet's totals of the current and
// the previous bucket, and the pair's distinct names. False on anything else
// (a server, or whatever sits in its place, may answer anything).
struct PairTotals {
  std::array<score::SharedCounts, score::kWindows> cur{}, prev{};
  int64_t distinct = 0;
  // The domain's, over all clients: per window its current and previous bucket.
  std::array<score::SharedDomainCounts, score::kWindows> domain_cur{}, domain_prev{};
  int64_t clients = 0;
  int64_t day_cur = 0, day_prev = 0;  // the pair's daily budget: today, yesterday
};
bool parsePairReply(const fleet::RedisReply& r, PairTotals& out);

class PairSync final : public score::SharedStateHook {
 public:
  PairSync(const score::DnsScoreConfig& cfg, ShareOptions options);

  // The windows follow reloads (sent state is rebased by bucket).
  void reconfigure(const score::DnsScoreConfig& cfg) {
    windows_ = cfg.windows;
    alert_score_ = cfg.alert_score;
  }

  // score::SharedStateHook (the worker's thread).
  void touched(uint64_t key, const IpAddress& client, const IpAddress& server,
               std::string_view domain, uint32_t now) override;
  void novelName(uint64_t key, uint64_t fingerprint, uint32_t now, uint32_t info_bits, bool lexical,
                 uint32_t rule_centi) override;
  double shareFloor() const override { return opt_.floor_score * alert_score_; }
  const score::SharedPairView* view(uint64_t key) const override;
  const score::SharedDomainView* domainView(uint64_t domain_key) const override;
  score::ClaimOutcome claim(const IpAddress& client, std::string_view domain, uint32_t signature_id,
                            int64_t now, uint32_t suppress_seconds) override;

  // The live sensor: claims go with the next flush (deferClaim).
  void setDeferClaims(bool on) { defer_claims_ = on; }
  bool defersClaims() const override { return defer_claims_; }
  bool deferClaim(DeferredAlert&& alert) override;

  // Round trip for a claim, or null (claims then answer Unknown). Replay
  // sets a synchronous one; the live sensor leaves it null.
  using RoundTrip = share::RoundTrip;
  void setClaimRoundTrip(RoundTrip rt) { claim_rt_ = std::move(rt); }

  // What one flush sent, to match the replies.
  struct Flush {
    fleet::CommandBatch batch;
    struct Item {
      std::size_t command = 0;  // its EVALSHA in batch
      uint64_t key = 0;
      std::string domain;
      IpAddress client, server;
      uint32_t last_seen = 0;  // the pair's, at the flush
      std::array<uint32_t, score::kWindows> bucket{};
      std::array<score::SharedCounts, score::kWindows> sent_cur{}, sent_prev{};  // after this flush
      std::array<score::SharedCounts, score::kWindows> before_cur{}, before_prev{};
      uint32_t day = 0;  // the daily budget's, as the windows' above
      int64_t sent_day_cur = 0, sent_day_prev = 0, before_day_cur = 0, before_day_prev = 0;
    };
    std::vector<Item> items;
    std::vector<std::size_t> loads;                             // SCRIPT LOAD commands, by index
    std::vector<std::pair<std::size_t, DeferredAlert>> claims;  // command, alert
    bool empty() const { return items.empty() && claims.empty(); }
  };
  // Builds the flush of every pair changed since the last one, reading
  // their records from `scorer` (the worker's thread). At `now`, stale
  // shared state is dropped. False when there is nothing to send.
  bool collect(score::DnsScorer& scorer, uint32_t now, Flush& out);
  // Takes a flush's replies; calls changed(item) for each pair whose fleet
  // counts came back, so the verdict can be judged again.
  // emit(line): a deferred alert the fleet let through (or could not judge).
  void apply(const Flush& flush, const fleet::BatchResult& result,
             const std::function<void(const Flush::Item&)>& changed,
             const std::function<void(const std::string&, const std::any&)>& emit = nullptr);

  // Marks every shared pair changed: the next flush reads all their fleet
  // totals and judges them again (replay's last flush).
  void refreshAll();

  const ShareStats& stats() const { return stats_; }
  std::size_t pairs() const { return pairs_.size(); }
  std::size_t memoryBytes() const;
  // The base of every key of `domain`: prefix + "{d:<domain>}" (its slot).
  std::string baseKey(std::string_view domain) const;

 private:
  struct Dirty {
    uint64_t key;
    IpAddress client, server;
    std::string domain;
  };
  struct Name {
    uint64_t key, fingerprint;
    uint32_t now, info_bits, rule_centi;
    bool lexical;
  };
  struct Shared {
    score::SharedPairView view;  // others' counts
    std::array<uint32_t, score::kWindows> bucket{};
    std::array<score::SharedCounts, score::kWindows> sent_cur{}, sent_prev{};
    uint32_t day = 0;
    int64_t sent_day_cur = 0, sent_day_prev = 0;
    uint32_t last_flush = 0;
    bool has_view = false;
    IpAddress client, server;
    std::string domain;
  };
  struct SharedDomain {
    score::SharedDomainView view;
    uint32_t last_reply = 0;  // packet time of the last pair reply that carried it
  };
  void expire(uint32_t now);
  // True when the record's changes since the pair's last flush carry no
  // information (its buckets and day unchanged).
  static bool quietSince(const score::DnsPairRecord& r, const Shared& s);

  std::array<uint32_t, score::kWindows> windows_;
  double alert_score_ = 1.0;
  ShareOptions opt_;
  std::vector<Dirty> dirty_;
  std::unordered_map<uint64_t, uint32_t> dirty_index_;  // key -> dirty_ index
  std::vector<Name> names_;
  std::unordered_map<uint64_t, Shared> pairs_;
  std::unordered_map<uint64_t, SharedDomain> domains_;  // score::domainKey -> fleet totals
  ScriptSlots load_slots_;
  RoundTrip claim_rt_;
  bool defer_claims_ = false;
  std::vector<DeferredAlert> claims_;
  std::vector<DeferredAlert> unsent_claims_;  // a full batch: written as local at apply
  // The claim command's arguments for one alert, added to `batch`.
  bool addClaim(fleet::CommandBatch& batch, const IpAddress& client, std::string_view domain,
                uint32_t signature_id, int64_t now, uint32_t suppress_seconds) const;
  uint32_t last_expire_ = 0;
  bool refresh_ = false;  // the next collect sends every pair changed (refreshAll)
  ShareStats stats_;
};

}  // namespace exfilwatch::share
