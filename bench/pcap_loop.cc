// pcap_loop.cc: the baseline for replay benchmarks: a bare libpcap read loop
// that reads the same files the same number of times and does nothing else
// but touch each record's first byte (so the read cannot be optimised away).
// Prints "packets seconds packets_per_second" on stdout.
#include <pcap/pcap.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: pcap_loop ROUNDS PCAP...\n");
    return 2;
  }
  const int rounds = std::atoi(argv[1]);
  unsigned long long packets = 0;
  unsigned checksum = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < rounds; ++r) {
    for (int i = 2; i < argc; ++i) {
      char errbuf[PCAP_ERRBUF_SIZE];
      pcap_t* p = pcap_open_offline(argv[i], errbuf);
      if (p == nullptr) {
        std::fprintf(stderr, "pcap_loop: %s\n", errbuf);
        return 1;
      }
      struct pcap_pkthdr* h = nullptr;
      const u_char* data = nullptr;
      while (pcap_next_ex(p, &h, &data) == 1) {
        ++packets;
        if (h->caplen) checksum += data[0];
      }
      pcap_close(p);
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%llu %.6f %.0f\n", packets, secs, secs > 0 ? packets / secs : 0.0);
  std::fprintf(stderr, "checksum %u\n", checksum);
  return 0;
}
