// test_listen_guard.cc: who may feed the live sensor: listen.sources (CIDR
// parsing, the per-datagram sender test, the config key) and the port lock
// (one exfilwatch per address and port).
#include <arpa/inet.h>
#include <doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "capture/port_lock.h"
#include "capture/source_filter.h"
#include "config/config.h"

using namespace exfilwatch;

namespace {
IpPrefix prefix(const std::string& text) {
  IpPrefix p;
  std::string error;
  REQUIRE_MESSAGE(IpPrefix::parse(text, p, error), text << ": " << error);
  return p;
}

sockaddr_storage v4(const char* text) {
  sockaddr_storage s{};
  auto& a = reinterpret_cast<sockaddr_in&>(s);
  a.sin_family = AF_INET;
  REQUIRE(inet_pton(AF_INET, text, &a.sin_addr) == 1);
  return s;
}

sockaddr_storage v6(const char* text) {
  sockaddr_storage s{};
  auto& a = reinterpret_cast<sockaddr_in6&>(s);
  a.sin6_family = AF_INET6;
  REQUIRE(inet_pton(AF_INET6, text, &a.sin6_addr) == 1);
  return s;
}

// A UDP port held (without SO_REUSEPORT) on every IPv4 address while it
// lives, so no sensor running beside the test holds a lock on it.
struct HeldPort {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  uint16_t port = 0;
  HeldPort() {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    socklen_t len = sizeof a;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
  }
  ~HeldPort() { ::close(fd); }
};
}  // namespace

TEST_CASE("listen.sources: prefixes parse strictly, host bits cleared") {
  CHECK(prefix("10.1.2.3/8").toString() == "10.0.0.0/8");
  CHECK(prefix("10.1.2.3").toString() == "10.1.2.3/32");
  CHECK(prefix("2001:db8::1/32").toString() == "2001:db8::/32");
  CHECK(prefix("::1").toString() == "::1/128");
  CHECK(prefix("0.0.0.0/0").toString() == "0.0.0.0/0");
  CHECK(prefix("10.0.0.0/31").contains(prefix("10.0.0.1").network));
  CHECK_FALSE(prefix("10.0.0.0/31").contains(prefix("10.0.0.2").network));
  for (const char* bad : {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "::/129",
                          "example.com", "", "10.0.0/8", "10.0.0.0/0008"}) {
    IpPrefix p;
    std::string error;
    CHECK_MESSAGE(!IpPrefix::parse(bad, p, error), bad);
    CHECK_MESSAGE(!error.empty(), bad);
  }
}

TEST_CASE("listen.sources: the sender test, IPv4, IPv6 and IPv4-mapped") {
  const SourceFilter f({prefix("10.0.0.0/16"), prefix("192.168.7.7"), prefix("2001:db8:1::/48")});
  CHECK_FALSE(f.empty());
  CHECK(f.allows(v4("10.0.255.1")));
  CHECK_FALSE(f.allows(v4("10.1.0.1")));
  CHECK(f.allows(v4("192.168.7.7")));
  CHECK_FALSE(f.allows(v4("192.168.7.8")));
  CHECK(f.allows(v6("2001:db8:1:ffff::5")));
  CHECK_FALSE(f.allows(v6("2001:db8:2::5")));
  // A dual-stack socket sees IPv4 senders as ::ffff:a.b.c.d.
  CHECK(f.allows(v6("::ffff:10.0.3.4")));
  CHECK_FALSE(f.allows(v6("::ffff:11.0.3.4")));
  sockaddr_storage none{};
  CHECK_FALSE(f.allows(none));
  CHECK(SourceFilter().empty());
  CHECK(SourceFilter({prefix("0.0.0.0/0")}).allows(v4("203.0.113.9")));
}

TEST_CASE("listen.sources: the config key, bounded, file:line errors") {
  const Config defaults;
  CHECK(defaults.listen.sources.empty());
  const Config c = parseConfig("listen:\n  sources: [10.0.0.0/16, '2001:db8::/32']\n", "t.yaml");
  REQUIRE(c.listen.sources.size() == 2);
  CHECK(c.listen.sources[0].toString() == "10.0.0.0/16");
  CHECK(c.listen.sources[1].toString() == "2001:db8::/32");
  CHECK(parseConfig("listen:\n  sources: []\n", "t.yaml").listen.sources.empty());
  CHECK_THROWS_WITH_AS(parseConfig("listen:\n  sources: [10.0.0.0/40]\n", "t.yaml"),
                       doctest::Contains("t.yaml:2: listen.sources: '10.0.0.0/40': prefix length"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parseConfig("listen:\n  sources: 10.0.0.0/8\n", "t.yaml"),
                       doctest::Contains("listen.sources: expected a list"), ConfigError);
  std::string many = "listen:\n  sources: [";
  for (int i = 0; i < 257; ++i)
    many += (i ? ", 10.0." : "10.0.") + std::to_string(i % 256) + ".0/24";
  many += "]\n";
  CHECK_THROWS_WITH_AS(parseConfig(many, "t.yaml"), doctest::Contains("at most 256"), ConfigError);
}

TEST_CASE("port lock: one holder per address and port, overlaps refused, released") {
  const HeldPort held;
  const uint16_t port = held.port;
  {
    PortLock first("127.0.0.1", port);
    // The same address and port: refused, naming this process as the holder.
    try {
      PortLock second("127.0.0.1", port);
      FAIL("a second lock on the same address and port was granted");
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      CHECK(what.find("another exfilwatch (pid " + std::to_string(::getpid()) +
                      ") already listens on 127.0.0.1:" + std::to_string(port) + "/udp") !=
            std::string::npos);
    }
    // Wildcards cover the specific address on the same port.
    CHECK_THROWS_WITH_AS(PortLock("0.0.0.0", port), doctest::Contains("which overlaps 0.0.0.0"),
                         std::runtime_error);
    CHECK_THROWS_AS(PortLock("::", port), std::runtime_error);
    // Another address, another port or another family's address: no overlap.
    PortLock other_address("127.0.0.2", port);
    const HeldPort held2;
    PortLock other_port("127.0.0.1", held2.port);
    PortLock v6("::1", port);
  }
  // Released with its holder.
  PortLock again("0.0.0.0", port);
  CHECK_THROWS_AS(PortLock("127.0.0.1", port), std::runtime_error);
}
