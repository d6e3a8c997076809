// test_decode.cc: the link, tunnel, IP and transport analyzers and the
// decoder that chains them, on frames built byte by byte.
#include <doctest.h>

#include <cstring>
#include <vector>

#include "decode/decoder.h"
#include "frame_builder.h"

using namespace exfilwatch;

namespace {

using testing::append;
using testing::Bytes;
using testing::put16;
using testing::put32;

Bytes udp(uint16_t sport, uint16_t dport, const Bytes& payload) {
  return testing::udpHeader(sport, dport, payload);
}

Bytes ipv4(uint8_t proto, const Bytes& l4, uint32_t src = 0x0a350002, uint32_t dst = 0x0a350001,
           uint16_t id = 1, uint16_t frag = 0, const Bytes& options = {}) {
  Bytes b;
  const auto ihl = static_cast<uint8_t>((20 + options.size()) / 4);
  b.push_back(static_cast<uint8_t>(0x40 | ihl));
  b.push_back(0);
  put16(b, static_cast<uint16_t>(20 + options.size() + l4.size()));
  put16(b, id);
  put16(b, frag);
  b.push_back(64);
  b.push_back(proto);
  put16(b, 0);
  put32(b, src);
  put32(b, dst);
  append(b, options);
  append(b, l4);
  return b;
}

Bytes ipv6(uint8_t next, const Bytes& rest) {
  Bytes b;
  put32(b, 0x60000000);
  put16(b, static_cast<uint16_t>(rest.size()));
  b.push_back(next);
  b.push_back(64);
  for (int i = 0; i < 15; ++i) b.push_back(0);
  b.push_back(1);  // ::1
  for (int i = 0; i < 15; ++i) b.push_back(0);
  b.push_back(2);  // ::2
  append(b, rest);
  return b;
}

Bytes ethernet(uint16_t type, const Bytes& payload, std::vector<uint16_t> vlans = {}) {
  Bytes b(12, 0x02);
  for (uint16_t v : vlans) {
    put16(b, 0x8100);
    put16(b, v);
  }
  put16(b, type);
  append(b, payload);
  return b;
}

Bytes vxlan(uint32_t vni, const Bytes& inner, uint8_t flags = 0x08) {
  Bytes b;
  b.push_back(flags);
  b.push_back(0);
  b.push_back(0);
  b.push_back(0);
  put32(b, vni << 8);
  append(b, inner);
  return b;
}

Bytes geneve(uint32_t vni, uint16_t proto, const Bytes& inner, uint8_t option_words = 0) {
  Bytes b;
  b.push_back(option_words & 0x3F);
  b.push_back(0);
  put16(b, proto);
  put32(b, vni << 8);
  for (int i = 0; i < option_words * 4; ++i) b.push_back(0xAB);
  append(b, inner);
  return b;
}

const Bytes kDnsPayload = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                           3, 'f', 'o', 'o', 0, 0, 1, 0, 1};

Frame frameOf(const Bytes& b, int linktype = 1) {
  Frame f;
  f.data = b.data();
  f.caplen = f.wirelen = static_cast<uint32_t>(b.size());
  f.linktype = linktype;
  f.ts = {1000, 0};
  return f;
}

}  // namespace

TEST_CASE("ethernet ipv4 udp") {
  const Bytes frame = ethernet(0x0800, ipv4(17, udp(40000, 53, kDnsPayload)));
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  REQUIRE(d.decode(frameOf(frame), ctx, w));
  CHECK(ctx.ip_version == 4);
  CHECK(ctx.src.toString() == "10.53.0.2");
  CHECK(ctx.dst.toString() == "10.53.0.1");
  CHECK(ctx.src_port == 40000);
  CHECK(ctx.dst_port == 53);
  CHECK(ctx.payload_len == kDnsPayload.size());
  CHECK(std::memcmp(ctx.payload, kDnsPayload.data(), kDnsPayload.size()) == 0);
  CHECK(ctx.tunnel_depth == 0);
  CHECK(w.total() == 0);
}

