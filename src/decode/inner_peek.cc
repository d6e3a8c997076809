// inner_peek.cc: tunnel -> Ethernet -> IP -> ports, read-only and bounded.
#include "decode/inner_peek.h"

#include "common/hash.h"
#include "decode/ip.h"
#include "decode/link.h"
#include "decode/transport.h"

namespace exfilwatch {

namespace {
using decode::ethertype::kIpv4;
using decode::ethertype::kIpv6;
using decode::ethertype::kTransparentEthernet;

bool vlanTag(uint16_t type) {
  namespace et = decode::ethertype;
  return type == et::kVlan || type == et::kQinQ || type == et::kQinQOld;
}
constexpr int kMaxPeekTags = 4;

bool peekIp(const uint8_t* data, uint32_t len, uint16_t ethertype, InnerFlow& out) {
  ByteReader r(data, len);
  uint32_t l4 = 0;
  if (ethertype == kIpv4) {
    uint8_t vihl = 0;
    uint16_t frag = 0;
    if (!r.u8(0, vihl) || (vihl >> 4) != 4 || !r.u16(6, frag) || !r.u8(9, out.proto) ||
        !r.has(12, 8)) {
      return false;
    }
    out.src.assignV4(data + 12);
    out.dst.assignV4(data + 16);
    if ((frag & 0x3FFFU) != 0) return true;  // MF or an offset: a fragment, no ports
    l4 = (vihl & 0x0FU) * 4U;
  } else if (ethertype == kIpv6) {
    uint8_t v = 0;
    if (!r.u8(0, v) || (v >> 4) != 6 || !r.u8(6, out.proto) || !r.has(8, 32)) return false;
    out.src.assignV6(data + 8);
    out.dst.assignV6(data + 24);
    // Extension headers (fragments included) are left to the decoder: no ports.
    if (out.proto != ipproto::kUdp && out.proto != ipproto::kTcp) return true;
    l4 = 40;
  } else {
    return false;
  }
  if ((out.proto == ipproto::kUdp || out.proto == ipproto::kTcp) && r.u16(l4, out.src_port) &&
      r.u16(l4 + 2, out.dst_port)) {
    out.has_ports = true;
  }
  return true;
}
}  // namespace

bool peekEthernetFlow(const uint8_t* data, uint32_t len, InnerFlow& out) {
  ByteReader r(data, len);
  uint16_t type = 0;
  uint32_t off = 12;
  if (!r.u16(off, type)) return false;
  off += 2;
  for (int i = 0; i < kMaxPeekTags && vlanTag(type); ++i) {
    if (!r.u16(off + 2, type)) return false;
    off += 4;
  }
  return peekIp(data + off, len - off, type, out);
}

bool peekInnerFlow(const uint8_t* data, uint32_t len, bool vxlan, InnerFlow& out) {
  out = InnerFlow{};
  ByteReader r(data, len);
  if (vxlan) {
    if (!r.has(0, 8)) return false;
    return peekEthernetFlow(data + 8, len - 8, out);
  }
  uint8_t ver_optlen = 0;
  uint16_t proto = 0;
  if (!r.u8(0, ver_optlen) || !r.u16(2, proto)) return false;
  const uint32_t inner = 8 + (ver_optlen & 0x3FU) * 4U;
  if (!r.has(inner, 1)) return false;
  if (proto == kTransparentEthernet) return peekEthernetFlow(data + inner, len - inner, out);
  return peekIp(data + inner, len - inner, proto, out);
}

uint64_t clientHash(const InnerFlow& f) {
  const IpAddress& client = f.has_ports ? (f.dst_port > f.src_port ? f.dst : f.src) : f.dst;
  // 32-bit arithmetic a classic BPF program can do, so that the kernel can
  // steer each datagram to its owner (reuseport_steering.cc computes the
  // same): the address's big-endian words XOR-ed, times the golden ratio,
  // the high half.
  uint32_t folded = 0;
  const int words = client.family == 6 ? 4 : 1;
  for (int i = 0; i < words; ++i) {
    const uint8_t* p = client.bytes + 4 * i;
    folded ^= (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
  }
  return static_cast<uint32_t>(folded * 0x9e3779b1U) >> 16;
}

uint64_t flowHash(const InnerFlow& f) {
  uint64_t h = f.src.hash() * 31 + f.dst.hash();
  h = h * 131 + f.proto;
  h = (h << 32) ^ (uint64_t{f.src_port} << 16) ^ f.dst_port;
  return hashing::fmix64(h);
}

bool tunnelPayloadOf(const Frame& frame, const uint8_t*& payload, uint32_t& len, bool& vxlan) {
  PacketContext ctx;
  WeirdCounters weird;
  decode::LinkResult link;
  if (!decode::decodeLink(frame.linktype, frame.data, frame.caplen, link, ctx, weird)) return false;
  decode::IpResult r;
  const uint8_t* l3 = frame.data + link.l3_offset;
  const uint32_t l3len = frame.caplen - link.l3_offset;
  const bool ok = link.ethertype == decode::ethertype::kIpv4
                      ? decode::decodeIpv4(l3, l3len, r, ctx, weird)
                      : decode::decodeIpv6(l3, l3len, r, ctx, weird);
  if (!ok || r.fragment || r.proto != ipproto::kUdp ||
      !decode::decodeUdp(l3 + r.l4_offset, r.l4_caplen, r.l4_wirelen, ctx, weird) ||
      (ctx.dst_port != 4789 && ctx.dst_port != 6081) || ctx.payload_len < 8) {
    return false;
  }
  payload = ctx.payload;
  len = ctx.payload_len;
  vxlan = ctx.dst_port == 4789;
  return true;
}

}  // namespace exfilwatch
