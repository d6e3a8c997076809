// source_filter.h: which outer source addresses may feed the sensor
// (listen.sources). Anyone who reaches the UDP port can forge VXLAN: inject
// alerts, or flood state to hide a tunnel. The listener checks each
// datagram's sender against a short list of CIDR prefixes before anything
// decodes it; an empty list accepts every sender and costs nothing.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/net.h"

namespace exfilwatch {

// An IPv4 or IPv6 prefix ("10.0.0.0/8", "2001:db8::/32"; a bare address is
// a /32 or /128). Host bits are cleared when parsed.
struct IpPrefix {
  IpAddress network;
  uint8_t length = 0;

  // False with the reason in `error` ("10.0.0.0/33": length out of range).
  static bool parse(const std::string& text, IpPrefix& out, std::string& error);
  bool contains(const IpAddress& a) const;
  std::string toString() const;
  bool operator==(const IpPrefix& o) const { return network == o.network && length == o.length; }
};

// The prefixes in a form cheap to test per datagram: IPv4 as (network,
// mask) words, IPv6 as bytes. An IPv4-mapped IPv6 sender (a dual-stack
// socket) is tested as IPv4.
class SourceFilter {
 public:
  SourceFilter() = default;
  explicit SourceFilter(const std::vector<IpPrefix>& prefixes);
  bool empty() const { return v4_.empty() && v6_.empty(); }
  bool allows(const sockaddr_storage& from) const;

 private:
  struct V4 {
    uint32_t network, mask;  // host byte order
  };
  std::vector<V4> v4_;
  std::vector<IpPrefix> v6_;
};

}  // namespace exfilwatch
