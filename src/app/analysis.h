// analysis.h: what the analyst's commands (`explain`, `rules test`, `rules
// diff`) share. Captures run through the sensor's Engine, built the way
// replay builds it, with an EngineObserver that keeps the engine's own
// decisions (alerts, allowed names) as plain records: nothing here redoes
// detection or reads EVE text.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/net.h"
#include "config/control_plane.h"
#include "engine/engine.h"

namespace exfilwatch::rules {
struct BuildInfo;
}  // namespace exfilwatch::rules

namespace exfilwatch::app {

// One alert the engine wrote (what replay writes as an EVE alert).
struct AlertRecord {
  std::string file;    // capture it came from
  uint64_t frame = 0;  // pcap_cnt within that file
  Timestamp ts;
  uint32_t signature_id = 0;
  std::string signature;
  bool tls = false;
  std::string client;
  std::string domain;  // DNS: what the pair aggregates under
  std::string server;  // TLS: "address:port"; DNS: the server's address
  std::string name;    // DNS: the question's name (lower case, printable)
  // The pair: "client domain" (DNS) or "client server:port" (TLS).
  std::string pair() const { return client + ' ' + (tls ? server : domain); }
  // Identity across two runs of the same captures.
  bool operator<(const AlertRecord& o) const;
  bool operator==(const AlertRecord& o) const;
};

// Keeps every alert written, and which allow rule took each name.
class AlertCollector : public EngineObserver {
 public:
  static constexpr std::size_t kMaxAllowedNames = 1 << 20;  // distinct names remembered
  void setFile(const std::string& file) { file_ = file; }
  void onAlert(const AlertEvent& e) override;
  void onName(const Name& n) override;
  std::vector<AlertRecord> alerts;
  std::map<std::string, uint32_t> allowed_names;  // name -> allow rule id
  struct AllowSample {
    std::string client, domain, name;
  };
  std::map<uint32_t, AllowSample> allow_samples;  // allow rule id -> its first name
  uint64_t names_allowed = 0;

 private:
  std::string file_;
};

// The control plane replay builds (the pipeline: configuration file, --set,
// rules compiled), with `rules_dir` (when not empty) as rules.directory and
// the rules forced on when it is given. Throws with file:line on any error.
ControlPlanePtr analystPlane(const std::string& config_path, const std::vector<std::string>& sets,
                             const std::string& rules_dir, bool no_cache,
                             rules::BuildInfo* info = nullptr);

// Runs the captures through `engine` in order, frame numbers per file, as
// replay does; tells `collector` (may be null) which file it is in. False
// when a capture could not be opened (the others still run).
bool runCaptures(Engine& engine, const std::vector<std::string>& pcaps, AlertCollector* collector,
                 const char* command);

// "2026-12-06T04:21:44.628919Z" (ISO 8601, UTC).
std::string isoTime(const Timestamp& ts);

// Bytes a terminal should not get raw (tunnel names carry them), escaped.
std::string printable(std::string_view v);

}  // namespace exfilwatch::app
