// dns_scorer.h: per (client, registered domain) scoring of DNS queries.
//
// In: each parsed query (and response) with its registered domain and the
// rules engine's per-query result. Out, rarely: a verdict naming the pair's
// features with their values, for the Engine to turn into an EVE alert.
// State lives in a fixed-budget StateTable (one 248-byte record per pair,
// lazy LRU eviction, counted) plus a fixed SeenSet of name fingerprints; nothing
// allocates per packet. One alert per pair per suppression interval, then
// "update" alerts while the pair stays over the score.
//
// Features per window (1 m, 10 m, 1 h by default; sliding, see window.h,
// plus the information sent over 24 hours, the daily budget):
// information sent (bytes of names never seen before under the domain, after
// compression: prefixInfoBits), unique subdomains, queries, NXDOMAIN
// answers, answer bytes (downstream channel), risky record types (NULL, TXT,
// KEY, PRIVATE, CNAME, MX, SRV ... see isRiskyType), tunnel-shaped queries
// (lexical rule or n-gram model), rule weight. Per pair: distinct
// subdomains (HyperLogLog), entropy and label-length profiles, first name.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "decode/packet.h"
#include "dns/message.h"
#include "score/alert_gate.h"
#include "score/lexical.h"
#include "score/ngram_model.h"
#include "score/score_config.h"
#include "score/shared_state.h"
#include "score/state_table.h"
#include "score/striped_table.h"
#include "score/window.h"

