// alert.h: what detection hands to the output stage. An alert names its
// signature (rule id or detector), a category and a severity (1 high .. 3
// low, as in Suricata), and the reasons with their values, so an analyst
// sees why it fired without re-running anything.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace exfilwatch {

// What a TLS verdict knows about its pair's ClientHello and ServerHello (EVE `tls`).
struct AlertTls {
  std::string sni;
  std::string version;  // "TLS 1.3": the ServerHello's choice, else the client's highest offer
  std::string ja3_hash, ja3_string;
  std::string ja3s_hash, ja3s_string;  // empty: no ServerHello seen
  std::string ja4;
  std::string alpn;  // the client's first ALPN protocol
  void clear() { *this = AlertTls{}; }
};

struct Alert {
  uint32_t signature_id = 0;
  std::string signature;
  std::string category;
  int severity = 2;
  // "key=value key=value", stable keys (score/reasons.h); EVE also writes
  // them typed under exfilwatch.values.
  std::string reasons;
  std::string evidence;  // pcap file holding the pair's packets, "" when off
  std::string detector;  // "rule", "dns_score", "dns_domain" or "tls_score"
  // alert.metadata: the rule's tags, MITRE ATT&CK ids and the tool it names.
  std::vector<std::string> tags, mitre;
  std::string tool;
  bool has_tls = false;
  AlertTls tls;
};

// The fields of an alert that delivery (Alertmanager, counts, top domains)
// needs: handed to the EVE writer thread with the line, so delivery never
// parses the JSON it just wrote.
struct AlertFields {
  std::string timestamp, signature, category, src_ip, dest_ip, domain, rrname, reasons, sensor;
  uint64_t signature_id = 0;
  uint64_t flow_id = 0;
  int severity = 2;
};

}  // namespace exfilwatch
