// test_fleet_settings.cc: the `fleet:` keys (src/fleet/redis_url.h): URL
// forms, errors that name the key, cross-key checks, the password file, and
// the key table against docs/fleet-client.md.
#include <doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <utility>

#include "build_config.h"
#include "fleet/redis_url.h"

using namespace exfilwatch::fleet;

namespace {

using Keys = std::initializer_list<std::pair<std::string, std::string>>;

ConnectionSettings build(Keys keys) {
  SettingsBuilder b;
  for (const auto& [k, v] : keys) b.set(k, v);
  return b.finish();
}

// The message of the SettingsError that building `keys` throws.
std::string error(Keys keys) {
  try {
    build(keys);
  } catch (const SettingsError& e) {
    return e.what();
  }
  return "(no error)";
}

struct TempFile {
  explicit TempFile(const std::string& text) {
    char name[] = "/tmp/fleet-test-XXXXXX";
    const int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    close(fd);
    path = name;
    std::ofstream(path, std::ios::binary) << text;
  }
  ~TempFile() { std::filesystem::remove(path); }
  std::string path;
};

}  // namespace

TEST_CASE("fleet.url: the forms a user writes") {
  auto s = build({{"url", "redis://10.0.0.5:6380/2"}});
  CHECK(s.endpoint == Endpoint{"10.0.0.5", 6380});
  CHECK(s.db == 2);
  CHECK_FALSE(s.tls.enabled);
  CHECK_FALSE(s.cluster);
  CHECK(s.seeds == std::vector<Endpoint>{{"10.0.0.5", 6380}});
  CHECK(s.flush_ms <= 1000);
  CHECK(s.key_prefix == "exfilwatch:");

  s = build({{"url", "rediss://redis.internal"}});
  CHECK(s.tls.enabled);
  CHECK(s.endpoint == Endpoint{"redis.internal", 6379});
  CHECK(s.tls.verify);

  s = build({{"url", "REDIS://[::1]:7000"}});
  CHECK(s.endpoint == Endpoint{"::1", 7000});
  CHECK(s.endpoint.toString() == "[::1]:7000");

  TempFile pw("s3cret\n");
  s = build({{"url", "redis://sensor@127.0.0.1:6379/"}, {"password_file", pw.path}});
  CHECK(s.user == "sensor");
  CHECK(s.password == "s3cret");
  CHECK(s.db == 0);
}

TEST_CASE("fleet.url: mistakes name the key and show the value") {
  CHECK(error({{"url", "http://x"}}) ==
        "fleet.url: expected redis:// or rediss://, got 'http://x'");
  CHECK(error({{"url", "redis://user:pw@host:1"}}).find("password does not belong in the URL") !=
        std::string::npos);
  // The password never appears in the message.
  CHECK(error({{"url", "redis://user:hunter2@host:1"}}).find("hunter2") == std::string::npos);
  CHECK(error({{"url", "redis://host:0"}}).rfind("fleet.url: expected a port 1-65535", 0) == 0);
  CHECK(error({{"url", "redis://host:65536"}}).rfind("fleet.url: expected a port", 0) == 0);
  CHECK(error({{"url", "redis://host:6379/x"}}).rfind("fleet.url: expected a database", 0) == 0);
  CHECK(error({{"url", "redis://::1:6379"}}).find("IPv6 address needs brackets") !=
        std::string::npos);
  CHECK(error({{"url", "redis://[zz]:6379"}}).find("is not an IPv6 address") != std::string::npos);
  CHECK(error({{"url", "redis://ho st:1"}}).find("bad host name") != std::string::npos);
  CHECK(error({{"url", "redis://h:1?db=2"}}).rfind("fleet.url: expected redis://[user@]", 0) == 0);
  CHECK(error({{"url", "redis://"}}).find("bad host name ''") != std::string::npos);
  CHECK(error({}) == "fleet.url: required (redis://host:port or rediss://host:port)");
  CHECK(error({{"url", "redis://h:1"}, {"colour", "x"}})
            .rfind("fleet.colour: unknown key (known: url", 0) == 0);
}

TEST_CASE("fleet: numbers, booleans and names") {
  auto s = build({{"url", "redis://h"},
                  {"flush_ms", "100"},
                  {"connect_timeout_ms", "0500"},
                  {"command_timeout_ms", "250"},
                  {"key_prefix", "ew:"}});
  CHECK(s.flush_ms == 100);
  CHECK(s.connect_timeout_ms == 500);  // base 10: a leading zero is not octal
  CHECK(s.command_timeout_ms == 250);
  CHECK(s.key_prefix == "ew:");
  CHECK(error({{"url", "redis://h"}, {"flush_ms", "5"}}) ==
        "fleet.flush_ms: 5 is out of range [10, 60000]");
  CHECK(error({{"url", "redis://h"}, {"flush_ms", "-1"}}) ==
        "fleet.flush_ms: expected a whole number, got '-1'");
  CHECK(error({{"url", "redis://h"}, {"flush_ms", "0x10"}}) ==
        "fleet.flush_ms: expected a whole number, got '0x10'");
  CHECK(error({{"url", "redis://h"}, {"flush_ms", "99999999999999999999"}}) ==
        "fleet.flush_ms: expected a whole number, got '99999999999999999999'");
  CHECK(error({{"url", "redis://h"}, {"cluster", "maybe"}}) ==
        "fleet.cluster: expected true or false, got 'maybe'");
  // Braces in the prefix would become every key's hash tag.
  CHECK(error({{"url", "redis://h"}, {"key_prefix", "{x}"}})
            .rfind("fleet.key_prefix: expected printable", 0) == 0);
  CHECK(error({{"url", "redis://h"}, {"key_prefix", ""}})
            .rfind("fleet.key_prefix: expected 1 to 64", 0) == 0);
  CHECK(error({{"url", "redis://h"}, {"user", "a b"}}) ==
        "fleet.user: expected an ACL user name, got 'a b'");
}

