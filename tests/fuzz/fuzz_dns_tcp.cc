// fuzz_dns_tcp.cc: libFuzzer target for DNS-over-TCP reassembly
// (dns::TcpReassembler) with small limits, so eviction and the byte budget
// are reached. Input: segments "ctl u8, len u16 big-endian, bytes".
//   ctl & 0x01  direction (0 client->server, 1 server->client)
//   ctl & 0x02  SYN     ctl & 0x04 FIN     ctl & 0x08 RST
//   ctl & 0x30  sequence: 0 contiguous, 1 skip len bytes (gap),
//               2 retransmit the previous segment's range, 3 jump by 2^31
//   ctl & 0x40  switch to another client port (another flow)
//   ctl & 0x80  advance packet time by 90 s (idle expiry)
// Every message the reassembler emits is parsed with dns::Parser.
#include <cstddef>
#include <cstdint>

#include "decode/packet.h"
#include "decode/weird.h"
#include "dns/message.h"
#include "dns/tcp_stream.h"

namespace {

using namespace exfilwatch;

struct ParseSink : dns::TcpMessageSink {
  dns::Parser parser;
  dns::DnsMessage msg;
  WeirdCounters* weird = nullptr;
  void onTcpDnsMessage(const PacketContext&, const uint8_t* m, std::size_t len) override {
    parser.parse(m, len, msg, *weird);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  dns::TcpLimits limits;
  limits.max_flows = 4;
  limits.max_buffered_bytes = 8192;
  limits.idle_timeout_sec = 60;
  dns::TcpReassembler r(limits);
  WeirdCounters weird;
  ParseSink sink;
  sink.weird = &weird;
  const uint8_t cli[4] = {10, 0, 0, 1}, srv[4] = {10, 0, 0, 53};
  uint32_t seq[2] = {1000, 5000000};
  uint32_t last_len[2] = {0, 0};
  uint16_t port = 40000;
  int64_t sec = 1;
  std::size_t off = 0;
  while (size - off >= 3) {
    const uint8_t ctl = data[off];
    uint32_t len = static_cast<uint32_t>(data[off + 1] << 8 | data[off + 2]);
    off += 3;
    if (len > size - off) len = static_cast<uint32_t>(size - off);
    const int dir = ctl & 1;
    if (ctl & 0x40) ++port;
    if (ctl & 0x80) sec += 90;
    switch ((ctl >> 4) & 3) {
      case 1: seq[dir] += len; break;
      case 2: seq[dir] -= last_len[dir]; break;
      case 3: seq[dir] += 0x80000000u; break;
      default: break;
    }
    PacketContext p;
    p.ts = Timestamp{sec, 0};
    p.ip_version = 4;
    p.ip_proto = ipproto::kTcp;
    p.src = IpAddress::v4(dir ? srv : cli);
    p.dst = IpAddress::v4(dir ? cli : srv);
    p.src_port = dir ? 53 : port;
    p.dst_port = dir ? port : 53;
    p.tcp_seq = seq[dir];
    p.tcp_flags = static_cast<uint8_t>(tcpflag::kAck | ((ctl >> 1) & 0x07));
    p.payload = data + off;
    p.payload_len = len;
    p.payload_wire_len = len;
    r.onSegment(p, weird, sink);
    seq[dir] += len + ((ctl & 0x02) ? 1 : 0);
    last_len[dir] = len;
    off += len;
    r.expire(Timestamp{sec, 0});
  }
  return 0;
}
