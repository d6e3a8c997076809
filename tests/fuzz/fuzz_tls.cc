// fuzz_tls.cc: libFuzzer target for the TLS ClientHello parser: the input is
// the client's stream from its first byte. A complete hello is fingerprinted
// (JA3 string and hash, JA4), as the TLS tracker does. The same bytes, as a
// server's first segment, go through the ServerHello parser and JA3S.
#include <cstddef>
#include <cstdint>

#include "tls/client_hello.h"
#include "tls/server_hello.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace exfilwatch::tls;
  ClientHello hello;
  std::size_t needed = 0;
  // Also every prefix length the tracker may see while the stream grows.
  for (std::size_t cut : {size / 3, size / 2, size}) {
    hello = ClientHello{};
    if (parseClientHello(data, cut, hello, needed) == HelloStatus::Complete) {
      char j3[33], j4[37], buf[4096];
      ja3(hello, j3);
      ja4(hello, j4);
      ja3String(hello, buf, sizeof buf);
      ja3String(hello, buf, 16);
      (void)hello.serverName();
      (void)hello.firstAlpn();
    }
  }
  ServerHello server;
  ServerHelloAnomaly why;
  for (std::size_t cut : {size / 2, size}) {
    if (parseServerHello(data, cut, server, why)) {
      uint8_t md5[16];
      char hex[33], buf[512];
      ja3s(server, md5);
      hex16(md5, hex);
      ja3sString(server, buf, sizeof buf);
      ja3sString(server, buf, 8);
      (void)server.negotiatedVersion();
    }
  }
  return 0;
}
