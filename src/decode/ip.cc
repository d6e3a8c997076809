// ip.cc: IPv4 and IPv6 header analyzers.
#include "decode/ip.h"

namespace exfilwatch::decode {

namespace {
constexpr uint32_t kIpv4MinHeader = 20;
constexpr uint32_t kIpv6Header = 40;
constexpr int kMaxExtensionHeaders = 8;  // more is an evasion attempt, not traffic

// Walks IPv4 options only to notice malformed ones; they carry nothing we use.
void checkIpv4Options(const uint8_t* opt, uint32_t len, WeirdCounters& weird) {
  uint32_t i = 0;
  while (i < len) {
    const uint8_t type = opt[i];
    if (type == 0) return;  // end of option list
    if (type == 1) {        // no-operation
      ++i;
      continue;
    }
    if (i + 1 >= len || opt[i + 1] < 2 || opt[i + 1] > len - i) {
      weird.add(Weird::Ipv4BadOption);
      return;
    }
    i += opt[i + 1];
  }
}

// Transport bytes present, given the wire length from the header and what
// was captured; counts a cut packet once.
uint32_t capturedPart(uint32_t wire_total, uint32_t have, WeirdCounters& weird) {
  if (have < wire_total) {
    weird.add(Weird::IpSnapTruncated);
    return have;
  }
  return wire_total;
}
}  // namespace

bool decodeIpv4(const uint8_t* data, uint32_t len, IpResult& out, PacketContext& ctx,
                WeirdCounters& weird) {
  if (len < kIpv4MinHeader) {
    weird.add(Weird::Ipv4Truncated);
    return false;
  }
  if ((data[0] >> 4) != 4) {
    weird.add(Weird::Ipv4BadVersion);
    return false;
  }
  const uint32_t header_len = (data[0] & 0x0FU) * 4U;
  if (header_len < kIpv4MinHeader) {
    weird.add(Weird::Ipv4BadHeaderLength);
    return false;
  }
  if (len < header_len) {
    weird.add(Weird::Ipv4Truncated);
    return false;
  }
  const uint32_t total_len = loadBe16(data + 2);
  if (total_len < header_len) {
    weird.add(Weird::Ipv4BadTotalLength);
    return false;
  }
  checkIpv4Options(data + kIpv4MinHeader, header_len - kIpv4MinHeader, weird);

  const uint16_t frag = loadBe16(data + 6);
  out.fragment_offset = (frag & 0x1FFFU) * 8U;
  out.more_fragments = (frag & 0x2000U) != 0;
  out.fragment = out.more_fragments || out.fragment_offset != 0;
  out.fragment_id = loadBe16(data + 4);
  out.proto = data[9];
  out.l4_offset = header_len;
  out.l4_wirelen = total_len - header_len;
  out.l4_caplen = capturedPart(total_len, len, weird) - header_len;

  ctx.ip_version = 4;
  ctx.ip_proto = out.proto;
  ctx.src.assignV4(data + 12);
  ctx.dst.assignV4(data + 16);
  ctx.ip_wire_len = total_len;
  return true;
}

bool decodeIpv6(const uint8_t* data, uint32_t len, IpResult& out, PacketContext& ctx,
                WeirdCounters& weird) {
  if (len < kIpv6Header) {
    weird.add(Weird::Ipv6Truncated);
    return false;
  }
  if ((data[0] >> 4) != 6) {
    weird.add(Weird::Ipv6BadVersion);
    return false;
  }
  const uint32_t payload_len = loadBe16(data + 4);
  uint8_t next = data[6];
  ctx.ip_version = 6;
  ctx.src.assignV6(data + 8);
  ctx.dst.assignV6(data + 24);
  ctx.ip_wire_len = kIpv6Header + payload_len;

  if (payload_len == 0 && next == 0) {
    // A jumbogram (RFC 2675) announces its size in a hop-by-hop option;
    // mirrored DNS and TLS never need one.
    weird.add(Weird::Ipv6JumboUnsupported);
    return false;
  }
  const uint32_t have = len - kIpv6Header;
  const uint32_t present = capturedPart(payload_len, have, weird);
  ByteReader r(data + kIpv6Header, present);

  uint32_t off = 0;
  for (int i = 0;; ++i) {
    if (i > kMaxExtensionHeaders) {
      weird.add(Weird::Ipv6TooManyExt);
      return false;
    }
    uint8_t following = 0;
    uint8_t ext_len = 0;
    uint32_t size = 0;
    switch (next) {
      case 0:    // hop-by-hop options
      case 43:   // routing
      case 60:   // destination options
      case 135:  // mobility
      case 139:  // HIP
      case 140:  // shim6
        if (!r.u8(off, following) || !r.u8(off + 1, ext_len)) {
          weird.add(Weird::Ipv6ExtTruncated);
          return false;
        }
        size = (uint32_t{ext_len} + 1U) * 8U;
        break;
      case 51:  // authentication header: length in 4-octet units, minus 2
        if (!r.u8(off, following) || !r.u8(off + 1, ext_len)) {
          weird.add(Weird::Ipv6ExtTruncated);
          return false;
        }
        size = (uint32_t{ext_len} + 2U) * 4U;
        break;
      case 44: {  // fragment
        uint16_t offset_flags = 0;
        uint32_t id = 0;
        if (!r.u8(off, following) || !r.u16(off + 2, offset_flags) || !r.u32(off + 4, id)) {
          weird.add(Weird::Ipv6ExtTruncated);
          return false;
        }
        size = 8;
        out.fragment_offset = offset_flags & 0xFFF8U;
        out.more_fragments = (offset_flags & 0x1U) != 0;
        out.fragment = out.more_fragments || out.fragment_offset != 0;
        out.fragment_id = id;
        break;
      }
      default:
        out.proto = next;
        out.l4_offset = kIpv6Header + off;
        out.l4_wirelen = payload_len - off;
        out.l4_caplen = present - off;
        ctx.ip_proto = next;
        return true;
    }
    if (!r.has(off, size) || off + size > payload_len) {
      weird.add(Weird::Ipv6ExtTruncated);
      return false;
    }
    off += size;
    next = following;
  }
}

}  // namespace exfilwatch::decode
