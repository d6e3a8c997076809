// decoder.cc: link -> tunnel -> IP -> transport, for any packet source.
#include "decode/decoder.h"

#include <algorithm>

#include "decode/ip.h"
#include "decode/link.h"
#include "decode/transport.h"
#include "decode/tunnel.h"

namespace exfilwatch {

void DecodeStats::mergeFrom(const DecodeStats& o) {
  frames += o.frames;
  bytes += o.bytes;
  non_ip += o.non_ip;
  other_transport += o.other_transport;
  udp += o.udp;
  tcp += o.tcp;
  tunneled += o.tunneled;
  fragments_held += o.fragments_held;
  reassembled += o.reassembled;
  malformed += o.malformed;
}

namespace {
template <std::size_t N>
std::array<FragmentReassembler, N> makeReassemblers(const FragmentLimits& limits) {
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return std::array<FragmentReassembler, N>{((void)I, FragmentReassembler(limits))...};
  }
  (std::make_index_sequence<N>{});
}
}  // namespace

Decoder::Decoder(const DecoderConfig& config)
    : fragments_(makeReassemblers<kMaxTunnelDepth + 1>(config.fragments)) {
  for (uint16_t p : config.vxlan_ports) vxlan_ports_.set(p);
  for (uint16_t p : config.geneve_ports) geneve_ports_.set(p);
}

bool Decoder::decode(const Frame& frame, PacketContext& ctx, WeirdCounters& weird) {
  ctx.reset();
  level_ = 0;
  ctx.ts = frame.ts;
  ctx.frame_caplen = frame.caplen;
  ctx.frame_wirelen = frame.wirelen;
  ++stats_.frames;
  stats_.bytes += frame.wirelen;

  Outcome outcome;
  if (frame.linktype == static_cast<int>(LinkType::VxlanPayload) ||
      frame.linktype == static_cast<int>(LinkType::GenevePayload)) {
    outcome = decodeSocketPayload(frame, ctx, weird);
  } else {
    decode::LinkResult link;
    if (!decode::decodeLink(frame.linktype, frame.data, frame.caplen, link, ctx, weird)) {
      // decodeLink counts real anomalies; a clean non-IP frame is just not ours.
      ++stats_.non_ip;
      return false;
    }
    outcome = decodeNetwork(frame.data + link.l3_offset, frame.caplen - link.l3_offset,
                            link.ethertype, ctx, weird);
  }
  switch (outcome) {
    case Outcome::Transport:
      if (ctx.ip_proto == ipproto::kUdp) {
        ++stats_.udp;
      } else {
        ++stats_.tcp;
      }
      if (ctx.tunnel_depth) ++stats_.tunneled;
      return true;
    case Outcome::Held:
      ++stats_.fragments_held;
      return false;
    case Outcome::Malformed:
      ++stats_.malformed;
      return false;
    case Outcome::NotOurs:
      return false;
  }
  return false;
}

Decoder::Outcome Decoder::decodeNetwork(const uint8_t* data, uint32_t len, uint16_t ethertype,
                                        PacketContext& ctx, WeirdCounters& weird) {
  decode::IpResult ip;
  bool ok = false;
  if (ethertype == decode::ethertype::kIpv4) {
    ok = decode::decodeIpv4(data, len, ip, ctx, weird);
  } else if (ethertype == decode::ethertype::kIpv6) {
    ok = decode::decodeIpv6(data, len, ip, ctx, weird);
  } else {
    ++stats_.non_ip;
    return Outcome::NotOurs;
  }
  if (!ok) return Outcome::Malformed;
  ctx.ip_packet = data;
  ctx.ip_packet_caplen = std::min(len, ip.l4_offset + ip.l4_caplen);

  const uint8_t* l4 = data + ip.l4_offset;
  uint32_t l4_caplen = ip.l4_caplen;
  uint32_t l4_wirelen = ip.l4_wirelen;
  if (ip.fragment) {
    FragmentKey key;
    key.src = ctx.src;
    key.dst = ctx.dst;
    key.id = ip.fragment_id;
    key.proto = ip.proto;
    // Mirror sessions of different VPCs may reuse the same private addresses.
    if (const TunnelLayer* t = ctx.innerTunnel()) {
      key.tunnel = (static_cast<uint32_t>(t->type) << 24) | t->vni;
    }
    const uint8_t* whole = nullptr;
    uint32_t whole_len = 0;
    FragmentReassembler& level = fragments_[level_];
    const bool completed = level.add(key, ctx.ts, ip.fragment_offset, ip.more_fragments, l4,
                                     l4_caplen, l4_wirelen, whole, whole_len, weird);
    if (!completed) {
      // A first fragment cut by the snap length can never be reassembled
      // (the reassembler has refused the datagram), but it holds the
      // transport header and the start of the payload: decode that much, as
      // for any truncated packet, with the datagram's length from its UDP
      // header when there is one.
      if (ip.fragment_offset == 0 && l4_caplen < l4_wirelen) {
        uint32_t datagram_len = l4_wirelen;
        if (ip.proto == ipproto::kUdp && l4_caplen >= 8) {
          datagram_len = std::max<uint32_t>(datagram_len, loadBe16(l4 + 4));
        }
        return decodeTransport(ip.proto, l4, l4_caplen, datagram_len, ctx, weird, true);
      }
      return Outcome::Held;
    }
    ++stats_.reassembled;
    ctx.ip_reassembled = true;
    l4 = whole;
    l4_caplen = l4_wirelen = whole_len;
  }

  return decodeTransport(ip.proto, l4, l4_caplen, l4_wirelen, ctx, weird, true);
}

