// config.cc: YAML configuration with strict validation and file:line errors.
#include "config/config.h"

#include <array>
#include <fstream>
#include <sstream>

#include "common/yaml_reader.h"
#include "score/ngram_model.h"

namespace exfilwatch {

namespace {

// The strict YAML reader plus the configuration's own value types.
class Loader : public yaml::Reader {
 public:
  explicit Loader(const std::string& source) : yaml::Reader(source.empty() ? "<config>" : source) {}

  // A numeric IPv4 or IPv6 address (no names: a sensor must not depend on DNS to start).
  std::string address(const YAML::Node& node, const std::string& key) const {
    const std::string text = string(node, key);
    IpAddress parsed;
    if (!IpAddress::parse(text, parsed)) fail(node, key + ": '" + text + "' is not an IP address");
    return text;
  }
  // An address or CIDR prefix ("10.0.0.0/16").
  IpPrefix prefix(const YAML::Node& node, const std::string& key) const {
    IpPrefix p;
    std::string error;
    if (!IpPrefix::parse(string(node, key), p, error)) fail(node, key + ": " + error);
    return p;
  }
};

}  // namespace

// ---- score: (owned by src/score; docs/scoring.md) ----------------------------
namespace {
std::array<uint32_t, score::kWindows> windowList(const Loader& l, const YAML::Node& n,
                                                 const std::string& key, uint32_t min) {
  if (!n.IsSequence() || n.size() != score::kWindows) {
    l.fail(n, key + ": expected a list of " + std::to_string(score::kWindows) + " numbers");
  }
  std::array<uint32_t, score::kWindows> out{};
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = l.integer<uint32_t>(n[i], key, min, 86400 * 7);
  return out;
}

void scoreSection(const Loader& l, const YAML::Node& n, Config& c) {
  auto& d = c.score.dns;
  auto& t = c.score.tls;
  constexpr uint64_t kMaxMem = uint64_t{1} << 36;
  auto ascending = [&](const YAML::Node& v, const std::array<uint32_t, score::kWindows>& w,
                       const std::string& key) {
    for (std::size_t i = 1; i < w.size(); ++i) {
      if (w[i] <= w[i - 1]) l.fail(v, key + ": windows must be strictly ascending");
    }
  };
  // One line per key, so the tables below read as tables.
  // clang-format off
  l.section(n, "score", {
      {"dns", [&](const YAML::Node& x) {
         l.section(x, "score.dns", {
             {"enabled", [&](const YAML::Node& v) { d.enabled = l.boolean(v, "score.dns.enabled"); }},
             {"memory_bytes", [&](const YAML::Node& v) { d.memory_bytes = l.integer<uint64_t>(v, "score.dns.memory_bytes", 65536, kMaxMem); }},
             {"seen_names_bytes", [&](const YAML::Node& v) { d.seen_names_bytes = l.integer<uint64_t>(v, "score.dns.seen_names_bytes", 4096, kMaxMem); }},
             {"windows", [&](const YAML::Node& v) { d.windows = windowList(l, v, "score.dns.windows", 1); ascending(v, d.windows, "score.dns.windows"); }},
             {"info_bytes", [&](const YAML::Node& v) { d.info_bytes = windowList(l, v, "score.dns.info_bytes", 0); }},
             {"daily_info_bytes", [&](const YAML::Node& v) { d.daily_info_bytes = l.integer<uint32_t>(v, "score.dns.daily_info_bytes", 0, 65535); }},
             {"unique_subdomains", [&](const YAML::Node& v) { d.unique_subdomains = l.integer<uint32_t>(v, "score.dns.unique_subdomains", 0, 1u << 30); }},
             {"answer_bytes", [&](const YAML::Node& v) { d.answer_bytes = l.integer<uint32_t>(v, "score.dns.answer_bytes", 0, 1u << 31); }},
             {"lexical_hits", [&](const YAML::Node& v) { d.lexical_hits = l.integer<uint32_t>(v, "score.dns.lexical_hits", 0, 1u << 16); }},
             {"model_bits_per_char", [&](const YAML::Node& v) { d.model_bits_per_char = l.real(v, "score.dns.model_bits_per_char", 0.0, 64.0); }},
             {"model_min_label", [&](const YAML::Node& v) { d.model_min_label = l.integer<uint32_t>(v, "score.dns.model_min_label", 1, 255); }},
             {"risky_types_min_queries", [&](const YAML::Node& v) { d.risky_types_min_queries = l.integer<uint32_t>(v, "score.dns.risky_types_min_queries", 1, 1u << 16); }},
             {"alert_score", [&](const YAML::Node& v) { d.alert_score = l.real(v, "score.dns.alert_score", 0.01, 1000.0); }},
             {"min_new_names", [&](const YAML::Node& v) { d.min_new_names = l.integer<uint32_t>(v, "score.dns.min_new_names", 1, 1u << 16); }},
             {"weight_info", [&](const YAML::Node& v) { d.weight_info = l.real(v, "score.dns.weight_info", 0.0, 100.0); }},
             {"weight_unique", [&](const YAML::Node& v) { d.weight_unique = l.real(v, "score.dns.weight_unique", 0.0, 100.0); }},
             {"weight_answer", [&](const YAML::Node& v) { d.weight_answer = l.real(v, "score.dns.weight_answer", 0.0, 100.0); }},
             {"weight_lexical", [&](const YAML::Node& v) { d.weight_lexical = l.real(v, "score.dns.weight_lexical", 0.0, 100.0); }},
             {"weight_types", [&](const YAML::Node& v) { d.weight_types = l.real(v, "score.dns.weight_types", 0.0, 100.0); }},
             {"weight_rules", [&](const YAML::Node& v) { d.weight_rules = l.real(v, "score.dns.weight_rules", 0.0, 100.0); }},
             {"model", [&](const YAML::Node& v) {
                d.model_path = l.string(v, "score.dns.model");
                std::string error;
                c.score_model = score::NgramModel::load(d.model_path, error);
                if (!c.score_model) l.fail(v, "score.dns.model: " + d.model_path + ": " + error);
              }},
         });
       }},
      {"tls", [&](const YAML::Node& x) {
         l.section(x, "score.tls", {
             {"enabled", [&](const YAML::Node& v) { t.enabled = l.boolean(v, "score.tls.enabled"); }},
             {"ports", [&](const YAML::Node& v) { t.ports = l.ports(v, "score.tls.ports"); }},
             {"memory_bytes", [&](const YAML::Node& v) { t.memory_bytes = l.integer<uint64_t>(v, "score.tls.memory_bytes", 65536, kMaxMem); }},
             {"max_flows", [&](const YAML::Node& v) { t.max_flows = l.integer<uint32_t>(v, "score.tls.max_flows", 16, 1u << 26); }},
             {"hello_buffers", [&](const YAML::Node& v) { t.hello_buffers = l.integer<uint32_t>(v, "score.tls.hello_buffers", 1, 1u << 16); }},
             {"hello_max_bytes", [&](const YAML::Node& v) { t.hello_max_bytes = l.integer<uint32_t>(v, "score.tls.hello_max_bytes", 512, 65535); }},
             {"flow_idle_seconds", [&](const YAML::Node& v) { t.flow_idle_seconds = l.integer<uint32_t>(v, "score.tls.flow_idle_seconds", 1, 86400); }},
             {"windows", [&](const YAML::Node& v) { t.windows = windowList(l, v, "score.tls.windows", 1); ascending(v, t.windows, "score.tls.windows"); }},
             {"bulk_upload_bytes", [&](const YAML::Node& v) { t.bulk_upload_bytes = l.integer<uint64_t>(v, "score.tls.bulk_upload_bytes", 0, kMaxMem); }},
             {"drip_flows", [&](const YAML::Node& v) { t.drip_flows = l.integer<uint32_t>(v, "score.tls.drip_flows", 0, 1u << 24); }},
             {"drip_upload_bytes", [&](const YAML::Node& v) { t.drip_upload_bytes = l.integer<uint64_t>(v, "score.tls.drip_upload_bytes", 0, kMaxMem); }},
             {"drip_flow_min_bytes", [&](const YAML::Node& v) { t.drip_flow_min_bytes = l.integer<uint32_t>(v, "score.tls.drip_flow_min_bytes", 1, 1u << 30); }},
             {"upload_ratio", [&](const YAML::Node& v) { t.upload_ratio = l.real(v, "score.tls.upload_ratio", 1.0, 1e6); }},
         });
       }},
  });
  // clang-format on
}
}  // namespace
// ---- end score: ---------------------------------------------------------

// ---- output:, alertmanager:, evidence:, metrics: ------------------------------
namespace {
void deliverySection(const Loader& l, const std::string& name, const YAML::Node& n, Config& c) {
  // clang-format off
  if (name == "output") {
    auto& o = c.output;
    l.section(n, "output", {
        {"eve", [&](const YAML::Node& v) { o.eve_path = l.string(v, "output.eve"); }},
        {"rotate_bytes", [&](const YAML::Node& v) { o.rotate_bytes = l.integer<uint64_t>(v, "output.rotate_bytes", 0, uint64_t{1} << 40); }},
        {"rotate_seconds", [&](const YAML::Node& v) { o.rotate_seconds = l.integer<uint32_t>(v, "output.rotate_seconds", 0, 86400 * 31); }},
        {"rotate_keep", [&](const YAML::Node& v) { o.rotate_keep = l.integer<uint32_t>(v, "output.rotate_keep", 1, 100000); }},
        {"stdout", [&](const YAML::Node& v) { o.stdout_alerts = l.boolean(v, "output.stdout"); }},
        {"syslog", [&](const YAML::Node& v) { o.syslog_alerts = l.boolean(v, "output.syslog"); }},
    });
  } else if (name == "alertmanager") {
    auto& a = c.alertmanager;
    l.section(n, "alertmanager", {
        {"url", [&](const YAML::Node& v) {
           a.url = l.string(v, "alertmanager.url");
           if (!a.url.empty() && a.url.rfind("http://", 0) != 0 && a.url.rfind("https://", 0) != 0) {
             l.fail(v, "alertmanager.url: expected http:// or https://");
           }
         }},
        {"batch_size", [&](const YAML::Node& v) { a.batch_size = l.integer<uint32_t>(v, "alertmanager.batch_size", 1, 10000); }},
        {"queue_size", [&](const YAML::Node& v) { a.queue_size = l.integer<uint32_t>(v, "alertmanager.queue_size", 1, 10000000); }},
        {"timeout_ms", [&](const YAML::Node& v) { a.timeout_ms = l.integer<uint32_t>(v, "alertmanager.timeout_ms", 10, 600000); }},
        {"retry_max_ms", [&](const YAML::Node& v) { a.retry_max_ms = l.integer<uint32_t>(v, "alertmanager.retry_max_ms", 10, 3600000); }},
        {"resolve_seconds", [&](const YAML::Node& v) { a.resolve_seconds = l.integer<uint32_t>(v, "alertmanager.resolve_seconds", 1, 86400 * 7); }},
    });
  } else if (name == "evidence") {
    auto& e = c.evidence;
    l.section(n, "evidence", {
        {"directory", [&](const YAML::Node& v) { e.directory = l.string(v, "evidence.directory"); }},
        {"seconds", [&](const YAML::Node& v) { e.seconds = l.integer<uint32_t>(v, "evidence.seconds", 0, 86400); }},
        {"ring_packets", [&](const YAML::Node& v) { e.ring_packets = l.integer<uint32_t>(v, "evidence.ring_packets", 1, 256); }},
        {"max_pairs", [&](const YAML::Node& v) { e.max_pairs = l.integer<uint32_t>(v, "evidence.max_pairs", 1, 1u << 20); }},
        {"file_bytes", [&](const YAML::Node& v) { e.file_bytes = l.integer<uint64_t>(v, "evidence.file_bytes", 65536, uint64_t{1} << 40); }},
        {"files", [&](const YAML::Node& v) { e.files = l.integer<uint32_t>(v, "evidence.files", 1, 100000); }},
    });
  } else {
    l.section(n, "metrics", {
        {"address", [&](const YAML::Node& v) {
           // HOST:PORT, [V6]:PORT or :PORT; "" turns the endpoint off.
           c.metrics.address = l.string(v, "metrics.address");
           const std::string& a = c.metrics.address;
           const auto colon = a.rfind(':');
           if (!a.empty() && (colon == std::string::npos || colon + 1 == a.size() ||
                              a.find_first_not_of("0123456789", colon + 1) != std::string::npos)) {
             l.fail(v, "metrics.address: expected HOST:PORT, got '" + a + "'");
           }
         }},
        // Bounded: each domain is one series in every scrape and in Prometheus.
        {"top_domains", [&](const YAML::Node& v) { c.metrics.top_domains = l.integer<uint32_t>(v, "metrics.top_domains", 0, 1000); }},
    });
  }
  // clang-format on
}
}  // namespace
// ---- end delivery sections ----------------------------------------------

namespace {
Config readConfig(const std::string& yaml_text, const std::string& source_name) {
  Config c;
  c.source = source_name;
  Loader l(source_name);
  const YAML::Node root = l.load(yaml_text);
  if (root.IsNull()) return c;
  // clang-format off
  l.section(root, "", {
      {"sensor_name", [&](const YAML::Node& n) { c.sensor_name = l.string(n, "sensor_name"); }},
      {"decode", [&](const YAML::Node& n) {
         l.section(n, "decode", {
             {"vxlan_ports", [&](const YAML::Node& v) { c.decoder.vxlan_ports = l.ports(v, "decode.vxlan_ports"); }},
             {"geneve_ports", [&](const YAML::Node& v) { c.decoder.geneve_ports = l.ports(v, "decode.geneve_ports"); }},
             {"fragments", [&](const YAML::Node& f) {
                l.section(f, "decode.fragments", {
                    {"max_datagrams", [&](const YAML::Node& v) { c.decoder.fragments.max_datagrams = l.integer<uint32_t>(v, "max_datagrams", 1, 1u << 24); }},
                    {"max_bytes", [&](const YAML::Node& v) { c.decoder.fragments.max_bytes = l.integer<uint64_t>(v, "max_bytes", 65536, uint64_t{1} << 34); }},
                    {"timeout_seconds", [&](const YAML::Node& v) { c.decoder.fragments.timeout_sec = l.integer<uint32_t>(v, "timeout_seconds", 1, 3600); }},
                    {"max_fragments_per_datagram", [&](const YAML::Node& v) { c.decoder.fragments.max_fragments_per_datagram = l.integer<uint32_t>(v, "max_fragments_per_datagram", 2, 8192); }},
                });
              }},
         });
       }},
      {"dns", [&](const YAML::Node& n) {
         l.section(n, "dns", {
             {"ports", [&](const YAML::Node& v) { c.dns_ports = l.ports(v, "dns.ports"); }},
             {"max_records", [&](const YAML::Node& v) { c.dns_limits.max_records = l.integer<uint32_t>(v, "dns.max_records", 1, 65535); }},
             {"public_suffix_list", [&](const YAML::Node& v) {
                c.public_suffix_list = l.string(v, "dns.public_suffix_list");
                // Loaded later by each worker; a bad path must fail here, as
                // a configuration error with its line, not when workers start.
                if (!std::ifstream(c.public_suffix_list)) {
                  l.fail(v, "dns.public_suffix_list: " + c.public_suffix_list + ": cannot open");
                }
              }},
             {"log", [&](const YAML::Node& v) { c.dns_log = l.boolean(v, "dns.log"); }},
             {"tcp", [&](const YAML::Node& t) {
                l.section(t, "dns.tcp", {
                    {"max_flows", [&](const YAML::Node& v) { c.dns_tcp.max_flows = l.integer<uint32_t>(v, "dns.tcp.max_flows", 1, 1u << 24); }},
                    {"max_buffered_bytes", [&](const YAML::Node& v) { c.dns_tcp.max_buffered_bytes = l.integer<uint64_t>(v, "dns.tcp.max_buffered_bytes", 65536, uint64_t{1} << 34); }},
                    {"idle_timeout_seconds", [&](const YAML::Node& v) { c.dns_tcp.idle_timeout_sec = l.integer<uint32_t>(v, "dns.tcp.idle_timeout_seconds", 1, 86400); }},
                });
              }},
         });
       }},
      {"detect", [&](const YAML::Node& n) {
         l.section(n, "detect", {
             {"suppress_seconds", [&](const YAML::Node& v) { c.alert_suppress_seconds = l.integer<uint32_t>(v, "detect.suppress_seconds", 0, 86400 * 7); }},
             {"suppress_slots", [&](const YAML::Node& v) { c.alert_suppress_slots = l.integer<uint32_t>(v, "detect.suppress_slots", 1, 1u << 24); }},
             {"lexical", [&](const YAML::Node& x) {
                l.section(x, "detect.lexical", {
                    {"min_prefix_length", [&](const YAML::Node& v) { c.lexical.min_prefix_length = l.integer<uint32_t>(v, "min_prefix_length", 1, 255); }},
                    {"min_entropy", [&](const YAML::Node& v) { c.lexical.min_entropy = l.real(v, "min_entropy", 0.0, 8.0); }},
                    {"min_prefix_length_binary", [&](const YAML::Node& v) { c.lexical.min_prefix_length_binary = l.integer<uint32_t>(v, "min_prefix_length_binary", 1, 255); }},
                    {"min_high_bytes", [&](const YAML::Node& v) { c.lexical.min_high_bytes = l.integer<uint32_t>(v, "min_high_bytes", 1, 255); }},
                });
              }},
         });
       }},
      {"score", [&](const YAML::Node& n) { scoreSection(l, n, c); }},
      {"listen", [&](const YAML::Node& n) {
         auto& L = c.listen;
         l.section(n, "listen", {
             {"address", [&](const YAML::Node& v) { L.address = l.address(v, "listen.address"); }},
             {"vxlan_port", [&](const YAML::Node& v) { L.vxlan_port = l.integer<uint16_t>(v, "listen.vxlan_port", 1, 65535); }},
             {"geneve_enabled", [&](const YAML::Node& v) { L.geneve_enabled = l.boolean(v, "listen.geneve_enabled"); }},
             {"geneve_port", [&](const YAML::Node& v) { L.geneve_port = l.integer<uint16_t>(v, "listen.geneve_port", 1, 65535); }},
             {"health_address", [&](const YAML::Node& v) { L.health_address = l.address(v, "listen.health_address"); }},
             {"health_port", [&](const YAML::Node& v) { L.health_port = l.integer<uint16_t>(v, "listen.health_port", 0, 65535); }},
             {"workers", [&](const YAML::Node& v) { L.workers = l.integer<uint32_t>(v, "listen.workers", 0, 256); }},
             {"rcvbuf_bytes", [&](const YAML::Node& v) { L.rcvbuf_bytes = l.integer<uint64_t>(v, "listen.rcvbuf_bytes", 65536, uint64_t{1} << 31); }},
             {"batch_size", [&](const YAML::Node& v) { L.batch_size = l.integer<uint32_t>(v, "listen.batch_size", 1, 1024); }},
             {"max_datagram_bytes", [&](const YAML::Node& v) { L.max_datagram_bytes = l.integer<uint32_t>(v, "listen.max_datagram_bytes", 256, 65535); }},
             {"kernel_steering", [&](const YAML::Node& v) { L.kernel_steering = l.boolean(v, "listen.kernel_steering"); }},
             {"handoff_ring_bytes", [&](const YAML::Node& v) { L.handoff_ring_bytes = l.integer<uint64_t>(v, "listen.handoff_ring_bytes", 1u << 18, uint64_t{1} << 31); }},
             {"eve_queue_bytes", [&](const YAML::Node& v) { L.eve_queue_bytes = l.integer<uint64_t>(v, "listen.eve_queue_bytes", 1u << 18, uint64_t{1} << 31); }},
             // Tested per datagram, in order: subnets, not one entry per ENI.
             {"sources", [&](const YAML::Node& v) {
                L.sources = l.list(v, "listen.sources", "CIDR prefixes", [&](const YAML::Node& p) { return l.prefix(p, "listen.sources"); });
                if (L.sources.size() > 256) l.fail(v, "listen.sources: at most 256 prefixes, got " + std::to_string(L.sources.size()));
              }},
         });
         if (L.vxlan_port == L.geneve_port && L.geneve_enabled) {
           l.fail(n, "listen: vxlan_port and geneve_port must differ");
         }
       }},
      {"rules", [&](const YAML::Node& n) {
         l.section(n, "rules", {
             {"enabled", [&](const YAML::Node& v) { c.rules.enabled = l.boolean(v, "rules.enabled"); }},
             {"directory", [&](const YAML::Node& v) { c.rules.directory = l.string(v, "rules.directory"); }},
             {"cache_directory", [&](const YAML::Node& v) { c.rules.cache_directory = l.string(v, "rules.cache_directory"); }},
         });
       }},
      {"health", [&](const YAML::Node& n) {
         l.section(n, "health", {
             {"require_rules", [&](const YAML::Node& v) { c.health.require_rules = l.boolean(v, "health.require_rules"); }},
             {"stall_seconds", [&](const YAML::Node& v) { c.health.stall_seconds = l.integer<uint32_t>(v, "health.stall_seconds", 1, 3600); }},
         });
       }},
      {"fleet", [&](const YAML::Node& n) {
         if (n.IsNull()) return;
         if (!n.IsMap()) l.fail(n, "fleet: expected a mapping");
         for (const auto& kv : n) {
           const std::string key = kv.first.as<std::string>();
           if (key == "health_requires_fleet") {
             c.fleet.health_requires_fleet = l.boolean(kv.second, "fleet.health_requires_fleet");
             continue;
           }
           auto add = [&](const YAML::Node& x) {
             if (!x.IsScalar()) l.fail(x, "fleet." + key + ": expected a value");
             c.fleet.entries.push_back({key, x.Scalar(), l.where(x)});
           };
           if (kv.second.IsSequence()) {
             for (const auto& x : kv.second) add(x);
           } else {
             add(kv.second);
           }
         }
       }},
      {"output", [&](const YAML::Node& n) { deliverySection(l, "output", n, c); }},
      {"alertmanager", [&](const YAML::Node& n) { deliverySection(l, "alertmanager", n, c); }},
      {"evidence", [&](const YAML::Node& n) { deliverySection(l, "evidence", n, c); }},
      {"metrics", [&](const YAML::Node& n) { deliverySection(l, "metrics", n, c); }},
  });
  // clang-format on
  return c;
}
}  // namespace

Config parseConfig(const std::string& yaml_text, const std::string& source_name) {
  try {
    return readConfig(yaml_text, source_name);
  } catch (const yaml::Error& e) {
    throw ConfigError(e.what());
  }
}

Config loadConfig(const std::string& path) {
  if (path.empty()) return Config{};
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open configuration file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parseConfig(buffer.str(), path);
}

}  // namespace exfilwatch
