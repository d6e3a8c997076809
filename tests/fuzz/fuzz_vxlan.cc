// fuzz_vxlan.cc: libFuzzer target for a live VXLAN socket's datagrams (pseudo
// link type VxlanPayload): VXLAN header, inner Ethernet, IP, fragments, L4.
#include "frames.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  exfilwatch::fuzz::decodeFrames(data, size, static_cast<int>(exfilwatch::LinkType::VxlanPayload));
  return 0;
}
