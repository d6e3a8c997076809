// udp_listener.h: one live tunnel socket (VXLAN or GENEVE) as the Asio
// reactor sees it. Non-blocking, SO_REUSEPORT (one socket per worker, the
// kernel spreads outer flows over them), a large SO_RCVBUF, SO_RXQ_OVFL for
// the kernel's drop count. Reads are recvmmsg batches into buffers allocated
// once; the worker calls receiveBatch() until it returns 0 (EAGAIN), then
// re-arms waitReadable(). Each datagram's sender (msg_name) and local
// address (IP_PKTINFO / IPV6_PKTINFO) are read with it: outer(i) gives the
// outer addresses the kernel took off, and with listen.sources set,
// foreign(i) tells the worker to drop it before decoding.
// Errors opening the socket throw (start-up time); nothing on the receive
// path throws or allocates.
#pragma once

#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "capture/frame.h"
#include "capture/source_filter.h"

namespace exfilwatch {

struct UdpListenerOptions {
  std::string address = "0.0.0.0";
  uint16_t port = 4789;
  uint64_t rcvbuf_bytes = 32u << 20;
  uint32_t batch_size = 64;
  uint32_t max_datagram_bytes = 9216;
  LinkType kind = LinkType::VxlanPayload;  // what the datagrams carry
  std::vector<IpPrefix> sources;           // senders accepted; empty: any
};

class UdpListener {
 public:
  // Opens and binds; throws std::runtime_error with the reason. `warning`
  // is set when the kernel gave a smaller receive buffer than asked for.
  UdpListener(boost::asio::io_context& io, const UdpListenerOptions& options, std::string& warning);

  template <typename Handler>
  void waitReadable(Handler&& h) {
    socket_.async_wait(boost::asio::ip::udp::socket::wait_read, std::forward<Handler>(h));
  }
  void cancel() {
    boost::system::error_code ec;
    socket_.cancel(ec);
  }
  void close() {
    boost::system::error_code ec;
    socket_.close(ec);
  }

  // One recvmmsg. Returns the number of datagrams (0: nothing queued, or an
  // error, counted in errors()). The datagrams stay valid until the next call.
  uint32_t receiveBatch();
  const uint8_t* data(uint32_t i) const { return slots_.data() + std::size_t{i} * slot_; }
  uint32_t caplen(uint32_t i) const;
  uint32_t wirelen(uint32_t i) const { return msgs_[i].msg_len; }  // real size (MSG_TRUNC)
  Timestamp batchTime() const { return batch_ts_; }
  LinkType kind() const { return options_.kind; }
  // listen.sources is set: the worker asks foreign(i) for every datagram.
  bool filtering() const { return !filter_.empty(); }
  // The sender of datagram i is not in listen.sources (only when filtering).
  bool foreign(uint32_t i) const { return !filter_.allows(names_[i]); }
  // Datagram i's outer sender and local address and port (IPv4-mapped
  // addresses of a dual-stack socket as IPv4); family 0 where unknown.
  void outer(uint32_t i, FrameOuter& out) const;

  // The socket's cumulative drop count as last reported by SO_RXQ_OVFL.
  uint64_t kernelDropsSeen() const { return rxq_ovfl_; }
  // The same count read now (SO_MEMINFO): also covers drops after the last
  // datagram we received, which SO_RXQ_OVFL cannot report.
  uint64_t kernelDropsNow() const;
  // Bytes queued in the kernel (SIOCINQ, the first datagram's size for UDP: >0 means pending).
  bool pending() const;
  uint64_t errors() const { return errors_; }
  int effectiveRcvbuf() const { return effective_rcvbuf_; }
  uint16_t localPort() const;
  int nativeHandle() const { return fd_; }

 private:
  boost::asio::ip::udp::socket socket_;
  int fd_ = -1;
  UdpListenerOptions options_;
  uint32_t slot_ = 0;
  std::vector<uint8_t> slots_;
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iov_;
  SourceFilter filter_;
  std::vector<sockaddr_storage> names_;  // senders
  uint16_t local_port_ = 0;              // as bound (port 0: the kernel's choice)
  std::vector<uint8_t> control_;
  std::size_t control_len_ = 0;
  Timestamp batch_ts_;
  uint64_t rxq_ovfl_ = 0;
  uint64_t errors_ = 0;
  int effective_rcvbuf_ = 0;
};

}  // namespace exfilwatch
