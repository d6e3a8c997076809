// inner_peek.h: a cheap look through a tunnel datagram (VXLAN or GENEVE
// header, inner Ethernet with VLAN tags, IPv4/IPv6, UDP/TCP ports) that
// decides where a datagram goes before the full decoder sees it: which
// worker owns its client (live dispatch), and which outer UDP source port a
// mirror session would give it (the `mirror` command). No state, no
// counters, no allocation: a datagram it cannot read still gets decoded and
// counted properly by the worker that receives it.
#pragma once

#include <cstdint>

#include "decode/packet.h"

namespace exfilwatch {

struct InnerFlow {
  IpAddress src;
  IpAddress dst;
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint8_t proto = 0;
  bool has_ports = false;  // false for IP fragments and unknown next headers
};

// `data` starts at the tunnel header. False when no inner IP header is found.
bool peekInnerFlow(const uint8_t* data, uint32_t len, bool vxlan, InnerFlow& out);

// Same, for a bare inner Ethernet frame (no tunnel header).
bool peekEthernetFlow(const uint8_t* data, uint32_t len, InnerFlow& out);

// A captured frame that is already a tunnel datagram (UDP to 4789 or 6081,
// not a fragment): its UDP payload, from the VXLAN or GENEVE header on, as a
// mirror session would send it. False for anything else. Used where captures
// are turned into mirror traffic (`exfilwatch mirror`, bench/worker_scaling).
bool tunnelPayloadOf(const Frame& frame, const uint8_t*& payload, uint32_t& len, bool& vxlan);

// The client's address hash, the same for both directions of a flow and for
// every fragment of a datagram:
//  - with ports, the client is the side with the higher port (the ephemeral
//    one: DNS 53, TLS 443/8443 are low), ties going to the source;
//  - without ports (IP fragments), the destination: fragmented DNS is almost
//    always a large response travelling towards the client. Every fragment
//    of a datagram lands on the same worker either way, so reassembly holds.
// 16 bits, from 32-bit arithmetic on the address: the kernel computes the
// same in the reuseport steering program (reuseport_steering.h), so the
// worker the kernel picks is the owner, clientHash % N.
uint64_t clientHash(const InnerFlow& f);

// A hash of the inner 5-tuple (direction-sensitive, as AWS's is).
uint64_t flowHash(const InnerFlow& f);

}  // namespace exfilwatch
