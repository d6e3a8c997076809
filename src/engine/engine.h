// engine.h: one worker's whole packet path. Frame -> Decoder -> DNS (UDP,
// or TCP through the stream reassembler) -> registered domain -> rules ->
// DNS scoring -> EVE records; TLS on the scored ports -> the TLS tracker.
// Every source (pcap replay, the UDP listener)
// drives an Engine; each worker thread owns one, so nothing here is shared
// or locked, but for the DNS scorer's sensor-wide seen-name set and domain
// view (shareSeenNames, shareDomainTable). Counters are plain per-engine
// integers, summed by readers.
#pragma once

#include <any>
#include <array>
#include <bitset>
#include <cstdint>
#include <vector>

#include "alert/eve.h"
#include "alert/evidence.h"
#include "config/config.h"
#include "config/control_plane.h"
#include "decode/decoder.h"
#include "decode/weird.h"
#include "dns/message.h"
#include "dns/registered_domain.h"
#include "dns/tcp_stream.h"
#include "engine/alert_emitter.h"
#include "engine/name_context.h"
#include "rules/matcher.h"
#include "score/dns_scorer.h"
#include "score/lexical.h"
#include "score/tls_tracker.h"

namespace exfilwatch {

struct EngineStats {
  uint64_t dns_messages = 0;
  uint64_t dns_queries = 0;
  uint64_t dns_responses = 0;
  uint64_t dns_unparsable = 0;        // not even a header
  uint64_t dns_incomplete = 0;        // some section did not decode
  std::array<uint64_t, 24> rcodes{};  // index: rcode (0..23), 23 = other
  uint64_t alerts = 0;
  uint64_t alerts_suppressed = 0;
  uint64_t eve_records = 0;
  uint64_t rule_alerts = 0;          // alerts raised by analyst rules (in `alerts` too)
  uint64_t rule_allowed = 0;         // names an allow rule let through
  uint64_t rule_adopt_failures = 0;  // new rule set not adopted (scratch allocation)
  void mergeFrom(const EngineStats& o);
};

// What an Engine decided, for the tools that show it (`explain`, `rules
// test`, `rules diff`): they see the sensor's own decisions instead of
// redoing them. Null in the sensor: the packet path pays one branch per name.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  // One question's name after the rules: `allowed_by` is the allow rule that
  // took it (no detection then), or null.
  struct Name {
    const PacketContext& pkt;
    uint64_t frame;  // pcap_cnt
    const IpAddress& client;
    std::string_view name;  // lower case
    std::string_view registered_domain;
    bool response;
    const rules::Rule* allowed_by;
  };
  virtual void onName(const Name&) {}
  // An alert the engine emitted, or (`suppressed`) held back as a repeat
  // within alert_suppress_seconds. DNS: the pair is (client, domain); TLS:
  // (client, server, server_port) and `domain` is empty.
  struct AlertEvent {
    const PacketContext& pkt;
    uint64_t frame;
    const Alert& alert;
    const IpAddress& client;
    std::string_view domain;
    std::string_view name;  // the question's name (DNS)
    const IpAddress& server;
    uint16_t server_port;
    bool suppressed;
  };
  virtual void onAlert(const AlertEvent&) {}
};

class Engine final : public dns::TcpMessageSink {
 public:
  // Decoder and stream limits come from the first plane and hold until
  // restart; thresholds and rules follow every adopted plane.
  Engine(ControlPlanePtr plane, EveSink& sink);

  // Makes this engine's scorer use `other`'s set of names already seen, so
  // that several workers judge novelty as one would (before start only).
  void shareSeenNames(const Engine& other) { dns_scorer_.shareSeenNames(other.dns_scorer_); }
  // Makes the scorer's domain view use the sensor's table, shared by every
  // worker, so that a domain is one record whichever worker its clients
  // land on (before start only).
  void shareDomainTable(std::shared_ptr<score::DomainTable> table) {
    dns_scorer_.shareDomainTable(std::move(table));
  }

