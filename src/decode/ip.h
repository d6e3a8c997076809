// ip.h: IPv4 (with options) and IPv6 (with extension headers) analyzers.
// Lengths come from the headers: `l4_wirelen` is what the packet carried,
// `l4_caplen` what we have (less when a mirror session cut the packet).
// Fragments are reported, not reassembled, here: see fragments.h.
#pragma once

#include <cstdint>

#include "decode/packet.h"
#include "decode/weird.h"

namespace exfilwatch::decode {

struct IpResult {
  uint8_t proto = 0;          // transport protocol (after IPv6 extension headers)
  uint32_t l4_offset = 0;     // where the transport header starts
  uint32_t l4_caplen = 0;     // transport bytes present in the capture
  uint32_t l4_wirelen = 0;    // transport bytes the IP header announces
  bool fragment = false;      // part of a fragmented datagram
  bool more_fragments = false;
  uint32_t fragment_offset = 0;  // bytes
  uint32_t fragment_id = 0;
};

bool decodeIpv4(const uint8_t* data, uint32_t len, IpResult& out, PacketContext& ctx,
                WeirdCounters& weird);
bool decodeIpv6(const uint8_t* data, uint32_t len, IpResult& out, PacketContext& ctx,
                WeirdCounters& weird);

}  // namespace exfilwatch::decode
