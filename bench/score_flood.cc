// score_flood.cc: writes a VXLAN pcap of DNS queries with unique random
// subdomains, to stdout, for the scoring engine's memory test and bench:
// what an attacker (or a broken client) does to fill per-pair state.
//   score_flood PACKETS CLIENTS DOMAINS [SEED]
// Each query: client 10.(100+c/65536).(c/256).(c%256), c random in
// [0, CLIENTS), asks A <16 random base32 chars>.d<k>.com, k random in
// [0, DOMAINS); one query per millisecond of capture time.
// Deterministic for a seed. Streams: constant memory whatever PACKETS is.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {
uint64_t state = 0x9e3779b97f4a7c15ULL;
uint64_t next() {  // splitmix64
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
void put16(uint8_t* p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
uint16_t ipsum(const uint8_t* h) {
  uint32_t s = 0;
  for (int i = 0; i < 20; i += 2) s += (h[i] << 8) | h[i + 1];
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}
void ipv4(uint8_t* h, uint16_t total, const uint8_t src[4], const uint8_t dst[4]) {
  std::memset(h, 0, 20);
  h[0] = 0x45;
  put16(h + 2, total);
  h[8] = 64;
  h[9] = 17;
  std::memcpy(h + 12, src, 4);
  std::memcpy(h + 16, dst, 4);
  put16(h + 10, ipsum(h));
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: score_flood PACKETS CLIENTS DOMAINS [SEED] > out.pcap\n");
    return 2;
  }
  const uint64_t packets = std::strtoull(argv[1], nullptr, 10);
  const uint32_t clients = static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 10));
  const uint32_t domains = static_cast<uint32_t>(std::strtoul(argv[3], nullptr, 10));
  if (argc > 4) state = std::strtoull(argv[4], nullptr, 10);
  if (clients == 0 || domains == 0) return 2;
  static char out[1 << 20];
  std::setvbuf(stdout, out, _IOFBF, sizeof out);
  const uint32_t ghdr[6] = {0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1};
  std::fwrite(ghdr, 4, 6, stdout);  // little-endian host: native pcap header
  static constexpr char kB32[] = "abcdefghijklmnopqrstuvwxyz234567";
  uint8_t pkt[512];
  const uint8_t outer_src[4] = {10, 54, 0, 2}, outer_dst[4] = {10, 54, 0, 1};
  const uint8_t resolver[4] = {10, 53, 0, 1};
  for (uint64_t n = 0; n < packets; ++n) {
    // DNS query
    uint8_t dns[300];
    std::size_t d = 0;
    put16(dns, static_cast<uint16_t>(n));
    dns[2] = 0x01; dns[3] = 0x00;  // RD
    put16(dns + 4, 1); put16(dns + 6, 0); put16(dns + 8, 0); put16(dns + 10, 0);
    d = 12;
    dns[d++] = 16;
    uint64_t r = next();
    for (int i = 0; i < 16; ++i) {
      if (i == 12) r = next();
      dns[d++] = static_cast<uint8_t>(kB32[r & 31]);
      r >>= 5;
    }
    char dom[16];
    const int dl = std::snprintf(dom, sizeof dom, "d%u", static_cast<unsigned>(next() % domains));
    dns[d++] = static_cast<uint8_t>(dl);
    std::memcpy(dns + d, dom, dl);
    d += dl;
    dns[d++] = 3; std::memcpy(dns + d, "com", 3); d += 3;
    dns[d++] = 0;
    put16(dns + d, 1); put16(dns + d + 2, 1); d += 4;
    // inner
    const uint32_t c = static_cast<uint32_t>(next() % clients);
    const uint8_t client[4] = {10, static_cast<uint8_t>(100 + (c >> 16)), static_cast<uint8_t>(c >> 8), static_cast<uint8_t>(c)};
    uint8_t* p = pkt;
    // outer Ethernet + IPv4 + UDP + VXLAN
    std::memset(p, 0, 14); p[0] = 2; p[6] = 2; p[11] = 1; p[12] = 0x08; p[13] = 0x00;
    const uint16_t inner_len = static_cast<uint16_t>(14 + 20 + 8 + d);
    const uint16_t outer_ip_len = static_cast<uint16_t>(20 + 8 + 8 + inner_len);
    ipv4(p + 14, outer_ip_len, outer_src, outer_dst);
    uint8_t* u = p + 34;
    put16(u, static_cast<uint16_t>(40000 + (n & 0x3fff))); put16(u + 2, 4789);
    put16(u + 4, static_cast<uint16_t>(8 + 8 + inner_len)); put16(u + 6, 0);
    uint8_t* vx = u + 8;
    std::memset(vx, 0, 8); vx[0] = 0x08; vx[4] = 0x00; vx[5] = 0x04; vx[6] = 0xd2;  // VNI 1234
    uint8_t* e = vx + 8;
    std::memset(e, 0, 14); e[0] = 2; e[5] = 1; e[6] = 2; e[11] = 2; e[12] = 0x08;
    ipv4(e + 14, static_cast<uint16_t>(20 + 8 + d), client, resolver);
    uint8_t* iu = e + 34;
    put16(iu, static_cast<uint16_t>(1024 + (n % 60000))); put16(iu + 2, 53);
    put16(iu + 4, static_cast<uint16_t>(8 + d)); put16(iu + 6, 0);
    std::memcpy(iu + 8, dns, d);
    const uint32_t len = static_cast<uint32_t>(14 + outer_ip_len);
    const uint64_t us = 1700000000ull * 1000000 + n * 1000;  // 1 query per ms
    const uint32_t rec[4] = {static_cast<uint32_t>(us / 1000000), static_cast<uint32_t>(us % 1000000), len, len};
    std::fwrite(rec, 4, 4, stdout);
    std::fwrite(pkt, 1, len, stdout);
  }
  std::fflush(stdout);
  return 0;
}
