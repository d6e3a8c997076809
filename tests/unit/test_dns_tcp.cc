// test_dns_tcp.cc: DNS over TCP reassembly: framing across and within
// segments, mid-flow starts, retransmissions, gaps and resynchronisation,
// snap-length truncation, sequence wrap-around and the memory bounds under a
// flood. Segments are PacketContext values built by hand (no decoder).
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "dns/tcp_stream.h"

using namespace exfilwatch;
using exfilwatch::dns::TcpLimits;
using exfilwatch::dns::TcpReassembler;

namespace {

using Bytes = std::vector<uint8_t>;

// A plausible DNS query of `len` bytes (len >= 12): id, RD, one question.
Bytes dnsMessage(uint16_t id, std::size_t len) {
  Bytes m(len, 0);
  m[0] = static_cast<uint8_t>(id >> 8);
  m[1] = static_cast<uint8_t>(id);
  m[2] = 0x01;  // RD
  m[5] = 1;     // QDCOUNT
  for (std::size_t i = 12; i < len; ++i) m[i] = static_cast<uint8_t>('a' + (id + i) % 26);
  return m;
}

Bytes framed(const Bytes& m) {
  Bytes out{static_cast<uint8_t>(m.size() >> 8), static_cast<uint8_t>(m.size())};
  out.insert(out.end(), m.begin(), m.end());
  return out;
}

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

struct Collector : dns::TcpMessageSink {
  std::vector<Bytes> msgs;
  std::vector<bool> zero_copy;  // message bytes pointed into the segment
  void onTcpDnsMessage(const PacketContext& pkt, const uint8_t* msg, std::size_t len) override {
    msgs.emplace_back(msg, msg + len);
    zero_copy.push_back(pkt.payload && msg >= pkt.payload && msg + len <= pkt.payload + pkt.payload_len);
  }
};

struct Conn {
  uint8_t client_last = 1;
  uint16_t sport = 40000;
  uint32_t vni = 0;
  bool tunnel = false;
};

PacketContext segment(const Conn& c, uint32_t seq, uint8_t flags, const uint8_t* data, uint32_t len,
                      uint32_t wire_len, Timestamp ts = {}) {
  PacketContext p;
  const uint8_t s[4] = {10, 0, 0, c.client_last};
  const uint8_t d[4] = {192, 0, 2, 53};
  p.ts = ts;
  p.ip_version = 4;
  p.ip_proto = ipproto::kTcp;
  p.src = IpAddress::v4(s);
  p.dst = IpAddress::v4(d);
  p.src_port = c.sport;
  p.dst_port = 53;
  p.tcp_seq = seq;
  p.tcp_flags = flags;
  p.payload = data;
  p.payload_len = len;
  p.payload_wire_len = wire_len;
  if (c.tunnel) {
    p.tunnels[0].type = TunnelType::Vxlan;
    p.tunnels[0].vni = c.vni;
    p.tunnel_depth = 1;
  }
  return p;
}

// Sends bytes [off, off+n) of `stream` as one segment; stream byte 0 is at seq `isn + 1`.
void send(TcpReassembler& r, Collector& sink, WeirdCounters& w, const Conn& c, uint32_t isn,
          const Bytes& stream, std::size_t off, std::size_t n, uint8_t flags = tcpflag::kAck,
          Timestamp ts = {}) {
  const PacketContext p = segment(c, isn + 1 + static_cast<uint32_t>(off), flags,
                                  stream.data() + off, static_cast<uint32_t>(n),
                                  static_cast<uint32_t>(n), ts);
  r.onSegment(p, w, sink);
}

void syn(TcpReassembler& r, Collector& sink, WeirdCounters& w, const Conn& c, uint32_t isn) {
  const PacketContext p = segment(c, isn, tcpflag::kSyn, nullptr, 0, 0);
  r.onSegment(p, w, sink);
}

}  // namespace

TEST_CASE("dns_tcp: one message in one segment is delivered without copying") {
  TcpReassembler r;
  Collector sink;
  WeirdCounters w;
  const Conn c;
  const auto m = dnsMessage(1, 40);
  const auto s = framed(m);
  syn(r, sink, w, c, 1000);
  send(r, sink, w, c, 1000, s, 0, s.size());
  REQUIRE(sink.msgs.size() == 1);
  CHECK(sink.msgs[0] == m);
  CHECK(sink.zero_copy[0]);
  CHECK(r.bufferedBytes() == 0);
  CHECK(w.total() == 0);
}

