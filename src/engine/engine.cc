// engine.cc: the per-worker packet path.
#include "engine/engine.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include "common/hash.h"

namespace exfilwatch {

void EngineStats::mergeFrom(const EngineStats& o) {
  dns_messages += o.dns_messages;
  dns_queries += o.dns_queries;
  dns_responses += o.dns_responses;
  dns_unparsable += o.dns_unparsable;
  dns_incomplete += o.dns_incomplete;
  for (std::size_t i = 0; i < rcodes.size(); ++i) rcodes[i] += o.rcodes[i];
  alerts += o.alerts;
  alerts_suppressed += o.alerts_suppressed;
  eve_records += o.eve_records;
  rule_alerts += o.rule_alerts;
  rule_allowed += o.rule_allowed;
  rule_adopt_failures += o.rule_adopt_failures;
}

namespace {
// Scorer verdicts (docs/eve.md). 9000002 is not used: raw binary labels are
// a lexical feature of the DNS score.
constexpr uint32_t kScoreSignatureId = 9000001;
constexpr uint32_t kTlsBulkSignatureId = 9000003;
constexpr uint32_t kTlsDripSignatureId = 9000004;
// The domain view: one registered domain over all its clients.
constexpr uint32_t kDomainSignatureId = 9000005;

std::shared_ptr<const score::NgramModel> scoreModel(const Config& c) {
  return c.score_model ? c.score_model : score::NgramModel::builtin();
}
constexpr int64_t kExpireEverySeconds = 1;
}  // namespace

namespace {
// Names each engine's evidence files apart ("w0", "w1", ...).
unsigned nextEngineId() {
  static std::atomic<unsigned> next{0};
  return next.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

uint64_t Engine::dnsPairKey(const PacketContext& pkt, std::string_view registered) const {
  const IpAddress& client = message_.qr ? pkt.dst : pkt.src;
  if (!registered.empty() || message_.questions.empty()) {
    return EvidenceRecorder::pairKey(client, registered);
  }
  return EvidenceRecorder::pairKey(client, message_.lower(message_.questions.front().name));
}

Engine::Engine(ControlPlanePtr plane, EveSink& sink)
    : plane_(std::move(plane)),
      config_(&plane_->config),
      emitter_(sink, config_->evidence, "w" + std::to_string(nextEngineId()),
               config_->alert_suppress_slots, config_->alert_suppress_seconds),
      decoder_(config_->decoder),
      parser_(config_->dns_limits),
      tcp_(config_->dns_tcp),
      registered_(config_->public_suffix_list),
      matcher_(kTxtScanCacheSlots),
      names_(registered_, matcher_),
      dns_scorer_(config_->score.dns, scoreModel(*config_), config_->alert_suppress_seconds,
                  config_->lexical),
      tls_(config_->score.tls, config_->alert_suppress_seconds) {
  dns_scorer_.setAlertGate(&emitter_.gate());
  tls_.setAlertGate(&emitter_.gate());
  tls_.countWeirdsInto(&weird_);
  for (uint16_t p : config_->dns_ports) dns_ports_.set(p);
  if (!matcher_.adopt(plane_->rules)) throw std::runtime_error("rules: cannot allocate scratch");
}

void Engine::adopt(ControlPlanePtr plane) {
  if (!plane || plane == plane_) return;
  // The worker's rule scratch is cloned here, between batches. If that
  // fails, keep the whole old plane rather than run on without rules.
  if (!matcher_.adopt(plane->rules)) {
    ++stats_.rule_adopt_failures;
    return;
  }
  if (plane->rules != plane_->rules) names_.invalidate();
  plane_ = std::move(plane);
  config_ = &plane_->config;
  dns_ports_.reset();
  for (uint16_t p : config_->dns_ports) dns_ports_.set(p);
  dns_scorer_.reconfigure(config_->score.dns, scoreModel(*config_), config_->alert_suppress_seconds,
                          config_->lexical);
  tls_.reconfigure(config_->score.tls, config_->alert_suppress_seconds);
  emitter_.setSuppressSeconds(config_->alert_suppress_seconds);
}

void Engine::process(const Frame& frame, uint64_t frame_number) {
  frame_number_ = frame_number;
  if (frame.ts.sec - last_expire_.sec >= kExpireEverySeconds) expire(frame.ts);

  PacketContext& pkt = packet_;
  if (!decoder_.decode(frame, pkt, weird_)) return;
  // TLS on the scored ports (score.tls.ports): volume and ClientHello.
  if (pkt.ip_proto == ipproto::kTcp && scoring_ &&
      (tls_.isTlsPort(pkt.dst_port) || tls_.isTlsPort(pkt.src_port))) {
    if (emitter_.evidenceEnabled()) emitter_.observe(tlsPairKey(pkt), pkt);
    if (const score::TlsVerdict* v = tls_.onTcpSegment(pkt)) emitTlsVerdict(pkt, *v);
    return;
  }
  if (!dns_ports_.test(pkt.dst_port) && !dns_ports_.test(pkt.src_port)) return;
  if (pkt.ip_proto == ipproto::kUdp) {
    if (pkt.payloadTruncated()) weird_.add(Weird::DnsSnapTruncated);
    handleDns(pkt, pkt.payload, pkt.payload_len);
  } else {
    tcp_.onSegment(pkt, weird_, *this);
  }
}

void Engine::expire(Timestamp now) {
  last_expire_ = now;
  decoder_.expire(now, weird_);
  tcp_.expire(now);
  tls_.expire(now);
  emitter_.expire(now);
}

void Engine::onTcpDnsMessage(const PacketContext& pkt, const uint8_t* msg, std::size_t len) {
  handleDns(pkt, msg, len);
}

void Engine::handleDns(const PacketContext& pkt, const uint8_t* data, std::size_t len) {
  if (!parser_.parse(data, len, message_, weird_)) {
    ++stats_.dns_unparsable;
    return;
  }
  ++stats_.dns_messages;
  ++(message_.qr ? stats_.dns_responses : stats_.dns_queries);
  if (!message_.complete) ++stats_.dns_incomplete;
  ++stats_.rcodes[std::min<std::size_t>(message_.rcode, stats_.rcodes.size() - 1)];

  // The first question's name: its aggregation domain and rule verdict (the
  // DNS log, evidence and the scorer's response path are keyed by it).
  const bool rules_on = plane_->rules != nullptr;
  NameContext::Name first;
  score::DnsScorer::QueryPlan plan;
  bool have_plan = false;
  if (!message_.questions.empty() && message_.questions.front().name.valid) {
    const dns::Question& q = message_.questions.front();
    first = names_.analyze(message_, q, matchContext(pkt, q), message_.qr ? pkt.src : pkt.dst,
                           rules_on);
    // A query's pair record and name fingerprint are two likely cache
    // misses: their loads start here and overlap the work up to scoring.
    if (!message_.qr && scoring_ && !(rules_on && matcher_.verdict().allowed())) {
      plan = dns_scorer_.planQuery(pkt, message_, first.domain, &q);
      have_plan = true;
    }
  }
  if (emitter_.evidenceEnabled()) emitter_.observe(dnsPairKey(pkt, first.domain), pkt);
  if (config_->dns_log) {
    emitter_.sink().write(emitter_.formatter().dns(pkt, eveMeta(), message_, first.domain));
    ++stats_.eve_records;
  }
  // Responses matter to rules (direction: response, dns.answer.txt) ...
  bool allowed = false;
  if (!message_.qr || rules_on) allowed = detect(pkt, first, have_plan ? &plan : nullptr);
  // ... and feed the scorer's NXDOMAIN and answer-bytes features, unless an
  // allow rule let the name through: its query made no state, and looking
  // for it would be a cache miss on every allowed response.
  if (message_.qr && scoring_ && !allowed) dns_scorer_.observeResponse(pkt, message_, first.domain);
}

namespace {
// " rule_score=1.50 score_rules=1000101,1000102" when score rules matched.
void appendRuleScore(std::string& out, const rules::RuleScore& score) {
  if (score.count == 0) return;
  char buf[48];
  std::snprintf(buf, sizeof buf, " rule_score=%.2f score_rules=", score.total);
  out += buf;
  const std::size_t n = std::min<std::size_t>(score.count, rules::RuleScore::kMaxScoreRules);
  for (std::size_t i = 0; i < n; ++i) {
    if (i) out += ',';
    out += std::to_string(score.rule_ids[i]);
  }
}
}  // namespace

rules::MatchContext Engine::matchContext(const PacketContext& pkt, const dns::Question& q) const {
  rules::MatchContext ctx;
  ctx.qtype = q.type;
  ctx.response = message_.qr;
  ctx.server_port = message_.qr ? pkt.src_port : pkt.dst_port;
  return ctx;
}

bool Engine::applyRules(const PacketContext& pkt, const NameContext::Name& n, bool first) {
  const std::string_view name = n.lower;
  const std::string_view registered_domain = n.domain;
  if (message_.qr && first) {
    // TXT answers belong to the message, not to one question: they are
    // judged with the first question's name.
    const auto& segments = message_.txtSegments();
    for (const auto& rr : message_.answers) {
      if (rr.kind != dns::RdataKind::Txt) continue;
      for (uint32_t i = 0; i < rr.txt_count && rr.txt_first + i < segments.size(); ++i) {
        matcher_.scan(rules::Field::DnsAnswerTxt, message_.txt(segments[rr.txt_first + i]));
      }
    }
  }
  if (rule_observer_) {
    for (std::size_t i = 0; i < matcher_.hitCount(); ++i)
      rule_observer_->onMatch(matcher_.hit(i), name);
  }

  if (const rules::Rule* allow = matcher_.allowedBy()) {
    ++stats_.rule_allowed;
    if (rule_observer_) {  // `rules test`: say what the allow rule hid
      for (std::size_t i = 0; i < matcher_.alertCount(); ++i) {
        const rules::Rule& r = matcher_.alert(i);
        rule_observer_->onSuppressed(*allow, name, "rule " + std::to_string(r.id) + " " + r.name);
      }
      if (!message_.qr) {
        const auto f = score::lexicalFeatures(n.raw, registered_domain);
        if (score::judgeLexical(f, config_->lexical) != score::LexicalVerdict::Benign) {
          rule_observer_->onSuppressed(*allow, name, "lexical detector");
        }
      }
    }
    return false;
  }

  for (std::size_t i = 0; i < matcher_.alertCount(); ++i) {
    const rules::Rule& r = matcher_.alert(i);
    const std::string_view pair = registered_domain.empty() ? name : registered_domain;
    // One alert per pair per interval: the scorer's pair key, so that a
    // rule's alert and the scorer's verdict on the pair hold each other.
    const IpAddress& client = message_.qr ? pkt.dst : pkt.src;
    if (emitter_.admit(dns_scorer_.pairKey(client, pair), pkt.ts.sec) ==
        score::Admission::Suppressed) {
      ++stats_.alerts_suppressed;
      if (observer_) {
        Alert held;
        held.signature_id = r.id;
        held.signature = r.name;
        observeAlert(pkt, held, pair, name, true);
      }
      continue;
    }
    Alert alert;
    alert.signature_id = r.id;
    alert.signature = r.name;
    alert.category = r.category;
    alert.severity = r.severity;
    alert.reasons = "rule_field=";
    alert.reasons += rules::fieldName(r.field);
    appendRuleScore(alert.reasons, matcher_.score());
    if (observer_) observeAlert(pkt, alert, pair, name, false);
    alert.evidence = evidenceFor(pkt, registered_domain);
    alert.detector = "rule";
    alert.tags = r.tags;
    alert.mitre = r.mitre;
    // A rule's first tag names the tool or family it recognises.
    if (!r.tags.empty()) alert.tool = r.tags.front();
    writeAlert(pkt, alert, &message_, registered_domain);
    ++stats_.rule_alerts;
  }
  return true;
}

bool Engine::detect(const PacketContext& pkt, const NameContext::Name& first_name,
                    const score::DnsScorer::QueryPlan* first_plan) {
  const bool rules_on = plane_->rules != nullptr;
  const IpAddress& server = message_.qr ? pkt.src : pkt.dst;
  // Every valid question a query asks is judged under its own domain (a
  // resolver forwards them all: a second question behind an allowed first
  // is a way out), up to kMaxScoredNames per message.
  std::size_t scored = 0;
  bool first = true;
  bool first_allowed = false;
  for (const auto& q : message_.questions) {
    if (!q.name.valid) {
      first = false;
      continue;
    }
    const bool is_first = first;
    first = false;
    // The first name was analyzed by handleDns (its verdict is the matcher's).
    const NameContext::Name n =
        is_first ? first_name : names_.analyze(message_, q, matchContext(pkt, q), server, rules_on);
    const bool allowed = rules_on && !applyRules(pkt, n, is_first);
    if (observer_) [[unlikely]]
      observeName(pkt, q, n.domain, allowed);
    if (allowed) {
      first_allowed |= is_first;
      continue;
    }
    // ---- scoring (src/score): one verdict path, suppression per pair ----
    if (message_.qr || !scoring_ || scored == kMaxScoredNames) continue;
    ++scored;
    scoreName(pkt, q, n.domain, is_first ? first_plan : nullptr);
  }
  // UPDATE carries names in its update records (authority section), IQUERY
  // in its answers: resolvers forward both, so their owner names are judged
  // like questions (rules, then the scorer).
  const auto* records = message_.qr                        ? nullptr
                        : message_.opcode == kOpcodeUpdate ? &message_.authorities
                        : message_.opcode == kOpcodeIquery ? &message_.answers
                                                           : nullptr;
  if (records) {
    for (const auto& rr : *records) {
      if (scored == kMaxScoredNames) break;
      if (!rr.name.valid || rr.name.length == 0) continue;
      const dns::Question q{rr.name, rr.type, rr.rclass};
      const NameContext::Name n =
          names_.analyze(message_, q, matchContext(pkt, q), server, rules_on);
      if (rules_on && !applyRules(pkt, n, false)) continue;  // allowed
      if (!scoring_) continue;
      ++scored;
      scoreName(pkt, q, n.domain, nullptr);
    }
  }
  // ---- end scoring ----
  return first_allowed;
}

bool Engine::claimShared(const IpAddress& client, std::string_view domain, uint32_t signature_id,
                         int64_t now, bool& update) {
  if (shared_ == nullptr) return true;
  switch (shared_->claim(client, domain, signature_id, now, config_->alert_suppress_seconds)) {
    case score::ClaimOutcome::Suppressed:
      ++stats_.alerts_suppressed;
      return false;
    case score::ClaimOutcome::Initial:
      update = false;
      return true;
    case score::ClaimOutcome::Update:
      update = true;
      return true;
    case score::ClaimOutcome::Unknown:
      return true;  // fail open: local suppression alone
  }
  return true;
}

void Engine::reevaluateShared(uint64_t key, std::string_view domain, const IpAddress& client,
                              const IpAddress& server, uint32_t last_seen) {
  if (const score::DnsVerdict* v = dns_scorer_.reevaluate(key, domain)) {
    deliverShared(*v, kPairScore, domain, client, server, last_seen);
  }
  // The fleet's totals of the pair's domain came with it: the domain view
  // is judged again too (once per domain and interval, fleet-wide).
  if (const score::DnsVerdict* v = dns_scorer_.reevaluateDomain(domain)) {
    deliverShared(*v, kDomainScore, domain, client, server, last_seen);
  }
}

void Engine::deliverShared(const score::DnsVerdict& verdict, const ScoreSignature& sig,
                           std::string_view domain, const IpAddress& client,
                           const IpAddress& server, uint32_t last_seen) {
  const score::DnsVerdict* v = &verdict;
  PacketContext pkt;
  pkt.ts.sec = last_seen;
  pkt.ip_version = client.family;
  pkt.ip_proto = ipproto::kUdp;
  pkt.src = client;
  pkt.dst = server;
  pkt.dst_port = 53;
  // The alert's dns block names the pair's domain: a query for it, made up
  // (the query that tipped the fleet total was seen by another sensor).
  uint8_t wire[12 + 256 + 4] = {0, 0, 1, 0, 0, 1};
  std::size_t n = 12;
  for (std::size_t start = 0; start <= domain.size() && n < 12 + 250;) {
    std::size_t dot = domain.find('.', start);
    if (dot == std::string_view::npos) dot = domain.size();
    const std::size_t len = std::min<std::size_t>({dot - start, 63, 12 + 250 - n});
    if (len == 0) break;
    wire[n++] = static_cast<uint8_t>(len);
    std::memcpy(wire + n, domain.data() + start, len);
    n += len;
    start = dot + 1;
  }
  wire[n++] = 0;
  wire[n++] = 0;
  wire[n++] = 1;  // A
  wire[n++] = 0;
  wire[n++] = 1;  // IN
  const bool have_msg = parser_.parse(wire, n, shared_msg_, weird_);
  Alert& alert = score_alert_;
  alert.reasons.assign(v->reasons);
  alert.reasons += " fleet=1";
  alert.evidence.clear();
  const uint64_t frame = frame_number_;
  frame_number_ = 0;
  deliverScoreAlert(pkt, have_msg ? &shared_msg_ : nullptr, domain, v->update, sig);
  frame_number_ = frame;
}

void Engine::deliverScoreAlert(const PacketContext& pkt, const dns::DnsMessage* msg,
                               std::string_view domain, bool local_update,
                               const ScoreSignature& sig) {
  const char* kInitial = sig.initial;
  const char* kUpdate = sig.update;
  Alert& alert = score_alert_;
  alert.tags.clear();
  alert.mitre.clear();
  alert.tool.clear();
  alert.signature_id = sig.id;
  alert.category = "Potential DNS tunneling";
  alert.severity = 1;
  alert.detector = sig.detector;
  alert.has_tls = false;
  // The domain view's claim is the domain's, whichever client tipped it.
  static const IpAddress kNoClient{};
  const IpAddress& client = sig.per_domain              ? kNoClient
                            : msg != nullptr && msg->qr ? pkt.dst
                                                        : pkt.src;
  const EveMeta meta = eveMeta();
  if (shared_ != nullptr && shared_->defersClaims()) {
    score::SharedStateHook::DeferredAlert d;
    alert.signature = kInitial;
    EveFormatter& eve = emitter_.formatter();
    d.initial = eve.alert(pkt, meta, alert, msg, domain);
    d.initial_fields = eve.alertFields();
    alert.signature = kUpdate;
    d.update = eve.alert(pkt, meta, alert, msg, domain);
    d.update_fields = eve.alertFields();
    d.client = client;
    d.domain.assign(domain);
    d.signature_id = sig.id;
    d.now = pkt.ts.sec;
    d.suppress_seconds = config_->alert_suppress_seconds;
    d.local_update = local_update;
    ++stats_.alerts;
    // deferClaim takes `d` only when it returns true.
    if (!shared_->deferClaim(std::move(d))) {
      writeSharedAlert(local_update ? d.update : d.initial,
                       local_update ? d.update_fields : d.initial_fields);
    }
    return;
  }
  bool update = local_update;
  if (!claimShared(client, domain, sig.id, pkt.ts.sec, update)) return;
  alert.signature = update ? kUpdate : kInitial;
  writeAlert(pkt, alert, msg, domain);
}

void Engine::scoreName(const PacketContext& pkt, const dns::Question& q, std::string_view reg,
                       const score::DnsScorer::QueryPlan* plan) {
  score::RuleHits hits;
  if (plane_->rules) hits.score_weight = matcher_.score().total;
  if (const score::DnsVerdict* v = dns_scorer_.observeQuery(pkt, message_, reg, hits, plan, &q)) {
    emitDnsVerdict(pkt, *v, v->domain);
  }
  if (const score::DnsVerdict* v = dns_scorer_.takeDomainVerdict()) [[unlikely]] {
    emitDomainVerdict(pkt, *v, v->domain);
  }
}

void Engine::emitDomainVerdict(const PacketContext& pkt, const score::DnsVerdict& v,
                               std::string_view domain) {
  Alert& alert = score_alert_;
  alert.signature_id = kDomainSignatureId;
  alert.signature = v.update ? kDomainScore.update : kDomainScore.initial;
  alert.reasons.assign(v.reasons);
  // No evidence file: the pair's would hold one client of several.
  alert.evidence.clear();
  if (observer_) {
    const auto& q = message_.questions.front();
    observeAlert(pkt, alert, domain, q.name.valid ? message_.lower(q.name) : "", false);
  }
  deliverScoreAlert(pkt, &message_, domain, v.update, kDomainScore);
}

void Engine::emitDnsVerdict(const PacketContext& pkt, const score::DnsVerdict& v,
                            std::string_view registered_domain) {
  Alert& alert = score_alert_;
  alert.signature_id = kScoreSignatureId;
  alert.signature = v.update ? "EXFILWATCH DNS tunneling or exfiltration (update)"
                             : "EXFILWATCH DNS tunneling or exfiltration";
  alert.reasons.assign(v.reasons);
  if (plane_->rules) appendRuleScore(alert.reasons, matcher_.score());
  alert.evidence = evidenceFor(pkt, registered_domain);
  if (observer_) {
    const auto& q = message_.questions.front();
    observeAlert(pkt, alert, registered_domain, q.name.valid ? message_.lower(q.name) : "", false);
  }
  deliverScoreAlert(pkt, &message_, registered_domain, v.update, kPairScore);
}

void Engine::reevaluateSharedTls(uint64_t key, const IpAddress& client, const IpAddress& server,
                                 uint16_t port, uint32_t last_seen) {
  const score::TlsVerdict* v = tls_.reevaluate(key, server, port, last_seen);
  if (v == nullptr) return;
  // The segment that tipped the fleet total was seen by another sensor: the
  // alert carries the pair (client -> server:port) at its last time here.
  PacketContext pkt;
  pkt.ts.sec = last_seen;
  pkt.ip_version = client.family;
  pkt.ip_proto = ipproto::kTcp;
  pkt.src = client;
  pkt.dst = server;
  pkt.dst_port = port;
  const uint64_t frame = frame_number_;
  frame_number_ = 0;
  emitTlsVerdict(pkt, *v, true);
  frame_number_ = frame;
}

void Engine::emitTlsVerdict(const PacketContext& pkt, const score::TlsVerdict& v, bool fleet) {
  Alert& alert = score_alert_;
  alert.tags.clear();
  alert.mitre.clear();
  alert.tool.clear();
  alert.signature_id = v.drip ? kTlsDripSignatureId : kTlsBulkSignatureId;
  const char* name = v.drip ? "EXFILWATCH TLS upload drip" : "EXFILWATCH TLS bulk upload";
  auto signature = [&](bool update) {
    alert.signature = name;
    if (update) alert.signature += " (update)";
  };
  signature(v.update);
  alert.category = "Potential data exfiltration";
  alert.severity = 1;
  alert.reasons.assign(v.reasons);
  if (fleet) alert.reasons += " fleet=1";
  alert.evidence.clear();
  const bool to_server = tls_.isTlsPort(pkt.dst_port);
  const IpAddress& client = to_server ? pkt.src : pkt.dst;
  const IpAddress& server = to_server ? pkt.dst : pkt.src;
  const uint16_t port = to_server ? pkt.dst_port : pkt.src_port;
  if (emitter_.evidenceEnabled() && !fleet) {
    alert.evidence =
        emitter_.evidenceFor(tlsPairKey(pkt), pkt, client.toString() + "-" + server.toString());
  }
  if (observer_) {
    observer_->onAlert({pkt, frame_number_, alert, client, {}, {}, server, port, false});
  }
  alert.detector = "tls_score";
  tlsFacts(pkt, alert);
  if (tls_shared_ == nullptr) {
    writeAlert(pkt, alert, nullptr, {});
    return;
  }
  if (tls_shared_->defersClaims()) {
    // The live sensor: both lines formatted now, one written when the fleet answers.
    score::TlsSharedHook::DeferredAlert d;
    const EveMeta meta = eveMeta();
    EveFormatter& eve = emitter_.formatter();
    signature(false);
    d.alert.initial = eve.alert(pkt, meta, alert, nullptr, {});
    d.alert.initial_fields = eve.alertFields();
    signature(true);
    d.alert.update = eve.alert(pkt, meta, alert, nullptr, {});
    d.alert.update_fields = eve.alertFields();
    d.alert.client = client;
    d.alert.signature_id = alert.signature_id;
    d.alert.now = pkt.ts.sec;
    d.alert.suppress_seconds = config_->alert_suppress_seconds;
    d.alert.local_update = v.update;
    d.server = server;
    d.port = port;
    ++stats_.alerts;
    if (!tls_shared_->deferClaim(std::move(d))) {
      writeSharedAlert(v.update ? d.alert.update : d.alert.initial,
                       v.update ? d.alert.update_fields : d.alert.initial_fields);
    }
    return;
  }
  switch (tls_shared_->claim(client, server, port, alert.signature_id, pkt.ts.sec,
                             config_->alert_suppress_seconds)) {
    case score::ClaimOutcome::Suppressed:
      ++stats_.alerts_suppressed;
      return;
    case score::ClaimOutcome::Initial:
      signature(false);
      break;
    case score::ClaimOutcome::Update:
      signature(true);
      break;
    case score::ClaimOutcome::Unknown:  // fail open: local suppression alone
      break;
  }
  writeAlert(pkt, alert, nullptr, {});
}

void Engine::writeAlert(const PacketContext& pkt, const Alert& alert, const dns::DnsMessage* msg,
                        std::string_view registered_domain) {
  emitter_.write(pkt, eveMeta(), alert, msg, registered_domain);
  ++stats_.alerts;
  ++stats_.eve_records;
}

}  // namespace exfilwatch

namespace exfilwatch {

uint64_t Engine::tlsPairKey(const PacketContext& pkt) const {
  // (client, server address and port), whichever way the segment goes.
  const bool to_server = tls_.isTlsPort(pkt.dst_port);
  const IpAddress& client = to_server ? pkt.src : pkt.dst;
  const IpAddress& server = to_server ? pkt.dst : pkt.src;
  const uint16_t port = to_server ? pkt.dst_port : pkt.src_port;
  char what[19];
  std::memcpy(what, server.bytes, 16);
  what[16] = static_cast<char>(port >> 8);
  what[17] = static_cast<char>(port);
  what[18] = static_cast<char>(server.family);
  return EvidenceRecorder::pairKey(client, std::string_view(what, sizeof what));
}

void Engine::observeName(const PacketContext& pkt, const dns::Question& q,
                         std::string_view registered_domain, bool allowed) {
  observer_->onName({pkt, frame_number_, message_.qr ? pkt.dst : pkt.src, message_.lower(q.name),
                     registered_domain, message_.qr != 0,
                     allowed ? matcher_.allowedBy() : nullptr});
}

void Engine::observeAlert(const PacketContext& pkt, const Alert& alert, std::string_view domain,
                          std::string_view name, bool suppressed) {
  const bool response = message_.qr;
  observer_->onAlert({pkt, frame_number_, alert, response ? pkt.dst : pkt.src, domain, name,
                      response ? pkt.src : pkt.dst, response ? pkt.src_port : pkt.dst_port,
                      suppressed});
}

void Engine::tlsFacts(const PacketContext& pkt, Alert& alert) const {
  // The pair's ClientHello and ServerHello as the tracker kept them (EVE `tls`).
  alert.has_tls = false;
  alert.tls.clear();
  const bool to_server = tls_.isTlsPort(pkt.dst_port);
  const IpAddress& client = to_server ? pkt.src : pkt.dst;
  const IpAddress& server = to_server ? pkt.dst : pkt.src;
  const uint16_t port = to_server ? pkt.dst_port : pkt.src_port;
  const score::TlsPairRecord* r = tls_.pair(tls_.pairKey(client, server, port));
  if (r == nullptr || (r->ja3[0] == 0 && r->sni_len == 0)) return;
  alert.has_tls = true;
  alert.tls.sni.assign(r->sni, r->sni_len);
  alert.tls.alpn.assign(r->alpn, r->alpn_len);
  alert.tls.ja3_hash.assign(r->ja3[0] ? r->ja3 : "");
  alert.tls.ja4.assign(r->ja4[0] ? r->ja4 : "");
  alert.tls.ja3_string.assign(tls_.ja3Text(r->ja3));
  static constexpr uint8_t kNoJa3s[16] = {};
  if (std::memcmp(r->ja3s, kNoJa3s, sizeof kNoJa3s) != 0) {
    char hex[33];
    tls::hex16(r->ja3s, hex);
    alert.tls.ja3s_hash.assign(hex);
    alert.tls.ja3s_string.assign(tls_.ja3sText(r->ja3s));
  }
  // Suricata's names (SSLVersionToString): what the ServerHello chose when
  // it was seen, else the client's highest offer.
  switch (r->server_version ? r->server_version : r->version) {
    case 0x0304:
      alert.tls.version = "TLS 1.3";
      break;
    case 0x0303:
      alert.tls.version = "TLS 1.2";
      break;
    case 0x0302:
      alert.tls.version = "TLS 1.1";
      break;
    case 0x0301:
      alert.tls.version = "TLSv1";
      break;
    case 0x0300:
      alert.tls.version = "SSLv3";
      break;
    default:
      alert.tls.version = "UNDETERMINED";
      break;
  }
}

std::string Engine::evidenceFor(const PacketContext& pkt, std::string_view registered_domain) {
  if (!emitter_.evidenceEnabled()) return {};
  const IpAddress& client = message_.qr ? pkt.dst : pkt.src;
  return emitter_.evidenceFor(dnsPairKey(pkt, registered_domain), pkt,
                              client.toString() + "-" + std::string(registered_domain));
}

}  // namespace exfilwatch