namespace exfilwatch::score {

struct DnsCounters {
  uint32_t info_bits = 0;     // information sent, bits
  uint32_t answer_bytes = 0;  // answer RDATA bytes
  uint16_t queries = 0;
  uint16_t new_names = 0;  // names never seen under the domain
  uint16_t nxdomain = 0;
  uint16_t risky_types = 0;
  uint16_t lexical_hits = 0;
  uint16_t rule_centi = 0;  // rule weight x 100
};
static_assert(sizeof(DnsCounters) == 20);

struct DnsPairRecord {
  uint64_t key;
  uint32_t lru_prev, lru_next, chain;
  uint32_t first_seen, last_seen;  // unix seconds
  uint32_t queries_total;
  uint32_t info_total_bits;
  uint16_t alerts;
  uint8_t max_label;
  uint8_t entropy_max_q;  // max prefix entropy x 30
  uint8_t first_len;      // bytes kept in first_name
  uint8_t flags;          // bit 0: first name truncated; bit 1: changed since the flush
  uint16_t lru_stamp;     // StateTable's lazy LRU
  SlidingWindow<DnsCounters> win[kWindows];
  Hll64 hll;                // distinct subdomains, lifetime
  uint8_t entropy_hist[8];  // prefix entropy: <1.5, <2, <2.5, <3, <3.5, <4, <4.5, >=4.5
  uint8_t label_hist[4];    // longest prefix label: <16, <32, <48, >=48
  // The daily budget: information sent on the current UTC day and the day
  // before (bytes, saturating), read as a sliding 24-hour window.
  uint16_t day;  // unix seconds / 86400 of day_info
  uint16_t day_info, prev_day_info;
  char first_name[16];  // first query name, truncated
};
static_assert(sizeof(DnsPairRecord) == 248, "keep the per-pair record within the 256-byte budget");

// The domain view: one registered domain over all its clients. Touched by
// names new under the domain only (a name any client asked before adds
// nothing), so repeated look-ups cost no access. 176 bytes per domain.
struct DnsDomainCounters {
  uint32_t info_bits = 0;
  uint16_t new_names = 0;
  uint16_t unused = 0;
};
struct DnsDomainRecord {
  uint64_t key;
  uint32_t lru_prev, lru_next, chain;
  uint32_t first_seen, last_seen, last_alert;  // unix seconds; last_alert 0: never
  uint16_t lru_stamp;
  uint16_t alerts;
  uint16_t day;  // unix seconds / 86400 of day_info
  uint16_t unused;
  uint32_t day_info, prev_day_info;  // bytes, as the pair's daily budget
  uint32_t clients_bucket;           // longest window's bucket of clients[0]
  SlidingWindow<DnsDomainCounters> win[kWindows];
  // Clients that sent new names, in the longest window's current and
  // previous bucket.
  Hll64 clients[2];
};
static_assert(sizeof(DnsDomainRecord) == 176, "docs/scoring.md states the per-domain record size");
// The domain view's records: a scorer's own, or its sensor's shared by
// every worker (see striped_table.h).
using DomainTable = StripedTable<DnsDomainRecord>;

// The domain view's key of a registered domain (or "@server").
uint64_t domainKey(std::string_view domain);

// Everything the verdict (and explain) looks at for one pair, at one time.
struct DnsFeatures {
  struct PerWindow {
    double info_bytes = 0, answer_bytes = 0, queries = 0, unique = 0, nxdomain = 0, risky = 0,
           lexical = 0, rule_weight = 0;
  } w[kWindows];
  double distinct = 0;  // HLL estimate
  double entropy_p90 = 0, entropy_max = 0;
  uint32_t max_label = 0;
  uint32_t queries_total = 0;
  double info_total_bytes = 0;
  double info_day_bytes = 0;  // the daily budget's sliding 24 hours
  // Score components (already weighted) and the total.
  double c_info = 0, c_unique = 0, c_answer = 0, c_lexical = 0, c_types = 0, c_rules = 0;
  double score = 0;
};

struct DnsVerdict {
  bool update = false;  // false: first alert for the pair in this interval
  double score = 0;
  uint32_t alerts = 0;  // alerts for this pair so far, this one included
  std::string_view reasons;
  std::string_view domain;  // what the pair aggregates under (to name in the alert)
};

struct DnsScorerStats {
  uint64_t queries = 0, responses = 0, allowed = 0, new_names = 0, verdicts = 0, suppressed = 0;
  uint64_t domain_verdicts = 0, domain_suppressed = 0;
  uint64_t single_use = 0;  // over the score, but too few new names (min_new_names)
};

bool isRiskyType(uint16_t qtype);

// The aggregation key of names without a plausible top-level domain
// (dnscat2 straight to its server): no resolver can route them, so the
// channel is the server, "@<server address>". Engine and scorer both use
// it, so that suppression, EVE's registered_domain, the top-domains metric
// and the scorer's pairs agree. `lower_name` is lower-cased, no trailing dot.
bool plausibleTld(std::string_view lower_name);
struct ServerDomain {
  char text[64] = {};  // "@" + INET6_ADDRSTRLEN
  std::string_view set(const IpAddress& server);
};
// "@..." (never a real registered domain, which cannot start with '@').
inline bool isServerDomain(std::string_view domain) {
  return !domain.empty() && domain.front() == '@';
}

class DnsScorer {
 public:
  DnsScorer(const DnsScoreConfig& cfg, std::shared_ptr<const NgramModel> model,
            uint32_t suppress_seconds, const LexicalThresholds& lexical);

  // Thresholds, weights, model and suppression follow a reload; the budgets
  // (table sizes) hold until restart.
  void reconfigure(const DnsScoreConfig& cfg, std::shared_ptr<const NgramModel> model,
                   uint32_t suppress_seconds, const LexicalThresholds& lexical);