TEST_CASE("dns_tcp: two messages in one segment") {
  TcpReassembler r;
  Collector sink;
  WeirdCounters w;
  const Conn c;
  const auto a = dnsMessage(1, 30), b = dnsMessage(2, 300);
  const auto s = concat({framed(a), framed(b)});
  syn(r, sink, w, c, 5);
  send(r, sink, w, c, 5, s, 0, s.size());
  REQUIRE(sink.msgs.size() == 2);
  CHECK(sink.msgs[0] == a);
  CHECK(sink.msgs[1] == b);
  CHECK(sink.zero_copy[0]);
  CHECK(sink.zero_copy[1]);
}

TEST_CASE("dns_tcp: messages split byte by byte, and the length prefix split") {
  TcpReassembler r;
  Collector sink;
  WeirdCounters w;
  const Conn c;
  const auto a = dnsMessage(7, 700), b = dnsMessage(8, 20);
  const auto s = concat({framed(a), framed(b)});
  syn(r, sink, w, c, 77);

  SUBCASE("byte by byte") {
    for (std::size_t i = 0; i < s.size(); ++i) send(r, sink, w, c, 77, s, i, 1);
    REQUIRE(sink.msgs.size() == 2);
    CHECK(sink.msgs[0] == a);
    CHECK(sink.msgs[1] == b);
  }
  SUBCASE("prefix split, then the rest of both messages") {
    send(r, sink, w, c, 77, s, 0, 1);
    CHECK(sink.msgs.empty());
    send(r, sink, w, c, 77, s, 1, s.size() - 1);
    REQUIRE(sink.msgs.size() == 2);
    CHECK(sink.msgs[0] == a);
    CHECK(sink.zero_copy[0]);  // only the prefix was split: still straight from the packet
    CHECK(sink.msgs[1] == b);
  }
  SUBCASE("second prefix split across segments") {
    const std::size_t cut = framed(a).size() + 1;
    send(r, sink, w, c, 77, s, 0, cut);
    REQUIRE(sink.msgs.size() == 1);
    send(r, sink, w, c, 77, s, cut, s.size() - cut);
    REQUIRE(sink.msgs.size() == 2);
    CHECK(sink.msgs[1] == b);
  }
  CHECK(w.total() == 0);
  CHECK(r.bufferedBytes() == 0);
}

TEST_CASE("dns_tcp: mid-flow start without SYN") {
  TcpReassembler r;
  Collector sink;
  WeirdCounters w;
  const Conn c;
  const auto a = dnsMessage(1, 200), b = dnsMessage(2, 50);
  const auto s = concat({framed(a), framed(b)});
  const uint32_t isn = 0x12345678;

  SUBCASE("first segment starts a message") {
    send(r, sink, w, c, isn, s, 0, 100);
    send(r, sink, w, c, isn, s, 100, s.size() - 100);
    REQUIRE(sink.msgs.size() == 2);
    CHECK(sink.msgs[0] == a);
    CHECK(sink.msgs[1] == b);
    CHECK(w.total() == 0);
  }
  SUBCASE("first segment is the middle of a message: wait for the next start") {
    send(r, sink, w, c, isn, s, 100, framed(a).size() - 100);  // tail of a
    CHECK(w.get(Weird::DnsTcpResyncFailed) == 1);
    send(r, sink, w, c, isn, s, framed(a).size(), framed(b).size());
    REQUIRE(sink.msgs.size() == 1);
    CHECK(sink.msgs[0] == b);
    CHECK(w.get(Weird::DnsTcpResync) == 1);
  }
}

TEST_CASE("dns_tcp: retransmissions are ignored") {
  TcpReassembler r;
  Collector sink;
  WeirdCounters w;
  const Conn c;
  const auto a = dnsMessage(1, 100), b = dnsMessage(2, 100);
  const auto s = concat({framed(a), framed(b)});
  syn(r, sink, w, c, 9);
  send(r, sink, w, c, 9, s, 0, 60);
  send(r, sink, w, c, 9, s, 0, 60);  // exact duplicate
  CHECK(w.get(Weird::DnsTcpRetransmit) == 1);
  send(r, sink, w, c, 9, s, 30, 100);  // overlaps the old bytes, brings new ones
  CHECK(w.get(Weird::DnsTcpRetransmit) == 2);
  send(r, sink, w, c, 9, s, 130, s.size() - 130);
  send(r, sink, w, c, 9, s, 0, s.size());  // everything again
  REQUIRE(sink.msgs.size() == 2);
  CHECK(sink.msgs[0] == a);
  CHECK(sink.msgs[1] == b);
  CHECK(w.get(Weird::DnsTcpGap) == 0);
  // A retransmitted SYN does not reset the stream.
  syn(r, sink, w, c, 9);
  send(r, sink, w, c, 9, s, 0, s.size());
  CHECK(sink.msgs.size() == 2);
}

