// packet.h: what travels down the packet path. A source hands the decoder a
// Frame (bytes, captured and wire lengths, timestamp, link type); the decoder
// fills a PacketContext that the protocol parsers and detection read. Views
// point into the frame (or a reassembly buffer) and live only for the call.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/net.h"

namespace exfilwatch {

// Link types we accept (values are libpcap's DLT_/LINKTYPE_ numbers).
enum class LinkType : int {
  Null = 0,  // BSD loopback: 4-byte host-order address family
  Ethernet = 1,
  Raw = 101,      // raw IPv4/IPv6 (LINKTYPE_RAW)
  RawDlt12 = 12,  // DLT_RAW on some platforms
  RawDlt14 = 14,  // DLT_RAW on OpenBSD
  Loop = 108,     // OpenBSD loopback: 4-byte network-order family
  LinuxSll = 113,
  LinuxSll2 = 276,
  Ipv4 = 228,
  Ipv6 = 229,
  // exfilwatch-internal, never in a pcap file (outside libpcap's 16-bit
  // range): a UDP datagram's payload read from a live tunnel socket, starting
  // at the VXLAN or GENEVE header. The socket it arrived on says which.
  VxlanPayload = 0x10000,
  GenevePayload = 0x10001,
};

// One captured frame, as any source delivers it.
struct Frame {
  const uint8_t* data = nullptr;
  uint32_t caplen = 0;   // bytes we have
  uint32_t wirelen = 0;  // bytes the frame had on the wire
  Timestamp ts;
  int linktype = static_cast<int>(LinkType::Ethernet);
};

enum class TunnelType : uint8_t { None = 0, Vxlan, Geneve };

struct TunnelLayer {
  TunnelType type = TunnelType::None;
  uint32_t vni = 0;  // 24 bits for both VXLAN and GENEVE
};

inline constexpr int kMaxTunnelDepth = 4;
inline constexpr int kMaxVlanTags = 2;

namespace ipproto {
inline constexpr uint8_t kTcp = 6;
inline constexpr uint8_t kUdp = 17;
}  // namespace ipproto

namespace tcpflag {
inline constexpr uint8_t kFin = 0x01;
inline constexpr uint8_t kSyn = 0x02;
inline constexpr uint8_t kRst = 0x04;
inline constexpr uint8_t kPsh = 0x08;
inline constexpr uint8_t kAck = 0x10;
}  // namespace tcpflag

// What the decoder learned about the innermost packet.
struct PacketContext {
  Timestamp ts;
  uint32_t frame_caplen = 0;
  uint32_t frame_wirelen = 0;

  // Tunnels, outermost first. The innermost one names the mirror session.
  TunnelLayer tunnels[kMaxTunnelDepth];
  uint8_t tunnel_depth = 0;
  uint16_t vlan_ids[kMaxVlanTags] = {};
  uint8_t vlan_count = 0;

  // Innermost IP header.
  uint8_t ip_version = 0;
  uint8_t ip_proto = 0;
  IpAddress src;
  IpAddress dst;
  uint32_t ip_wire_len = 0;  // total length the IP header claims
  bool ip_reassembled = false;
  // The innermost IP packet as captured (header included), for evidence
  // pcaps: valid until the next decode, like the payload view.
  const uint8_t* ip_packet = nullptr;
  uint32_t ip_packet_caplen = 0;

  // Transport.
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint32_t tcp_seq = 0;
  uint32_t tcp_ack = 0;
  uint8_t tcp_flags = 0;

  // Transport payload: the bytes we have, and how many the packet carried.
  const uint8_t* payload = nullptr;
  uint32_t payload_len = 0;
  uint32_t payload_wire_len = 0;

  bool hasTransport() const { return ip_proto == ipproto::kUdp || ip_proto == ipproto::kTcp; }
  bool payloadTruncated() const { return payload_len < payload_wire_len; }
  const TunnelLayer* innerTunnel() const {
    return tunnel_depth ? &tunnels[tunnel_depth - 1] : nullptr;
  }
  void reset() { *this = PacketContext{}; }
};

// Bounds-checked big-endian reads: the only way decoders look at bytes.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, std::size_t len) : data_(data), len_(len) {}
  std::size_t size() const { return len_; }
  const uint8_t* data() const { return data_; }
  bool has(std::size_t off, std::size_t n) const { return off <= len_ && n <= len_ - off; }
  bool u8(std::size_t off, uint8_t& v) const {
    if (!has(off, 1)) return false;
    v = data_[off];
    return true;
  }
  bool u16(std::size_t off, uint16_t& v) const {
    if (!has(off, 2)) return false;
    v = static_cast<uint16_t>((data_[off] << 8) | data_[off + 1]);
    return true;
  }
  bool u32(std::size_t off, uint32_t& v) const {
    if (!has(off, 4)) return false;
    v = (uint32_t{data_[off]} << 24) | (uint32_t{data_[off + 1]} << 16) |
        (uint32_t{data_[off + 2]} << 8) | uint32_t{data_[off + 3]};
    return true;
  }

 private:
  const uint8_t* data_;
  std::size_t len_;
};

inline uint16_t loadBe16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t loadBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace exfilwatch
