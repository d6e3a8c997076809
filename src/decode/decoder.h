// decoder.h: the one decode path every packet source feeds. It takes a Frame
// (pcap record or UDP datagram), walks link, tunnel, IP (reassembling
// fragments) and transport headers through the small analyzers, and leaves
// the innermost packet's facts in a PacketContext. One Decoder per worker
// thread: it owns bounded fragment state and plain per-thread counters.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <vector>

#include "decode/fragments.h"
#include "decode/packet.h"
#include "decode/weird.h"

namespace exfilwatch {

struct DecoderConfig {
  std::vector<uint16_t> vxlan_ports{4789};
  std::vector<uint16_t> geneve_ports{6081};
  FragmentLimits fragments;  // per tunnel nesting level
};

struct DecodeStats {
  uint64_t frames = 0;
  uint64_t bytes = 0;
  uint64_t non_ip = 0;           // ARP, LLDP...: not ours, not anomalies
  uint64_t other_transport = 0;  // ICMP, ESP...
  uint64_t udp = 0;
  uint64_t tcp = 0;
  uint64_t tunneled = 0;
  uint64_t fragments_held = 0;
  uint64_t reassembled = 0;
  uint64_t malformed = 0;  // refused by an analyzer (see the weird counters)
  void mergeFrom(const DecodeStats& o);
};

// A live tunnel datagram shorter than this (tunnel header + inner Ethernet
// header) cannot carry a packet: counted as socket.runt.
inline constexpr uint32_t kMinTunnelDatagram = 8 + 14;

// True when the first 8 bytes are shaped like a VXLAN header (reserved flag
// bits and the last reserved byte clear), whatever the I flag says.
bool looksLikeVxlanHeader(const uint8_t* data, uint32_t len);

class Decoder {
 public:
  explicit Decoder(const DecoderConfig& config = {});

  // Fills ctx for the frame. True when ctx holds a UDP or TCP packet whose
  // payload view is valid until the next call. Frames of the pseudo link
  // types VxlanPayload/GenevePayload start at the tunnel header (a live
  // socket's datagram); caplen < wirelen there means the datagram was cut.
  bool decode(const Frame& frame, PacketContext& ctx, WeirdCounters& weird);

  // Drops fragment state older than its timeout, by packet time.
  void expire(Timestamp now, WeirdCounters& weird);

  const DecodeStats& stats() const { return stats_; }
  std::size_t pendingFragments() const;
  uint64_t fragmentBytes() const;

 private:
  enum class Outcome { Transport, NotOurs, Malformed, Held };
  // UDP or TCP; a UDP packet to a tunnel port is decapsulated when allowed.
  Outcome decodeTransport(uint8_t proto, const uint8_t* l4, uint32_t l4_caplen, uint32_t l4_wirelen,
                          PacketContext& ctx, WeirdCounters& weird, bool may_tunnel);
  Outcome decodeNetwork(const uint8_t* data, uint32_t len, uint16_t ethertype, PacketContext& ctx,
                        WeirdCounters& weird);
  Outcome decodeTunnelPayload(PacketContext& ctx, WeirdCounters& weird, TunnelType type);
  // The packet inside an encapsulation (VXLAN, GENEVE, GRE, IP in IP): an
  // Ethernet or PPP frame, or an IP packet, by `ethertype`. It replaces the
  // outer packet in ctx.
  Outcome decodeInner(const uint8_t* data, uint32_t len, uint16_t ethertype, PacketContext& ctx,
                      WeirdCounters& weird);
  // LinkType::VxlanPayload / GenevePayload: a datagram from a live socket.
  Outcome decodeSocketPayload(const Frame& frame, PacketContext& ctx, WeirdCounters& weird);

  std::bitset<65536> vxlan_ports_;
  std::bitset<65536> geneve_ports_;
  // One reassembler per nesting level, so that an inner datagram's
  // reassembly never reuses the buffer an outer reassembled datagram lives in.
  std::array<FragmentReassembler, kMaxTunnelDepth + 1> fragments_;
  // Encapsulations entered in the current frame, of any kind (ctx.tunnels
  // records the VXLAN and GENEVE ones): at most kMaxTunnelDepth.
  uint8_t level_ = 0;
  DecodeStats stats_;
};

}  // namespace exfilwatch
