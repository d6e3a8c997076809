// tunnel.h: mirror-session encapsulations. VXLAN (RFC 7348) as VPC Traffic
// Mirroring sends it, and GENEVE (RFC 8926) as a Gateway Load Balancer
// delivers it. Each analyzer checks its header, records the tunnel layer
// (24-bit VNI) and says where the inner packet starts and what it is.
// GRE is here too: not a mirror session but a way to hide DNS from a sensor
// that does not look inside it (PPTP, site-to-site GRE).
#pragma once

#include <cstdint>

#include "decode/packet.h"
#include "decode/weird.h"

namespace exfilwatch::decode {

inline constexpr uint32_t kVxlanHeader = 8;
inline constexpr uint32_t kGeneveHeader = 8;

// VXLAN: the I flag must be set; the inner packet is an Ethernet frame.
bool decodeVxlan(const uint8_t* data, uint32_t len, TunnelLayer& layer, uint32_t& inner_offset,
                 WeirdCounters& weird);

// GENEVE: version 0, options skipped by their length; inner_ethertype is the
// protocol type (0x6558 Ethernet, 0x0800 IPv4, 0x86DD IPv6).
bool decodeGeneve(const uint8_t* data, uint32_t len, TunnelLayer& layer, uint32_t& inner_offset,
                  uint16_t& inner_ethertype, WeirdCounters& weird);

// GRE: version 0 (RFC 2784 with RFC 2890's key and sequence number) and
// version 1, PPTP's enhanced GRE (RFC 2637: key = payload length and call
// id, optional acknowledgment number, always PPP). RFC 1701 source routing
// is refused (gre.bad_flags). inner_ethertype is the protocol type as is:
// IPv4, IPv6, 0x6558 Ethernet, 0x880B PPP, or something that is not ours.
bool decodeGre(const uint8_t* data, uint32_t len, uint32_t& inner_offset, uint16_t& inner_ethertype,
               WeirdCounters& weird);

}  // namespace exfilwatch::decode
