// port_lock.h: one exfilwatch per UDP address and port. SO_REUSEPORT lets
// any process of the same user join the sensor's socket group, and the
// kernel then splits the mirrored flows between the two: each sensor sees
// half of every tunnel and both report healthy. The lock is an abstract
// unix socket named after the address and port ("@exfilwatch/udp/ADDR:PORT"):
// the kernel releases it when the process dies, however it dies, and it is
// scoped to the network namespace exactly as the UDP port is.
#pragma once

#include <cstdint>
#include <string>

namespace exfilwatch {

class PortLock {
 public:
  // Takes the lock for address:port/udp before the sockets are bound.
  // Throws std::runtime_error, naming the holder's pid when it can, if
  // another exfilwatch holds the same address and port, or an overlapping
  // one (a wildcard address and a specific one on the same port).
  PortLock(const std::string& address, uint16_t port);
  ~PortLock();
  PortLock(const PortLock&) = delete;
  PortLock& operator=(const PortLock&) = delete;

  const std::string& name() const { return name_; }  // without the leading NUL

 private:
  int fd_ = -1;
  std::string name_;
};

}  // namespace exfilwatch
