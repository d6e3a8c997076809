// eve.h: EVE JSON records in Suricata 8's layout, so that its ecosystem
// (Filebeat, EveBox, Arkime, SIEM parsers) reads them unchanged: every
// record validates against Suricata 8.0's etc/schema.json, extended in one
// place, the top-level object `exfilwatch`, for what Suricata has no field
// for. One line per record: "dns" for every DNS message when the DNS log is
// on (DNS v3 layout), "alert" for detections. Fields and where each comes
// from: docs/eve.md.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "alert/alert.h"
#include "alert/json.h"
#include "decode/packet.h"
#include "dns/message.h"

namespace exfilwatch {

// Where EVE lines go. Implementations never throw on the packet path.
class EveSink {
 public:
  virtual ~EveSink() = default;
  virtual void write(std::string_view line) = 0;  // one record, without newline
  // An alert record with the fields delivery needs; sinks that deliver
  // nothing write the line only.
  virtual void writeAlert(std::string_view line, const AlertFields& /*fields*/) { write(line); }
  virtual void flush() = 0;
};

// Buffered lines to a FILE* (stdout or a file); counts write failures.
class FileEveSink final : public EveSink {
 public:
  explicit FileEveSink(std::FILE* f, bool owned = false) : file_(f), owned_(owned) {}
  ~FileEveSink() override;
  void write(std::string_view line) override;
  void flush() override;
  uint64_t lines() const { return lines_; }
  uint64_t failures() const { return failures_; }

 private:
  std::FILE* file_;
  bool owned_;
  uint64_t lines_ = 0;
  uint64_t failures_ = 0;
};

// Appends Suricata's timestamp form, "2026-12-06T04:21:44.628919+0000".
void appendTimestamp(std::string& out, const Timestamp& ts);

// Suricata's flow_id: a positive 51-bit integer, the same for both
// directions of a flow. A fixed (unseeded) hash of the inner 5-tuple and the
// innermost tunnel's VNI, so that replays and every sensor of a fleet give a
// flow the same id; never 0.
uint64_t eveFlowId(const PacketContext& pkt);

// Appends the presentation form of a record's RDATA for decoded types (empty
// for types kept raw): the EVE rdata where Suricata has no object for it.
void appendRdataText(std::string& out, const dns::DnsMessage& msg, const dns::ResourceRecord& rr);

struct EveMeta {
  uint64_t pcap_cnt = 0;           // frame number within the source, 1-based; 0: none
  std::string_view host;           // sensor name (Suricata's `host`), optional
  std::string_view pcap_filename;  // replay: the capture file; "" live
};

class EveFormatter {
 public:
  // A "dns" record. `registered_domain`: of the first question's name.
  const std::string& dns(const PacketContext& pkt, const EveMeta& meta, const dns::DnsMessage& msg,
                         std::string_view registered_domain);
  // An "alert" record, with the DNS block when the alert is about a message.
  // `registered_domain`: what the alert aggregates under (may be empty).
  const std::string& alert(const PacketContext& pkt, const EveMeta& meta, const Alert& alert,
                           const dns::DnsMessage* msg, std::string_view registered_domain);
  // The fields of the last alert() for delivery.
  const AlertFields& alertFields() const { return fields_; }

 private:
  void header(const PacketContext& pkt, const EveMeta& meta, std::string_view event_type);
  void dnsBlock(const dns::DnsMessage& msg);
  void records(std::string_view key, dns::Section section, const dns::DnsMessage& msg,
               const std::vector<dns::ResourceRecord>& rrs);
  void record(dns::Section section, const dns::DnsMessage& msg, const dns::ResourceRecord& rr,
              int txt_index);
  // Opens the `exfilwatch` object: tunnel kind and VNI, registered domain,
  // what the DNS header and EDNS say beyond Suricata's fields. The caller
  // adds its own keys, then closes it.
  void openExtension(const PacketContext& pkt, const dns::DnsMessage* msg,
                     std::string_view registered_domain);
  void reasonValues(std::string_view reasons);
  JsonWriter w_;
  std::string scratch_;
  std::string timestamp_;
  AlertFields fields_;
};

}  // namespace exfilwatch