  // The fleet's shared state (src/share), or null: its counts join the DNS
  // verdicts and it decides fleet-wide which sensor raises a pair's alert.
  void setSharedState(score::SharedStateHook* hook) {
    shared_ = hook;
    dns_scorer_.setSharedState(hook);
  }
  // After a flush's reply: judges the pair again with the fleet's counts and
  // raises its alert when due (client -> server, at the pair's last time).
  void reevaluateShared(uint64_t key, std::string_view domain, const IpAddress& client,
                        const IpAddress& server, uint32_t last_seen);
  score::DnsScorer& mutableDnsScorer() { return dns_scorer_; }
  // The fleet's shared TLS upload volume (src/share), or null: its counts
  // join the TLS verdicts; one sensor raises a pair's alert fleet-wide.
  void setTlsSharedState(score::TlsSharedHook* hook) {
    tls_shared_ = hook;
    tls_.setSharedState(hook);
  }
  // After a flush's reply: the TLS pair judged again with the fleet's counts.
  void reevaluateSharedTls(uint64_t key, const IpAddress& client, const IpAddress& server,
                           uint16_t port, uint32_t last_seen);
  score::TlsTracker& mutableTlsTracker() { return tls_; }
  // A deferred alert the fleet let through (SharedStateHook::deferClaim).
  void writeSharedAlert(const std::string& line, const std::any& fields) {
    emitter_.writeLine(line, fields);
    ++stats_.eve_records;
  }

  // Switches to a newer control plane (between batches, never mid-packet).
  void adopt(ControlPlanePtr plane);
  const ControlPlane& plane() const { return *plane_; }

  // Runs one frame down the whole path. `frame_number`: 1-based position in
  // its source (pcap_cnt), 0 when the source has none.
  void process(const Frame& frame, uint64_t frame_number);

  // The capture file being replayed, for EVE's pcap_filename ("" live).
  void setSourceName(std::string name) { source_name_ = std::move(name); }

  // Ages out fragment and stream state up to `now` (packet time).
  void expire(Timestamp now);

  // Every stage's anomalies, the TLS tracker's included.
  const WeirdCounters& weird() const { return weird_; }
  const DecodeStats& decodeStats() const { return decoder_.stats(); }
  const EngineStats& stats() const { return stats_; }
  const dns::TcpReassembler& tcpReassembler() const { return tcp_; }
  // The analyst-rule matcher: per-rule hit counters (allow rules: names
  // allowed), and the last name's rule score (RuleScore) for the scorer.
  const rules::Matcher& ruleMatcher() const { return matcher_; }
  // `exfilwatch rules test` watches every rule hit; null in the sensor.
  void setRuleObserver(rules::Observer* observer) { rule_observer_ = observer; }
  // `explain` and `rules test|diff` watch names and alerts; null in the sensor.
  void setObserver(EngineObserver* observer) { observer_ = observer; }

  void onTcpDnsMessage(const PacketContext& pkt, const uint8_t* msg, std::size_t len) override;

  // Scoring state (src/score, src/tls): pair counts, evictions, memory.
  const score::DnsScorer& dnsScorer() const { return dns_scorer_; }
  const score::TlsTracker& tlsTracker() const { return tls_; }
  const dns::RegisteredDomain& registeredDomains() const { return registered_; }
  // The per-name cache of aggregation domains and rule hits.
  const NameContext& names() const { return names_; }
  // Scoring off: decode, DNS and rules only (bench: the scoring path's cost).
  void setScoringEnabled(bool on) { scoring_ = on; }

 private:
  void handleDns(const PacketContext& pkt, const uint8_t* data, std::size_t len);
  // Rules and scoring for each question (and UPDATE/IQUERY record name);
  // true when an allow rule let the first question's name through.
  // `first_name` (and `first_plan`, null when it is not scored) come from
  // handleDns, whose DNS log and evidence needed them first.
  bool detect(const PacketContext& pkt, const NameContext::Name& first_name,
              const score::DnsScorer::QueryPlan* first_plan);
  // The rules' verdict on name `n` (the matcher's, begun by NameContext),
  // with the TXT answers of a response for its first question: alerts are
  // raised here. Returns false when an allow rule took the name.
  bool applyRules(const PacketContext& pkt, const NameContext::Name& n, bool first);
  // The rules' context for question `q` of the current message.
  rules::MatchContext matchContext(const PacketContext& pkt, const dns::Question& q) const;
  // One name of a query to the scorer, with the matcher's score-rule
  // weight for it (applyRules just ran on it).
  void scoreName(const PacketContext& pkt, const dns::Question& q, std::string_view reg,
                 const score::DnsScorer::QueryPlan* plan);
  static constexpr std::size_t kMaxScoredNames = 4;
  static constexpr uint8_t kOpcodeIquery = 1;
  static constexpr uint8_t kOpcodeUpdate = 5;
  // Scorer verdicts -> EVE alerts (one path, suppression per pair inside).
  void emitDnsVerdict(const PacketContext& pkt, const score::DnsVerdict& v,
                      std::string_view registered_domain);
  // `fleet`: raised on the fleet's counts after a flush (no packet of its own).
  void emitTlsVerdict(const PacketContext& pkt, const score::TlsVerdict& v, bool fleet = false);
  // A name, a DNS alert to observer_ (set); out of line, off the hot path.
  [[gnu::cold, gnu::noinline]] void observeName(const PacketContext& pkt, const dns::Question& q,
                                                std::string_view registered_domain, bool allowed);
  [[gnu::cold, gnu::noinline]] void observeAlert(const PacketContext& pkt, const Alert& alert,
                                                 std::string_view domain, std::string_view name,
                                                 bool suppressed);
  // Writes an alert record (and hands its fields to delivery).
  void writeAlert(const PacketContext& pkt, const Alert& alert, const dns::DnsMessage* msg,
                  std::string_view registered_domain);
  EveMeta eveMeta() const { return {frame_number_, config_->sensor_name, source_name_}; }