TEST_CASE("dns_tcp: a gap drops the partial message, then resync") {
  TcpReassembler r;
  Collector sink;
  WeirdCounters w;
  const Conn c;
  const auto a = dnsMessage(1, 1000), b = dnsMessage(2, 80), d = dnsMessage(3, 90);
  const auto s = concat({framed(a), framed(b), framed(d)});
  const std::size_t b_at = framed(a).size();
  syn(r, sink, w, c, 100);
  send(r, sink, w, c, 100, s, 0, 500);
  CHECK(r.bufferedBytes() > 0);
  // Bytes [500, b_at) are lost.
  send(r, sink, w, c, 100, s, b_at, s.size() - b_at);
  CHECK(w.get(Weird::DnsTcpGap) == 1);
  CHECK(w.get(Weird::DnsTcpResync) == 1);
  REQUIRE(sink.msgs.size() == 2);
  CHECK(sink.msgs[0] == b);
  CHECK(sink.msgs[1] == d);
  CHECK(r.bufferedBytes() == 0);
  // The lost bytes arriving late are old now: ignored, not delivered.
  send(r, sink, w, c, 100, s, 500, b_at - 500);
  CHECK(sink.msgs.size() == 2);
}

TEST_CASE("dns_tcp: a gap followed by a non-message segment waits for a plausible start") {
  TcpReassembler r;
  Collector sink;
  WeirdCounters w;
  const Conn c;
  const auto a = dnsMessage(1, 3000), b = dnsMessage(2, 80);
  const auto s = concat({framed(a), framed(b)});
  syn(r, sink, w, c, 0);
  send(r, sink, w, c, 0, s, 0, 1000);
  send(r, sink, w, c, 0, s, 1500, 1000);  // gap, lands in the middle of `a`
  CHECK(w.get(Weird::DnsTcpGap) == 1);
  CHECK(w.get(Weird::DnsTcpResyncFailed) == 1);
  send(r, sink, w, c, 0, s, 2500, framed(a).size() - 2500);
  CHECK(w.get(Weird::DnsTcpResyncFailed) == 1);  // counted once per loss
  send(r, sink, w, c, 0, s, framed(a).size(), framed(b).size());
  CHECK(w.get(Weird::DnsTcpResync) == 1);
  REQUIRE(sink.msgs.size() == 1);
  CHECK(sink.msgs[0] == b);
}

TEST_CASE("dns_tcp: snaplen-truncated segment is a gap for the missing bytes") {
  TcpReassembler r;
  Collector sink;
  WeirdCounters w;
  const Conn c;
  const auto a = dnsMessage(1, 20), b = dnsMessage(2, 400), d = dnsMessage(3, 30);
  const auto s = concat({framed(a), framed(b), framed(d)});
  const std::size_t d_at = framed(a).size() + framed(b).size();
  syn(r, sink, w, c, 50);
  // One segment carries a and b, but the capture kept 100 bytes of it.
  const PacketContext p = segment(c, 51, tcpflag::kAck, s.data(), 100, static_cast<uint32_t>(d_at));
  r.onSegment(p, w, sink);
  REQUIRE(sink.msgs.size() == 1);
  CHECK(sink.msgs[0] == a);
  CHECK(w.get(Weird::DnsTcpGap) == 1);
  CHECK(r.bufferedBytes() == 0);
  send(r, sink, w, c, 50, s, d_at, framed(d).size());
  REQUIRE(sink.msgs.size() == 2);
  CHECK(sink.msgs[1] == d);
  CHECK(w.get(Weird::DnsTcpResync) == 1);
}

TEST_CASE("dns_tcp: a length prefix below 12 is a short message; framing continues") {
  TcpReassembler r;
  Collector sink;
  WeirdCounters w;
  const Conn c;
  const Bytes junk{0, 5, 1, 2, 3, 4, 5};
  const auto b = dnsMessage(2, 40);
  const auto s = concat({junk, framed(b)});
  syn(r, sink, w, c, 1);
  send(r, sink, w, c, 1, s, 0, 4);
  send(r, sink, w, c, 1, s, 4, s.size() - 4);
  CHECK(w.get(Weird::DnsTcpShortMessage) == 1);
  REQUIRE(sink.msgs.size() == 1);
  CHECK(sink.msgs[0] == b);
  CHECK_FALSE(dns::plausibleMessageStart(junk.data(), junk.size()));
}

