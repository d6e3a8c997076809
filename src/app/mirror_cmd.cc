// mirror_cmd.cc: `exfilwatch mirror`: sends captures to a sensor the way a
// VPC traffic-mirror session does. Each frame goes out VXLAN-encapsulated
// (VNI --vni) in its own UDP datagram; frames already encapsulated (outer
// UDP 4789/6081) are re-sent as they are. The outer source port is a hash of
// the inner 5-tuple in 49152-65535, as AWS varies it per inner flow, so a
// receiver with SO_REUSEPORT sees one client's flows on several sockets.
//
// A UDP socket has one source port, so a small pool of sockets bound to
// ports in that range stands in for the hash range (flowHash % pool); each
// inner flow always uses the same one, so per-flow order is kept. Frames
// are read into memory first, so --loop and --pps measure the receiver, not
// pcap parsing. Pacing is per batch against a monotonic clock.
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "app/cli.h"
#include "app/commands.h"
#include "capture/pcap_source.h"
#include "decode/inner_peek.h"
#include "decode/ip.h"
#include "decode/link.h"
#include "decode/transport.h"

namespace exfilwatch::app {

namespace {

struct Datagram {
  uint32_t offset;  // into the arena
  uint32_t len;
  uint16_t socket;    // index into the socket pool
  int64_t offset_us;  // capture time since the first frame (--realtime)
};

constexpr uint32_t kMaxDatagram = 65507;

bool parseHostPort(const std::string& text, sockaddr_storage& out, socklen_t& len) {
  std::string host;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return false;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) return false;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) return false;
  std::memcpy(&out, res->ai_addr, res->ai_addrlen);
  len = res->ai_addrlen;
  ::freeaddrinfo(res);
  return true;
}

// The tunnel payload for one captured frame: appended to `arena`.
// Returns false for frames that cannot be sent (non-IP on a non-Ethernet link...).
bool encapsulate(const Frame& frame, uint32_t vni, std::vector<uint8_t>& arena, uint64_t& hash) {
  // Already a tunnel datagram? Then send its UDP payload unchanged.
  const uint8_t* payload = nullptr;
  uint32_t payload_len = 0;
  bool vxlan = false;
  if (tunnelPayloadOf(frame, payload, payload_len, vxlan)) {
    InnerFlow f;
    hash = peekInnerFlow(payload, payload_len, vxlan, f) ? flowHash(f) : 0;
    arena.insert(arena.end(), payload, payload + payload_len);
    return true;
  }
  PacketContext ctx;
  WeirdCounters weird;
  decode::LinkResult link;
  const bool ip = decode::decodeLink(frame.linktype, frame.data, frame.caplen, link, ctx, weird);
  const uint8_t header[8] = {0x08,
                             0,
                             0,
                             0,
                             static_cast<uint8_t>(vni >> 16),
                             static_cast<uint8_t>(vni >> 8),
                             static_cast<uint8_t>(vni),
                             0};
  const std::size_t start = arena.size();
  arena.insert(arena.end(), header, header + 8);
  if (frame.linktype == static_cast<int>(LinkType::Ethernet)) {
    arena.insert(arena.end(), frame.data, frame.data + frame.caplen);
  } else if (ip) {
    // Another link type: the mirror session carries Ethernet, so give the
    // IP packet a locally administered Ethernet header.
    const uint8_t eth[14] = {0x02,
                             0,
                             0,
                             0,
                             0,
                             0x02,
                             0x02,
                             0,
                             0,
                             0,
                             0,
                             0x01,
                             static_cast<uint8_t>(link.ethertype >> 8),
                             static_cast<uint8_t>(link.ethertype)};
    arena.insert(arena.end(), eth, eth + 14);
    arena.insert(arena.end(), frame.data + link.l3_offset, frame.data + frame.caplen);
  } else {
    arena.resize(start);
    return false;
  }
  InnerFlow f;
  hash =
      peekEthernetFlow(arena.data() + start + 8, static_cast<uint32_t>(arena.size() - start - 8), f)
          ? flowHash(f)
          : 0;
  return true;
}
}  // namespace

