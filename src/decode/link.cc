// link.cc: Ethernet/VLAN, Linux SLL and SLL2, BSD NULL/LOOP and raw IP.
#include "decode/link.h"

namespace exfilwatch::decode {

namespace {
constexpr uint32_t kEthernetHeader = 14;
constexpr uint32_t kVlanTag = 4;
constexpr int kMaxTagsWalked = 8;  // bound the walk; attackers can stack tags
constexpr uint32_t kSllHeader = 16;
constexpr uint32_t kSll2Header = 20;
constexpr uint32_t kNullHeader = 4;

bool isVlan(uint16_t t) {
  return t == ethertype::kVlan || t == ethertype::kQinQ || t == ethertype::kQinQOld;
}

// BSD address families for IPv6 differ by OS: 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS).
uint16_t ethertypeFromFamily(uint32_t family) {
  switch (family) {
    case 2:
      return ethertype::kIpv4;
    case 10:  // Linux AF_INET6, seen in some captures
    case 24:
    case 28:
    case 30:
      return ethertype::kIpv6;
    default:
      return 0;
  }
}
}  // namespace

uint16_t ethertypeFromIpVersion(const uint8_t* data, uint32_t len) {
  if (len < 1) return 0;
  switch (data[0] >> 4) {
    case 4:
      return ethertype::kIpv4;
    case 6:
      return ethertype::kIpv6;
    default:
      return 0;
  }
}

bool decodeEthernet(const uint8_t* data, uint32_t len, LinkResult& out, PacketContext& ctx,
                    WeirdCounters& weird) {
  ByteReader r(data, len);
  uint16_t type = 0;
  if (!r.u16(12, type)) {
    weird.add(Weird::EtherTruncated);
    return false;
  }
  uint32_t off = kEthernetHeader;
  int walked = 0;
  while (isVlan(type)) {
    uint16_t tci = 0;
    if (!r.u16(off, tci) || !r.u16(off + 2, type)) {
      weird.add(Weird::VlanTruncated);
      return false;
    }
    if (ctx.vlan_count < kMaxVlanTags) {
      ctx.vlan_ids[ctx.vlan_count++] = tci & 0x0FFF;
    } else if (walked == kMaxVlanTags) {
      weird.add(Weird::VlanTooManyTags);
    }
    off += kVlanTag;
    if (++walked >= kMaxTagsWalked) {
      weird.add(Weird::VlanTooManyTags);
      return false;
    }
  }
  out.l3_offset = off;
  out.ethertype = type;
  return type == ethertype::kIpv4 || type == ethertype::kIpv6;
}

bool decodeLink(int linktype, const uint8_t* data, uint32_t len, LinkResult& out,
                PacketContext& ctx, WeirdCounters& weird) {
  ByteReader r(data, len);
  switch (static_cast<LinkType>(linktype)) {
    case LinkType::Ethernet:
      return decodeEthernet(data, len, out, ctx, weird);
    case LinkType::LinuxSll: {
      uint16_t proto = 0;
      if (len < kSllHeader || !r.u16(14, proto)) {
        weird.add(Weird::SllTruncated);
        return false;
      }
      out.l3_offset = kSllHeader;
      out.ethertype = proto;
      break;
    }
    case LinkType::LinuxSll2: {
      uint16_t proto = 0;
      if (len < kSll2Header || !r.u16(0, proto)) {
        weird.add(Weird::SllTruncated);
        return false;
      }
      out.l3_offset = kSll2Header;
      out.ethertype = proto;
      break;
    }
    case LinkType::Null:
    case LinkType::Loop: {
      if (len < kNullHeader) {
        weird.add(Weird::NullTruncated);
        return false;
      }
      uint32_t family = 0;
      r.u32(0, family);
      if (static_cast<LinkType>(linktype) == LinkType::Null) {
        // DLT_NULL is in the capturing host's byte order: accept either.
        const uint32_t swapped = __builtin_bswap32(family);
        if (ethertypeFromFamily(family) == 0) family = swapped;
      }
      out.l3_offset = kNullHeader;
      out.ethertype = ethertypeFromFamily(family);
      if (out.ethertype == 0) {
        weird.add(Weird::NullUnknownFamily);
        return false;
      }
      break;
    }
    case LinkType::Raw:
    case LinkType::RawDlt12:
    case LinkType::RawDlt14:
    case LinkType::Ipv4:
    case LinkType::Ipv6:
      out.l3_offset = 0;
      out.ethertype = ethertypeFromIpVersion(data, len);
      break;
    default:
      weird.add(Weird::LinkUnknownType);
      return false;
  }
  return out.ethertype == ethertype::kIpv4 || out.ethertype == ethertype::kIpv6;
}

}  // namespace exfilwatch::decode