TEST_CASE("dns_tcp: sequence numbers wrap around") {
  TcpReassembler r;
  Collector sink;
  WeirdCounters w;
  const Conn c;
  const auto a = dnsMessage(1, 100), b = dnsMessage(2, 100);
  const auto s = concat({framed(a), framed(b)});
  const uint32_t isn = 0xffffffc0;  // byte 63 of the stream is at seq 0
  syn(r, sink, w, c, isn);
  send(r, sink, w, c, isn, s, 0, 50);
  send(r, sink, w, c, isn, s, 50, 50);   // crosses 2^32
  send(r, sink, w, c, isn, s, 20, 60);   // retransmission across the wrap
  send(r, sink, w, c, isn, s, 100, s.size() - 100);
  REQUIRE(sink.msgs.size() == 2);
  CHECK(sink.msgs[0] == a);
  CHECK(sink.msgs[1] == b);
  CHECK(w.get(Weird::DnsTcpRetransmit) == 1);
  CHECK(w.get(Weird::DnsTcpGap) == 0);
}

TEST_CASE("dns_tcp: directions and tunnels are separate streams; FIN and RST end flows") {
  TcpReassembler r;
  Collector sink;
  WeirdCounters w;
  Conn c1, c2;
  c1.tunnel = c2.tunnel = true;
  c1.vni = 100;
  c2.vni = 200;  // same inner 4-tuple, different mirror session
  const auto a = dnsMessage(1, 300), b = dnsMessage(2, 300);
  const auto sa = framed(a), sb = framed(b);
  syn(r, sink, w, c1, 10);
  syn(r, sink, w, c2, 10);
  CHECK(r.flows() == 2);
  send(r, sink, w, c1, 10, sa, 0, 150);
  send(r, sink, w, c2, 10, sb, 0, 150);
  send(r, sink, w, c1, 10, sa, 150, sa.size() - 150);
  send(r, sink, w, c2, 10, sb, 150, sb.size() - 150, tcpflag::kAck | tcpflag::kFin);
  REQUIRE(sink.msgs.size() == 2);
  CHECK(sink.msgs[0] == a);
  CHECK(sink.msgs[1] == b);
  CHECK(r.flows() == 1);
  const PacketContext rst = segment(c1, 0, tcpflag::kRst, nullptr, 0, 0);
  r.onSegment(rst, w, sink);
  CHECK(r.flows() == 0);
  CHECK(w.total() == 0);
}

TEST_CASE("dns_tcp: idle flows expire on packet time") {
  TcpReassembler r;  // 60 s
  Collector sink;
  WeirdCounters w;
  const Conn c;
  const auto s = framed(dnsMessage(1, 500));
  send(r, sink, w, c, 0, s, 0, 100, tcpflag::kAck, Timestamp{1000, 0});
  CHECK(r.flows() == 1);
  CHECK(r.bufferedBytes() > 0);
  r.expire(Timestamp{1060, 0});
  CHECK(r.flows() == 1);
  r.expire(Timestamp{1060, 1});
  CHECK(r.flows() == 0);
  CHECK(r.bufferedBytes() == 0);
}

TEST_CASE("dns_tcp: a flood of half-open flows stays within the flow and byte limits") {
  TcpReassembler r;  // default limits
  Collector sink;
  WeirdCounters w;
  const auto s = framed(dnsMessage(1, 4000));
  for (uint32_t i = 0; i < 100000; ++i) {
    Conn c;
    c.client_last = static_cast<uint8_t>(i >> 16);
    c.sport = static_cast<uint16_t>(i);
    // Each flow opens a 4000-byte message and sends 1000 bytes of it.
    send(r, sink, w, c, i * 7919u, s, 0, 1000, tcpflag::kAck, Timestamp{0, static_cast<int32_t>(i)});
    REQUIRE(r.flows() <= r.limits().max_flows);
    REQUIRE(r.bufferedBytes() <= r.limits().max_buffered_bytes);
  }
  CHECK(r.flows() == r.limits().max_flows);
  CHECK(r.evictions() == 100000 - r.limits().max_flows);
  CHECK(w.get(Weird::DnsTcpFlowTableFull) == r.evictions());
  CHECK(w.get(Weird::DnsTcpBufferBudget) > 0);
  CHECK(sink.msgs.empty());

  // A fresh, legitimate exchange still works under pressure.
  Conn good;
  good.client_last = 250;
  const auto m = dnsMessage(9, 3000);
  const auto gs = framed(m);
  syn(r, sink, w, good, 42);
  send(r, sink, w, good, 42, gs, 0, 1400);
  send(r, sink, w, good, 42, gs, 1400, gs.size() - 1400);
  REQUIRE(sink.msgs.size() == 1);
  CHECK(sink.msgs[0] == m);
}

