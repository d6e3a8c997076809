// config.cc: YAML configuration with strict validation and file:line errors.
#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

namespace exfilwatch {

namespace {

class Loader {
 public:
  explicit Loader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& message) const {
    const auto mark = node.Mark();
    std::ostringstream out;
    out << (source_.empty() ? "<config>" : source_);
    if (mark.line >= 0) out << ':' << (mark.line + 1);
    out << ": " << message;
    throw ConfigError(out.str());
  }

  template <typename T>
  T integer(const YAML::Node& node, const std::string& key, T min, T max) const {
    if (!node.IsScalar()) fail(node, key + ": expected a number");
    long long value = 0;
    try {
      std::size_t used = 0;
      const std::string text = node.Scalar();
      value = std::stoll(text, &used, 0);
      if (used != text.size()) fail(node, key + ": expected an integer, got '" + text + "'");
    } catch (const std::logic_error&) {
      fail(node, key + ": expected an integer, got '" + node.Scalar() + "'");
    }
    if (value < static_cast<long long>(min) || value > static_cast<long long>(max)) {
      fail(node, key + ": " + std::to_string(value) + " is out of range [" + std::to_string(min) +
                     ", " + std::to_string(max) + "]");
    }
    return static_cast<T>(value);
  }

  double real(const YAML::Node& node, const std::string& key, double min, double max) const {
    if (!node.IsScalar()) fail(node, key + ": expected a number");
    double value = 0;
    try {
      std::size_t used = 0;
      value = std::stod(node.Scalar(), &used);
      if (used != node.Scalar().size()) fail(node, key + ": expected a number");
    } catch (const std::logic_error&) {
      fail(node, key + ": expected a number, got '" + node.Scalar() + "'");
    }
    if (value < min || value > max) fail(node, key + ": value out of range");
    return value;
  }

  bool boolean(const YAML::Node& node, const std::string& key) const {
    bool value = false;
    if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
      fail(node, key + ": expected true or false");
    }
    return value;
  }

  std::string string(const YAML::Node& node, const std::string& key) const {
    if (!node.IsScalar()) fail(node, key + ": expected a string");
    return node.Scalar();
  }

  std::vector<uint16_t> ports(const YAML::Node& node, const std::string& key) const {
    if (!node.IsSequence()) fail(node, key + ": expected a list of ports");
    std::vector<uint16_t> out;
    for (const auto& item : node) out.push_back(integer<uint16_t>(item, key, 1, 65535));
    return out;
  }

  using Handler = std::function<void(const YAML::Node&)>;
  // Walks a mapping; every key must be known.
  void section(const YAML::Node& node, const std::string& name,
               const std::map<std::string, Handler>& handlers) const {
    if (node.IsNull()) return;
    if (!node.IsMap()) fail(node, name + ": expected a mapping");
    for (const auto& kv : node) {
      const std::string key = kv.first.Scalar();
      const auto it = handlers.find(key);
      if (it == handlers.end()) {
        std::string known;
        for (const auto& h : handlers) known += (known.empty() ? "" : ", ") + h.first;
        fail(kv.first, "unknown key '" + (name.empty() ? key : name + "." + key) +
                           "' (known: " + known + ")");
      }
      it->second(kv.second);
    }
  }

 private:
  std::string source_;
};

}  // namespace

Config parseConfig(const std::string& yaml_text, const std::string& source_name) {
  Config c;
  c.source = source_name;
  Loader l(source_name);
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError((source_name.empty() ? "<config>" : source_name) + ":" +
                      std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  if (root.IsNull()) return c;
  constexpr uint32_t kU32 = std::numeric_limits<uint32_t>::max();
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
             {"public_suffix_list", [&](const YAML::Node& v) { c.public_suffix_list = l.string(v, "dns.public_suffix_list"); }},
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
  });
  (void)kU32;
  return c;
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
