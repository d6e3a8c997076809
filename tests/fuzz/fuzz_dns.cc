// fuzz_dns.cc: libFuzzer target for the DNS message parser (dns::Parser):
// the input is one message (UDP payload). The same DnsMessage is reused for a
// second, shorter parse, as a worker reuses it across packets.
#include <cstddef>
#include <cstdint>

#include "decode/weird.h"
#include "dns/message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace exfilwatch;
  static const dns::Parser parser;
  dns::DnsMessage msg;
  WeirdCounters weird;
  parser.parse(data, size, msg, weird);
  parser.parse(data, size / 2, msg, weird);
  parser.parse(data, size, msg, weird);
  return 0;
}