TEST_CASE("dns_tcp: small budget evicts the oldest partial message") {
  TcpLimits lim;
  lim.max_buffered_bytes = 16 * 1024;
  TcpReassembler r(lim);
  Collector sink;
  WeirdCounters w;
  const auto s = framed(dnsMessage(1, 6000));
  Conn c1, c2, c3;
  c2.sport = 2;
  c3.sport = 3;
  syn(r, sink, w, c1, 0);
  syn(r, sink, w, c2, 0);
  syn(r, sink, w, c3, 0);
  send(r, sink, w, c1, 0, s, 0, 5000);  // 8 KiB class
  send(r, sink, w, c2, 0, s, 0, 5000);  // 8 KiB class: budget full
  send(r, sink, w, c3, 0, s, 0, 5000);  // evicts c1's partial
  CHECK(w.get(Weird::DnsTcpBufferBudget) == 1);
  CHECK(r.bufferedBytes() <= lim.max_buffered_bytes);
  send(r, sink, w, c2, 0, s, 5000, s.size() - 5000);
  send(r, sink, w, c3, 0, s, 5000, s.size() - 5000);
  send(r, sink, w, c1, 0, s, 5000, s.size() - 5000);  // c1 lost its start: nothing
  CHECK(sink.msgs.size() == 2);
}

TEST_CASE("dns_tcp: random segments never break the invariants") {
  TcpLimits lim;
  lim.max_flows = 64;
  lim.max_buffered_bytes = 64 * 1024;
  TcpReassembler r(lim);
  Collector sink;
  WeirdCounters w;
  std::mt19937 rng(777);
  Bytes stream;
  for (int i = 0; i < 200; ++i) {
    const auto m = framed(dnsMessage(static_cast<uint16_t>(i), 12 + rng() % 2000));
    stream.insert(stream.end(), m.begin(), m.end());
  }
  Bytes noise(70000);
  for (auto& b : noise) b = static_cast<uint8_t>(rng());
  for (int i = 0; i < 100000; ++i) {
    Conn c;
    c.sport = static_cast<uint16_t>(rng() % 100);
    const bool use_noise = rng() % 5 == 0;
    const Bytes& src = use_noise ? noise : stream;
    const std::size_t off = rng() % (src.size() - 1);
    const std::size_t n = std::min<std::size_t>(src.size() - off, rng() % 1600);
    const uint32_t have = static_cast<uint32_t>(rng() % 10 == 0 ? n / 2 : n);
    static const uint8_t kFlags[] = {tcpflag::kAck, tcpflag::kAck, tcpflag::kAck, tcpflag::kSyn,
                                     tcpflag::kFin, tcpflag::kRst};
    const PacketContext p = segment(c, static_cast<uint32_t>(off) + (rng() % 50 == 0 ? rng() : 0),
                                    kFlags[rng() % 6], src.data() + off, have,
                                    static_cast<uint32_t>(n), Timestamp{i / 500, 0});
    r.onSegment(p, w, sink);
    REQUIRE(r.flows() <= lim.max_flows);
    REQUIRE(r.bufferedBytes() <= lim.max_buffered_bytes);
  }
  for (const auto& m : sink.msgs) CHECK(m.size() >= 12);
}

TEST_CASE("dns_tcp: a first segment without its length prefix is not taken as a message") {
  // From dnscap's do1t-nosyn-1nolen.pcap: mid-flow, the first query was sent
  // without a prefix (its ID e7af would read as length 59311), then the next
  // query's prefix and body came in separate segments.
  TcpReassembler r;
  Collector sink;
  WeirdCounters w;
  const Conn c;
  const Bytes nolen{0xe7, 0xaf, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x67,
                    0x6f, 0x6f, 0x67, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, 0x01};
  CHECK_FALSE(dns::plausibleMessageStart(nolen.data(), nolen.size()));
  const auto m = dnsMessage(0x8b51, 45);
  const auto s = concat({nolen, framed(m)});
  const uint32_t isn = 1599198942;
  send(r, sink, w, c, isn, s, 0, nolen.size());
  CHECK(w.get(Weird::DnsTcpResyncFailed) == 1);
  send(r, sink, w, c, isn, s, nolen.size(), 2);
  send(r, sink, w, c, isn, s, nolen.size() + 2, m.size());
  CHECK(w.get(Weird::DnsTcpResync) == 1);
  REQUIRE(sink.msgs.size() == 1);
  CHECK(sink.msgs[0] == m);
  CHECK(r.bufferedBytes() == 0);
}
