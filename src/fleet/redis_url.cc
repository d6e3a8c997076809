// redis_url.cc: the `fleet:` keys, their parsing and cross-key checks.
#include "fleet/redis_url.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace exfilwatch::fleet {

SettingsError::SettingsError(std::string_view key, const std::string& message)
    : std::runtime_error("fleet." + std::string(key) + ": " + message), key_(key) {}

std::string Endpoint::toString() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

namespace {

constexpr std::size_t kMaxHostLength = 253;
constexpr std::size_t kMaxSeeds = 64;
constexpr std::size_t kMaxPrefixLength = 64;
constexpr std::size_t kMaxUserLength = 256;
constexpr std::size_t kMaxPasswordBytes = 4096;

std::string quoted(std::string_view v) {
  constexpr std::size_t kShown = 120;
  std::string out = "'";
  for (const char c : v.substr(0, kShown)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) {
      constexpr std::string_view kHex = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  if (v.size() > kShown) out += "...";
  return out + "'";
}

bool allDigits(std::string_view v) {
  return !v.empty() && v.find_first_not_of("0123456789") == std::string_view::npos;
}

// Base-10 only: "010" is ten, never eight.
bool parseDecimal(std::string_view v, uint64_t max, uint64_t& out) {
  if (!allDigits(v) || v.size() > 19) return false;
  uint64_t n = 0;
  for (const char c : v) n = n * 10 + static_cast<uint64_t>(c - '0');
  out = n;
  return n <= max;
}

uint32_t number(std::string_view key, std::string_view v, uint32_t min, uint32_t max) {
  uint64_t n = 0;
  if (!allDigits(v) || v.size() > 19) {
    throw SettingsError(key, "expected a whole number, got " + quoted(v));
  }
  if (!parseDecimal(v, max, n) || n < min) {
    throw SettingsError(key, std::string(v) + " is out of range [" + std::to_string(min) + ", " +
                                 std::to_string(max) + "]");
  }
  return static_cast<uint32_t>(n);
}

bool boolean(std::string_view key, std::string_view v) {
  std::string lower(v);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "true" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "no" || lower == "off") return false;
  throw SettingsError(key, "expected true or false, got " + quoted(v));
}

bool hostName(std::string_view h) {
  if (h.empty() || h.size() > kMaxHostLength) return false;
  return std::all_of(h.begin(), h.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}

// A path given as the value of `key`: non-empty, one line.
std::string path(std::string_view key, std::string_view v) {
  if (v.empty()) throw SettingsError(key, "expected a file path");
  if (v.find_first_of("\r\n") != std::string_view::npos || v.find('\0') != std::string_view::npos) {
    throw SettingsError(key, "expected a file path, got " + quoted(v));
  }
  return std::string(v);
}

void mustRead(std::string_view key, const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw SettingsError(key, "cannot read '" + file + "': " + std::strerror(errno));
}

std::string readPassword(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw SettingsError("password_file", "cannot read '" + file + "': " + std::strerror(errno));
  }
  std::string text(kMaxPasswordBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxPasswordBytes) {
    throw SettingsError("password_file", "'" + file + "' is longer than " +
                                             std::to_string(kMaxPasswordBytes) + " bytes");
  }
  // One line; its line break (as editors and `echo` write it) is not part of it.
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (text.empty()) throw SettingsError("password_file", "'" + file + "' is empty");
  if (text.find_first_of("\r\n") != std::string::npos) {
    throw SettingsError("password_file", "'" + file + "' holds more than one line");
  }
  return text;
}

struct ParsedUrl {
  bool tls = false;
  std::string user;
  Endpoint endpoint;
  uint32_t db = 0;
};

ParsedUrl parseUrl(std::string_view url) {
  ParsedUrl p;
  std::string_view rest;
  auto startsWith = [&](std::string_view prefix) {
    if (url.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(url[i])) != prefix[i]) return false;
    }
    return true;
  };
  if (startsWith("rediss://")) {
    p.tls = true;
    rest = url.substr(9);
  } else if (startsWith("redis://")) {
    rest = url.substr(8);
  } else {
    throw SettingsError("url", "expected redis:// or rediss://, got " + quoted(url));
  }
  if (rest.find_first_of("?#%") != std::string_view::npos) {
    throw SettingsError("url", "expected redis://[user@]host:port[/db], got " + quoted(url) +
                                   " (no query, fragment or %-escapes)");
  }
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    if (userinfo.find(':') != std::string_view::npos) {
      throw SettingsError("url", "a password does not belong in the URL (" +
                                     quoted(url.substr(0, 8)) +
                                     "...); put it in the file named by fleet.password_file");
    }
    if (userinfo.empty() || userinfo.size() > kMaxUserLength ||
        userinfo.find_first_of("/@ \t") != std::string_view::npos) {
      throw SettingsError("url", "bad user name " + quoted(userinfo) + " in " + quoted(url));
    }
    p.user = std::string(userinfo);
    rest = rest.substr(at + 1);
  }
  std::string_view hostport = rest;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    const std::string_view db = rest.substr(slash + 1);
    uint64_t n = 0;
    if (!db.empty() && !parseDecimal(db, 0x7fffffff, n)) {
      throw SettingsError("url", "expected a database number after '/', got " + quoted(db));
    }
    p.db = static_cast<uint32_t>(n);
  }
  std::string why;
  if (!parseEndpoint(hostport, false, p.endpoint, &why)) {
    throw SettingsError("url", why + " in " + quoted(url));
  }
  return p;
}

}  // namespace

