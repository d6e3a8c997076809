// link.h: link-layer analyzers. Each takes the frame's bytes and says where
// the network layer starts and which protocol it carries (an EtherType).
// Ethernet (802.1Q, 802.1ad/QinQ tags, PPPoE sessions), Linux cooked v1/v2,
// BSD loopback, FDDI and raw IP; PPP for PPPoE and GRE. Non-IP frames are not
// anomalies: they return false uncounted.
#pragma once

#include <cstdint>

#include "decode/packet.h"
#include "decode/weird.h"

namespace exfilwatch::decode {

namespace ethertype {
inline constexpr uint16_t kIpv4 = 0x0800;
inline constexpr uint16_t kIpv6 = 0x86DD;
inline constexpr uint16_t kVlan = 0x8100;
inline constexpr uint16_t kQinQ = 0x88A8;
inline constexpr uint16_t kQinQOld = 0x9100;
inline constexpr uint16_t kTransparentEthernet = 0x6558;  // GENEVE: inner Ethernet frame
inline constexpr uint16_t kPppoeSession = 0x8864;
inline constexpr uint16_t kPpp = 0x880B;  // GRE (PPTP): a PPP frame follows
}  // namespace ethertype

// Where the network layer starts, and its EtherType.
struct LinkResult {
  uint32_t l3_offset = 0;
  uint16_t ethertype = 0;
};

// Ethernet II with up to kMaxVlanTags stored tags (more are skipped, counted).
bool decodeEthernet(const uint8_t* data, uint32_t len, LinkResult& out, PacketContext& ctx,
                    WeirdCounters& weird);

// A PPP frame (RFC 1661), with or without the HDLC-like address and control
// octets (RFC 1662) and with a one- or two-octet protocol field: IPv4 and
// IPv6 give their EtherType; LCP, compressed or encrypted payloads and the
// rest are not ours (false, uncounted).
bool decodePpp(const uint8_t* data, uint32_t len, LinkResult& out, WeirdCounters& weird);

// A PPPoE session header (RFC 2516) and the PPP frame inside it.
bool decodePppoeSession(const uint8_t* data, uint32_t len, LinkResult& out, WeirdCounters& weird);

// Any pcap link type we support; false for unknown types (counted) and non-IP.
bool decodeLink(int linktype, const uint8_t* data, uint32_t len, LinkResult& out,
                PacketContext& ctx, WeirdCounters& weird);

// EtherType for a raw IP packet, from its version nibble (0 when neither).
uint16_t ethertypeFromIpVersion(const uint8_t* data, uint32_t len);

}  // namespace exfilwatch::decode
