// transport.h: UDP and TCP header analyzers. They fill ports, TCP sequence
// and flags, and the payload view (captured bytes and wire bytes).
#pragma once

#include <cstdint>

#include "decode/packet.h"
#include "decode/weird.h"

namespace exfilwatch::decode {

// caplen: transport bytes present; wirelen: transport bytes on the wire.
bool decodeUdp(const uint8_t* data, uint32_t caplen, uint32_t wirelen, PacketContext& ctx,
               WeirdCounters& weird);
bool decodeTcp(const uint8_t* data, uint32_t caplen, uint32_t wirelen, PacketContext& ctx,
               WeirdCounters& weird);

}  // namespace exfilwatch::decode
