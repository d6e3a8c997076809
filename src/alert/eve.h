// eve.h: EVE JSON records, the format Suricata users already ingest. One
// line per record: "dns" for every DNS message when the DNS log is on,
// "alert" for detections. The schema is documented in docs/eve.md; keep it
// stable, consumers build on it.
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

// Appends "2016-10-20T15:23:01.075993Z".
void appendTimestamp(std::string& out, const Timestamp& ts);

// Appends the presentation form of a record's RDATA for decoded types (empty
// for types kept raw).
void appendRdataText(std::string& out, const dns::DnsMessage& msg, const dns::ResourceRecord& rr);

struct EveMeta {
  uint64_t pcap_cnt = 0;    // frame number within the source, 1-based; 0: none
  std::string_view sensor;  // optional sensor name
};

class EveFormatter {
 public:
  // A "dns" record. `registered_domain`: of the first question's name.
  const std::string& dns(const PacketContext& pkt, const EveMeta& meta, const dns::DnsMessage& msg,
                         std::string_view registered_domain);
  // An "alert" record, with the DNS block when the alert is about a message.
  const std::string& alert(const PacketContext& pkt, const EveMeta& meta, const Alert& alert,
                           const dns::DnsMessage* msg, std::string_view registered_domain);

 private:
  void header(const PacketContext& pkt, const EveMeta& meta, std::string_view event_type);
  void dnsBlock(const dns::DnsMessage& msg, std::string_view registered_domain);
  void records(std::string_view key, const dns::DnsMessage& msg,
               const std::vector<dns::ResourceRecord>& rrs);
  JsonWriter w_;
  std::string scratch_;
};

}  // namespace exfilwatch
