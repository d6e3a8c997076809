// tunnel.cc: VXLAN, GENEVE and GRE header analyzers.
#include "decode/tunnel.h"

#include "decode/link.h"

namespace exfilwatch::decode {

bool decodeVxlan(const uint8_t* data, uint32_t len, TunnelLayer& layer, uint32_t& inner_offset,
                 WeirdCounters& weird) {
  ByteReader r(data, len);
  uint32_t flags_word = 0;
  uint32_t vni_word = 0;
  if (!r.u32(0, flags_word) || !r.u32(4, vni_word)) {
    weird.add(Weird::VxlanTruncated);
    return false;
  }
  // RFC 7348: flags 0x08 (I) must be set; other bits are reserved. Linux and
  // AWS set exactly 0x08; group-policy (0x80) extensions are tolerated.
  if ((flags_word & 0x08000000U) == 0) {
    weird.add(Weird::VxlanBadFlags);
    return false;
  }
  layer.type = TunnelType::Vxlan;
  layer.vni = vni_word >> 8;
  inner_offset = kVxlanHeader;
  return true;
}

bool decodeGeneve(const uint8_t* data, uint32_t len, TunnelLayer& layer, uint32_t& inner_offset,
                  uint16_t& inner_ethertype, WeirdCounters& weird) {
  ByteReader r(data, len);
  uint8_t ver_optlen = 0;
  uint16_t proto = 0;
  uint32_t vni_word = 0;
  if (!r.u8(0, ver_optlen) || !r.u16(2, proto) || !r.u32(4, vni_word)) {
    weird.add(Weird::GeneveTruncated);
    return false;
  }
  if ((ver_optlen >> 6) != 0) {
    weird.add(Weird::GeneveBadVersion);
    return false;
  }
  const uint32_t options_len = (ver_optlen & 0x3FU) * 4U;
  if (!r.has(kGeneveHeader, options_len)) {
    weird.add(Weird::GeneveOptionsTruncated);
    return false;
  }
  if (proto != ethertype::kTransparentEthernet && proto != ethertype::kIpv4 &&
      proto != ethertype::kIpv6) {
    weird.add(Weird::GeneveUnknownProtocol);
    return false;
  }
  layer.type = TunnelType::Geneve;
  layer.vni = vni_word >> 8;
  inner_offset = kGeneveHeader + options_len;
  inner_ethertype = proto;
  return true;
}

bool decodeGre(const uint8_t* data, uint32_t len, uint32_t& inner_offset, uint16_t& inner_ethertype,
               WeirdCounters& weird) {
  constexpr uint16_t kChecksum = 0x8000, kRouting = 0x4000, kKey = 0x2000, kSequence = 0x1000,
                     kStrictRoute = 0x0800, kAck = 0x0080;
  ByteReader r(data, len);
  uint16_t flags = 0;
  uint16_t proto = 0;
  if (!r.u16(0, flags) || !r.u16(2, proto)) {
    weird.add(Weird::GreTruncated);
    return false;
  }
  uint32_t header = 4;
  switch (flags & 0x7U) {
    case 0:
      if (flags & (kRouting | kStrictRoute)) {
        weird.add(Weird::GreBadFlags);
        return false;
      }
      if (flags & kChecksum) header += 4;  // checksum, reserved1
      if (flags & kKey) header += 4;
      if (flags & kSequence) header += 4;
      break;
    case 1:
      // Enhanced GRE: no checksum or routing, the key always present.
      if ((flags & (kChecksum | kRouting | kStrictRoute)) || !(flags & kKey) ||
          proto != ethertype::kPpp) {
        weird.add(Weird::GreBadFlags);
        return false;
      }
      header += 4;
      if (flags & kSequence) header += 4;
      if (flags & kAck) header += 4;
      break;
    default:
      weird.add(Weird::GreBadVersion);
      return false;
  }
  if (!r.has(0, header)) {
    weird.add(Weird::GreTruncated);
    return false;
  }
  inner_offset = header;
  inner_ethertype = proto;
  return true;
}

}  // namespace exfilwatch::decode
