// keys.cc: the configuration key table and what it drives.
#include "config/keys.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "common/net.h"
#include "common/yaml_reader.h"
#include "score/ngram_model.h"

namespace exfilwatch::config {

namespace {

// One row's field accessor: `F(listen.vxlan_port)`.
#define F(member)            \
  +[](Config & c) -> auto& { \
    return c.member;         \
  }

constexpr double kMaxMem = static_cast<double>(uint64_t{1} << 36);
constexpr double kWeek = 86400.0 * 7;

// In YAML order: `config --defaults` prints the sections as they come here.
// clang-format off
const Key kKeys[] = {
    {"sensor_name", F(sensor_name), 0, 0, Check::None, false, "written into every record (e.g. the instance id); \"\": omitted"},

    {"decode.vxlan_ports", F(decoder.vxlan_ports), 1, 65535, Check::None, true, "UDP destination ports that carry VXLAN"},
    {"decode.geneve_ports", F(decoder.geneve_ports), 1, 65535, Check::None, true, "UDP destination ports that carry GENEVE"},
    {"decode.fragments.max_datagrams", F(decoder.fragments.max_datagrams), 1, 1 << 24, Check::None, true, "IP reassembly: pending datagrams, per tunnel nesting level"},
    {"decode.fragments.max_bytes", F(decoder.fragments.max_bytes), 65536, static_cast<double>(uint64_t{1} << 34), Check::None, true, "IP reassembly: buffered bytes of pending datagrams"},
    {"decode.fragments.timeout_seconds", F(decoder.fragments.timeout_sec), 1, 3600, Check::None, true, "IP reassembly: seconds since the first fragment (packet time)"},
    {"decode.fragments.max_fragments_per_datagram", F(decoder.fragments.max_fragments_per_datagram), 2, 8192, Check::None, true, "IP reassembly: distinct fragments carrying new bytes"},

    {"dns.ports", F(dns_ports), 1, 65535, Check::None, false, "ports whose UDP and TCP traffic is parsed as DNS"},
    {"dns.max_records", F(dns_limits.max_records), 1, 65535, Check::None, true, "records stored per message; more is dns.too_many_records"},
    {"dns.public_suffix_list", F(public_suffix_list), 0, 0, Check::Readable, true, "the public suffix list (Debian package publicsuffix); must open at load"},
    {"dns.log", F(dns_log), 0, 0, Check::None, false, "one \"dns\" EVE record per DNS message (same as --dns-log)"},
    {"dns.tcp.max_flows", F(dns_tcp.max_flows), 1, 1 << 24, Check::None, true, "DNS over TCP: flows reassembled at once"},
    {"dns.tcp.max_buffered_bytes", F(dns_tcp.max_buffered_bytes), 65536, static_cast<double>(uint64_t{1} << 34), Check::None, true, "DNS over TCP: bytes buffered over all flows"},
    {"dns.tcp.idle_timeout_seconds", F(dns_tcp.idle_timeout_sec), 1, 86400, Check::None, true, "DNS over TCP: a flow idle this long is dropped"},

    {"detect.suppress_seconds", F(alert_suppress_seconds), 0, kWeek, Check::None, false, "one alert per pair (DNS: client and aggregation domain; TLS: client, server and port) per interval, whichever detector fires first; 0: none"},
    {"detect.suppress_slots", F(alert_suppress_slots), 1, 1 << 24, Check::None, true, "entries of the bounded suppression table (one per recently alerted pair, all detectors)"},
    {"detect.lexical.min_prefix_length", F(lexical.min_prefix_length), 1, 255, Check::None, false, "tunnel-shaped query: prefix at least this long ..."},
    {"detect.lexical.min_entropy", F(lexical.min_entropy), 0.0, 8.0, Check::None, false, "... with at least this many bits per character"},
    {"detect.lexical.min_prefix_length_binary", F(lexical.min_prefix_length_binary), 1, 255, Check::None, false, "tunnel-shaped query: prefix length when it carries raw 8-bit bytes ..."},
    {"detect.lexical.min_high_bytes", F(lexical.min_high_bytes), 1, 255, Check::None, false, "... at least this many of them"},

    {"rules.enabled", F(rules.enabled), 0, 0, Check::None, false, "false: no rule engine"},
    {"rules.directory", F(rules.directory), 0, 0, Check::None, false, "\"\": share/exfilwatch/rules, else the source tree's rules/"},
    {"rules.cache_directory", F(rules.cache_directory), 0, 0, Check::None, false, "compiled rule cache; \"\": $XDG_CACHE_HOME/exfilwatch/rules or ~/.cache/...; off: none"},

    {"score.dns.enabled", F(score.dns.enabled), 0, 0, Check::None, false, "the DNS volume and information scorer"},
    {"score.dns.memory_bytes", F(score.dns.memory_bytes), 65536, kMaxMem, Check::None, true, "(client, domain) records per worker"},
    {"score.dns.seen_names_bytes", F(score.dns.seen_names_bytes), 4096, kMaxMem, Check::None, true, "fingerprints of names already seen, one table per sensor"},
    {"score.dns.windows", F(score.dns.windows), 1, kWeek, Check::Ascending, false, "window lengths in seconds, three, strictly ascending"},
    {"score.dns.info_bytes", F(score.dns.info_bytes), 0, kWeek, Check::None, false, "information sent per window (bytes after compression); 0 disables one"},
    {"score.dns.daily_info_bytes", F(score.dns.daily_info_bytes), 0, 65535, Check::None, false, "information sent over a sliding 24 hours (bytes after compression), the slow-leak budget; 0: off"},
    {"score.dns.unique_subdomains", F(score.dns.unique_subdomains), 0, 1 << 30, Check::None, false, "names never seen before under the domain, middle window"},
    {"score.dns.answer_bytes", F(score.dns.answer_bytes), 0, static_cast<double>(1u << 31), Check::None, false, "answer RDATA bytes (downstream channel), middle window"},
    {"score.dns.lexical_hits", F(score.dns.lexical_hits), 0, 1 << 16, Check::None, false, "tunnel-shaped queries, middle window"},
    {"score.dns.model_bits_per_char", F(score.dns.model_bits_per_char), 0.0, 64.0, Check::None, false, "a query this unlike benign names (model bits per character) ..."},
    {"score.dns.model_min_label", F(score.dns.model_min_label), 1, 255, Check::None, false, "... with a label at least this long is tunnel-shaped"},
    {"score.dns.risky_types_min_queries", F(score.dns.risky_types_min_queries), 1, 1 << 16, Check::None, false, "the type-mix component needs this many queries"},
    {"score.dns.alert_score", F(score.dns.alert_score), 0.01, 1000.0, Check::None, false, "a pair alerts when its weighted score reaches this"},
    {"score.dns.min_new_names", F(score.dns.min_new_names), 1, 1 << 16, Check::None, false, "a verdict needs this many names never seen before under the domain in one window"},
    {"score.dns.weight_info", F(score.dns.weight_info), 0.0, 100.0, Check::None, false, "weight of the information component"},
    {"score.dns.weight_unique", F(score.dns.weight_unique), 0.0, 100.0, Check::None, false, "weight of the new-names component"},
    {"score.dns.weight_answer", F(score.dns.weight_answer), 0.0, 100.0, Check::None, false, "weight of the answer-bytes component"},
    {"score.dns.weight_lexical", F(score.dns.weight_lexical), 0.0, 100.0, Check::None, false, "weight of the tunnel-shaped-query component"},
    {"score.dns.weight_types", F(score.dns.weight_types), 0.0, 100.0, Check::None, false, "weight of the query-type-mix component"},
    {"score.dns.weight_rules", F(score.dns.weight_rules), 0.0, 100.0, Check::None, false, "weight of score rules, x min(1, sum of their weights over new names)"},
    {"score.dns.model", F(score.dns.model_path), 0, 0, Check::Model, false, "benign-name n-gram model file; \"\": the built-in models/dns-trigram-v1.txt"},
    {"score.dns.domain.enabled", F(score.dns.domain_enabled), 0, 0, Check::None, false, "the domain view: one registered domain's information over all its clients (signature 9000005)"},
    {"score.dns.domain.memory_bytes", F(score.dns.domain_memory_bytes), 65536, kMaxMem, Check::None, true, "domain view records (176 bytes each) for the whole sensor: its workers share one table"},
    {"score.dns.domain.info_bytes", F(score.dns.domain_info_bytes), 0, kWeek, Check::None, false, "domain view: information per window over all clients (bytes after compression); 0 disables one"},
    {"score.dns.domain.daily_info_bytes", F(score.dns.domain_daily_info_bytes), 0, static_cast<double>(1u << 31), Check::None, false, "domain view: information over a sliding 24 hours, all clients; 0: off"},
    {"score.dns.domain.min_clients", F(score.dns.domain_min_clients), 2, 1 << 16, Check::None, false, "domain view: clients that sent new names under the domain, at least"},

    {"score.tls.enabled", F(score.tls.enabled), 0, 0, Check::None, false, "the TLS upload tracker"},
    {"score.tls.ports", F(score.tls.ports), 1, 65535, Check::None, false, "TCP ports tracked as TLS"},
    {"score.tls.memory_bytes", F(score.tls.memory_bytes), 65536, kMaxMem, Check::None, true, "(client, destination) records per worker"},
    {"score.tls.max_flows", F(score.tls.max_flows), 16, 1 << 26, Check::None, true, "tracked TCP flows"},
    {"score.tls.hello_buffers", F(score.tls.hello_buffers), 1, 1 << 16, Check::None, true, "ClientHellos being reassembled at once"},
    {"score.tls.hello_max_bytes", F(score.tls.hello_max_bytes), 512, 65535, Check::None, true, "bytes per ClientHello"},
    {"score.tls.flow_idle_seconds", F(score.tls.flow_idle_seconds), 1, 86400, Check::None, false, "a flow idle this long is forgotten"},
    {"score.tls.windows", F(score.tls.windows), 1, kWeek, Check::Ascending, false, "window lengths in seconds, three, strictly ascending"},
    {"score.tls.bulk_upload_bytes", F(score.tls.bulk_upload_bytes), 0, kMaxMem, Check::None, false, "bulk: upload in the middle window at least this large"},
    {"score.tls.drip_flows", F(score.tls.drip_flows), 0, 1 << 24, Check::None, false, "drip: this many upload flows over the longest window ..."},
    {"score.tls.drip_upload_bytes", F(score.tls.drip_upload_bytes), 0, kMaxMem, Check::None, false, "... and this much uploaded in total"},
    {"score.tls.drip_flow_min_bytes", F(score.tls.drip_flow_min_bytes), 1, 1 << 30, Check::None, false, "a flow counts as an upload when it sent at least this much"},
    {"score.tls.upload_ratio", F(score.tls.upload_ratio), 1.0, 1e6, Check::None, false, "upload/download ratio both verdicts need (never on downloads)"},

    {"listen.address", F(listen.address), 0, 0, Check::Address, true, "VXLAN and GENEVE sockets (numeric IPv4/IPv6)"},
    {"listen.vxlan_port", F(listen.vxlan_port), 1, 65535, Check::None, true, "VXLAN UDP port"},
    {"listen.geneve_enabled", F(listen.geneve_enabled), 0, 0, Check::None, true, "GENEVE (e.g. a Gateway Load Balancer) on geneve_port"},
    {"listen.geneve_port", F(listen.geneve_port), 1, 65535, Check::None, true, "GENEVE UDP port; must differ from vxlan_port when enabled"},
    {"listen.health_address", F(listen.health_address), 0, 0, Check::Address, true, "the NLB's TCP health check (numeric IPv4/IPv6)"},
    {"listen.health_port", F(listen.health_port), 0, 65535, Check::None, true, "TCP health check port; 0: no health listener"},
    {"listen.workers", F(listen.workers), 0, 256, Check::None, true, "worker threads; 0: one per core; --workers overrides"},
    {"listen.rcvbuf_bytes", F(listen.rcvbuf_bytes), 65536, static_cast<double>(uint64_t{1} << 31), Check::None, true, "SO_RCVBUF per socket (net.core.rmem_max caps it, with a warning)"},
    {"listen.batch_size", F(listen.batch_size), 1, 1024, Check::None, true, "datagrams per recvmmsg"},
    {"listen.max_datagram_bytes", F(listen.max_datagram_bytes), 256, 65535, Check::None, true, "receive slot (AWS mirror MTU 9001); larger is socket.oversize"},
    {"listen.kernel_steering", F(listen.kernel_steering), 0, 0, Check::None, true, "reuseport BPF program: each VXLAN datagram to its owner's socket"},
    {"listen.handoff_ring_bytes", F(listen.handoff_ring_bytes), 1 << 18, static_cast<double>(uint64_t{1} << 31), Check::None, true, "per (receiver, owner) worker pair"},
    {"listen.eve_queue_bytes", F(listen.eve_queue_bytes), 1 << 18, static_cast<double>(uint64_t{1} << 31), Check::None, true, "per worker, towards the EVE writer"},
    {"listen.sources", F(listen.sources), 0, 256, Check::CidrList, true, "outer senders accepted, at most 256 CIDR prefixes tested per datagram; others are socket.foreign_source; []: any"},

    {"health.require_rules", F(health.require_rules), 0, 0, Check::None, false, "unhealthy while no rule set is loaded"},
    {"health.stall_seconds", F(health.stall_seconds), 1, 3600, Check::None, false, "unhealthy when a worker makes no progress this long"},


    {"output.eve", F(output.eve_path), 0, 0, Check::None, true, "EVE JSON file (e.g. /var/log/exfilwatch/eve.json); --eve overrides; \"\": stdout"},
    {"output.rotate_bytes", F(output.rotate_bytes), 0, static_cast<double>(uint64_t{1} << 40), Check::None, true, "rotate the EVE file at this size; 0: never"},
    {"output.rotate_seconds", F(output.rotate_seconds), 0, 86400 * 31, Check::None, true, "... or at this age (replay: packet time); 0: never"},
    {"output.rotate_keep", F(output.rotate_keep), 1, 100000, Check::None, true, "rotated files kept, FILE.1 (newest) .. FILE.N"},
    {"output.stdout", F(output.stdout_alerts), 0, 0, Check::None, true, "alert lines also to stdout"},
    {"output.syslog", F(output.syslog_alerts), 0, 0, Check::None, true, "alert lines also to syslog (daemon.warning)"},

    {"alertmanager.url", F(alertmanager.url), 0, 0, Check::HttpUrl, true, "e.g. http://127.0.0.1:9093 (POST /api/v2/alerts); \"\": off"},
    {"alertmanager.batch_size", F(alertmanager.batch_size), 1, 10000, Check::None, true, "alerts per POST"},
    {"alertmanager.queue_size", F(alertmanager.queue_size), 1, 10000000, Check::None, true, "pending alerts; beyond: dropped and counted"},
    {"alertmanager.timeout_ms", F(alertmanager.timeout_ms), 10, 600000, Check::None, true, "per request"},
    {"alertmanager.retry_max_ms", F(alertmanager.retry_max_ms), 10, 3600000, Check::None, true, "backoff ceiling between failed POSTs (exponential from 100 ms)"},
    {"alertmanager.resolve_seconds", F(alertmanager.resolve_seconds), 1, kWeek, Check::None, true, "endsAt = now + this"},

    {"evidence.directory", F(evidence.directory), 0, 0, Check::None, true, "where evidence pcaps go; \"\": off"},
    {"evidence.seconds", F(evidence.seconds), 0, 86400, Check::None, true, "packets recorded after an alert, per pair"},
    {"evidence.ring_packets", F(evidence.ring_packets), 1, 256, Check::None, true, "packets before the alert written per pair (ring: 64 times this)"},
    {"evidence.max_pairs", F(evidence.max_pairs), 1, 1 << 20, Check::None, true, "pairs recorded at once per worker"},
    {"evidence.file_bytes", F(evidence.file_bytes), 65536, static_cast<double>(uint64_t{1} << 40), Check::None, true, "rotate an evidence pcap at this size"},
    {"evidence.files", F(evidence.files), 1, 100000, Check::None, true, "evidence files kept per worker, oldest removed"},

    {"metrics.address", F(metrics.address), 0, 0, Check::HostPort, true, "HOST:PORT of /metrics (numeric host, [V6]:PORT, :PORT); \"\": off"},
    {"metrics.top_domains", F(metrics.top_domains), 0, 1000, Check::None, true, "domains in exfilwatch_alerted_domain_alerts (bounded series); 0: off"},
    {"fleet.url", F(fleet.url), 0, 0, Check::Fleet, true, "redis://[user@]host[:port][/db], or rediss:// for TLS; port 6379 when left out; \"\": no fleet"},
    {"fleet.cluster", F(fleet.cluster), 0, 0, Check::Fleet, true, "Redis Cluster: route by hash slot from CLUSTER SLOTS, follow MOVED and ASK"},
    {"fleet.seeds", F(fleet.seeds), 0, 0, Check::Fleet, true, "more host:port cluster nodes to discover the cluster from; sets cluster"},
    {"fleet.user", F(fleet.user), 0, 0, Check::Fleet, true, "ACL user (AUTH user password); the URL may name it too"},
    {"fleet.password_file", F(fleet.password_file), 0, 0, Check::Fleet, true, "file holding the password (one line); \"\": no AUTH"},
    {"fleet.key_prefix", F(fleet.key_prefix), 0, 0, Check::Fleet, true, "prefix of every key the fleet writes (no braces)"},
    {"fleet.flush_ms", F(fleet.flush_ms), 10, 60000, Check::Fleet, true, "deltas are flushed at most once per this many ms"},
    {"fleet.connect_timeout_ms", F(fleet.connect_timeout_ms), 10, 600000, Check::Fleet, true, "connect, TLS and AUTH of one connection"},
    {"fleet.command_timeout_ms", F(fleet.command_timeout_ms), 10, 600000, Check::Fleet, true, "a reply later than this marks the connection slow: it is closed and reopened"},
    {"fleet.tls_ca_file", F(fleet.tls_ca_file), 0, 0, Check::Fleet, true, "CA certificates (PEM) that verify the server; \"\": the system's"},
    {"fleet.tls_cert_file", F(fleet.tls_cert_file), 0, 0, Check::Fleet, true, "client certificate chain (PEM), for mutual TLS"},
    {"fleet.tls_key_file", F(fleet.tls_key_file), 0, 0, Check::Fleet, true, "client private key (PEM), with tls_cert_file"},
    {"fleet.tls_server_name", F(fleet.tls_server_name), 0, 0, Check::Fleet, true, "name sent (SNI) and verified; \"\": the host of each node"},
    {"fleet.tls_verify", F(fleet.tls_verify), 0, 0, Check::Fleet, true, "verify the server's certificate chain and name"},
    {"fleet.health_requires_fleet", F(fleet.health_requires_fleet), 0, 0, Check::None, true, "unhealthy for the NLB while the fleet's Redis is down"},
};
// clang-format on
#undef F

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

std::string yamlQuoted(const std::string& s) {
  std::string out = "\"";
  for (const unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string real(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, r.ptr);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string integerText(double v) { return std::to_string(static_cast<unsigned long long>(v)); }

// HOST:PORT, [V6]:PORT or :PORT with a numeric host and a port 1-65535.
bool hostPort(const std::string& a, std::string& why) {
  const auto colon = a.rfind(':');
  if (colon == std::string::npos) {
    why = "expected HOST:PORT";
    return false;
  }
  const std::string port = a.substr(colon + 1);
  unsigned long n = 0;
  const auto r = std::from_chars(port.data(), port.data() + port.size(), n, 10);
  if (port.empty() || r.ec != std::errc{} || r.ptr != port.data() + port.size() || n < 1 ||
      n > 65535) {
    why = "port '" + port + "' is not in 1-65535";
    return false;
  }
  std::string host = a.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    why = "an IPv6 host needs brackets: [V6]:PORT";
    return false;
  }
  IpAddress ip;
  if (!host.empty() && !IpAddress::parse(host, ip)) {
    why = "host '" + host + "' is not a numeric IP address";
    return false;
  }
  return true;
}

void checkString(Config& c, const Key& key, const std::string& value, const YAML::Node& node,
                 const yaml::Reader& r) {
  const std::string name = key.name;
  switch (key.check) {
    case Check::Address: {
      IpAddress ip;
      if (!IpAddress::parse(value, ip))
        r.fail(node, name + ": '" + value + "' is not an IP address");
      break;
    }
    case Check::HostPort: {
      std::string why;
      if (!value.empty() && !hostPort(value, why)) {
        r.fail(node, name + ": expected HOST:PORT, got '" + value + "': " + why);
      }
      break;
    }
    case Check::HttpUrl:
      if (!value.empty() && value.rfind("http://", 0) != 0 && value.rfind("https://", 0) != 0) {
        r.fail(node, name + ": expected http:// or https://");
      }
      break;
    case Check::Readable: {
      std::error_code ec;
      if (std::filesystem::is_directory(value, ec))
        r.fail(node, name + ": " + value + ": is a directory");
      if (!std::ifstream(value)) r.fail(node, name + ": " + value + ": cannot open");
      break;
    }
    case Check::Model: {
      c.score_model.reset();
      if (value.empty()) break;
      std::string error;
      c.score_model = score::NgramModel::load(value, error);
      if (!c.score_model) r.fail(node, name + ": " + value + ": " + error);
      break;
    }
    default:
      break;
  }
}

void setFrom(Config& c, const Key& key, const YAML::Node& node, const yaml::Reader& r) {
  const std::string name = key.name;
  std::visit(Overloaded{
                 [&](bool& (*f)(Config&)) { f(c) = r.boolean(node, name); },
                 [&](uint16_t& (*f)(Config&)) {
                   f(c) = r.integer<uint16_t>(node, name, static_cast<uint16_t>(key.min),
                                              static_cast<uint16_t>(key.max));
                 },
                 [&](uint32_t& (*f)(Config&)) {
                   f(c) = r.integer<uint32_t>(node, name, static_cast<uint32_t>(key.min),
                                              static_cast<uint32_t>(key.max));
                 },
                 [&](uint64_t& (*f)(Config&)) {
                   f(c) = r.integer<uint64_t>(node, name, static_cast<uint64_t>(key.min),
                                              static_cast<uint64_t>(key.max));
                 },
                 [&](double& (*f)(Config&)) { f(c) = r.real(node, name, key.min, key.max); },
                 [&](std::string& (*f)(Config&)) {
                   const std::string value = r.string(node, name);
                   checkString(c, key, value, node, r);
                   f(c) = value;
                 },
                 [&](std::vector<uint16_t>& (*f)(Config&)) { f(c) = r.ports(node, name); },
                 [&](std::array<uint32_t, score::kWindows>& (*f)(Config&)) {
                   if (!node.IsSequence() || node.size() != score::kWindows) {
                     r.fail(node, name + ": expected a list of " + std::to_string(score::kWindows) +
                                      " numbers");
                   }
                   std::array<uint32_t, score::kWindows> out{};
                   for (std::size_t i = 0; i < out.size(); ++i) {
                     out[i] = r.integer<uint32_t>(node[i], name, static_cast<uint32_t>(key.min),
                                                  static_cast<uint32_t>(key.max));
                     if (key.check == Check::Ascending && i > 0 && out[i] <= out[i - 1]) {
                       r.fail(node, name + ": windows must be strictly ascending");
                     }
                   }
                   f(c) = out;
                 },
                 [&](std::vector<std::string>& (*f)(Config&)) { f(c) = r.strings(node, name); },
                 [&](std::vector<IpPrefix>& (*f)(Config&)) {
                   auto out = r.list(node, name, "CIDR prefixes", [&](const YAML::Node& p) {
                     IpPrefix prefix;
                     std::string error;
                     if (!IpPrefix::parse(r.string(p, name), prefix, error)) {
                       r.fail(p, name + ": " + error);
                     }
                     return prefix;
                   });
                   if (out.size() > key.max) {
                     r.fail(node, name + ": at most " + integerText(key.max) + " prefixes, got " +
                                      std::to_string(out.size()));
                   }
                   f(c) = std::move(out);
                 },
             },
             key.field);
  if (key.check == Check::Fleet) c.fleet.where[name.substr(sizeof "fleet." - 1)] = r.where(node);
}

}  // namespace

std::span<const Key> keys() { return kKeys; }

const Key* findKey(const std::string& name) {
  for (const Key& k : kKeys) {
    if (name == k.name) return &k;
  }
  return nullptr;
}

const char* typeName(const Key& key) {
  switch (key.field.index()) {
    case 0:
      return "bool";
    case 1:
    case 2:
    case 3:
      return "integer";
    case 4:
      return "number";
    case 5:
      return key.check == Check::Address                                 ? "address"
             : key.check == Check::HostPort                              ? "host:port"
             : key.check == Check::HttpUrl                               ? "URL"
             : key.check == Check::Readable || key.check == Check::Model ? "path"
                                                                         : "string";
    case 6:
      return "ports";
    case 7:
      return "windows";
    case 8:
      return "strings";
    default:
      return "prefixes";
  }
}

std::string valueText(const Key& key, const Config& config) {
  Config& c = const_cast<Config&>(config);  // the accessors are shared with the parser
  return std::visit(
      Overloaded{
          [&](bool& (*f)(Config&)) -> std::string { return f(c) ? "true" : "false"; },
          [&](uint16_t& (*f)(Config&)) -> std::string { return std::to_string(f(c)); },
          [&](uint32_t& (*f)(Config&)) -> std::string { return std::to_string(f(c)); },
          [&](uint64_t& (*f)(Config&)) -> std::string { return std::to_string(f(c)); },
          [&](double& (*f)(Config&)) -> std::string { return real(f(c)); },
          [&](std::string& (*f)(Config&)) -> std::string { return yamlQuoted(f(c)); },
          [&](std::vector<uint16_t>& (*f)(Config&)) -> std::string {
            std::string out = "[";
            for (const auto p : f(c)) out += (out.size() > 1 ? ", " : "") + std::to_string(p);
            return out + "]";
          },
          [&](std::array<uint32_t, score::kWindows>& (*f)(Config&)) -> std::string {
            std::string out = "[";
            for (const auto p : f(c)) out += (out.size() > 1 ? ", " : "") + std::to_string(p);
            return out + "]";
          },
          [&](std::vector<std::string>& (*f)(Config&)) -> std::string {
            std::string out = "[";
            for (const auto& s : f(c)) out += (out.size() > 1 ? ", " : "") + yamlQuoted(s);
            return out + "]";
          },
          [&](std::vector<IpPrefix>& (*f)(Config&)) -> std::string {
            std::string out = "[";
            for (const auto& p : f(c)) {
              out += (out.size() > 1 ? ", " : "") + yamlQuoted(p.toString());
            }
            return out + "]";
          },
      },
      key.field);
}

std::string rangeText(const Key& key) {
  const auto i = key.field.index();
  if (i == 4) return real(key.min) + " .. " + real(key.max);
  if ((i >= 1 && i <= 3) || i == 6 || i == 7) {
    return integerText(key.min) + " .. " + integerText(key.max);
  }
  return "";
}

std::string toYaml(const Config& config) {
  std::string out;
  std::vector<std::string> open;  // sections open at this point, outermost first
  for (const Key& k : kKeys) {
    std::vector<std::string> path;
    std::string name = k.name;
    for (std::size_t dot; (dot = name.find('.')) != std::string::npos;
         name = name.substr(dot + 1)) {
      path.push_back(name.substr(0, dot));
    }
    std::size_t same = 0;
    while (same < open.size() && same < path.size() && open[same] == path[same]) ++same;
    open.resize(same);
    for (std::size_t i = same; i < path.size(); ++i) {
      if (i == 0) out += "\n";
      out += std::string(2 * i, ' ') + path[i] + ":\n";
      open.push_back(path[i]);
    }
    const std::string indent(2 * path.size(), ' ');
    std::string comment = k.doc;
    const std::string range = rangeText(k);
    if (!range.empty()) comment += " [" + range + "]";
    if (k.restart) comment += " (restart)";
    out += indent + "# " + comment + "\n";
    out += indent + name + ": " + valueText(k, config) + "\n";
  }
  return out;
}

std::string defaultsYaml() {
  return "# exfilwatch: the default configuration (exfilwatch config --defaults).\n"
         "# Every key is optional; docs/configuration.md describes each one.\n"
         "# [a .. b]: the accepted range; (restart): read at start, a reload keeps the old "
         "value.\n" +
         toYaml(Config{});
}

std::string referenceMarkdown() {
  std::string out =
      "| Key | Type | Default | Range | Reload | Description |\n"
      "|-----|------|---------|-------|--------|-------------|\n";
  const Config defaults;
  for (const Key& k : kKeys) {
    std::string range = rangeText(k);
    out += std::string("| `") + k.name + "` | " + typeName(k) + " | `" + valueText(k, defaults) +
           "` | " + range + " | " + (k.restart ? "restart" : "yes") + " | " + k.doc + " |\n";
  }
  return out;
}

void setKey(Config& config, const Key& key, const YAML::Node& value, const std::string& source) {
  const yaml::Reader reader(source);
  setFrom(config, key, value, reader);
}

void applySet(Config& config, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ConfigError("--set " + assignment + ": expected KEY=VALUE");
  }
  const std::string name = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  const Key* key = findKey(name);
  if (key == nullptr) {
    throw ConfigError("--set " + name +
                      ": unknown key (exfilwatch config --defaults lists every key)");
  }
  const yaml::Reader reader("--set");
  try {
    // An empty value is the empty string, not YAML's null.
    const YAML::Node value = text.empty() ? YAML::Node(std::string()) : reader.load(text);
    setFrom(config, *key, value, reader);
  } catch (const yaml::Error& e) {
    throw ConfigError("--set " + e.message());
  }
  checkCombinations(config);
}

void checkCombinations(const Config& config) {
  const ListenConfig& l = config.listen;
  if (l.geneve_enabled && l.vxlan_port == l.geneve_port) {
    throw ConfigError((config.source.empty() ? std::string("<config>") : config.source) +
                      ": listen: vxlan_port and geneve_port must differ");
  }
}

}  // namespace exfilwatch::config