int mirrorCommand(int argc, char** argv) {
  Command app("mirror",
              "Send captures as a traffic-mirror session would: each frame "
              "VXLAN-encapsulated in its own UDP datagram.");
  std::vector<std::string> pcaps;
  std::string to;
  unsigned long vni = 1, pps = 0, loops = 1, source_ports = 64;
  bool realtime = false;
  double speed = 1.0;
  app.add_option("PCAP", pcaps, "capture files")->required();
  app.add_option("--to", to, "the sensor: HOST:PORT (numeric IPv4, [IPv6]:PORT)")
      ->type_name("HOST:PORT")
      ->required();
  addNumber<unsigned long>(app, "--vni", vni, 0, 0xFFFFFF, "VXLAN network identifier (default 1)");
  addNumber<unsigned long>(app, "--pps", pps, 1, 100000000,
                           "packets per second (default: as fast as possible)");
  addNumber<unsigned long>(app, "--loop", loops, 1, 1000000000, "send the captures N times");
  app.add_flag("--realtime", realtime,
               "keep the captures' own timing (inter-packet gaps), as a live mirror would");
  auto* speed_opt = addPositive(app, "--speed", speed, 1e6,
                                "with --realtime: play X times faster (implies --realtime)");
  addNumber<unsigned long>(app, "--source-ports", source_ports, 1, 4096,
                           "outer source ports in use (default 64)");
  if (const int status = parse(app, argc, argv); status >= 0) return status;
  if (speed_opt->count() > 0) realtime = true;
  sockaddr_storage dst{};
  socklen_t dst_len = 0;
  if (!parseHostPort(to, dst, dst_len)) {
    std::fprintf(stderr, "exfilwatch mirror: --to %s: expected HOST:PORT\n", to.c_str());
    return 2;
  }

  // Sockets, bound to ports from a random start in 49152-65535.
  std::vector<int> sockets;
  std::mt19937 rng(std::random_device{}());
  uint32_t port = 49152 + rng() % 16384;
  for (unsigned tries = 0; sockets.size() < source_ports && tries < 16384; ++tries) {
    port = port >= 65535 ? 49152 : port + 1;
    const int fd = ::socket(dst.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    sockaddr_storage local{};
    socklen_t local_len = 0;
    if (dst.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&local);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(static_cast<uint16_t>(port));
      a->sin6_addr = in6addr_any;
      local_len = sizeof *a;
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&local);
      a->sin_family = AF_INET;
      a->sin_port = htons(static_cast<uint16_t>(port));
      local_len = sizeof *a;
    }
    const int sndbuf = 4 << 20;
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&local), local_len) != 0 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&dst), dst_len) != 0) {
      ::close(fd);
      continue;
    }
    sockets.push_back(fd);
  }
  if (sockets.empty()) {
    std::fprintf(stderr, "exfilwatch mirror: cannot open a UDP socket to %s: %s\n", to.c_str(),
                 std::strerror(errno));
    return 1;
  }

  // Read every capture into one arena.
  std::vector<uint8_t> arena;
  std::vector<Datagram> datagrams;
  uint64_t skipped = 0;
  int64_t first_us = -1;
  int64_t last_offset_us = 0;
  for (const auto& path : pcaps) {
    // Several captures play one after another, each from its own start.
    const int64_t file_base = datagrams.empty() ? 0 : last_offset_us + 1000;
    first_us = -1;
    std::string error;
    auto source = PcapSource::open(path, error);
    if (!source) {
      std::fprintf(stderr, "exfilwatch mirror: %s\n", error.c_str());
      return 1;
    }
    Frame frame;
    while (source->next(frame)) {
      const std::size_t before = arena.size();
      uint64_t hash = 0;
      if (!encapsulate(frame, static_cast<uint32_t>(vni), arena, hash) ||
          arena.size() - before > kMaxDatagram) {
        arena.resize(before);
        ++skipped;
        continue;
      }
      if (first_us < 0) first_us = frame.ts.micros();
      const int64_t offset_us = file_base + std::max<int64_t>(0, frame.ts.micros() - first_us);
      last_offset_us = std::max(last_offset_us, offset_us);
      datagrams.push_back(Datagram{static_cast<uint32_t>(before),
                                   static_cast<uint32_t>(arena.size() - before),
                                   static_cast<uint16_t>(hash % sockets.size()), offset_us});
    }
  }
  if (datagrams.empty()) {
    std::fprintf(stderr, "exfilwatch mirror: nothing to send\n");
    return 1;
  }

  // About a millisecond of traffic per batch when paced, 256 otherwise.
  const std::size_t batch = pps ? std::clamp<std::size_t>(pps / 1000, 1, 1024) : 256;
  std::vector<std::vector<mmsghdr>> per_socket(sockets.size());
  std::vector<std::vector<iovec>> iovs(sockets.size());
  for (std::size_t s = 0; s < sockets.size(); ++s) {
    per_socket[s].reserve(batch);
    iovs[s].reserve(batch);
  }
  uint64_t sent = 0, failed = 0;
  const uint64_t total = static_cast<uint64_t>(datagrams.size()) * loops;
  uint64_t next = 0;
  const auto start = std::chrono::steady_clock::now();
  const int64_t loop_us = last_offset_us + 1000;
  // --realtime: when datagram k is due, relative to the start.
  auto due_us = [&](uint64_t k) -> int64_t {
    const Datagram& d = datagrams[k % datagrams.size()];
    const auto loop = static_cast<int64_t>(k / datagrams.size());
    return static_cast<int64_t>(static_cast<double>(loop * loop_us + d.offset_us) / speed);
  };
  while (next < total) {
    std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(batch, total - next));
    if (realtime) {
      const auto first_due = start + std::chrono::microseconds(due_us(next));
      std::this_thread::sleep_until(first_due);
      const int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::chrono::steady_clock::now() - start)
                                 .count();
      n = 1;
      while (n < 1024 && next + n < total && due_us(next + n) <= now_us) ++n;
    }
    for (auto& v : per_socket) v.clear();
    for (auto& v : iovs) v.clear();
    for (std::size_t k = 0; k < n; ++k) {
      const Datagram& d = datagrams[(next + k) % datagrams.size()];
      iovs[d.socket].push_back(iovec{arena.data() + d.offset, d.len});
    }
    for (std::size_t s = 0; s < sockets.size(); ++s) {
      auto& msgs = per_socket[s];
      for (auto& iov : iovs[s]) {
        mmsghdr m{};
        m.msg_hdr.msg_iov = &iov;
        m.msg_hdr.msg_iovlen = 1;
        msgs.push_back(m);
      }
      std::size_t done = 0;
      while (done < msgs.size()) {
        const int r = ::sendmmsg(sockets[s], msgs.data() + done,
                                 static_cast<unsigned>(msgs.size() - done), 0);
        if (r > 0) {
          done += static_cast<std::size_t>(r);
          sent += static_cast<uint64_t>(r);
        } else if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN) {
          continue;
        } else {
          // ECONNREFUSED (nobody listening yet) and the like: count, go on.
          ++done;
          ++failed;
        }
      }
    }
    next += n;
    if (pps && !realtime) {
      const auto due = start + std::chrono::nanoseconds(next * 1000000000ULL / pps);
      std::this_thread::sleep_until(due);
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (int fd : sockets) ::close(fd);
  std::fprintf(
      stderr,
      "exfilwatch mirror: %llu datagrams in %.3f s (%.0f/s), %llu failed, %llu frames skipped\n",
      static_cast<unsigned long long>(sent), seconds, seconds > 0 ? sent / seconds : 0.0,
      static_cast<unsigned long long>(failed), static_cast<unsigned long long>(skipped));
  std::printf("sent %llu datagrams\n", static_cast<unsigned long long>(sent));
  return failed ? 1 : 0;
}

}  // namespace exfilwatch::app
