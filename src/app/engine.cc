// engine.cc: the per-worker packet path.
#include "app/engine.h"

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
}

namespace {
constexpr uint32_t kLexicalSignatureId = 9000001;
constexpr uint32_t kBinarySignatureId = 9000002;
constexpr int64_t kExpireEverySeconds = 1;

uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}
}  // namespace

Engine::Engine(ControlPlanePtr plane, EveSink& sink)
    : plane_(std::move(plane)),
      config_(&plane_->config),
      sink_(sink),
      decoder_(config_->decoder),
      parser_(config_->dns_limits),
      tcp_(config_->dns_tcp),
      registered_(config_->public_suffix_list),
      suppress_(config_->alert_suppress_slots ? config_->alert_suppress_slots : 1) {
  for (uint16_t p : config_->dns_ports) dns_ports_.set(p);
}

void Engine::adopt(ControlPlanePtr plane) {
  if (!plane || plane == plane_) return;
  plane_ = std::move(plane);
  config_ = &plane_->config;
  dns_ports_.reset();
  for (uint16_t p : config_->dns_ports) dns_ports_.set(p);
}

void Engine::process(const Frame& frame, uint64_t frame_number) {
  frame_number_ = frame_number;
  if (frame.ts.sec - last_expire_.sec >= kExpireEverySeconds) expire(frame.ts);

  PacketContext pkt;
  if (!decoder_.decode(frame, pkt, weird_)) return;
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

  std::string_view registered;
  if (!message_.questions.empty() && message_.questions.front().name.valid) {
    registered = registered_.lookup(message_.lower(message_.questions.front().name));
  }
  if (config_->dns_log) {
    EveMeta meta{frame_number_, config_->sensor_name};
    sink_.write(eve_.dns(pkt, meta, message_, registered));
    ++stats_.eve_records;
  }
  if (!message_.qr) detect(pkt, registered);
}

bool Engine::suppressed(const PacketContext& pkt, std::string_view registered_domain) {
  if (config_->alert_suppress_seconds == 0) return false;
  uint64_t h = pkt.src.hash();
  for (unsigned char c : registered_domain) h = (h ^ c) * 1099511628211ULL;
  h = mix(h) | 1;  // 0 marks an empty slot
  SuppressSlot& slot = suppress_[h % suppress_.size()];
  if (slot.key == h && pkt.ts.sec - slot.last_alert_sec < config_->alert_suppress_seconds) {
    return true;
  }
  slot.key = h;
  slot.last_alert_sec = pkt.ts.sec;
  return false;
}

void Engine::detect(const PacketContext& pkt, std::string_view registered_domain) {
  for (const auto& q : message_.questions) {
    if (!q.name.valid) continue;
    const score::LexicalFeatures f = score::lexicalFeatures(message_.raw(q.name), registered_domain);
    const score::LexicalVerdict verdict = score::judgeLexical(f, config_->lexical);
    if (verdict == score::LexicalVerdict::Benign) continue;
    if (suppressed(pkt, registered_domain)) {
      ++stats_.alerts_suppressed;
      return;
    }
    Alert alert;
    if (verdict == score::LexicalVerdict::BinaryLabels) {
      alert.signature_id = kBinarySignatureId;
      alert.signature = "EXFILWATCH DNS query name carries raw binary labels";
      alert.severity = 1;
    } else {
      alert.signature_id = kLexicalSignatureId;
      alert.signature = "EXFILWATCH DNS tunnel-shaped query name";
      alert.severity = 2;
    }
    alert.category = "Potential DNS tunneling";
    char reasons[256];
    std::snprintf(reasons, sizeof reasons,
                  "prefix_len=%u entropy=%.2f max_label=%u labels=%u non_ldh=%u high_bytes=%u",
                  f.prefix_length, f.entropy, f.max_label_length, f.label_count, f.non_ldh,
                  f.high_bytes);
    alert.reasons = reasons;
    EveMeta meta{frame_number_, config_->sensor_name};
    sink_.write(eve_.alert(pkt, meta, alert, &message_, registered_domain));
    ++stats_.alerts;
    ++stats_.eve_records;
    return;  // one alert per message
  }
}

}  // namespace exfilwatch