  // Where a query's state lives: its pair's key and its name's fingerprint.
  // planQuery() works them out and starts loading the pair's bucket and the
  // fingerprint's slot (tables of tens of megabytes: a cache miss each), so
  // that the rule scan in between overlaps those misses; observeQuery()
  // then uses the plan instead of working it out again.
  // `registered_domain` everywhere here is the engine's aggregation key: a
  // registered domain, or "@server" for a name without a plausible TLD.
  struct QueryPlan {
    std::string_view domain, prefix;
    uint64_t key = 0, fingerprint = 0;
    uint64_t domain_key = 0;  // domainKey(domain)
  };
  // `question`: the name to judge (a later question, an UPDATE record's
  // owner, an IQUERY answer's name); null: the first question.
  QueryPlan planQuery(const PacketContext& pkt, const dns::DnsMessage& msg,
                      std::string_view registered_domain, const dns::Question* question = nullptr);
  // A query from pkt.src. Returns a verdict (valid until the next call) or
  // null. `plan`: planQuery()'s for the same question, or null.
  const DnsVerdict* observeQuery(const PacketContext& pkt, const dns::DnsMessage& msg,
                                 std::string_view registered_domain, const RuleHits& hits,
                                 const QueryPlan* plan = nullptr,
                                 const dns::Question* question = nullptr);
  // The domain view's verdict the last observeQuery() raised, once; null
  // when none (valid until the next call).
  const DnsVerdict* takeDomainVerdict() {
    const DnsVerdict* v = domain_pending_ ? &domain_verdict_ : nullptr;
    domain_pending_ = false;
    return v;
  }
  // The domain view's score (information over its thresholds) at `now`;
  // 0 when not tracked or when its hosts do not each use the domain
  // repeatedly. For the shared state's floor.
  double domainScoreOf(std::string_view domain, uint32_t now) const;
  // The domain's verdict again at its last time, after the fleet's totals
  // changed; null when none is due.
  const DnsVerdict* reevaluateDomain(std::string_view domain);
  std::size_t domains() const { return domains_->size(); }
  uint64_t domainEvictions() const { return domains_->evictions(); }
  // The domain view's records from now on: `table`, shared with the other
  // workers of the sensor, instead of the scorer's own (before start only).
  void shareDomainTable(std::shared_ptr<DomainTable> table) { domains_ = std::move(table); }
  const DomainTable& domainTable() const { return *domains_; }
  // A response to pkt.dst: NXDOMAIN and answer bytes, for pairs already
  // tracked (responses never create state).
  void observeResponse(const PacketContext& pkt, const dns::DnsMessage& msg,
                       std::string_view registered_domain);

  uint64_t pairKey(const IpAddress& client, std::string_view domain) const;
  // The score alone of a tracked pair at `now` (no profiles); 0 when not
  // tracked. For the shared state's floor.
  double scoreOf(uint64_t key, uint32_t now) const;
  // Features of a tracked pair at `now`; false when not tracked.
  bool features(uint64_t key, uint32_t now, DnsFeatures& out) const;
  const DnsPairRecord* record(uint64_t key) const { return table_.peek(key); }
  const DnsScoreConfig& config() const { return cfg_; }

  const DnsScorerStats& stats() const { return stats_; }
  std::size_t pairs() const { return table_.size(); }
  std::size_t capacity() const { return table_.capacity(); }
  uint64_t evictions() const { return table_.evictions(); }
  // A shared domain table is the sensor's, not counted here.
  std::size_t memoryBytes() const {
    return table_.memoryBytes() + seen_.memoryBytes() +
           (domains_->shared() ? 0 : domains_->memoryBytes());
  }
  // The fleet's shared state (src/share), or null: told of changed pairs
  // and new names, its other sensors' counts join every verdict.
  void setSharedState(SharedStateHook* hook) { shared_ = hook; }
  // The sensor's suppression (engine's AlertEmitter), shared with the
  // other detectors; until set, a gate of the scorer's own.
  void setAlertGate(AlertGate* gate) { gate_ = gate ? gate : &own_gate_; }
  // The pair's verdict again, at its last time, after the shared counts
  // changed (a flush's reply); null when none is due. `domain` names it.
  const DnsVerdict* reevaluate(uint64_t key, std::string_view domain);
  // The pair's record with its changed-since-flush mark cleared; null when
  // the pair is no longer tracked. For the shared state's flush only.
  DnsPairRecord* takeDirty(uint64_t key);
  // The hook shares the pair: its verdicts look for the fleet's counts
  // (others stay free of the hook's look-up).
  static void markShared(DnsPairRecord& r) { r.flags |= kShared; }
  // Shares `other`'s set of names already seen (workers of one sensor).
  void shareSeenNames(const DnsScorer& other) { seen_.shareWith(other.seen_); }
  double bytesPerPair() const { return table_.bytesPerRecord(); }

