// test_live.cc: the live sensor's building blocks: datagrams from a tunnel
// socket through the Decoder (pseudo link types), the inner-flow peek that
// dispatches clients to workers, the SPSC hand-off ring, the listen: config,
// and the outer addresses a loopback tunnel socket reads with each datagram.
#include <arpa/inet.h>
#include <doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "build_config.h"
#include "capture/pcap_source.h"
#include "capture/reuseport_steering.h"
#include "capture/udp_listener.h"
#include "common/spsc_ring.h"
#include "config/config.h"
#include "decode/decoder.h"
#include "decode/inner_peek.h"

using namespace exfilwatch;

namespace {
using Bytes = std::vector<uint8_t>;

Bytes vxlanDns(uint8_t flags, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
               uint16_t frag = 0) {
  const uint8_t dns[] = {0x12, 0x34, 0x01, 0x00, 0,   1,   0,   0, 0, 0, 0, 0, 3,
                         'f',  'o',  'o',  3,    'c', 'o', 'm', 0, 0, 1, 0, 1};
  Bytes b = {flags, 0, 0, 0, 0, 0, 1, 0};  // VXLAN, VNI 1
  const uint8_t eth[14] = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00};
  b.insert(b.end(), eth, eth + 14);
  const uint16_t udp_len = 8 + sizeof dns;
  const uint16_t ip_len = 20 + udp_len;
  const uint8_t ip[20] = {0x45,
                          0,
                          uint8_t(ip_len >> 8),
                          uint8_t(ip_len),
                          0,
                          1,
                          uint8_t(frag >> 8),
                          uint8_t(frag),
                          64,
                          17,
                          0,
                          0,
                          uint8_t(src >> 24),
                          uint8_t(src >> 16),
                          uint8_t(src >> 8),
                          uint8_t(src),
                          uint8_t(dst >> 24),
                          uint8_t(dst >> 16),
                          uint8_t(dst >> 8),
                          uint8_t(dst)};
  b.insert(b.end(), ip, ip + 20);
  const uint8_t udp[8] = {uint8_t(sport >> 8),
                          uint8_t(sport),
                          uint8_t(dport >> 8),
                          uint8_t(dport),
                          uint8_t(udp_len >> 8),
                          uint8_t(udp_len),
                          0,
                          0};
  b.insert(b.end(), udp, udp + 8);
  b.insert(b.end(), dns, dns + sizeof dns);
  return b;
}

Frame socketFrame(const Bytes& b, uint32_t wirelen = 0) {
  Frame f;
  f.data = b.data();
  f.caplen = static_cast<uint32_t>(b.size());
  f.wirelen = wirelen ? wirelen : f.caplen;
  f.linktype = static_cast<int>(LinkType::VxlanPayload);
  return f;
}
}  // namespace

TEST_CASE("decoder: a live VXLAN datagram decodes like a captured one") {
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  const Bytes b = vxlanDns(0x08, 0x0a000002, 0x0a000001, 40000, 53);
  REQUIRE(d.decode(socketFrame(b), ctx, w));
  CHECK(ctx.tunnel_depth == 1);
  CHECK(ctx.tunnels[0].type == TunnelType::Vxlan);
  CHECK(ctx.tunnels[0].vni == 1);
  CHECK(ctx.dst_port == 53);
  CHECK(ctx.src.toString() == "10.0.0.2");
  CHECK(w.total() == 0);
}

TEST_CASE("live socket: each datagram's outer sender and local address reach the decoder") {
  for (const char* host : {"127.0.0.1", "::1"}) {
    CAPTURE(host);
    const bool v6 = std::strchr(host, ':') != nullptr;
    boost::asio::io_context io;
    UdpListenerOptions o;
    o.address = host;
    o.port = 0;  // the kernel's choice
    o.batch_size = 4;
    std::string warning;
    std::unique_ptr<UdpListener> l;
    try {
      l = std::make_unique<UdpListener>(io, o, warning);
    } catch (const std::exception& e) {
      if (v6) continue;  // no IPv6 loopback here
      FAIL(e.what());
    }
    const uint16_t port = l->localPort();
    REQUIRE(port != 0);
    // The sender: its own socket on the same loopback, port chosen by the kernel.
    const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_storage to{}, from{};
    socklen_t len = v6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (v6) {
      auto& a = reinterpret_cast<sockaddr_in6&>(to);
      a.sin6_family = AF_INET6;
      a.sin6_port = htons(port);
      ::inet_pton(AF_INET6, host, &a.sin6_addr);
    } else {
      auto& a = reinterpret_cast<sockaddr_in&>(to);
      a.sin_family = AF_INET;
      a.sin_port = htons(port);
      ::inet_pton(AF_INET, host, &a.sin_addr);
    }
    const Bytes b = vxlanDns(0x08, 0x0a000002, 0x0a000001, 40000, 53);
    REQUIRE(::sendto(fd, b.data(), b.size(), 0, reinterpret_cast<sockaddr*>(&to), len) ==
            static_cast<ssize_t>(b.size()));
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&from), &len) == 0);
    const uint16_t sender_port = ntohs(v6 ? reinterpret_cast<sockaddr_in6&>(from).sin6_port
                                          : reinterpret_cast<sockaddr_in&>(from).sin_port);
    uint32_t n = 0;
    for (int i = 0; i < 1000 && n == 0; ++i) {
      n = l->receiveBatch();
      if (n == 0) ::usleep(1000);
    }
    ::close(fd);
    REQUIRE(n == 1);
    FrameOuter outer;
    l->outer(0, outer);
    CHECK(outer.src.toString() == host);
    CHECK(outer.dst.toString() == host);
    CHECK(outer.src_port == sender_port);
    CHECK(outer.dst_port == port);

    // The decoder fills EVE's `tunnel` from it as from a captured outer packet.
    const Bytes copy(l->data(0), l->data(0) + l->caplen(0));
    Frame f = socketFrame(copy);
    f.outer = outer;
    Decoder d;
    WeirdCounters w;
    PacketContext ctx;
    REQUIRE(d.decode(f, ctx, w));
    CHECK(ctx.outer.depth == 1);
    CHECK(ctx.outer.src == outer.src);
    CHECK(ctx.outer.dst == outer.dst);
    CHECK(ctx.outer.src_port == sender_port);
    CHECK(ctx.outer.dst_port == port);
    CHECK(ctx.outer.proto == ipproto::kUdp);
    CHECK(ctx.src.toString() == "10.0.0.2");  // the inner packet is still the packet
    CHECK(ctx.dst_port == 53);
  }
}