Decoder::Outcome Decoder::decodeTransport(uint8_t proto, const uint8_t* l4, uint32_t l4_caplen,
                                          uint32_t l4_wirelen, PacketContext& ctx,
                                          WeirdCounters& weird, bool may_tunnel) {
  if (proto == ipproto::kUdp) {
    if (!decode::decodeUdp(l4, l4_caplen, l4_wirelen, ctx, weird)) return Outcome::Malformed;
    if (may_tunnel && (vxlan_ports_.test(ctx.dst_port) || geneve_ports_.test(ctx.dst_port))) {
      return decodeTunnelPayload(
          ctx, weird, vxlan_ports_.test(ctx.dst_port) ? TunnelType::Vxlan : TunnelType::Geneve);
    }
    return Outcome::Transport;
  }
  if (proto == ipproto::kTcp) {
    return decode::decodeTcp(l4, l4_caplen, l4_wirelen, ctx, weird) ? Outcome::Transport
                                                                    : Outcome::Malformed;
  }
  if (may_tunnel) {
    switch (proto) {
      case ipproto::kIpIp:
        return decodeInner(l4, l4_caplen, decode::ethertype::kIpv4, ctx, weird);
      case ipproto::kIpv6InIp:
        return decodeInner(l4, l4_caplen, decode::ethertype::kIpv6, ctx, weird);
      case ipproto::kGre: {
        uint32_t inner = 0;
        uint16_t inner_ethertype = 0;
        if (!decode::decodeGre(l4, l4_caplen, inner, inner_ethertype, weird)) {
          return Outcome::Malformed;
        }
        return decodeInner(l4 + inner, l4_caplen - inner, inner_ethertype, ctx, weird);
      }
      default:
        break;
    }
  }
  ++stats_.other_transport;
  return Outcome::NotOurs;
}

bool looksLikeVxlanHeader(const uint8_t* data, uint32_t len) {
  // RFC 7348: flags R R R R I R R R, 24 reserved bits, VNI, 8 reserved bits.
  // Linux and AWS send 0x08; the group-policy extension (G, 0x80) carries a
  // policy id in the 24 bits, so only the R flag bits and the last byte are
  // checked. A cleared I flag alone is vxlan.bad_flags, not "not a tunnel".
  return len >= decode::kVxlanHeader && (data[0] & 0x77U) == 0 && data[7] == 0;
}

Decoder::Outcome Decoder::decodeSocketPayload(const Frame& frame, PacketContext& ctx,
                                              WeirdCounters& weird) {
  const bool vxlan = frame.linktype == static_cast<int>(LinkType::VxlanPayload);
  // A datagram larger than the receive slot: keep what we have, as a
  // snap-length-limited mirror session would deliver it.
  if (frame.caplen < frame.wirelen) weird.add(Weird::SocketOversize);
  if (frame.caplen < kMinTunnelDatagram) {
    weird.add(Weird::SocketRunt);
    return Outcome::Malformed;
  }
  if (vxlan && !looksLikeVxlanHeader(frame.data, frame.caplen)) {
    weird.add(Weird::SocketNotTunnel);
    return Outcome::Malformed;
  }
  if (frame.outer.src.family != 0) {
    // The socket's datagram stands for the outer packet (EVE `tunnel`).
    ctx.src = frame.outer.src;
    ctx.dst = frame.outer.dst;
    ctx.src_port = frame.outer.src_port;
    ctx.dst_port = frame.outer.dst_port;
    ctx.ip_proto = ipproto::kUdp;
  }
  ctx.payload = frame.data;
  ctx.payload_len = frame.caplen;
  ctx.payload_wire_len = frame.wirelen;
  return decodeTunnelPayload(ctx, weird, vxlan ? TunnelType::Vxlan : TunnelType::Geneve);
}

