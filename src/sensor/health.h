// health.h: the TCP port the Network Load Balancer's health check connects
// to. While the sensor can do its job it accepts and immediately closes;
// while it cannot (no usable rules, a stalled worker) the listening socket
// is closed, so checks are refused (RST) and the NLB sends the traffic to
// healthy sensors. It runs on the control thread, never on a worker, and
// the control thread runs at a lower CPU priority than the workers, so a
// connection flood costs the flood's own CPU, not packet processing.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <string>

namespace exfilwatch {

class HealthListener {
 public:
  HealthListener(boost::asio::io_context& io, std::string address, uint16_t port);

  // Opens (healthy) or closes (unhealthy) the listening socket. Throws
  // std::runtime_error if the port cannot be bound when turning healthy at
  // start-up; later failures to reopen are returned as false.
  bool setHealthy(bool healthy);
  bool healthy() const { return acceptor_ != nullptr; }
  uint64_t accepted() const { return accepted_; }
  uint16_t port() const { return port_; }

 private:
  void acceptNext();
  boost::asio::io_context& io_;
  std::string address_;
  uint16_t port_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  uint64_t accepted_ = 0;
};

}  // namespace exfilwatch
