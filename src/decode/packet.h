// packet.h: what travels down the packet path. A source hands the decoder a
// Frame (bytes, captured and wire lengths, timestamp, link type); the decoder
// fills a PacketContext that the protocol parsers and detection read. Views
// point into the frame (or a reassembly buffer) and live only for the call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace exfilwatch {

struct Timestamp {
  int64_t sec = 0;
  int32_t usec = 0;
  int64_t micros() const { return sec * 1000000 + usec; }
  bool operator<(const Timestamp& o) const { return sec < o.sec || (sec == o.sec && usec < o.usec); }
};

// An IPv4 or IPv6 address; IPv4 is kept in the first four bytes.
struct IpAddress {
  uint8_t family = 0;  // 4 or 6, 0 when unset
  uint8_t bytes[16] = {};

  static IpAddress v4(const uint8_t* p) {
    IpAddress a;
    a.assignV4(p);
    return a;
  }
  static IpAddress v6(const uint8_t* p) {
    IpAddress a;
    a.assignV6(p);
    return a;
  }
  // In-place forms for the packet path. `ctx.src = IpAddress::v4(p)` builds
  // the address on the stack and copies it as 16 + 1 bytes: the 16-byte load
  // straddles the 4-byte store just made at offset 1, a store-forwarding
  // stall on every packet (perf annotate: most of the IPv4 header's time).
  void assignV4(const uint8_t* p) {
    family = 4;
    std::memcpy(bytes, p, 4);
    std::memset(bytes + 4, 0, sizeof bytes - 4);
  }
  void assignV6(const uint8_t* p) {
    family = 6;
    std::memcpy(bytes, p, 16);
  }
  std::size_t size() const { return family == 6 ? 16 : 4; }
  bool operator==(const IpAddress& o) const {
    return family == o.family && std::memcmp(bytes, o.bytes, size()) == 0;
  }
  bool operator!=(const IpAddress& o) const { return !(*this == o); }
  uint64_t hash() const;
  std::string toString() const;
  // Parses dotted IPv4 or textual IPv6; false on anything else.
  static bool parse(const std::string& text, IpAddress& out);
};

// Link types we accept (values are libpcap's DLT_/LINKTYPE_ numbers).
enum class LinkType : int {
  Null = 0,         // BSD loopback: 4-byte host-order address family
  Ethernet = 1,
  Raw = 101,        // raw IPv4/IPv6 (LINKTYPE_RAW)
  RawDlt12 = 12,    // DLT_RAW on some platforms
  RawDlt14 = 14,    // DLT_RAW on OpenBSD
  Loop = 108,       // OpenBSD loopback: 4-byte network-order family
  LinuxSll = 113,
  LinuxSll2 = 276,
  Fddi = 10,  // FDDI + 802.2 LLC/SNAP
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
