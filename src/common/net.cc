// net.cc: address helpers (hashing, text forms).
#include "common/net.h"

#include <arpa/inet.h>

#include "common/hash.h"

namespace exfilwatch {

uint64_t IpAddress::hash() const {
  // FNV-1a over the significant bytes: cheap, and state tables mix it again.
  return hashing::fnv1a(bytes, size(), hashing::kFnvOffset ^ family);
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
