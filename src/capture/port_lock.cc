// port_lock.cc: the abstract-socket lock and the overlap scan.
#include "capture/port_lock.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "common/net.h"

namespace exfilwatch {

namespace {
constexpr const char* kPrefix = "exfilwatch/udp/";

sockaddr_un abstractAddress(const std::string& name, socklen_t& len) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  // Leading NUL: the abstract namespace, no file to clean up after a crash.
  std::memcpy(a.sun_path + 1, name.data(), name.size());
  len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return a;
}

// The pid of the process listening on the abstract socket `name`, 0 when
// it cannot be told (its queue of unanswered checks is full, or it is gone).
pid_t holderPid(const std::string& name) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return 0;
  socklen_t len = 0;
  const sockaddr_un a = abstractAddress(name, len);
  pid_t pid = 0;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), len) == 0) {
    ucred cred{};
    socklen_t cl = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) pid = cred.pid;
  }
  ::close(fd);
  return pid;
}

bool isWildcard(const IpAddress& a) {
  static const uint8_t zero[16] = {};
  return std::memcmp(a.bytes, zero, a.size()) == 0;
}

// Two sockets on one port whose addresses overlap take each other's
// traffic: the same address, or a wildcard covering the other ("::" is
// dual-stack and covers IPv4 too).
bool overlaps(const IpAddress& a, const IpAddress& b) {
  if (a == b) return true;
  if (isWildcard(a) && (a.family == 6 || b.family == 4)) return true;
  if (isWildcard(b) && (b.family == 6 || a.family == 4)) return true;
  return false;
}

std::string describe(const std::string& name, pid_t pid) {
  const std::string what = name.substr(std::strlen(kPrefix));
  return "another exfilwatch" + (pid > 0 ? " (pid " + std::to_string(pid) + ")" : std::string()) +
         " already listens on " + what + "/udp";
}
}  // namespace

PortLock::PortLock(const std::string& address, uint16_t port) {
  IpAddress addr;
  if (!IpAddress::parse(address, addr)) {
    throw std::runtime_error("bad listen address '" + address + "'");
  }
  // The canonical text, so "::0" and "::" are one lock.
  std::string text = addr.toString();
  if (addr.family == 6) text.insert(0, 1, '[').push_back(']');
  name_ = kPrefix + text + ":" + std::to_string(port);
  const std::string refusal =
      ": refusing to start, since SO_REUSEPORT would let the two sensors split the mirrored "
      "traffic between them; stop the other one, or give this one another listen.address or "
      "port";
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error(std::string("port lock: socket: ") + std::strerror(errno));
  socklen_t len = 0;
  const sockaddr_un a = abstractAddress(name_, len);
  if (::bind(fd_, reinterpret_cast<const sockaddr*>(&a), len) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    if (err == EADDRINUSE) throw std::runtime_error(describe(name_, holderPid(name_)) + refusal);
    throw std::runtime_error("port lock " + name_ + ": " + std::strerror(err));
  }
  // Listening lets a refused sensor ask the holder's pid (SO_PEERCRED).
  ::listen(fd_, 8);

  // Overlapping addresses on the same port are other locks: the kernel
  // lists every abstract socket of this network namespace here. Both of
  // two sensors starting at the same moment may refuse; neither shares.
  std::ifstream in("/proc/net/unix");
  std::string line;
  while (std::getline(in, line)) {
    const auto at = line.rfind(" @");
    if (at == std::string::npos) continue;
    const std::string other = line.substr(at + 2);
    if (other.rfind(kPrefix, 0) != 0 || other == name_) continue;
    const auto colon = other.rfind(':');
    if (colon == std::string::npos || other.substr(colon + 1) != std::to_string(port)) continue;
    std::string other_addr = other.substr(std::strlen(kPrefix), colon - std::strlen(kPrefix));
    if (other_addr.size() > 2 && other_addr.front() == '[') {
      other_addr = other_addr.substr(1, other_addr.size() - 2);
    }
    IpAddress o;
    if (!IpAddress::parse(other_addr, o) || !overlaps(addr, o)) continue;
    const pid_t pid = holderPid(other);
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error(describe(other, pid) + ", which overlaps " + text + ":" +
                             std::to_string(port) + refusal);
  }
}

PortLock::~PortLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace exfilwatch
