// recvmmsg_loop.cc: the baseline for bench/live_bench.py: a bare receive
// loop that only counts datagrams, with the sensor's socket settings (same
// SO_RCVBUF, recvmmsg batches of the same size, non-blocking + poll). The
// sensor's no-loss rate is compared against this loop's, in the same run.
// usage: recvmmsg_loop PORT [RCVBUF_BYTES] [BATCH]; SIGTERM/SIGINT prints
// "received N kernel_drops M" and exits.
#include <netinet/in.h>
#include <linux/sock_diag.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {
volatile std::sig_atomic_t g_stop = 0;
void onSignal(int) { g_stop = 1; }
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: recvmmsg_loop PORT [RCVBUF_BYTES] [BATCH]\n");
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const int rcvbuf = argc > 2 ? std::atoi(argv[2]) : 4 << 20;
  const unsigned batch = argc > 3 ? static_cast<unsigned>(std::atoi(argv[3])) : 64;
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::perror("bind");
    return 1;
  }
  constexpr unsigned kSlot = 9216;  // the sensor's default slot
  std::vector<char> buf(static_cast<std::size_t>(batch) * kSlot);
  std::vector<mmsghdr> msgs(batch);
  std::vector<iovec> iov(batch);
  for (unsigned i = 0; i < batch; ++i) {
    iov[i] = {buf.data() + static_cast<std::size_t>(i) * kSlot, kSlot};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  unsigned long long received = 0;
  pollfd p{fd, POLLIN, 0};
  bool draining = false;
  for (;;) {
    const int n = recvmmsg(fd, msgs.data(), batch, MSG_DONTWAIT, nullptr);
    if (n > 0) {
      received += static_cast<unsigned long long>(n);
      continue;
    }
    if (draining) break;  // stopped and the queue is empty
    if (g_stop) {
      draining = true;  // like the sensor: read what is queued, then stop
      continue;
    }
    poll(&p, 1, 100);
  }
  uint32_t mem[SK_MEMINFO_VARS] = {};
  socklen_t len = sizeof mem;
  getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len);
  std::printf("received %llu kernel_drops %u\n", received, mem[SK_MEMINFO_DROPS]);
  return 0;
}
