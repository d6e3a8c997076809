// health.cc: accept-and-close while healthy, no listener while not.
#include "sensor/health.h"

#include <stdexcept>

namespace exfilwatch {

HealthListener::HealthListener(boost::asio::io_context& io, std::string address, uint16_t port)
    : io_(io), address_(std::move(address)), port_(port) {}

bool HealthListener::setHealthy(bool healthy) {
  using boost::asio::ip::tcp;
  if (healthy == (acceptor_ != nullptr)) return true;
  if (!healthy) {
    boost::system::error_code ec;
    acceptor_->close(ec);  // pending async_accept completes with operation_aborted
    acceptor_.reset();
    return true;
  }
  boost::system::error_code ec;
  const auto addr = boost::asio::ip::make_address(address_, ec);
  if (ec) throw std::runtime_error("bad health address '" + address_ + "'");
  auto acc = std::make_unique<tcp::acceptor>(io_);
  const tcp::endpoint ep(addr, port_);
  acc->open(ep.protocol(), ec);
  if (!ec) acc->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acc->bind(ep, ec);
  if (!ec) acc->listen(1024, ec);
  if (ec) {
    throw std::runtime_error("health listener " + address_ + ":" + std::to_string(port_) +
                             "/tcp: " + ec.message());
  }
  acceptor_ = std::move(acc);
  acceptNext();
  return true;
}

void HealthListener::acceptNext() {
  if (!acceptor_) return;
  boost::asio::ip::tcp::acceptor* acc = acceptor_.get();
  acc->async_accept(
      [this, acc](const boost::system::error_code& ec, boost::asio::ip::tcp::socket peer) {
        if (ec == boost::asio::error::operation_aborted || acceptor_.get() != acc) return;
        if (!ec) {
          ++accepted_;
          boost::system::error_code ignored;
          peer.close(ignored);  // accept-and-close is the whole health answer
        }
        acceptNext();
      });
}

}  // namespace exfilwatch