bool validHost(std::string_view host) {
  if (host.find(':') == std::string_view::npos) return hostName(host);
  if (host.size() >= INET6_ADDRSTRLEN) return false;
  in6_addr a6{};
  const std::string h(host);
  return inet_pton(AF_INET6, h.c_str(), &a6) == 1;
}

bool parsePort(std::string_view text, uint16_t& port) {
  uint64_t n = 0;
  if (!parseDecimal(text, 65535, n) || n == 0) return false;
  port = static_cast<uint16_t>(n);
  return true;
}

bool parseEndpoint(std::string_view text, bool port_required, Endpoint& out, std::string* why) {
  auto fail = [&](const std::string& message) {
    if (why != nullptr) *why = message;
    return false;
  };
  std::string_view host = text;
  std::string_view port;
  bool have_port = false;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return fail("unclosed '[' in " + quoted(text));
    host = text.substr(1, close - 1);
    const std::string_view after = text.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail("expected ':port' after ']' in " + quoted(text));
      port = after.substr(1);
      have_port = true;
    }
    if (host.find(':') == std::string_view::npos || !validHost(host)) {
      return fail(quoted(host) + " is not an IPv6 address");
    }
  } else {
    const auto colon = text.rfind(':');
    if (colon != std::string_view::npos) {
      if (text.find(':') != colon) return fail("an IPv6 address needs brackets: " + quoted(text));
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      have_port = true;
    }
    if (!hostName(host)) return fail("bad host name " + quoted(host));
  }
  uint16_t p = 6379;
  if (have_port && !parsePort(port, p)) return fail("expected a port 1-65535, got " + quoted(port));
  if (!have_port && port_required) return fail("expected host:port, got " + quoted(text));
  out.host = std::string(host);
  out.port = p;
  return true;
}

namespace {

using Setter = void (*)(SettingsBuilder&, std::string_view key, std::string_view value);

}  // namespace

// The table: name, default, help, and how the value is applied.
struct KeyTable {
  struct Row {
    SettingKey key;
    Setter set;
  };