TEST_CASE("decoder: bad socket input is counted under its own name") {
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  const Bytes runt(10, 0x08);
  CHECK_FALSE(d.decode(socketFrame(runt), ctx, w));
  CHECK(w.get(Weird::SocketRunt) == 1);

  Bytes http(64, 'A');  // "AAAA...": reserved bits set, not a VXLAN header
  CHECK_FALSE(d.decode(socketFrame(http), ctx, w));
  CHECK(w.get(Weird::SocketNotTunnel) == 1);

  const Bytes noflag = vxlanDns(0x00, 0x0a000002, 0x0a000001, 40000, 53);
  CHECK_FALSE(d.decode(socketFrame(noflag), ctx, w));
  CHECK(w.get(Weird::VxlanBadFlags) == 1);

  const Bytes cut = vxlanDns(0x08, 0x0a000002, 0x0a000001, 40000, 53);
  d.decode(socketFrame(cut, 20000), ctx, w);  // the datagram was larger than the slot
  CHECK(w.get(Weird::SocketOversize) == 1);
  CHECK(w.get(Weird::SocketRunt) == 1);
}

TEST_CASE("inner peek: both directions and all fragments go to the client's worker") {
  InnerFlow q, r, frag;
  const Bytes query = vxlanDns(0x08, 0x0a000002, 0x0a000001, 40000, 53);
  const Bytes reply = vxlanDns(0x08, 0x0a000001, 0x0a000002, 53, 40000);
  const Bytes later = vxlanDns(0x08, 0x0a000001, 0x0a000002, 53, 40000, 0x00b9);  // offset 1480
  REQUIRE(peekInnerFlow(query.data(), uint32_t(query.size()), true, q));
  REQUIRE(peekInnerFlow(reply.data(), uint32_t(reply.size()), true, r));
  REQUIRE(peekInnerFlow(later.data(), uint32_t(later.size()), true, frag));
  CHECK(q.has_ports);
  CHECK_FALSE(frag.has_ports);
  CHECK(clientHash(q) == clientHash(r));
  CHECK(clientHash(frag) == clientHash(r));  // a response's fragments: the destination
  CHECK(flowHash(q) != flowHash(r));         // outer source ports differ per direction
  InnerFlow none;
  const uint8_t tiny[4] = {8, 0, 0, 0};
  CHECK_FALSE(peekInnerFlow(tiny, sizeof tiny, true, none));
}

