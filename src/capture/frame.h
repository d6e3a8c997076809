// frame.h: what every source (pcap replay, the UDP listener, in-memory
// feeds) hands the decoder: one captured frame's bytes, captured and wire
// lengths, timestamp and link type. The bytes belong to the source and live
// until its next frame.
#pragma once

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
  Fddi = 10,  // FDDI + 802.2 LLC/SNAP
  Ipv4 = 228,
  Ipv6 = 229,
  // exfilwatch-internal, never in a pcap file (outside libpcap's 16-bit
  // range): a UDP datagram's payload read from a live tunnel socket, starting
  // at the VXLAN or GENEVE header. The socket it arrived on says which.
  VxlanPayload = 0x10000,
  GenevePayload = 0x10001,
};

// The outer UDP datagram around a live tunnel socket's payload, whose IP
// and UDP headers the kernel took off: its sender (msg_name) and the local
// address (IP_PKTINFO) and port it came to, for EVE's `tunnel` as replay
// writes it. Family 0: not known (pcap frames carry their own headers).
struct FrameOuter {
  IpAddress src, dst;
  uint16_t src_port = 0, dst_port = 0;
};

// One captured frame, as any source delivers it.
struct Frame {
  const uint8_t* data = nullptr;
  uint32_t caplen = 0;   // bytes we have
  uint32_t wirelen = 0;  // bytes the frame had on the wire
  Timestamp ts;
  int linktype = static_cast<int>(LinkType::Ethernet);
  FrameOuter outer;  // VxlanPayload / GenevePayload only
};

}  // namespace exfilwatch