TEST_CASE("802.1Q and QinQ tags are kept") {
  const Bytes frame = ethernet(0x0800, ipv4(17, udp(1, 53, kDnsPayload)), {100, 200});
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  REQUIRE(d.decode(frameOf(frame), ctx, w));
  CHECK(ctx.vlan_count == 2);
  CHECK(ctx.vlan_ids[0] == 100);
  CHECK(ctx.vlan_ids[1] == 200);
  const Bytes many = ethernet(0x0800, ipv4(17, udp(1, 53, kDnsPayload)), {1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK_FALSE(d.decode(frameOf(many), ctx, w));
  CHECK(w.get(Weird::VlanTooManyTags) >= 1);
}

TEST_CASE("vxlan carries the mirrored frame and its VNI") {
  const Bytes inner = ethernet(0x0800, ipv4(17, udp(5555, 53, kDnsPayload)));
  const Bytes frame =
      ethernet(0x0800, ipv4(17, udp(4790, 4789, vxlan(1234, inner)), 0x0a360002, 0x0a360001));
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  REQUIRE(d.decode(frameOf(frame), ctx, w));
  REQUIRE(ctx.tunnel_depth == 1);
  CHECK(ctx.tunnels[0].type == TunnelType::Vxlan);
  CHECK(ctx.tunnels[0].vni == 1234);
  CHECK(ctx.src.toString() == "10.53.0.2");
  CHECK(ctx.dst_port == 53);
  CHECK(ctx.payload_len == kDnsPayload.size());
}

TEST_CASE("vxlan without the I flag is refused and counted") {
  const Bytes inner = ethernet(0x0800, ipv4(17, udp(5555, 53, kDnsPayload)));
  const Bytes frame = ethernet(0x0800, ipv4(17, udp(4790, 4789, vxlan(7, inner, 0x00))));
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  CHECK_FALSE(d.decode(frameOf(frame), ctx, w));
  CHECK(w.get(Weird::VxlanBadFlags) == 1);
}

TEST_CASE("geneve with options carrying vxlan (gateway load balancer)") {
  const Bytes inner = ethernet(0x0800, ipv4(17, udp(5555, 53, kDnsPayload)));
  const Bytes vx = ethernet(0x0800, ipv4(17, udp(4790, 4789, vxlan(42, inner))));
  const Bytes frame = ethernet(0x0800, ipv4(17, udp(1000, 6081, geneve(77, 0x6558, vx, 2))));
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  REQUIRE(d.decode(frameOf(frame), ctx, w));
  REQUIRE(ctx.tunnel_depth == 2);
  CHECK(ctx.tunnels[0].type == TunnelType::Geneve);
  CHECK(ctx.tunnels[0].vni == 77);
  CHECK(ctx.tunnels[1].type == TunnelType::Vxlan);
  CHECK(ctx.tunnels[1].vni == 42);
  CHECK(ctx.innerTunnel()->vni == 42);
  CHECK(ctx.dst_port == 53);
}

TEST_CASE("geneve carrying a bare IPv4 packet") {
  const Bytes frame =
      ethernet(0x0800, ipv4(17, udp(1000, 6081, geneve(9, 0x0800, ipv4(17, udp(7, 53, kDnsPayload))))));
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  REQUIRE(d.decode(frameOf(frame), ctx, w));
  CHECK(ctx.tunnels[0].vni == 9);
  CHECK(ctx.dst_port == 53);
}

TEST_CASE("geneve options longer than the packet") {
  Bytes g = geneve(9, 0x6558, {}, 0);
  g[0] = 0x3F;  // 252 bytes of options announced, none present
  const Bytes frame = ethernet(0x0800, ipv4(17, udp(1000, 6081, g)));
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  CHECK_FALSE(d.decode(frameOf(frame), ctx, w));
  CHECK(w.get(Weird::GeneveOptionsTruncated) == 1);
}

TEST_CASE("tunnels nested too deep are refused") {
  Bytes pkt = ethernet(0x0800, ipv4(17, udp(5555, 53, kDnsPayload)));
  for (int i = 0; i < kMaxTunnelDepth + 1; ++i) {
    pkt = ethernet(0x0800, ipv4(17, udp(4790, 4789, vxlan(static_cast<uint32_t>(i), pkt))));
  }
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  CHECK_FALSE(d.decode(frameOf(pkt), ctx, w));
  CHECK(w.get(Weird::TunnelTooDeep) == 1);
}

TEST_CASE("ipv4 options are skipped and bad ones counted") {
  const Bytes good = ethernet(0x0800, ipv4(17, udp(1, 53, kDnsPayload), 1, 2, 1, 0, {1, 1, 1, 0}));
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  REQUIRE(d.decode(frameOf(good), ctx, w));
  CHECK(ctx.payload_len == kDnsPayload.size());
  CHECK(w.total() == 0);
  const Bytes bad = ethernet(0x0800, ipv4(17, udp(1, 53, kDnsPayload), 1, 2, 1, 0, {7, 9, 0, 0}));
  REQUIRE(d.decode(frameOf(bad), ctx, w));
  CHECK(w.get(Weird::Ipv4BadOption) == 1);
}

TEST_CASE("a mirror-truncated packet: wire length from IP, captured from data") {
  Bytes payload(400, 'x');
  const Bytes full = ethernet(0x0800, ipv4(17, udp(1, 53, payload)));
  Bytes cut(full.begin(), full.begin() + 100);
  Frame f = frameOf(cut);
  f.wirelen = static_cast<uint32_t>(full.size());
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  REQUIRE(d.decode(f, ctx, w));
  CHECK(ctx.payload_wire_len == 400);
  CHECK(ctx.payload_len == 100 - 14 - 20 - 8);
  CHECK(ctx.payloadTruncated());
  CHECK(w.get(Weird::IpSnapTruncated) == 1);
}

TEST_CASE("ethernet padding is not payload") {
  Bytes frame = ethernet(0x0800, ipv4(17, udp(1, 53, {1, 2})));
  frame.resize(60, 0);
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  REQUIRE(d.decode(frameOf(frame), ctx, w));
  CHECK(ctx.payload_len == 2);
}

TEST_CASE("every prefix of a tunneled frame decodes or is refused, never read past") {
  const Bytes inner = ethernet(0x0800, ipv4(17, udp(5555, 53, kDnsPayload)));
  const Bytes frame = ethernet(0x0800, ipv4(17, udp(4790, 4789, vxlan(1, inner))));
  Decoder d;
  WeirdCounters w;
  for (std::size_t n = 0; n < frame.size(); ++n) {
    // A heap copy of exactly n bytes, so ASan sees any read past the end.
    std::vector<uint8_t> prefix(frame.begin(), frame.begin() + static_cast<long>(n));
    Frame f;
    f.data = prefix.data();
    f.caplen = static_cast<uint32_t>(n);
    f.wirelen = static_cast<uint32_t>(frame.size());
    PacketContext ctx;
    const bool ok = d.decode(f, ctx, w);
    if (ok) {
      CHECK(ctx.payload_len <= ctx.payload_wire_len);
      CHECK(ctx.payload + ctx.payload_len <= prefix.data() + n);
    }
  }
  CHECK(w.total() > 0);
}

TEST_CASE("ipv6 with extension headers") {
  Bytes hop = {17, 0, 1, 4, 0, 0, 0, 0};  // next: UDP, 8 bytes, PadN
  append(hop, udp(1, 53, kDnsPayload));
  const Bytes frame = ethernet(0x86DD, ipv6(0, hop));
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  REQUIRE(d.decode(frameOf(frame), ctx, w));
  CHECK(ctx.ip_version == 6);
  CHECK(ctx.src.toString() == "::1");
  CHECK(ctx.dst_port == 53);
  CHECK(ctx.payload_len == kDnsPayload.size());
}

TEST_CASE("ipv6 extension header chain too long") {
  Bytes chain;
  for (int i = 0; i < 12; ++i) {
    Bytes h = {60, 0, 1, 4, 0, 0, 0, 0};
    append(chain, h);
  }
  chain[chain.size() - 8] = 17;
  append(chain, udp(1, 53, kDnsPayload));
  const Bytes frame = ethernet(0x86DD, ipv6(60, chain));
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  CHECK_FALSE(d.decode(frameOf(frame), ctx, w));
  CHECK(w.get(Weird::Ipv6TooManyExt) == 1);
}

TEST_CASE("ipv4 fragments are reassembled before UDP") {
  Bytes dgram = udp(1, 53, Bytes(100, 'a'));
  const Bytes first(dgram.begin(), dgram.begin() + 64);
  const Bytes second(dgram.begin() + 64, dgram.end());
  const Bytes f1 = ethernet(0x0800, ipv4(17, first, 1, 2, 77, 0x2000));
  const Bytes f2 = ethernet(0x0800, ipv4(17, second, 1, 2, 77, 64 / 8));
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  CHECK_FALSE(d.decode(frameOf(f1), ctx, w));
  CHECK(d.pendingFragments() == 1);
  REQUIRE(d.decode(frameOf(f2), ctx, w));
  CHECK(ctx.ip_reassembled);
  CHECK(ctx.payload_len == 100);
  CHECK(ctx.dst_port == 53);
  CHECK(d.stats().reassembled == 1);
}

TEST_CASE("link types: SLL, SLL2, NULL, raw") {
  const Bytes ip = ipv4(17, udp(1, 53, kDnsPayload));
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;

  Bytes sll(14, 0);
  put16(sll, 0x0800);
  append(sll, ip);
  CHECK(d.decode(frameOf(sll, 113), ctx, w));

  Bytes sll2;
  put16(sll2, 0x0800);
  for (int i = 0; i < 18; ++i) sll2.push_back(0);
  append(sll2, ip);
  CHECK(d.decode(frameOf(sll2, 276), ctx, w));

  Bytes null = {2, 0, 0, 0};  // AF_INET, little-endian host
  append(null, ip);
  CHECK(d.decode(frameOf(null, 0), ctx, w));
  Bytes null_be = {0, 0, 0, 2};
  append(null_be, ip);
  CHECK(d.decode(frameOf(null_be, 0), ctx, w));

  CHECK(d.decode(frameOf(ip, 101), ctx, w));
  CHECK(d.decode(frameOf(ip, 228), ctx, w));
  CHECK(w.total() == 0);

  CHECK_FALSE(d.decode(frameOf(ip, 9999), ctx, w));
  CHECK(w.get(Weird::LinkUnknownType) == 1);
}

TEST_CASE("tcp header and payload") {
  Bytes tcp;
  put16(tcp, 40000);
  put16(tcp, 53);
  put32(tcp, 1000);
  put32(tcp, 0);
  tcp.push_back(0x50);
  tcp.push_back(0x18);
  put16(tcp, 65535);
  put32(tcp, 0);
  append(tcp, {0, 2, 0xAA, 0xBB});
  const Bytes frame = ethernet(0x0800, ipv4(6, tcp));
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  REQUIRE(d.decode(frameOf(frame), ctx, w));
  CHECK(ctx.ip_proto == 6);
  CHECK(ctx.tcp_seq == 1000);
  CHECK(ctx.tcp_flags == 0x18);
  CHECK(ctx.payload_len == 4);
  tcp[12] = 0x20;  // data offset 8 bytes: impossible
  const Bytes bad = ethernet(0x0800, ipv4(6, tcp));
  CHECK_FALSE(d.decode(frameOf(bad), ctx, w));
  CHECK(w.get(Weird::TcpBadDataOffset) == 1);
}

namespace {

// GRE header: flags and version, protocol type, then the optional fields in
// their order (checksum+reserved, key, sequence number, acknowledgment).
Bytes gre(uint16_t flags, uint16_t proto, const Bytes& inner,
          const std::vector<uint32_t>& fields = {}) {
  Bytes b;
  put16(b, flags);
  put16(b, proto);
  for (uint32_t f : fields) put32(b, f);
  append(b, inner);
  return b;
}

// PPP in HDLC-like framing (address 0xFF, control 0x03) with a two-octet
// protocol; `compressed` drops both the framing and the protocol's first octet.
Bytes ppp(uint16_t protocol, const Bytes& inner, bool compressed = false) {
  Bytes b;
  if (compressed) {
    b.push_back(static_cast<uint8_t>(protocol));
  } else {
    b.push_back(0xFF);
    b.push_back(0x03);
    put16(b, protocol);
  }
  append(b, inner);
  return b;
}

constexpr uint8_t kGreProto = 47;

// An IPv4 packet carrying this GRE packet, in an Ethernet frame.
Bytes overGre(const Bytes& gre_packet) { return ethernet(0x0800, ipv4(kGreProto, gre_packet)); }

bool decodes(Decoder& d, const Bytes& frame, PacketContext& ctx, WeirdCounters& w,
             int linktype = 1) {
  return d.decode(frameOf(frame, linktype), ctx, w);
}

}  // namespace

TEST_CASE("gre version 0 carries IPv4, IPv6 and Ethernet, with its optional fields") {
  const Bytes dns4 = ipv4(17, udp(5555, 53, kDnsPayload), 0xac102c03, 0x08080808);
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  struct {
    uint16_t flags;
    std::vector<uint32_t> fields;
  } variants[] = {{0x0000, {}},
                  {0x8000, {0xABCD0000}},      // checksum
                  {0x2000, {77}},              // key
                  {0x1000, {5}},               // sequence
                  {0xB000, {0x1234, 77, 5}}};  // all three
  for (const auto& v : variants) {
    CAPTURE(v.flags);
    const Bytes frame = ethernet(0x0800, ipv4(kGreProto, gre(v.flags, 0x0800, dns4, v.fields)));
    REQUIRE(decodes(d, frame, ctx, w));
    CHECK(ctx.src.toString() == "172.16.44.3");
    CHECK(ctx.dst.toString() == "8.8.8.8");
    CHECK(ctx.dst_port == 53);
    CHECK(ctx.payload_len == kDnsPayload.size());
    CHECK(std::memcmp(ctx.payload, kDnsPayload.data(), kDnsPayload.size()) == 0);
    CHECK(ctx.tunnel_depth == 0);  // not a mirror session: EVE shows no tunnel
  }
  // IPv6 inside, and an Ethernet frame (transparent Ethernet bridging).
  REQUIRE(decodes(d, overGre(gre(0, 0x86DD, ipv6(17, udp(1, 53, kDnsPayload)))), ctx, w));
  CHECK(ctx.ip_version == 6);
  CHECK(ctx.dst_port == 53);
  REQUIRE(decodes(d, overGre(gre(0x2000, 0x6558, ethernet(0x0800, dns4), {9})), ctx, w));
  CHECK(ctx.dst.toString() == "8.8.8.8");
  CHECK(w.total() == 0);
  // A protocol that is not ours (ERSPAN) is not an anomaly.
  CHECK_FALSE(decodes(d, overGre(gre(0x1000, 0x88BE, Bytes(40, 0), {1})), ctx, w));
  CHECK(w.total() == 0);
}

TEST_CASE("enhanced gre (PPTP) carries PPP carrying IPv4") {
  // arkime's 6-4-gre-ppp-udp-4-dns.pcap: key (payload length, call id),
  // sequence and acknowledgment numbers, then PPP with address and control.
  const Bytes dns4 = ipv4(17, udp(40768, 53, kDnsPayload), 0xac102c03, 0x08080808);
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  const Bytes framed = ppp(0x0021, dns4);
  const uint32_t key = (static_cast<uint32_t>(framed.size()) << 16) | 6016;
  REQUIRE(decodes(d, overGre(gre(0x3081, 0x880B, framed, {key, 430001, 539254})), ctx, w));
  CHECK(ctx.src.toString() == "172.16.44.3");
  CHECK(ctx.dst_port == 53);
  CHECK(ctx.payload_len == kDnsPayload.size());
  // Without the acknowledgment, and with PPP's compressed protocol field.
  REQUIRE(decodes(d, overGre(gre(0x3001, 0x880B, ppp(0x0021, dns4, true), {key, 1})), ctx, w));
  CHECK(ctx.dst_port == 53);
  // IPv6 over PPP.
  REQUIRE(decodes(
      d, overGre(gre(0x2001, 0x880B, ppp(0x0057, ipv6(17, udp(1, 53, kDnsPayload))), {key})), ctx,
      w));
  CHECK(ctx.ip_version == 6);
  CHECK(w.total() == 0);
  // LCP and MPPE-encrypted frames are PPP's own business: not ours, not anomalies.
  CHECK_FALSE(decodes(d, overGre(gre(0x2001, 0x880B, ppp(0xC021, Bytes(8, 1)), {key})), ctx, w));
  CHECK_FALSE(decodes(d, overGre(gre(0x2001, 0x880B, ppp(0x00FD, Bytes(8, 1)), {key})), ctx, w));
  CHECK(w.total() == 0);
  CHECK(d.stats().non_ip == 2);
}

TEST_CASE("gre headers that are wrong are refused and named") {
  const Bytes dns4 = ipv4(17, udp(1, 53, kDnsPayload));
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  // Version 2..7.
  CHECK_FALSE(decodes(d, overGre(gre(0x0002, 0x0800, dns4)), ctx, w));
  CHECK(w.get(Weird::GreBadVersion) == 1);
  // RFC 1701 source routing, strict source route.
  CHECK_FALSE(decodes(d, overGre(gre(0x4000, 0x0800, dns4, {0})), ctx, w));
  CHECK_FALSE(decodes(d, overGre(gre(0x0800, 0x0800, dns4)), ctx, w));
  // Enhanced GRE without its key, with a checksum, or not carrying PPP.
  CHECK_FALSE(decodes(d, overGre(gre(0x0001, 0x880B, ppp(0x21, dns4))), ctx, w));
  CHECK_FALSE(decodes(d, overGre(gre(0xA001, 0x880B, ppp(0x21, dns4), {0, 1})), ctx, w));
  CHECK_FALSE(decodes(d, overGre(gre(0x2001, 0x0800, dns4, {1})), ctx, w));
  CHECK(w.get(Weird::GreBadFlags) == 5);
  // Optional fields announced but cut off; PPP cut off.
  CHECK_FALSE(decodes(d, overGre(gre(0xB000, 0x0800, {}, {1, 2})), ctx, w));
  CHECK(w.get(Weird::GreTruncated) == 1);
  CHECK_FALSE(decodes(d, overGre(gre(0x2001, 0x880B, {0xFF, 0x03, 0x00}, {1})), ctx, w));
  CHECK(w.get(Weird::PppTruncated) == 1);
}

TEST_CASE("ip in ip: IPv4 and IPv6 inside IPv4 and IPv6") {
  const Bytes dns4 = ipv4(17, udp(1, 53, kDnsPayload), 0x0a000001, 0x0a000002);
  const Bytes dns6 = ipv6(17, udp(1, 53, kDnsPayload));
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  REQUIRE(decodes(d, ethernet(0x0800, ipv4(4, dns4)), ctx, w));
  CHECK(ctx.src.toString() == "10.0.0.1");
  REQUIRE(decodes(d, ethernet(0x0800, ipv4(41, dns6)), ctx, w));
  CHECK(ctx.ip_version == 6);
  // arkime's capture: IPv6 -> IPv4 -> GRE -> PPP -> IPv4 -> UDP.
  const uint32_t key = 6016;
  REQUIRE(decodes(
      d, ethernet(0x86DD, ipv6(4, ipv4(kGreProto, gre(0x2001, 0x880B, ppp(0x0021, dns4), {key})))),
      ctx, w));
  CHECK(ctx.src.toString() == "10.0.0.1");
  CHECK(ctx.dst_port == 53);
  CHECK(w.total() == 0);
}

TEST_CASE("encapsulations of every kind count towards the nesting bound") {
  // IP in IP, GRE and VXLAN stacked: kMaxTunnelDepth layers decode, one
  // more is tunnel.too_deep, whatever their kinds.
  const Bytes dns4 = ipv4(17, udp(1, 53, kDnsPayload));
  auto wrap = [](int kind, const Bytes& inner_ip) {
    switch (kind % 3) {
      case 0:
        return ipv4(4, inner_ip);
      case 1:
        return ipv4(kGreProto, gre(0, 0x0800, inner_ip));
      default:
        return ipv4(17, udp(4790, 4789, vxlan(1, ethernet(0x0800, inner_ip))));
    }
  };
  Decoder d;
  for (int layers = 1; layers <= kMaxTunnelDepth + 1; ++layers) {
    Bytes pkt = dns4;
    for (int i = 0; i < layers; ++i) pkt = wrap(i, pkt);
    WeirdCounters w;
    PacketContext ctx;
    CAPTURE(layers);
    const bool ok = decodes(d, ethernet(0x0800, pkt), ctx, w);
    CHECK(ok == (layers <= kMaxTunnelDepth));
    CHECK(w.get(Weird::TunnelTooDeep) == (layers <= kMaxTunnelDepth ? 0U : 1U));
  }
}

TEST_CASE("pppoe session frames (QinQ + PPPoE + PPP + IPv4, nDPI's dns.pcap)") {
  const Bytes dns4 = ipv4(17, udp(47255, 53, kDnsPayload), 0x52b271f5, 0x52b29eb5);
  auto pppoe = [](const Bytes& ppp_frame, uint8_t vertype = 0x11, uint8_t code = 0) {
    Bytes b = {vertype, code};
    put16(b, 0x556a);  // session id
    put16(b, static_cast<uint16_t>(ppp_frame.size()));
    append(b, ppp_frame);
    return b;
  };
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  Bytes session;
  put16(session, 0x0021);
  append(session, dns4);
  REQUIRE(decodes(d, ethernet(0x8864, pppoe(session), {421, 785}), ctx, w));
  CHECK(ctx.vlan_count == 2);
  CHECK(ctx.src.toString() == "82.178.113.245");
  CHECK(ctx.dst_port == 53);
  CHECK(ctx.payload_len == kDnsPayload.size());
  // Ethernet padding after the PPP frame is not part of it.
  Bytes padded = ethernet(0x8864, pppoe(session));
  padded.resize(padded.size() + 20, 0);
  REQUIRE(decodes(d, padded, ctx, w));
  CHECK(ctx.payload_len == kDnsPayload.size());
  CHECK(w.total() == 0);
  // Discovery (another EtherType) is not ours; a bad header is named.
  CHECK_FALSE(decodes(d, ethernet(0x8863, pppoe(session, 0x11, 0x09)), ctx, w));
  CHECK(w.total() == 0);
  CHECK_FALSE(decodes(d, ethernet(0x8864, pppoe(session, 0x12)), ctx, w));
  CHECK_FALSE(decodes(d, ethernet(0x8864, pppoe(session, 0x11, 0x09)), ctx, w));
  CHECK(w.get(Weird::PppoeBadHeader) == 2);
  CHECK_FALSE(decodes(d, ethernet(0x8864, {0x11, 0x00, 0x55}), ctx, w));
  CHECK(w.get(Weird::PppoeTruncated) == 1);
}

TEST_CASE("fddi with 802.2 SNAP (zeek's dns-inverse-query.pcap)") {
  const Bytes ip = ipv4(17, udp(1, 53, kDnsPayload));
  Bytes fddi = {0x50};  // frame control: LLC, async
  for (int i = 0; i < 12; ++i) fddi.push_back(static_cast<uint8_t>(i));  // addresses
  append(fddi, {0xAA, 0xAA, 0x03, 0x00, 0x00, 0x00, 0x08, 0x00});
  append(fddi, ip);
  Decoder d;
  WeirdCounters w;
  PacketContext ctx;
  REQUIRE(decodes(d, fddi, ctx, w, 10));
  CHECK(ctx.dst_port == 53);
  CHECK(w.total() == 0);
  Bytes smt(fddi.begin(), fddi.begin() + 13);  // not SNAP: not ours
  append(smt, {0x42, 0x42, 0x03, 0, 0, 0, 0, 0});
  CHECK_FALSE(decodes(d, smt, ctx, w, 10));
  CHECK(w.total() == 0);
  for (std::size_t n = 0; n < 21; ++n) {
    const Bytes cut(fddi.begin(), fddi.begin() + static_cast<long>(n));
    CHECK_FALSE(decodes(d, cut, ctx, w, 10));
  }
  CHECK(w.get(Weird::LinkTruncated) == 21);
}

TEST_CASE("every prefix of a GRE/PPP or PPPoE frame decodes or is refused, never read past") {
  const Bytes dns4 = ipv4(17, udp(1, 53, kDnsPayload));
  Bytes session;
  put16(session, 0x0021);
  append(session, dns4);
  Bytes pppoe = {0x11, 0x00, 0x00, 0x01};
  put16(pppoe, static_cast<uint16_t>(session.size()));
  append(pppoe, session);
  const Bytes frames[] = {
      ethernet(0x86DD, ipv6(4, ipv4(kGreProto, gre(0x3081, 0x880B, ppp(0x0021, dns4), {1, 2, 3})))),
      ethernet(0x0800, ipv4(kGreProto, gre(0xB000, 0x6558, ethernet(0x0800, dns4), {1, 2, 3}))),
      ethernet(0x8864, pppoe, {7}),
  };
  Decoder d;
  for (const Bytes& frame : frames) {
    for (std::size_t n = 0; n <= frame.size(); ++n) {
      std::vector<uint8_t> prefix(frame.begin(), frame.begin() + static_cast<long>(n));
      Frame f;
      f.data = prefix.data();
      f.caplen = static_cast<uint32_t>(n);
      f.wirelen = static_cast<uint32_t>(frame.size());
      WeirdCounters w;
      PacketContext ctx;
      const bool ok = d.decode(f, ctx, w);
      if (ok) {
        CHECK(ctx.payload_len <= ctx.payload_wire_len);
        CHECK(ctx.payload + ctx.payload_len <= prefix.data() + n);
      }
    }
  }
}
