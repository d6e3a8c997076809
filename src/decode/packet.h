// packet.h: what the decoder makes of a Frame (capture/frame.h): a
// PacketContext that the protocol parsers and detection read, and the
// bounds-checked reads every decoder uses. Views point into the frame (or a
// reassembly buffer) and live only for the call.
#pragma once

#include <cstddef>
#include <cstdint>

#include "capture/frame.h"
#include "common/net.h"

namespace exfilwatch {

enum class TunnelType : uint8_t { None = 0, Vxlan, Geneve };

struct TunnelLayer {
  TunnelType type = TunnelType::None;
  uint32_t vni = 0;  // 24 bits for both VXLAN and GENEVE
};

// The outermost packet of a tunnelled one (Suricata's root packet): its
// addresses, ports and protocol, for EVE's `tunnel`. Unset (family 0) for
// plain packets; for datagrams read from a tunnel socket, the Frame's outer
// addresses (unset when the source did not know them).
struct OuterPacket {
  IpAddress src, dst;
  uint16_t src_port = 0, dst_port = 0;
  uint8_t proto = 0;
  uint8_t depth = 0;  // encapsulations around the inner packet (any kind)
};

inline constexpr int kMaxTunnelDepth = 4;
inline constexpr int kMaxVlanTags = 2;

namespace ipproto {
inline constexpr uint8_t kIpIp = 4;  // IPv4 in IP
inline constexpr uint8_t kTcp = 6;
inline constexpr uint8_t kUdp = 17;
inline constexpr uint8_t kIpv6InIp = 41;
inline constexpr uint8_t kGre = 47;
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
  OuterPacket outer;

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
