// link.cc: Ethernet/VLAN/PPPoE, Linux SLL and SLL2, BSD NULL/LOOP, FDDI, raw
// IP, and PPP.
#include "decode/link.h"

#include <algorithm>

namespace exfilwatch::decode {

namespace {
constexpr uint32_t kEthernetHeader = 14;
constexpr uint32_t kVlanTag = 4;
constexpr int kMaxTagsWalked = 8;  // bound the walk; attackers can stack tags
constexpr uint32_t kSllHeader = 16;
constexpr uint32_t kSll2Header = 20;
constexpr uint32_t kNullHeader = 4;
constexpr uint32_t kPppoeHeader = 6;
constexpr uint32_t kFddiHeader = 13;  // frame control, destination, source
constexpr uint32_t kSnapHeader = 8;   // 802.2 LLC AA AA 03, OUI, EtherType

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

bool decodePpp(const uint8_t* data, uint32_t len, LinkResult& out, WeirdCounters& weird) {
  uint32_t off = 0;
  if (len >= 2 && data[0] == 0xFF && data[1] == 0x03) off = 2;  // address, control
  if (off >= len) {
    weird.add(Weird::PppTruncated);
    return false;
  }
  // Protocol numbers are odd in their last octet and even in the first, so
  // an odd first octet is a compressed (one-octet) field (RFC 1661 §6.5).
  uint16_t protocol = data[off];
  if ((protocol & 1U) != 0) {
    off += 1;
  } else {
    if (len - off < 2) {
      weird.add(Weird::PppTruncated);
      return false;
    }
    protocol = loadBe16(data + off);
    off += 2;
  }
  out.l3_offset = off;
  out.ethertype = protocol == 0x0021 ? ethertype::kIpv4 : protocol == 0x0057 ? ethertype::kIpv6 : 0;
  return out.ethertype != 0;
}

bool decodePppoeSession(const uint8_t* data, uint32_t len, LinkResult& out, WeirdCounters& weird) {
  if (len < kPppoeHeader) {
    weird.add(Weird::PppoeTruncated);
    return false;
  }
  // Version 1, type 1, code 0 (session data); then the session id and the
  // length of the PPP frame, which excludes Ethernet padding.
  if (data[0] != 0x11 || data[1] != 0x00) {
    weird.add(Weird::PppoeBadHeader);
    return false;
  }
  const uint32_t ppp_len = std::min<uint32_t>(loadBe16(data + 4), len - kPppoeHeader);
  LinkResult ppp;
  if (!decodePpp(data + kPppoeHeader, ppp_len, ppp, weird)) return false;
  out.l3_offset = kPppoeHeader + ppp.l3_offset;
  out.ethertype = ppp.ethertype;
  return true;
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
  if (type == ethertype::kPppoeSession) {
    LinkResult ppp;
    if (!decodePppoeSession(data + off, len - off, ppp, weird)) return false;
    out.l3_offset = off + ppp.l3_offset;
    out.ethertype = ppp.ethertype;
    return true;
  }
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
    case LinkType::Fddi: {
      // Frame control, addresses (their bit order does not matter here),
      // then 802.2 LLC. Only SNAP carries an EtherType; other LLC frames
      // (SMT, NetBIOS ...) are not IP.
      if (len < kFddiHeader + 3) {
        weird.add(Weird::LinkTruncated);
        return false;
      }
      const uint8_t* llc = data + kFddiHeader;
      if (llc[0] != 0xAA || llc[1] != 0xAA || llc[2] != 0x03) return false;
      if (len < kFddiHeader + kSnapHeader) {
        weird.add(Weird::LinkTruncated);
        return false;
      }
      out.l3_offset = kFddiHeader + kSnapHeader;
      out.ethertype = loadBe16(llc + 6);
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