 private:
  using Clock = WindowClock<kWindows>;
  // The scorer's clock at `now` (packet time), reworked only when it moves.
  const Clock& clockAt(uint32_t now) {
    if (!clock_.valid || clock_.now != now) clock_.set(now, cfg_.windows);
    return clock_;
  }
  // Features of `r` at clk.now. Not `full`: only what the score needs (the
  // per-query check); the profiles for reasons and explain are left zero.
  void compute(const DnsPairRecord& r, const Clock& clk, DnsFeatures& f, bool full) const;
  const DnsVerdict* judge(DnsPairRecord& r, uint64_t key, const Clock& clk,
                          std::string_view last_name, std::string_view domain);
  void addShared(const SharedPairView& v, const Clock& clk, DnsFeatures& f) const;
  static constexpr uint8_t kDirty = 2;   // DnsPairRecord::flags: changed since the last flush
  static constexpr uint8_t kShared = 4;  // DnsPairRecord::flags: markShared
  SharedStateHook* shared_ = nullptr;
  // Repeated use: min_new_names new names in some window. Score rules do
  // not stand in for it (random hex fits the dnscat2 shape one time in 50);
  // alert rules alert on their own.
  bool repeatedUse(const DnsFeatures& f) const;
  std::string_view serverDomain(const IpAddress& server) { return server_domain_.set(server); }
  void formatReasons(const DnsPairRecord& r, const DnsFeatures& f, std::string_view last_name,
                     uint32_t now);

  // The domain view (see DnsDomainRecord).
  struct DomainFeatures {
    double info_bytes[kWindows] = {}, new_names[kWindows] = {};
    double info_day_bytes = 0, clients = 0, score = 0;
  };
  // A query's (`novel`: judged too) or an answer's information for the
  // domain, under the record's stripe lock (DomainTable::lock) across
  // adding, judging and suppression. True: a verdict is pending. Out of
  // line: rare (new names of repeatedly used pairs), and the lock's code
  // would otherwise crowd the query path.
  [[gnu::noinline]] bool observeDomain(uint64_t domain_key, const IpAddress& client,
                                       const Clock& clk, uint32_t info_bits, bool novel,
                                       std::string_view last_name, std::string_view domain);
  // These run under that lock, held by the caller.
  DnsDomainRecord& addToDomain(StateTable<DnsDomainRecord>& table, uint64_t domain_key,
                               const IpAddress& client, const Clock& clk, uint32_t info_bits,
                               bool novel);
  // `all`: the clients too, also under the threshold (else left 0 there).
  void computeDomain(const DnsDomainRecord& r, const Clock& clk, DomainFeatures& f, bool all) const;
  const DnsVerdict* judgeDomain(DnsDomainRecord& r, const Clock& clk, std::string_view last_name,
                                std::string_view domain);
  std::shared_ptr<DomainTable> domains_;
  uint32_t domain_suppress_seconds_ = 0;  // one domain-view alert per domain per interval
  DnsVerdict domain_verdict_;
  bool domain_pending_ = false;
  std::string domain_reasons_;

  DnsScoreConfig cfg_;
  std::shared_ptr<const NgramModel> model_;
  AlertGate own_gate_;  // until setAlertGate()
  AlertGate* gate_ = &own_gate_;
  LexicalThresholds lexical_;
  StateTable<DnsPairRecord> table_;
  SeenSet seen_;
  DnsScorerStats stats_;
  DnsVerdict verdict_;
  DnsFeatures scratch_;  // observeQuery's features, rewritten whole by compute()
  Clock clock_;          // see clockAt(); reset by reconfigure (the widths may change)
  std::string reasons_;  // reserved once; reused
  std::string win_names_[kWindows];
  ServerDomain server_domain_;
};

}  // namespace exfilwatch::score
