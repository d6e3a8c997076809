// fuzz_l2l4.cc: libFuzzer target for pcap frames: the first byte picks the
// link type (Ethernet, raw IP, SLL, SLL2, loopback, FDDI ...), the rest is frames
// (see frames.h) walked through link, VLAN, PPPoE, tunnels (VXLAN, GENEVE,
// GRE/PPP, IP in IP), IPv4/IPv6, fragments, L4.
#include "frames.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using exfilwatch::LinkType;
  static constexpr LinkType kTypes[] = {
      LinkType::Ethernet,  LinkType::Raw,  LinkType::Null, LinkType::Loop,     LinkType::LinuxSll,
      LinkType::LinuxSll2, LinkType::Ipv4, LinkType::Ipv6, LinkType::RawDlt12, LinkType::Fddi};
  if (size < 1) return 0;
  const LinkType lt = kTypes[data[0] % (sizeof kTypes / sizeof kTypes[0])];
  exfilwatch::fuzz::decodeFrames(data + 1, size - 1, static_cast<int>(lt));
  return 0;
}
