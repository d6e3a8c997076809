// fuzz_geneve.cc: libFuzzer target for a live GENEVE socket's datagrams
// (pseudo link type GenevePayload): options, nested VXLAN, inner IP, L4.
#include "frames.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  exfilwatch::fuzz::decodeFrames(data, size, static_cast<int>(exfilwatch::LinkType::GenevePayload));
  return 0;
}
