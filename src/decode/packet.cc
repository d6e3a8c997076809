// packet.cc: address helpers for the packet context (hashing, text forms).
#include "decode/packet.h"

#include <arpa/inet.h>

namespace exfilwatch {

uint64_t IpAddress::hash() const {
  // FNV-1a over the significant bytes: cheap, and state tables mix it again.
  uint64_t h = 1469598103934665603ULL ^ family;
  for (std::size_t i = 0; i < size(); ++i) {
    h ^= bytes[i];
    h *= 1099511628211ULL;
  }
  return h;
}

std::string IpAddress::toString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == 4) {
    inet_ntop(AF_INET, bytes, buf, sizeof buf);
  } else if (family == 6) {
    inet_ntop(AF_INET6, bytes, buf, sizeof buf);
  }
  return buf;
}

bool IpAddress::parse(const std::string& text, IpAddress& out) {
  IpAddress a;
  if (inet_pton(AF_INET, text.c_str(), a.bytes) == 1) {
    a.family = 4;
  } else if (inet_pton(AF_INET6, text.c_str(), a.bytes) == 1) {
    a.family = 6;
  } else {
    return false;
  }
  out = a;
  return true;
}

}  // namespace exfilwatch