  ControlPlanePtr plane_;
  const Config* config_;  // plane_->config, cached
  // Suppression, evidence and EVE writing for every alert (and the DNS log).
  AlertEmitter emitter_;
  Decoder decoder_;
  WeirdCounters weird_;
  dns::Parser parser_;
  dns::DnsMessage message_;
  // The packet being processed: a member so it is not zeroed twice per
  // packet (once when declared, once by Decoder::decode).
  PacketContext packet_;
  dns::TcpReassembler tcp_;
  dns::RegisteredDomain registered_;
  std::bitset<65536> dns_ports_;
  EngineStats stats_;
  uint64_t frame_number_ = 0;
  std::string source_name_;
  Timestamp last_expire_;

  // Names go through NameContext's per-name cache; the matcher's own scan
  // cache is left to the TXT answers.
  static constexpr std::size_t kTxtScanCacheSlots = 4096;
  rules::Matcher matcher_;
  NameContext names_;
  rules::Observer* rule_observer_ = nullptr;
  EngineObserver* observer_ = nullptr;
  score::DnsScorer dns_scorer_;
  score::TlsTracker tls_;
  bool scoring_ = true;
  score::SharedStateHook* shared_ = nullptr;
  score::TlsSharedHook* tls_shared_ = nullptr;
  dns::DnsMessage shared_msg_;  // the made-up query of a re-evaluated verdict
  // Fleet-wide suppression of a DNS verdict; false when another sensor
  // raised it. Sets `update` from the fleet's alert count.
  bool claimShared(const IpAddress& client, std::string_view domain, uint32_t signature_id,
                   int64_t now, bool& update);
  // The DNS scorer's two verdicts: per (client, domain) and the domain view.
  struct ScoreSignature {
    uint32_t id;
    const char* initial;
    const char* update;
    const char* detector;
    bool per_domain;  // claimed per domain, not per (client, domain)
  };
  static constexpr ScoreSignature kPairScore{9000001, "EXFILWATCH DNS tunneling or exfiltration",
                                             "EXFILWATCH DNS tunneling or exfiltration (update)",
                                             "dns_score", false};
  static constexpr ScoreSignature kDomainScore{
      9000005, "EXFILWATCH DNS exfiltration to one domain from several clients",
      "EXFILWATCH DNS exfiltration to one domain from several clients (update)", "dns_domain",
      true};
  // Writes score_alert_ (its signature set here) through the fleet's
  // suppression: at once, after a synchronous claim, or deferred.
  void deliverScoreAlert(const PacketContext& pkt, const dns::DnsMessage* msg,
                         std::string_view domain, bool local_update, const ScoreSignature& sig);
  void emitDomainVerdict(const PacketContext& pkt, const score::DnsVerdict& v,
                         std::string_view domain);
  // A verdict judged again on the fleet's totals, as an alert of the pair.
  void deliverShared(const score::DnsVerdict& v, const ScoreSignature& sig, std::string_view domain,
                     const IpAddress& client, const IpAddress& server, uint32_t last_seen);
  Alert score_alert_;  // reused: its strings keep their capacity
  // Evidence key of (client, registered domain, or the name when it has none).
  uint64_t dnsPairKey(const PacketContext& pkt, std::string_view registered) const;
  uint64_t tlsPairKey(const PacketContext& pkt) const;
  // The pair's ClientHello facts (SNI, JA3, JA4, ...) into alert.tls.
  void tlsFacts(const PacketContext& pkt, Alert& alert) const;
  // Opens (or extends) the evidence pcap of the message's pair; its path.
  std::string evidenceFor(const PacketContext& pkt, std::string_view registered_domain);
};

}  // namespace exfilwatch
