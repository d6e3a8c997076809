// source_filter.cc: CIDR parsing and the per-datagram sender test.
#include "capture/source_filter.h"

#include <arpa/inet.h>

#include <cstdlib>
#include <cstring>

namespace exfilwatch {

namespace {
// The first `length` bits of a and b are equal.
bool samePrefix(const uint8_t* a, const uint8_t* b, uint8_t length) {
  const uint8_t whole = length / 8;
  if (std::memcmp(a, b, whole) != 0) return false;
  const uint8_t rest = length % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xFF << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}
}  // namespace

bool IpPrefix::parse(const std::string& text, IpPrefix& out, std::string& error) {
  const auto slash = text.find('/');
  const std::string addr = text.substr(0, slash);
  IpPrefix p;
  if (!IpAddress::parse(addr, p.network)) {
    error = "'" + text + "' is not an address or CIDR prefix";
    return false;
  }
  const unsigned max = p.network.family == 4 ? 32 : 128;
  unsigned length = max;
  if (slash != std::string::npos) {
    const std::string len = text.substr(slash + 1);
    char* end = nullptr;
    const unsigned long n = std::strtoul(len.c_str(), &end, 10);
    if (len.empty() || len.size() > 3 || *end != '\0' || n > max) {
      error = "'" + text + "': prefix length must be 0 to " + std::to_string(max);
      return false;
    }
    length = static_cast<unsigned>(n);
  }
  p.length = static_cast<uint8_t>(length);
  // Clear the host bits, so "10.1.2.3/8" means 10.0.0.0/8 everywhere.
  for (unsigned bit = length; bit < max; ++bit) {
    p.network.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80U >> (bit % 8)));
  }
  out = p;
  return true;
}

bool IpPrefix::contains(const IpAddress& a) const {
  return a.family == network.family && samePrefix(a.bytes, network.bytes, length);
}

std::string IpPrefix::toString() const { return network.toString() + "/" + std::to_string(length); }

SourceFilter::SourceFilter(const std::vector<IpPrefix>& prefixes) {
  for (const IpPrefix& p : prefixes) {
    if (p.network.family == 4) {
      uint32_t net = 0;
      std::memcpy(&net, p.network.bytes, 4);
      const uint32_t mask = p.length == 0 ? 0 : ~uint32_t{0} << (32 - p.length);
      v4_.push_back({ntohl(net) & mask, mask});
    } else {
      v6_.push_back(p);
    }
  }
}

bool SourceFilter::allows(const sockaddr_storage& from) const {
  const uint8_t* v4 = nullptr;
  if (from.ss_family == AF_INET) {
    v4 = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in&>(from).sin_addr);
  } else if (from.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(from).sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a)) {
      v4 = a.s6_addr + 12;
    } else {
      for (const IpPrefix& p : v6_) {
        if (samePrefix(a.s6_addr, p.network.bytes, p.length)) return true;
      }
      return false;
    }
  } else {
    return false;  // no sender address: not a datagram we can vouch for
  }
  uint32_t addr = 0;
  std::memcpy(&addr, v4, 4);
  addr = ntohl(addr);
  for (const V4& p : v4_) {
    if ((addr & p.mask) == p.network) return true;
  }
  return false;
}

}  // namespace exfilwatch