TEST_CASE("fleet: cluster flag and seeds") {
  auto s = build({{"url", "redis://10.0.0.1:7000"}, {"cluster", "true"}});
  CHECK(s.cluster);
  CHECK(s.seeds == std::vector<Endpoint>{{"10.0.0.1", 7000}});
  // A seed list turns cluster mode on; the URL's node comes first; repeats go.
  s = build({{"url", "redis://10.0.0.1:7000"},
             {"seeds", "10.0.0.2:7000, 10.0.0.3:7000"},
             {"seeds", "[fd00::4]:7000"},
             {"seeds", "10.0.0.1:7000"}});
  CHECK(s.cluster);
  CHECK(s.seeds ==
        std::vector<Endpoint>{
            {"10.0.0.1", 7000}, {"10.0.0.2", 7000}, {"10.0.0.3", 7000}, {"fd00::4", 7000}});
  CHECK(error({{"url", "redis://h:1"}, {"seeds", "h2"}}) ==
        "fleet.seeds: expected host:port, got 'h2'");
  CHECK(error({{"url", "redis://h:1"}, {"cluster", "false"}, {"seeds", "h2:1"}}) ==
        "fleet.seeds: a seed list is for Redis Cluster, but fleet.cluster is false");
  CHECK(error({{"url", "redis://h:1/3"}, {"cluster", "yes"}}) ==
        "fleet.url: database 3 selected, but Redis Cluster has only database 0");
}

TEST_CASE("fleet: user and password file") {
  TempFile pw("pa ss\r\n");
  auto s = build({{"url", "redis://h"}, {"user", "sensor"}, {"password_file", pw.path}});
  CHECK(s.user == "sensor");
  CHECK(s.password == "pa ss");
  CHECK(error({{"url", "redis://a@h"}, {"user", "b"}, {"password_file", pw.path}}) ==
        "fleet.user: 'b' differs from the user in fleet.url ('a')");
  CHECK(error({{"url", "redis://h"}, {"user", "sensor"}}) ==
        "fleet.password_file: required with an ACL user ('sensor')");
  CHECK(error({{"url", "redis://h"}, {"password_file", "/nonexistent/pw"}}) ==
        "fleet.password_file: cannot read '/nonexistent/pw': No such file or directory");
  TempFile empty("\n");
  CHECK(error({{"url", "redis://h"}, {"password_file", empty.path}}) ==
        "fleet.password_file: '" + empty.path + "' is empty");
  TempFile two("a\nb\n");
  CHECK(error({{"url", "redis://h"}, {"password_file", two.path}}) ==
        "fleet.password_file: '" + two.path + "' holds more than one line");
}

TEST_CASE("fleet: TLS keys") {
  TempFile ca("not checked here: the client loads it");
  auto s = build({{"url", "rediss://h:6390"},
                  {"tls_ca_file", ca.path},
                  {"tls_server_name", "redis.example"},
                  {"tls_verify", "false"}});
  CHECK(s.tls.enabled);
  CHECK(s.tls.ca_file == ca.path);
  CHECK(s.tls.server_name == "redis.example");
  CHECK_FALSE(s.tls.verify);
  CHECK(error({{"url", "redis://h"}, {"tls_ca_file", ca.path}}) ==
        "fleet.tls_ca_file: set, but fleet.url is redis:// (TLS needs rediss://)");
  CHECK(error({{"url", "rediss://h"}, {"tls_cert_file", ca.path}}) ==
        "fleet.tls_key_file: required with fleet.tls_cert_file");
  CHECK(error({{"url", "rediss://h"}, {"tls_ca_file", "/nonexistent/ca.pem"}}) ==
        "fleet.tls_ca_file: cannot read '/nonexistent/ca.pem': No such file or directory");
  CHECK(error({{"url", "rediss://h"}, {"tls_server_name", "a b"}}) ==
        "fleet.tls_server_name: expected a host name, got 'a b'");
}

TEST_CASE("fleet: every key of the table is documented, with the default it has") {
  std::ifstream in(std::string(EXFILWATCH_SOURCE_DIR) + "/docs/fleet-client.md");
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  for (const SettingKey& k : settingKeys()) {
    INFO(k.name);
    CHECK(text.str().find("`" + std::string(k.name) + "`") != std::string::npos);
    // A default the table states is the one a missing key gets.
    if (!k.default_value.empty()) {
      CHECK(build({{"url", "rediss://h"}, {std::string(k.name), std::string(k.default_value)}}) ==
            build({{"url", "rediss://h"}}));
    }
  }
}
