// alert_config.h: the output stage's configuration (`output:`,
// `alertmanager:`, `evidence:`), owned here so that alert needs nothing from
// config; config/config.h aggregates it. Read once at start, like listen:.
#pragma once

#include <cstdint>
#include <string>

namespace exfilwatch {

struct OutputConfig {
  std::string eve_path;         // "": --eve or stdout
  uint64_t rotate_bytes = 0;    // rotate the EVE file at this size; 0: never
  uint32_t rotate_seconds = 0;  // ... or this age; 0: never
  uint32_t rotate_keep = 10;    // rotated files kept (FILE.1 newest .. FILE.N)
  bool stdout_alerts = false;   // alert lines also to stdout (when EVE goes to a file)
  bool syslog_alerts = false;   // alert lines also to syslog (LOG_DAEMON, warning)
  bool operator==(const OutputConfig&) const = default;
};
struct AlertmanagerConfig {
  std::string url;                 // e.g. http://127.0.0.1:9093; "": off
  uint32_t batch_size = 64;        // alerts per POST
  uint32_t queue_size = 10000;     // pending alerts; beyond: dropped and counted
  uint32_t timeout_ms = 5000;      // per request
  uint32_t retry_max_ms = 30000;   // backoff ceiling between failed POSTs
  uint32_t resolve_seconds = 300;  // endsAt = now + this
  bool operator==(const AlertmanagerConfig&) const = default;
};
struct EvidenceConfig {
  std::string directory;            // "": off
  uint32_t seconds = 60;            // packets captured after an alert, per pair
  uint32_t ring_packets = 16;       // packets before the alert written per pair; ring = x64
  uint32_t max_pairs = 1024;        // pairs recorded at once per worker
  uint64_t file_bytes = 16u << 20;  // rotate the evidence pcap at this size
  uint32_t files = 10;              // evidence files kept
  bool operator==(const EvidenceConfig&) const = default;
};

}  // namespace exfilwatch
