// alert_emitter.h: where every alert of a worker leaves, rule and scorer,
// DNS and TLS alike. It owns the suppression gate (one alert per pair per
// interval, whichever detector fires; the scorers consult the same gate
// before they build a verdict), the evidence recorder, and the EVE writing.
#pragma once

#include <any>
#include <cstdint>
#include <string>
#include <string_view>

#include "alert/eve.h"
#include "alert/evidence.h"
#include "score/alert_gate.h"

namespace exfilwatch {

class AlertEmitter {
 public:
  AlertEmitter(EveSink& sink, const EvidenceConfig& evidence, std::string worker_tag,
               std::size_t suppress_slots, uint32_t suppress_seconds)
      : sink_(sink),
        gate_(suppress_slots, suppress_seconds),
        evidence_(evidence, std::move(worker_tag)) {}

  // Suppression: `pair` is the detector's 64-bit pair key (the DNS scorer's
  // for (client, aggregation domain), the TLS tracker's for (client,
  // server, port)).
  score::AlertGate& gate() { return gate_; }
  score::Admission admit(uint64_t pair, int64_t now) { return gate_.admit(pair, now); }
  void setSuppressSeconds(uint32_t s) { gate_.setInterval(s); }

  // Evidence: every packet of a pair is offered (kept in a short ring);
  // the pair's first alert opens its pcap. Keyed by EvidenceRecorder::pairKey.
  bool evidenceEnabled() const { return evidence_.enabled(); }
  void observe(uint64_t evidence_pair, const PacketContext& pkt) {
    evidence_.observe(evidence_pair, pkt);
  }
  std::string evidenceFor(uint64_t evidence_pair, const PacketContext& pkt,
                          std::string_view label) {
    if (!evidence_.enabled()) return {};
    return evidence_.onAlert(evidence_pair, pkt, label);
  }
  void expire(Timestamp now) { evidence_.expire(now); }
  const EvidenceRecorder& evidence() const { return evidence_; }

  // Writes an admitted alert: its EVE record, and its fields to delivery.
  void write(const PacketContext& pkt, const EveMeta& meta, const Alert& alert,
             const dns::DnsMessage* msg, std::string_view domain) {
    const std::string& line = eve_.alert(pkt, meta, alert, msg, domain);
    sink_.writeAlert(line, eve_.alertFields());
    ++alerts_;
  }
  // A line formatted earlier (a deferred fleet claim) with its fields.
  void writeLine(const std::string& line, const std::any& fields) {
    if (const auto* f = std::any_cast<AlertFields>(&fields)) {
      sink_.writeAlert(line, *f);
    } else {
      sink_.write(line);
    }
    ++alerts_;
  }
  // The formatter, for alerts written later (deferred) and DNS log records.
  EveFormatter& formatter() { return eve_; }
  EveSink& sink() { return sink_; }

  uint64_t written() const { return alerts_; }  // alert records written

 private:
  EveSink& sink_;
  EveFormatter eve_;
  score::AlertGate gate_;
  EvidenceRecorder evidence_;
  uint64_t alerts_ = 0;
};

}  // namespace exfilwatch
