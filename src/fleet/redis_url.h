// redis_url.h: the `fleet:` connection settings (issue 22): where the shared
// Redis is, how to authenticate and encrypt, and the client's timing. Parsed
// key by key from their text values (the configuration loader walks the YAML
// and adds file:line); every mistake throws SettingsError naming the key, so
// a sensor with a bad fleet configuration does not start. The password is
// only ever read from password_file, never from the URL or the YAML.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace exfilwatch::fleet {

// what() is "fleet.<key>: <message>".
class SettingsError : public std::runtime_error {
 public:
  SettingsError(std::string_view key, const std::string& message);
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

struct Endpoint {
  std::string host;  // a name, an IPv4 or an IPv6 address (without brackets)
  uint16_t port = 6379;
  std::string toString() const;  // "host:port", "[v6]:port"
  bool operator==(const Endpoint&) const = default;
};

// A host name, an IPv4 or an IPv6 address (without brackets).
bool validHost(std::string_view host);
// A decimal port, 1-65535.
bool parsePort(std::string_view text, uint16_t& port);

// "host:port" or "[v6]:port" (port_required false: the port may be left out,
// 6379). False with the reason in *why on anything else.
bool parseEndpoint(std::string_view text, bool port_required, Endpoint& out, std::string* why);

struct TlsSettings {
  bool enabled = false;   // rediss://
  std::string ca_file;    // "": the system's trust store
  std::string cert_file;  // client certificate (chain) and key, PEM, for mutual TLS
  std::string key_file;
  std::string server_name;  // SNI and the name verified; "": each node's host
  bool verify = true;       // verify the server's certificate and name
  bool operator==(const TlsSettings&) const = default;
};

struct ConnectionSettings {
  std::string url;  // as configured, for messages
  Endpoint endpoint;
  uint32_t db = 0;  // SELECTed on connect (single node only)
  bool cluster = false;
  std::vector<Endpoint> seeds;  // cluster discovery: the URL's endpoint first, then fleet.seeds
  std::string user;             // ACL user; "": the default user
  std::string password_file;
  std::string password;  // read from password_file; "": no AUTH
  std::string key_prefix = "exfilwatch:";
  uint32_t flush_ms = 250;  // at most one flush of deltas per interval
  uint32_t connect_timeout_ms = 2000;
  uint32_t command_timeout_ms = 1000;
  TlsSettings tls;
  bool operator==(const ConnectionSettings&) const = default;
};

// The keys of `fleet:`, described once: the parser below and
// docs/fleet-client.md (checked by a unit test) follow this table.
struct SettingKey {
  std::string_view name;
  std::string_view default_value;  // as text; "" when there is none
  std::string_view help;
};
std::span<const SettingKey> settingKeys();

struct KeyTable;

// Builds ConnectionSettings from `fleet:` keys given in any order; finish()
// checks what involves several keys and reads the password file.
class SettingsBuilder {
 public:
  // One key and its value. A list key (seeds) takes one call per item (or
  // one comma-separated value). Throws SettingsError.
  void set(std::string_view key, std::string_view value);
  // Throws SettingsError.
  ConnectionSettings finish() const;

 private:
  friend struct KeyTable;
  void noteTls(std::string_view key);

  ConnectionSettings s_;
  bool url_set_ = false;
  std::optional<bool> cluster_;
  std::string url_user_;
  std::optional<std::string> user_;
  std::string first_tls_key_;
};

}  // namespace exfilwatch::fleet
