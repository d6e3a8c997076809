// udp_listener.cc: socket options and the recvmmsg batch.
#include "capture/udp_listener.h"

#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <time.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace exfilwatch {

namespace {
void setInt(int fd, int level, int name, int value, const char* what) {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0) {
    throw std::runtime_error(std::string("setsockopt ") + what + ": " + std::strerror(errno));
  }
}

long readRmemMax() {
  std::ifstream in("/proc/sys/net/core/rmem_max");
  long v = 0;
  in >> v;
  return v;
}
}  // namespace

UdpListener::UdpListener(boost::asio::io_context& io, const UdpListenerOptions& options,
                         std::string& warning)
    : socket_(io), options_(options), filter_(options.sources) {
  using boost::asio::ip::udp;
  boost::system::error_code ec;
  const auto addr = boost::asio::ip::make_address(options.address, ec);
  if (ec) throw std::runtime_error("bad listen address '" + options.address + "'");
  const udp::endpoint ep(addr, options.port);
  socket_.open(ep.protocol(), ec);
  if (ec) throw std::runtime_error("socket: " + ec.message());
  const int fd = socket_.native_handle();
  fd_ = fd;
  // One socket per worker on the same port: the kernel hashes each outer
  // flow to one of them.
  setInt(fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT");
  setInt(fd, SOL_SOCKET, SO_RXQ_OVFL, 1, "SO_RXQ_OVFL");
  const int asked = static_cast<int>(std::min<uint64_t>(options.rcvbuf_bytes, 1u << 30));
  setInt(fd, SOL_SOCKET, SO_RCVBUF, asked, "SO_RCVBUF");
  socklen_t len = sizeof effective_rcvbuf_;
  ::getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &effective_rcvbuf_, &len);
  // The kernel doubles the value for its bookkeeping and caps the request at
  // net.core.rmem_max: a cap means bursts overflow sooner than configured.
  if (effective_rcvbuf_ / 2 < asked) {
    warning = "listen.rcvbuf_bytes=" + std::to_string(asked) +
              " capped by net.core.rmem_max=" + std::to_string(readRmemMax()) + " (socket got " +
              std::to_string(effective_rcvbuf_) +
              " bytes); raise it: sysctl -w net.core.rmem_max=" + std::to_string(asked);
  }
  socket_.bind(ep, ec);
  if (ec) {
    throw std::runtime_error("bind " + options.address + ":" + std::to_string(options.port) +
                             "/udp: " + ec.message());
  }
  socket_.non_blocking(true, ec);
  local_port_ = localPort();
  // The local address each datagram came to, for EVE's `tunnel`.
  if (addr.is_v6()) {
    setInt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO");
  } else {
    setInt(fd, IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO");
  }

  // Buffers for one batch, allocated once.
  const uint32_t n = std::max<uint32_t>(1, options.batch_size);
  slot_ = (std::max<uint32_t>(options.max_datagram_bytes, 64) + 63) & ~63U;
  slots_.resize(std::size_t{n} * slot_);
  msgs_.resize(n);
  iov_.resize(n);
  names_.resize(n);
  control_len_ = CMSG_SPACE(sizeof(uint32_t)) + CMSG_SPACE(sizeof(in6_pktinfo));
  control_.resize(std::size_t{n} * control_len_);
}

uint32_t UdpListener::caplen(uint32_t i) const { return std::min(msgs_[i].msg_len, slot_); }

uint32_t UdpListener::receiveBatch() {
  const uint32_t n = static_cast<uint32_t>(msgs_.size());
  for (uint32_t i = 0; i < n; ++i) {
    iov_[i].iov_base = slots_.data() + std::size_t{i} * slot_;
    iov_[i].iov_len = slot_;
    msghdr& h = msgs_[i].msg_hdr;
    h.msg_name = &names_[i];
    h.msg_namelen = sizeof(sockaddr_storage);
    h.msg_iov = &iov_[i];
    h.msg_iovlen = 1;
    h.msg_control = control_.data() + std::size_t{i} * control_len_;
    h.msg_controllen = control_len_;
    h.msg_flags = 0;
    msgs_[i].msg_len = 0;
  }
  // MSG_TRUNC: msg_len is the datagram's real size, so an oversize one is
  // seen as cut (caplen < wirelen) instead of silently shortened.
  const int got = ::recvmmsg(fd_, msgs_.data(), n, MSG_DONTWAIT | MSG_TRUNC, nullptr);
  if (got <= 0) {
    if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) ++errors_;
    return 0;
  }
  // One clock read per batch: live timestamps are receive times.
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  batch_ts_.sec = now.tv_sec;
  batch_ts_.usec = static_cast<int32_t>(now.tv_nsec / 1000);
  // SO_RXQ_OVFL: the cumulative drop count rides on datagrams once non-zero.
  for (int i = got - 1; i >= 0; --i) {
    msghdr& h = msgs_[i].msg_hdr;
    bool found = false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL &&
          c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
        uint32_t drops = 0;
        std::memcpy(&drops, CMSG_DATA(c), sizeof drops);
        rxq_ovfl_ = std::max<uint64_t>(rxq_ovfl_, drops);
        found = true;
      }
    }
    if (found) break;
  }
  return static_cast<uint32_t>(got);
}

