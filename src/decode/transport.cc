// transport.cc: UDP and TCP header analyzers.
#include "decode/transport.h"

#include <algorithm>

namespace exfilwatch::decode {

namespace {
constexpr uint32_t kUdpHeader = 8;
constexpr uint32_t kTcpMinHeader = 20;
}  // namespace

bool decodeUdp(const uint8_t* data, uint32_t caplen, uint32_t wirelen, PacketContext& ctx,
               WeirdCounters& weird) {
  if (caplen < kUdpHeader || wirelen < kUdpHeader) {
    weird.add(Weird::UdpTruncated);
    return false;
  }
  ctx.src_port = loadBe16(data);
  ctx.dst_port = loadBe16(data + 2);
  const uint32_t udp_len = loadBe16(data + 4);
  uint32_t payload_wire = wirelen - kUdpHeader;
  if (udp_len < kUdpHeader || udp_len > wirelen) {
    // The IP header is the better witness of the length; keep going with it.
    weird.add(Weird::UdpBadLength);
  } else {
    payload_wire = udp_len - kUdpHeader;  // less than IP says: trailing bytes
  }
  ctx.payload = data + kUdpHeader;
  ctx.payload_wire_len = payload_wire;
  ctx.payload_len = std::min(caplen - kUdpHeader, payload_wire);
  return true;
}

bool decodeTcp(const uint8_t* data, uint32_t caplen, uint32_t wirelen, PacketContext& ctx,
               WeirdCounters& weird) {
  if (caplen < kTcpMinHeader || wirelen < kTcpMinHeader) {
    weird.add(Weird::TcpTruncated);
    return false;
  }
  const uint32_t header_len = (data[12] >> 4) * 4U;
  if (header_len < kTcpMinHeader || header_len > wirelen) {
    weird.add(Weird::TcpBadDataOffset);
    return false;
  }
  if (header_len > caplen) {
    weird.add(Weird::TcpTruncated);
    return false;
  }
  ctx.src_port = loadBe16(data);
  ctx.dst_port = loadBe16(data + 2);
  ctx.tcp_seq = loadBe32(data + 4);
  ctx.tcp_ack = loadBe32(data + 8);
  ctx.tcp_flags = data[13];
  ctx.payload = data + header_len;
  ctx.payload_wire_len = wirelen - header_len;
  ctx.payload_len = caplen - header_len;
  return true;
}

}  // namespace exfilwatch::decode