Decoder::Outcome Decoder::decodeTunnelPayload(PacketContext& ctx, WeirdCounters& weird,
                                              TunnelType type) {
  if (level_ >= kMaxTunnelDepth) {
    weird.add(Weird::TunnelTooDeep);
    return Outcome::Malformed;
  }
  const uint8_t* payload = ctx.payload;
  const uint32_t len = ctx.payload_len;
  TunnelLayer layer;
  uint32_t inner = 0;
  uint16_t inner_ethertype = decode::ethertype::kTransparentEthernet;
  const bool is_vxlan = type == TunnelType::Vxlan;
  const bool ok = is_vxlan
                      ? decode::decodeVxlan(payload, len, layer, inner, weird)
                      : decode::decodeGeneve(payload, len, layer, inner, inner_ethertype, weird);
  if (!ok) return Outcome::Malformed;
  ctx.tunnels[ctx.tunnel_depth++] = layer;
  return decodeInner(payload + inner, len - inner, inner_ethertype, ctx, weird);
}

Decoder::Outcome Decoder::decodeInner(const uint8_t* data, uint32_t len, uint16_t ethertype,
                                      PacketContext& ctx, WeirdCounters& weird) {
  if (level_ >= kMaxTunnelDepth) {
    weird.add(Weird::TunnelTooDeep);
    return Outcome::Malformed;
  }
  if (level_ == 0) {
    // Entering the first encapsulation: the fields still hold the outer
    // packet's (EVE `tunnel`).
    ctx.outer.src = ctx.src;
    ctx.outer.dst = ctx.dst;
    ctx.outer.src_port = ctx.src_port;
    ctx.outer.dst_port = ctx.dst_port;
    ctx.outer.proto = ctx.ip_proto;
  }
  ++level_;
  ctx.outer.depth = level_;
  const uint8_t* frame = data;
  uint32_t frame_len = len;
  uint16_t inner_ethertype = ethertype;
  decode::LinkResult link;
  bool framed = false;  // an Ethernet or PPP frame, whose header says where IP starts
  if (inner_ethertype == decode::ethertype::kTransparentEthernet) {
    framed = true;
    if (!decode::decodeEthernet(frame, frame_len, link, ctx, weird)) {
      if (frame_len >= 14) ++stats_.non_ip;
      return frame_len >= 14 ? Outcome::NotOurs : Outcome::Malformed;
    }
  } else if (inner_ethertype == decode::ethertype::kPpp) {
    framed = true;
    const uint64_t cut = weird.get(Weird::PppTruncated);
    if (!decode::decodePpp(frame, frame_len, link, weird)) {
      if (weird.get(Weird::PppTruncated) != cut) return Outcome::Malformed;
      ++stats_.non_ip;  // LCP, compressed or encrypted (MPPE) payloads
      return Outcome::NotOurs;
    }
  }
  if (framed) {
    frame += link.l3_offset;
    frame_len -= link.l3_offset;
    inner_ethertype = link.ethertype;
  }
  // The inner packet replaces the outer one's addresses, ports and payload.
  ctx.ip_version = 0;
  ctx.ip_proto = 0;
  ctx.src_port = ctx.dst_port = 0;
  ctx.payload = nullptr;
  ctx.payload_len = ctx.payload_wire_len = 0;
  ctx.ip_reassembled = false;
  return decodeNetwork(frame, frame_len, inner_ethertype, ctx, weird);
}

void Decoder::expire(Timestamp now, WeirdCounters& weird) {
  for (auto& f : fragments_) f.expire(now, weird);
}

std::size_t Decoder::pendingFragments() const {
  std::size_t n = 0;
  for (const auto& f : fragments_) n += f.pending();
  return n;
}

uint64_t Decoder::fragmentBytes() const {
  uint64_t n = 0;
  for (const auto& f : fragments_) n += f.bufferedBytes();
  return n;
}

}  // namespace exfilwatch