namespace {
void assign(IpAddress& a, const in6_addr& v6) {
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    a.assignV4(v6.s6_addr + 12);
  } else {
    a.assignV6(v6.s6_addr);
  }
}
}  // namespace

void UdpListener::outer(uint32_t i, FrameOuter& out) const {
  out = FrameOuter{};
  const msghdr& h = msgs_[i].msg_hdr;
  const sockaddr_storage& from = names_[i];
  if (h.msg_namelen >= sizeof(sockaddr_in) && from.ss_family == AF_INET) {
    const auto& s = reinterpret_cast<const sockaddr_in&>(from);
    out.src.assignV4(reinterpret_cast<const uint8_t*>(&s.sin_addr));
    out.src_port = ntohs(s.sin_port);
  } else if (h.msg_namelen >= sizeof(sockaddr_in6) && from.ss_family == AF_INET6) {
    const auto& s = reinterpret_cast<const sockaddr_in6&>(from);
    assign(out.src, s.sin6_addr);
    out.src_port = ntohs(s.sin6_port);
  } else {
    return;  // no sender: nothing to say about the outer packet
  }
  out.dst_port = local_port_;
  for (const cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr;
       c = CMSG_NXTHDR(const_cast<msghdr*>(&h), const_cast<cmsghdr*>(c))) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
        c->cmsg_len >= CMSG_LEN(sizeof(in_pktinfo))) {
      in_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      out.dst.assignV4(reinterpret_cast<const uint8_t*>(&info.ipi_addr));
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
               c->cmsg_len >= CMSG_LEN(sizeof(in6_pktinfo))) {
      in6_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      assign(out.dst, info.ipi6_addr);
    }
  }
  if (out.dst.family == 0) out = FrameOuter{};  // half an outer packet is not written
}

uint64_t UdpListener::kernelDropsNow() const {
  uint32_t mem[SK_MEMINFO_VARS] = {};
  socklen_t len = sizeof mem;
  if (::getsockopt(fd_, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0 ||
      len < sizeof(uint32_t) * (SK_MEMINFO_DROPS + 1)) {
    return rxq_ovfl_;
  }
  return std::max<uint64_t>(rxq_ovfl_, mem[SK_MEMINFO_DROPS]);
}

bool UdpListener::pending() const {
  int bytes = 0;
  if (::ioctl(fd_, FIONREAD, &bytes) != 0) {
    return false;
  }
  return bytes > 0;
}

uint16_t UdpListener::localPort() const {
  boost::system::error_code ec;
  return socket_.local_endpoint(ec).port();
}

}  // namespace exfilwatch
