// fleet_config.cc: the `fleet:` keys through fleet::SettingsBuilder.
#include "engine/fleet_config.h"

#include <stdexcept>
#include <utility>
#include <vector>

namespace exfilwatch::engine {

namespace {
struct Given {
  const char* key;
  std::string value;
};

// The client keys given a value other than their default, in the fleet
// table's order, as the text src/fleet parses. A default written out (as
// `config --defaults` does) is the same as leaving the key out.
std::vector<Given> givenKeys(const FleetConfig& c) {
  const FleetConfig d;
  std::vector<Given> out;
  const auto text = [&](const char* k, const std::string& v, const std::string& dv) {
    if (v != dv) out.push_back({k, v});
  };
  const auto flag = [&](const char* k, bool v, bool dv) {
    if (v != dv) out.push_back({k, v ? "true" : "false"});
  };
  const auto number = [&](const char* k, uint32_t v, uint32_t dv) {
    if (v != dv) out.push_back({k, std::to_string(v)});
  };
  text("url", c.url, d.url);
  flag("cluster", c.cluster, d.cluster);
  for (const auto& s : c.seeds) out.push_back({"seeds", s});
  text("user", c.user, d.user);
  text("password_file", c.password_file, d.password_file);
  text("key_prefix", c.key_prefix, d.key_prefix);
  number("flush_ms", c.flush_ms, d.flush_ms);
  number("connect_timeout_ms", c.connect_timeout_ms, d.connect_timeout_ms);
  number("command_timeout_ms", c.command_timeout_ms, d.command_timeout_ms);
  text("tls_ca_file", c.tls_ca_file, d.tls_ca_file);
  text("tls_cert_file", c.tls_cert_file, d.tls_cert_file);
  text("tls_key_file", c.tls_key_file, d.tls_key_file);
  text("tls_server_name", c.tls_server_name, d.tls_server_name);
  flag("tls_verify", c.tls_verify, d.tls_verify);
  return out;
}
}  // namespace

std::optional<fleet::ConnectionSettings> fleetSettings(const FleetConfig& config,
                                                       const std::string& url_override) {
  const auto where = [&](const std::string& key) {
    const auto it = config.where.find(key);
    return it == config.where.end() ? std::string() : it->second;
  };
  const std::vector<Given> given = givenKeys(config);
  if (config.url.empty() && url_override.empty()) {
    if (!given.empty()) {
      throw std::runtime_error(where(given.front().key) + "fleet." + given.front().key +
                               ": the fleet's other keys need fleet.url");
    }
    return std::nullopt;
  }
  fleet::SettingsBuilder b;
  std::string last_where;
  for (const auto& g : given) {
    if (std::string_view(g.key) == "url" && !url_override.empty()) continue;
    last_where = where(g.key);
    try {
      b.set(g.key, g.value);
    } catch (const fleet::SettingsError& err) {
      throw std::runtime_error(last_where + err.what());
    }
  }
  if (!url_override.empty()) b.set("url", url_override);
  try {
    return b.finish();
  } catch (const fleet::SettingsError& err) {
    throw std::runtime_error(where(err.key()) + err.what());
  }
}

}  // namespace exfilwatch::engine
