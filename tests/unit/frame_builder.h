// frame_builder.h: DNS messages and Ethernet frames (IPv4/IPv6, UDP/TCP,
// VXLAN) built byte by byte, for unit tests that drive a whole Engine.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace exfilwatch::testing {

using Bytes = std::vector<uint8_t>;

inline void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
inline void put32(Bytes& b, uint32_t v) {
  put16(b, static_cast<uint16_t>(v >> 16));
  put16(b, static_cast<uint16_t>(v));
}
inline void append(Bytes& b, const Bytes& more) { b.insert(b.end(), more.begin(), more.end()); }

// ---- DNS ----

inline constexpr uint16_t kTypeA = 1;
inline constexpr uint16_t kTypeTxt = 16;

// A name in wire format, uncompressed ("a.b" -> 1 a 1 b 0).
inline Bytes dnsName(std::string_view name) {
  Bytes b;
  std::size_t start = 0;
  while (start < name.size()) {
    std::size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    b.push_back(static_cast<uint8_t>(dot - start));
    b.insert(b.end(), name.begin() + static_cast<long>(start),
             name.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  b.push_back(0);
  return b;
}

// A header: RD set, the given counts.
inline Bytes dnsHeader(uint16_t id, uint16_t qdcount, uint16_t ancount = 0) {
  Bytes b;
  put16(b, id);
  put16(b, 0x0100);  // RD
  put16(b, qdcount);
  put16(b, ancount);
  put16(b, 0);
  put16(b, 0);
  return b;
}

// A query asking every name in `names` (type A, class IN).
inline Bytes dnsQuery(uint16_t id, const std::vector<std::string>& names, uint16_t qtype = kTypeA) {
  Bytes b = dnsHeader(id, static_cast<uint16_t>(names.size()));
  for (const auto& n : names) {
    append(b, dnsName(n));
    put16(b, qtype);
    put16(b, 1);
  }
  return b;
}

// The response to a one-question `query`: QR and RA set, `rcode`, and for
// NOERROR one A record (the question's name by a compression pointer).
inline Bytes dnsResponse(const Bytes& query, uint8_t rcode, std::array<uint8_t, 4> address = {}) {
  Bytes b = query;
  b[2] |= 0x80;                                        // QR
  b[3] = static_cast<uint8_t>(0x80 | (rcode & 0x0F));  // RA, rcode
  if (rcode == 0) {
    b[7] = 1;  // ANCOUNT
    put16(b, 0xC00C);
    put16(b, kTypeA);
    put16(b, 1);
    put32(b, 60);
    put16(b, 4);
    b.insert(b.end(), address.begin(), address.end());
  }
  return b;
}

// The response to a one-question `query` with one TXT record holding
// `text` (split into character-strings of at most 255 bytes).
inline Bytes dnsTxtResponse(const Bytes& query, std::string_view text) {
  Bytes b = query;
  b[2] |= 0x80;
  b[3] = 0x80;
  b[7] = 1;
  put16(b, 0xC00C);
  put16(b, kTypeTxt);
  put16(b, 1);
  put32(b, 60);
  Bytes rdata;
  for (std::size_t at = 0; at < text.size(); at += 255) {
    const std::string_view piece = text.substr(at, 255);
    rdata.push_back(static_cast<uint8_t>(piece.size()));
    rdata.insert(rdata.end(), piece.begin(), piece.end());
  }
  put16(b, static_cast<uint16_t>(rdata.size()));
  append(b, rdata);
  return b;
}

// ---- addresses and frames ----

struct Host {
  bool v6 = false;
  std::array<uint8_t, 16> addr{};
};
inline Host ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  Host h;
  h.addr[0] = a, h.addr[1] = b, h.addr[2] = c, h.addr[3] = d;
  return h;
}
// 2001:db8::<last>
inline Host ip6(uint8_t last) {
  Host h;
  h.v6 = true;
  h.addr[0] = 0x20, h.addr[1] = 0x01, h.addr[2] = 0x0d, h.addr[3] = 0xb8;
  h.addr[15] = last;
  return h;
}

inline Bytes udpHeader(uint16_t sport, uint16_t dport, const Bytes& payload) {
  Bytes b;
  put16(b, sport);
  put16(b, dport);
  put16(b, static_cast<uint16_t>(8 + payload.size()));
  put16(b, 0);
  append(b, payload);
  return b;
}

namespace tcpflags {
inline constexpr uint8_t kFin = 0x01, kSyn = 0x02, kPsh = 0x08, kAck = 0x10;
}

inline Bytes tcpHeader(uint16_t sport, uint16_t dport, uint32_t seq, uint8_t flags,
                       const Bytes& payload) {
  Bytes b;
  put16(b, sport);
  put16(b, dport);
  put32(b, seq);
  put32(b, 0);          // ack
  b.push_back(5 << 4);  // data offset: 20 bytes
  b.push_back(flags);
  put16(b, 65535);  // window
  put16(b, 0);      // checksum (not verified)
  put16(b, 0);      // urgent
  append(b, payload);
  return b;
}

// An IPv4 or IPv6 packet (by the hosts' family) carrying `l4` of `proto`.
inline Bytes ipPacket(const Host& src, const Host& dst, uint8_t proto, const Bytes& l4) {
  Bytes b;
  if (!src.v6) {
    b.push_back(0x45);
    b.push_back(0);
    put16(b, static_cast<uint16_t>(20 + l4.size()));
    put16(b, 1);       // id
    put16(b, 0x4000);  // DF
    b.push_back(64);
    b.push_back(proto);
    put16(b, 0);
    b.insert(b.end(), src.addr.begin(), src.addr.begin() + 4);
    b.insert(b.end(), dst.addr.begin(), dst.addr.begin() + 4);
  } else {
    put32(b, 0x60000000);
    put16(b, static_cast<uint16_t>(l4.size()));
    b.push_back(proto);
    b.push_back(64);
    b.insert(b.end(), src.addr.begin(), src.addr.end());
    b.insert(b.end(), dst.addr.begin(), dst.addr.end());
  }
  append(b, l4);
  return b;
}

inline Bytes ethernet(const Bytes& ip, bool v6) {
  Bytes b = {0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2};
  put16(b, v6 ? 0x86DD : 0x0800);
  append(b, ip);
  return b;
}

inline Bytes udpFrame(const Host& src, uint16_t sport, const Host& dst, uint16_t dport,
                      const Bytes& payload) {
  return ethernet(ipPacket(src, dst, 17, udpHeader(sport, dport, payload)), src.v6);
}

inline Bytes tcpFrame(const Host& src, uint16_t sport, const Host& dst, uint16_t dport,
                      uint32_t seq, uint8_t flags, const Bytes& payload) {
  return ethernet(ipPacket(src, dst, 6, tcpHeader(sport, dport, seq, flags, payload)), src.v6);
}

// `inner` (an Ethernet frame) inside VXLAN (`vni`) to UDP port 4789, from
// a mirror source 172.16.0.1 to the sensor 172.16.0.2.
inline Bytes vxlanFrame(const Bytes& inner, uint32_t vni) {
  Bytes vx = {0x08, 0, 0, 0};  // I flag
  put32(vx, vni << 8);
  append(vx, inner);
  return udpFrame(ip4(172, 16, 0, 1), 49152, ip4(172, 16, 0, 2), 4789, vx);
}

// A length-prefixed DNS message, as DNS over TCP carries it.
inline Bytes tcpFramed(const Bytes& msg) {
  Bytes b;
  put16(b, static_cast<uint16_t>(msg.size()));
  append(b, msg);
  return b;
}

}  // namespace exfilwatch::testing
