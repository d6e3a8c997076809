// config.h: the sensor's configuration, loaded from YAML. Loading is the
// control plane: it throws ConfigError with "file:line: message" on any
// mistake (unknown key, wrong type, out-of-range value), so a typo never
// silently falls back to a default. Once built, a Config is immutable.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "alert/alert_config.h"
#include "capture/source_filter.h"
#include "decode/decoder.h"
#include "dns/message.h"
#include "dns/registered_domain.h"
#include "dns/tcp_stream.h"
#include "score/lexical.h"
#include "score/score_config.h"

namespace exfilwatch {

namespace score {
class NgramModel;
}  // namespace score

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// `listen:`: the live sensor's sockets and threads (`exfilwatch run`). Read
// once at start: a reload that changes them is applied to everything else
// and logs that these need a restart.
struct ListenConfig {
  std::string address = "0.0.0.0";  // VXLAN and GENEVE sockets
  uint16_t vxlan_port = 4789;
  bool geneve_enabled = false;
  uint16_t geneve_port = 6081;
  std::string health_address = "0.0.0.0";
  uint16_t health_port = 4789;         // TCP; 0: no health listener
  uint32_t workers = 0;                // 0: one per core
  uint64_t rcvbuf_bytes = 32u << 20;   // SO_RCVBUF per socket (kernel caps at rmem_max)
  uint32_t batch_size = 64;            // datagrams per recvmmsg
  uint32_t max_datagram_bytes = 9216;  // receive slot; AWS mirror MTU is 9001
  // The kernel delivers each VXLAN datagram to its owner's socket (a
  // reuseport BPF program, capture/reuseport_steering.h); the hand-off rings
  // then carry only what it cannot steer.
  bool kernel_steering = true;
  uint64_t handoff_ring_bytes = 4u << 20;  // per worker pair (receiver -> owner)
  uint64_t eve_queue_bytes = 8u << 20;     // per worker, to the EVE writer thread
  // Outer senders accepted (the mirror sources' subnets); others are
  // dropped undecoded and counted (socket.foreign_source). Empty: any.
  std::vector<IpPrefix> sources;
  bool operator==(const ListenConfig&) const = default;
};

// `health:`: when the NLB health check (TCP accept) must fail.
struct HealthConfig {
  bool require_rules = false;  // unhealthy while the control plane has no rule set
  uint32_t stall_seconds = 5;  // unhealthy when a worker made no progress this long
};

// `fleet:` (docs/fleet.md): the Redis the fleet's sensors share detection
// state in. Every key is a row of the key table (config/keys.h: types and
// ranges); the Redis client's own table (src/fleet) checks the values and
// what involves several of them when the sensor starts
// (engine/fleet_config.h), naming where each was set. Read once at start.
// The defaults are src/fleet's (a unit test holds them equal).
struct FleetConfig {
  std::string url;  // "": no fleet
  bool cluster = false;
  std::vector<std::string> seeds;
  std::string user, password_file;
  std::string key_prefix = "exfilwatch:";
  uint32_t flush_ms = 250;
  uint32_t connect_timeout_ms = 2000;
  uint32_t command_timeout_ms = 1000;
  std::string tls_ca_file, tls_cert_file, tls_key_file, tls_server_name;
  bool tls_verify = true;
  bool health_requires_fleet = false;  // unhealthy for the NLB while Redis is down
  // Client key (without "fleet.") -> where it was last set: "file:line: ",
  // "--set:1: ". For the messages of the checks at start.
  std::map<std::string, std::string> where;
};

// `metrics:`: the Prometheus endpoint. Read once at start, like listen:.
struct MetricsConfig {
  std::string address = "0.0.0.0:9108";  // HOST:PORT of /metrics; "": off
  // Domains kept by the bounded top-K of exfilwatch_alerted_domain_alerts
  // (Space-Saving; at most this many series); 0: no per-domain metric.
  uint32_t top_domains = 20;
  bool operator==(const MetricsConfig&) const = default;
};

// `rules:`: the analyst rule set (src/rules, docs/rules.md). Compiled with
// the rest of the control plane; a rule set that does not load fails the
// whole build, so a reload with a broken rule keeps the old plane running.
struct RulesConfig {
  bool enabled = true;
  std::string directory;        // "": the installed default rules (docs/rules.md)
  std::string cache_directory;  // "": $XDG_CACHE_HOME or ~/.cache /exfilwatch/rules; "off": none
};

struct Config {
  std::string source;  // file it came from, "" for defaults

  DecoderConfig decoder;
  std::vector<uint16_t> dns_ports{53};
  dns::ParseLimits dns_limits;
  dns::TcpLimits dns_tcp;
  std::string public_suffix_list = dns::kDefaultPublicSuffixList;

  score::LexicalThresholds lexical;
  uint32_t alert_suppress_seconds = 300;  // one alert per client and domain per interval
  uint32_t alert_suppress_slots = 65536;  // bounded suppression table

  // `score:` (src/score, src/tls; docs/scoring.md). The n-gram model named
  // by score.dns.model is loaded with the config; null: the built-in one.
  score::ScoreConfig score;
  std::shared_ptr<const score::NgramModel> score_model;

  std::string sensor_name;
  bool dns_log = false;

  ListenConfig listen;
  HealthConfig health;
  FleetConfig fleet;
  RulesConfig rules;
  OutputConfig output;
  AlertmanagerConfig alertmanager;
  EvidenceConfig evidence;
  MetricsConfig metrics;
};

// Defaults when path is empty. A directory, an unreadable or an empty file
// is an error. Throws ConfigError.
Config loadConfig(const std::string& path);
// The same, then each `--set KEY=VALUE` in order (config/keys.h).
Config loadConfig(const std::string& path, const std::vector<std::string>& sets);
Config parseConfig(const std::string& yaml_text, const std::string& source_name);

}  // namespace exfilwatch