  static void url(SettingsBuilder& b, std::string_view /*key*/, std::string_view v) {
    const ParsedUrl p = parseUrl(v);
    b.s_.url = std::string(v);
    b.s_.tls.enabled = p.tls;
    b.s_.endpoint = p.endpoint;
    b.s_.db = p.db;
    b.url_user_ = p.user;
    b.url_set_ = true;
  }
  static void cluster(SettingsBuilder& b, std::string_view k, std::string_view v) {
    b.cluster_ = boolean(k, v);
  }
  static void seeds(SettingsBuilder& b, std::string_view k, std::string_view v) {
    std::size_t start = 0;
    while (start <= v.size()) {
      const auto comma = v.find(',', start);
      std::string_view item =
          v.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      Endpoint e;
      std::string why;
      if (!parseEndpoint(item, true, e, &why)) throw SettingsError(k, why);
      if (b.s_.seeds.size() >= kMaxSeeds) {
        throw SettingsError(k, "more than " + std::to_string(kMaxSeeds) + " seeds");
      }
      b.s_.seeds.push_back(std::move(e));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
  }
  static void user(SettingsBuilder& b, std::string_view k, std::string_view v) {
    if (v.empty() || v.size() > kMaxUserLength ||
        v.find_first_of(" \t\r\n") != std::string_view::npos) {
      throw SettingsError(k, "expected an ACL user name, got " + quoted(v));
    }
    b.user_ = std::string(v);
  }
  static void passwordFile(SettingsBuilder& b, std::string_view k, std::string_view v) {
    b.s_.password_file = path(k, v);
  }
  static void keyPrefix(SettingsBuilder& b, std::string_view k, std::string_view v) {
    // Braces would turn the prefix into the keys' hash tag (cluster slots).
    for (const char c : v) {
      if (c <= ' ' || c >= 0x7f || c == '{' || c == '}') {
        throw SettingsError(
            k, "expected printable characters without spaces or braces, got " + quoted(v));
      }
    }
    if (v.empty() || v.size() > kMaxPrefixLength) {
      throw SettingsError(
          k, "expected 1 to " + std::to_string(kMaxPrefixLength) + " characters, got " + quoted(v));
    }
    b.s_.key_prefix = std::string(v);
  }
  template <uint32_t ConnectionSettings::*Field, uint32_t Min, uint32_t Max>
  static void millis(SettingsBuilder& b, std::string_view k, std::string_view v) {
    b.s_.*Field = number(k, v, Min, Max);
  }
  template <std::string TlsSettings::*Field>
  static void tlsFile(SettingsBuilder& b, std::string_view k, std::string_view v) {
    b.s_.tls.*Field = path(k, v);
    b.noteTls(k);
  }
  static void tlsServerName(SettingsBuilder& b, std::string_view k, std::string_view v) {
    if (!hostName(v)) throw SettingsError(k, "expected a host name, got " + quoted(v));
    b.s_.tls.server_name = std::string(v);
    b.noteTls(k);
  }
  static void tlsVerify(SettingsBuilder& b, std::string_view k, std::string_view v) {
    b.s_.tls.verify = boolean(k, v);
    b.noteTls(k);
  }

  static constexpr std::array kRows{
      Row{{"url", "",
           "redis://[user@]host[:port][/db], or rediss:// for TLS; port 6379 when left out"},
          &url},
      Row{{"cluster", "false",
           "Redis Cluster: route by hash slot from CLUSTER SLOTS, follow MOVED and ASK"},
          &cluster},
      Row{{"seeds", "", "more host:port cluster nodes to discover the cluster from; sets cluster"},
          &seeds},
      Row{{"user", "", "ACL user (AUTH user password); the URL may name it too"}, &user},
      Row{{"password_file", "", "file holding the password (one line); none: no AUTH"},
          &passwordFile},
      Row{{"key_prefix", "exfilwatch:", "prefix of every key the fleet writes (no braces)"},
          &keyPrefix},
      Row{{"flush_ms", "250", "deltas are flushed at most once per this many ms (10-60000)"},
          &millis<&ConnectionSettings::flush_ms, 10, 60000>},
      Row{{"connect_timeout_ms", "2000", "connect, TLS and AUTH of one connection"},
          &millis<&ConnectionSettings::connect_timeout_ms, 10, 600000>},
      Row{{"command_timeout_ms", "1000",
           "a reply later than this marks the connection slow: it is closed and reopened"},
          &millis<&ConnectionSettings::command_timeout_ms, 10, 600000>},
      Row{{"tls_ca_file", "", "CA certificates (PEM) that verify the server; none: the system's"},
          &tlsFile<&TlsSettings::ca_file>},
      Row{{"tls_cert_file", "", "client certificate chain (PEM), for mutual TLS"},
          &tlsFile<&TlsSettings::cert_file>},
      Row{{"tls_key_file", "", "client private key (PEM), with tls_cert_file"},
          &tlsFile<&TlsSettings::key_file>},
      Row{{"tls_server_name", "", "name sent (SNI) and verified; none: the host of each node"},
          &tlsServerName},
      Row{{"tls_verify", "true", "verify the server's certificate chain and name"}, &tlsVerify},
  };
};

void SettingsBuilder::noteTls(std::string_view key) {
  if (first_tls_key_.empty()) first_tls_key_ = std::string(key);
}

std::span<const SettingKey> settingKeys() {
  static const auto keys = [] {
    std::array<SettingKey, KeyTable::kRows.size()> out{};
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = KeyTable::kRows[i].key;
    return out;
  }();
  return keys;
}

void SettingsBuilder::set(std::string_view key, std::string_view value) {
  for (const auto& row : KeyTable::kRows) {
    if (row.key.name == key) {
      row.set(*this, key, value);
      return;
    }
  }
  std::string known;
  for (const auto& row : KeyTable::kRows) {
    if (!known.empty()) known += ", ";
    known += row.key.name;
  }
  throw SettingsError(key, "unknown key (known: " + known + ")");
}

ConnectionSettings SettingsBuilder::finish() const {
  ConnectionSettings s = s_;
  if (!url_set_) throw SettingsError("url", "required (redis://host:port or rediss://host:port)");
  if (user_ && !url_user_.empty() && *user_ != url_user_) {
    throw SettingsError(
        "user", "'" + *user_ + "' differs from the user in fleet.url ('" + url_user_ + "')");
  }
  s.user = user_ ? *user_ : url_user_;
  if (cluster_ == false && !s.seeds.empty()) {
    throw SettingsError("seeds", "a seed list is for Redis Cluster, but fleet.cluster is false");
  }
  s.cluster = cluster_.value_or(false) || !s.seeds.empty();
  if (s.cluster && s.db != 0) {
    throw SettingsError("url", "database " + std::to_string(s.db) +
                                   " selected, but Redis Cluster has only database 0");
  }
  std::vector<Endpoint> seeds{s.endpoint};
  for (const auto& e : s.seeds) {
    bool dup = false;
    for (const auto& have : seeds) dup = dup || have == e;
    if (!dup) seeds.push_back(e);
  }
  s.seeds = std::move(seeds);
  if (!first_tls_key_.empty() && !s.tls.enabled) {
    throw SettingsError(first_tls_key_, "set, but fleet.url is redis:// (TLS needs rediss://)");
  }
  if (s.tls.cert_file.empty() != s.tls.key_file.empty()) {
    throw SettingsError(
        s.tls.cert_file.empty() ? "tls_cert_file" : "tls_key_file",
        "required with fleet." +
            std::string(s.tls.cert_file.empty() ? "tls_key_file" : "tls_cert_file"));
  }
  if (!s.tls.ca_file.empty()) mustRead("tls_ca_file", s.tls.ca_file);
  if (!s.tls.cert_file.empty()) mustRead("tls_cert_file", s.tls.cert_file);
  if (!s.tls.key_file.empty()) mustRead("tls_key_file", s.tls.key_file);
  if (!s.password_file.empty()) s.password = readPassword(s.password_file);
  if (!s.user.empty() && s.password.empty()) {
    throw SettingsError("password_file", "required with an ACL user ('" + s.user + "')");
  }
  return s;
}

}  // namespace exfilwatch::fleet