TEST_CASE("kernel steering program: the socket it picks is the owner, clientHash % N") {
  // Every VXLAN datagram of the shared captures (IPv4 and IPv6 clients, DNS
  // over UDP and TCP, TLS), run through the classic BPF program in libpcap's
  // interpreter, as the kernel runs it on the UDP payload.
  const std::string dir = std::string(EXFILWATCH_SOURCE_DIR) + "/../shared/captures";
  std::vector<Bytes> datagrams;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".pcap") continue;
    std::string error;
    auto src = PcapSource::open(entry.path().string(), error);
    REQUIRE_MESSAGE(src, error);
    Frame f;
    while (src->next(f)) {
      const uint8_t* payload = nullptr;
      uint32_t len = 0;
      bool vxlan = false;
      if (tunnelPayloadOf(f, payload, len, vxlan) && vxlan)
        datagrams.emplace_back(payload, payload + len);
    }
  }
  REQUIRE(datagrams.size() > 10000);
  // Synthetic shapes the captures lack: a later fragment (the destination
  // owns it), one 802.1Q tag, a tie of ports, a port-less protocol.
  Bytes frag = vxlanDns(0x08, 0x0a000001, 0x0a000002, 53, 40000, 0x00b9);
  datagrams.push_back(frag);
  Bytes tagged = vxlanDns(0x08, 0x0a000002, 0x0a000001, 40000, 53);
  const uint8_t tag[4] = {0x81, 0x00, 0x00, 0x07};
  tagged.insert(tagged.begin() + 20, tag, tag + 4);
  datagrams.push_back(tagged);
  datagrams.push_back(vxlanDns(0x08, 0x0a000002, 0x0a000001, 53, 53));
  Bytes icmp = vxlanDns(0x08, 0x0a000003, 0x0a000004, 0, 0);
  icmp[22 + 9] = 1;
  datagrams.push_back(icmp);

  for (uint32_t workers : {2U, 3U, 4U, 7U}) {
    const auto program = vxlanSteeringProgram(workers);
    std::size_t agree = 0, unreadable = 0, v6 = 0, peeked = 0;
    std::vector<std::size_t> per(workers);
    for (const Bytes& d : datagrams) {
      InnerFlow flow;
      // Not IP (ARP, ...): no owner; the receiving worker keeps it.
      if (!peekInnerFlow(d.data(), uint32_t(d.size()), true, flow)) continue;
      ++peeked;
      const uint32_t socket = runSteeringProgram(program, d.data(), uint32_t(d.size()));
      if (socket >= workers) {
        ++unreadable;
        continue;
      }
      agree += socket == clientHash(flow) % workers;
      ++per[socket];
      v6 += flow.src.family == 6;
    }
    CHECK(unreadable == 0);
    CHECK(peeked > datagrams.size() * 9 / 10);
    CHECK(agree == peeked);
    CHECK(v6 > 0);
    for (std::size_t n : per) CHECK(n > 0);  // every worker gets clients
  }
  // What it cannot read goes to the kernel's own hash (an index past the group).
  const auto program = vxlanSteeringProgram(2);
  Bytes qinq = vxlanDns(0x08, 0x0a000002, 0x0a000001, 40000, 53);
  const uint8_t two_tags[8] = {0x88, 0xa8, 0, 1, 0x81, 0x00, 0, 2};
  qinq.insert(qinq.begin() + 20, two_tags, two_tags + 8);
  CHECK(runSteeringProgram(program, qinq.data(), uint32_t(qinq.size())) == 2);
  Bytes arp = vxlanDns(0x08, 0x0a000002, 0x0a000001, 40000, 53);
  arp[20] = 0x08;
  arp[21] = 0x06;
  CHECK(runSteeringProgram(program, arp.data(), uint32_t(arp.size())) == 2);
  CHECK_THROWS(vxlanSteeringProgram(0));
}

TEST_CASE("spsc ring: variable records, wrap-around, full ring refuses") {
  SpscByteRing ring(1);  // rounds up to 64 KiB
  CHECK(ring.capacity() == 65536);
  uint64_t produced = 0, consumed = 0;
  Bytes payload(1000);
  for (int round = 0; round < 500; ++round) {
    for (int k = 0; k < 3; ++k) {
      const auto len = static_cast<uint32_t>(100 + (produced * 37) % 900);
      uint8_t* p = ring.reserve(len, len, static_cast<int64_t>(produced));
      REQUIRE(p != nullptr);
      std::memset(p, static_cast<int>(produced & 0xff), len);
      ++produced;
    }
    ring.commit();
    SpscByteRing::Record r;
    while (ring.peek(r)) {
      CHECK(r.aux == static_cast<int64_t>(consumed));
      CHECK(r.len == r.tag);
      CHECK(r.data[r.len - 1] == static_cast<uint8_t>(consumed & 0xff));
      ring.pop(r);
      ++consumed;
    }
    ring.release();
  }
  CHECK(consumed == produced);
  CHECK(ring.empty());
  int accepted = 0;
  while (ring.reserve(1000, 0, 0) != nullptr) ++accepted;
  CHECK(accepted > 50);
  CHECK(accepted < 66);
  CHECK(ring.reserve(40000, 0, 0) == nullptr);  // larger than half the ring: never
}

TEST_CASE("config: listen and health sections, strict with file:line") {
  const Config c = parseConfig(
      "listen:\n  address: 127.0.0.1\n  vxlan_port: 14789\n  workers: 3\n  health_port: 0\n"
      "health:\n  require_rules: true\n",
      "t.yaml");
  CHECK(c.listen.address == "127.0.0.1");
  CHECK(c.listen.vxlan_port == 14789);
  CHECK(c.listen.workers == 3);
  CHECK(c.listen.health_port == 0);
  CHECK(c.health.require_rules);
  CHECK_THROWS_WITH_AS(parseConfig("listen:\n  adress: 1.2.3.4\n", "t.yaml"),
                       doctest::Contains("t.yaml:2: unknown key 'listen.adress'"), ConfigError);
  CHECK_THROWS_WITH_AS(parseConfig("listen:\n  address: sensor.local\n", "t.yaml"),
                       doctest::Contains("t.yaml:2: listen.address"), ConfigError);
  CHECK_THROWS_AS(parseConfig("listen:\n  batch_size: 0\n", "t.yaml"), ConfigError);
}
