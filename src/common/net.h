// net.h: the network values every stage passes around: a packet timestamp
// and an IPv4/IPv6 address. Plain values, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace exfilwatch {

struct Timestamp {
  int64_t sec = 0;
  int32_t usec = 0;
  int64_t micros() const { return sec * 1000000 + usec; }
  bool operator<(const Timestamp& o) const {
    return sec < o.sec || (sec == o.sec && usec < o.usec);
  }
};

// An IPv4 or IPv6 address; IPv4 is kept in the first four bytes.
struct IpAddress {
  uint8_t family = 0;  // 4 or 6, 0 when unset
  uint8_t bytes[16] = {};

  static IpAddress v4(const uint8_t* p) {
    IpAddress a;
    a.assignV4(p);
    return a;
  }
  static IpAddress v6(const uint8_t* p) {
    IpAddress a;
    a.assignV6(p);
    return a;
  }
  // In-place forms for the packet path: building the address on the stack
  // and copying it makes a 16-byte load straddle the 4-byte store just made,
  // a store-forwarding stall per packet.
  void assignV4(const uint8_t* p) {
    family = 4;
    std::memcpy(bytes, p, 4);
    std::memset(bytes + 4, 0, sizeof bytes - 4);
  }
  void assignV6(const uint8_t* p) {
    family = 6;
    std::memcpy(bytes, p, 16);
  }
  std::size_t size() const { return family == 6 ? 16 : 4; }
  bool operator==(const IpAddress& o) const {
    return family == o.family && std::memcmp(bytes, o.bytes, size()) == 0;
  }
  bool operator!=(const IpAddress& o) const { return !(*this == o); }
  uint64_t hash() const;
  std::string toString() const;
  // Parses dotted IPv4 or textual IPv6; false on anything else.
  static bool parse(const std::string& text, IpAddress& out);
};

}  // namespace exfilwatch
