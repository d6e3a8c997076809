// test_tls.cc: ClientHello parsing (whole, split across records and TCP
// segments, truncated, not TLS), JA3 against tshark 4.0 and JA4 against an
// independent implementation of the FoxIO spec (tshark 4.0 has no JA4),
// ServerHello parsing and JA3S against tshark 4.0 (tls.handshake.ja3s,
// ja3s_full), and the tracker's volume verdicts: bulk upload yes, large
// download never; the ServerHello's version and JA3S kept per pair.
#include <doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "score/tls_tracker.h"
#include "tls/client_hello.h"
#include "tls/server_hello.h"

using namespace exfilwatch;
using namespace exfilwatch::tls;

namespace {
// Frame 15 of ../shared/captures/https-8443-benign.pcap (openssl s_client).
// tshark -d tcp.port==8443,tls: ja3 a3afc2c46ba4a7d7fbe1cfb7a3031c2f,
// SNI api.internal-svc.example.
const char* kHelloHex =
    "160301014501000141030348acaf7283240d0759a37e01b49db83f936698399afeb204c88d5d8a12bf5ad7208c8536"
    "9f1392b1899bcbb8ca4b5b3763bcaa2ee34f6b37b1a5c3fe28aabd301d003e130213031301c02cc030009fcca9cca8"
    "ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff01"
    "0000ba0000001d001b0000186170692e696e7465726e616c2d7376632e6578616d706c65000b000403000102000a00"
    "160014001d0017001e0019001801000101010201030104002300000016000000170000000d002a0028040305030603"
    "080708080809080a080b080408050806040105010601030303010302040205020602002b0009080304030303020301"
    "002d00020101003300260024001d002092801a494378611fdd2a1f2a3b62074317d74840644d3279111a2848343e11"
    "28";

// Frame 17 of the same capture, the server's answer to frame 15: the
// ServerHello record, then a ChangeCipherSpec record in the same segment.
// tshark: ja3s 15af977ce25de452b96affa2addb1036, ja3s_full "771,4866,43-51",
// supported_versions 0x0304.
const char* kServerHelloTls13Hex =
    "1603030058020000540303cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c208c8536"
    "9f1392b1899bcbb8ca4b5b3763bcaa2ee34f6b37b1a5c3fe28aabd301d130200000c002b0002030400330002001714"
    "0303000101";
// The first 104 bytes of frame 19 of ../shared/corpus/benign/nDPI/netflix.pcap
// (a TLS 1.2 server): the ServerHello record, then the head of the
// Certificate record that goes on in later segments. tshark: ja3s
// 303951d4c50efb2e991652225a6f02b1, ja3s_full "771,49199,65281-11".
const char* kServerHelloTls12Hex =
    "16030300590200005503035878e938f543a2cc0e7509a2486f4532a526be325a4d7d8bbcec08e89bd4fa3b20e867f5"
    "40670c8bdcfa64ceb71d4b841abe8fda8db052a88bb8f0256f428df31fc02f00000dff01000100000b000403000102"
    "1603030a350b000a31000a2e";
// The first 120 bytes of frame 102 of ../shared/corpus/benign/nDPI/iphone.pcap:
// one record holding the ServerHello and then the Certificate. tshark: ja3s
// 1e60202b4001a190621caa963fb76697, ja3s_full "771,49196,0-65281-5-11-16".
const char* kServerHelloSniAlpnHex =
    "160303006e0200006a030339feba70bb85d3b1941a5f741542cd35bc7163114bab18b3d59f2347613c5cd520cbb21f"
    "f3a542ce4679637c0cc2031d3dc628bbf0cbf2d977a153196376ed7a30c02c00002200000000ff0100010000050000"
    "000b000201000010000b000908687474702f312e31160303138f0b00";

std::vector<uint8_t> unhex(const std::string& h) {
  std::vector<uint8_t> out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2)
    out.push_back(static_cast<uint8_t>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
}
}  // namespace

TEST_CASE("ClientHello: fields, JA3 (tshark) and JA4 (spec)") {
  const auto bytes = unhex(kHelloHex);
  ClientHello h;
  std::size_t needed = 0;
  REQUIRE(parseClientHello(bytes.data(), bytes.size(), h, needed) == HelloStatus::Complete);
  CHECK(h.serverName() == "api.internal-svc.example");
  CHECK(h.legacy_version == 0x0303);
  CHECK(h.ciphers.n == 31);
  char buf[1024];
  const std::size_t n = ja3String(h, buf, sizeof buf);
  CHECK(std::string(buf, n) ==
        "771,4866-4867-4865-49196-49200-159-52393-52392-52394-49195-49199-158-49188-49192-107-"
        "49187-49191-103-49162-49172-57-49161-49171-51-157-156-61-60-53-47-255,0-11-10-35-22-23-"
        "13-43-45-51,29-23-30-25-24-256-257-258-259-260,0-1-2");
  char j3[33];
  ja3(h, j3);
  CHECK(std::string(j3) == "a3afc2c46ba4a7d7fbe1cfb7a3031c2f");
  char j4[37];
  ja4(h, j4);
  CHECK(std::string(j4) == "t13d311000_e8f1e7e78f70_1f22a2ca17c4");
}

TEST_CASE("ClientHello: every truncation asks for more, never reads past the end") {
  const auto bytes = unhex(kHelloHex);
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    ClientHello h;
    std::size_t needed = 0;
    const auto st = parseClientHello(bytes.data(), cut, h, needed);
    CHECK(st == HelloStatus::NeedMore);
  }
}

TEST_CASE("ClientHello split across two TLS records") {
  const auto bytes = unhex(kHelloHex);
  // Re-frame the handshake message as two records of 100 and the rest.
  const std::vector<uint8_t> hs(bytes.begin() + 5, bytes.end());
  std::vector<uint8_t> two = {22, 3, 1, 0, 100};
  two.insert(two.end(), hs.begin(), hs.begin() + 100);
  const std::size_t rest = hs.size() - 100;
  two.insert(two.end(),
             {22, 3, 1, static_cast<uint8_t>(rest >> 8), static_cast<uint8_t>(rest & 0xff)});
  two.insert(two.end(), hs.begin() + 100, hs.end());
  ClientHello h;
  std::size_t needed = 0;
  REQUIRE(parseClientHello(two.data(), two.size(), h, needed) == HelloStatus::Complete);
  char j3[33];
  ja3(h, j3);
  CHECK(std::string(j3) == "a3afc2c46ba4a7d7fbe1cfb7a3031c2f");
  CHECK(parseClientHello(two.data(), 50, h, needed) == HelloStatus::NeedMore);
}

TEST_CASE("not TLS, and GREASE") {
  const uint8_t http[] = "GET / HTTP/1.1\r\n";
  ClientHello h;
  std::size_t needed = 0;
  CHECK(parseClientHello(http, sizeof http - 1, h, needed) == HelloStatus::NotHello);
  CHECK(isGrease(0x0a0a));
  CHECK(isGrease(0xfafa));
  CHECK_FALSE(isGrease(0x0a1a));
  CHECK_FALSE(isGrease(0x1301));
}

namespace {
PacketContext segment(bool up, uint32_t seq, const uint8_t* data, uint32_t len, uint32_t wire,
                      int64_t sec) {
  PacketContext p;
  uint8_t c[4] = {10, 0, 0, 2}, s[4] = {10, 0, 0, 1};
  p.ip_proto = ipproto::kTcp;
  p.src = IpAddress::v4(up ? c : s);
  p.dst = IpAddress::v4(up ? s : c);
  p.src_port = up ? 40000 : 8443;
  p.dst_port = up ? 8443 : 40000;
  p.tcp_seq = seq;
  p.payload = data;
  p.payload_len = len;
  p.payload_wire_len = wire;
  p.ts.sec = sec;
  return p;
}
}  // namespace

TEST_CASE("tracker: ClientHello split across TCP segments, bulk upload alerts") {
  score::TlsScoreConfig cfg;
  score::TlsTracker t(cfg, 300);
  const auto bytes = unhex(kHelloHex);
  CHECK(t.onTcpSegment(segment(true, 1000, bytes.data(), 120, 120, 100)) == nullptr);
  CHECK(t.stats().hellos == 0);
  t.onTcpSegment(segment(true, 1000, bytes.data(), 60, 60, 100));  // retransmission
  t.onTcpSegment(segment(true, 1120, bytes.data() + 120, static_cast<uint32_t>(bytes.size() - 120),
                         static_cast<uint32_t>(bytes.size() - 120), 100));
  CHECK(t.stats().hellos == 1);
  const score::TlsPairRecord* pr =
      t.pair(t.pairKey(IpAddress::v4((const uint8_t*)"\x0a\x00\x00\x02"),
                       IpAddress::v4((const uint8_t*)"\x0a\x00\x00\x01"), 8443));
  REQUIRE(pr != nullptr);
  CHECK(std::string(pr->sni, pr->sni_len) == "api.internal-svc.example");
  CHECK(std::string(pr->ja4) == "t13d311000_e8f1e7e78f70_1f22a2ca17c4");
  // 1.2 MB up in 1448-byte segments, cut to 100 bytes by the mirror: the IP
  // length counts, so the bulk verdict fires once.
  static uint8_t junk[100] = {23, 3, 3};
  int verdicts = 0;
  for (uint32_t i = 0; i < 850; ++i) {
    if (t.onTcpSegment(segment(true, 5000 + i * 1448, junk, 100, 1448, 101 + i / 100))) ++verdicts;
  }
  CHECK(verdicts == 1);
}

TEST_CASE("tracker: a large download never alerts") {
  score::TlsScoreConfig cfg;
  score::TlsTracker t(cfg, 300);
  static uint8_t junk[100] = {23, 3, 3};
  int verdicts = 0;
  for (uint32_t i = 0; i < 5000; ++i) {
    if (t.onTcpSegment(segment(false, i * 1448, junk, 100, 1448, 100 + i / 100))) ++verdicts;
    if (i % 10 == 0 && t.onTcpSegment(segment(true, i * 100, junk, 100, 100, 100 + i / 100)))
      ++verdicts;
  }
  CHECK(verdicts == 0);
}

TEST_CASE("ServerHello: fields and JA3S against tshark on three real servers") {
  struct Case {
    const char* hex;
    uint16_t negotiated;
    uint16_t cipher;
    const char* full;
    const char* hash;
  };
  const Case cases[] = {
      {kServerHelloTls13Hex, 0x0304, 0x1302, "771,4866,43-51", "15af977ce25de452b96affa2addb1036"},
      {kServerHelloTls12Hex, 0x0303, 0xc02f, "771,49199,65281-11",
       "303951d4c50efb2e991652225a6f02b1"},
      {kServerHelloSniAlpnHex, 0x0303, 0xc02c, "771,49196,0-65281-5-11-16",
       "1e60202b4001a190621caa963fb76697"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.full);
    const auto bytes = unhex(c.hex);
    ServerHello h;
    ServerHelloAnomaly why;
    REQUIRE(parseServerHello(bytes.data(), bytes.size(), h, why));
    CHECK(why == ServerHelloAnomaly::None);
    CHECK(h.legacy_version == 0x0303);
    CHECK(h.negotiatedVersion() == c.negotiated);
    CHECK(h.cipher == c.cipher);
    char buf[512];
    CHECK(std::string(buf, ja3sString(h, buf, sizeof buf)) == c.full);
    uint8_t md5[16];
    ja3s(h, md5);
    char hex[33];
    hex16(md5, hex);
    CHECK(std::string(hex) == c.hash);
  }
}

TEST_CASE("ServerHello: every cut before the message's end is truncated, never read past") {
  for (const char* hex : {kServerHelloTls13Hex, kServerHelloTls12Hex, kServerHelloSniAlpnHex}) {
    const auto bytes = unhex(hex);
    const std::size_t end = 5 + 4 + ((std::size_t{bytes[6]} << 16) | (bytes[7] << 8) | bytes[8]);
    for (std::size_t cut = 0; cut < end; ++cut) {
      const std::vector<uint8_t> part(bytes.begin(), bytes.begin() + cut);  // exact size
      ServerHello h;
      ServerHelloAnomaly why;
      CHECK_FALSE(parseServerHello(part.data(), part.size(), h, why));
      CHECK(why == ServerHelloAnomaly::Truncated);
    }
    const std::vector<uint8_t> whole(bytes.begin(), bytes.begin() + end);
    ServerHello h;
    ServerHelloAnomaly why;
    CHECK(parseServerHello(whole.data(), whole.size(), h, why));
  }
}

TEST_CASE("ServerHello: not a handshake, not a ServerHello, malformed lengths") {
  ServerHello h;
  ServerHelloAnomaly why;
  const auto tls13 = unhex(kServerHelloTls13Hex);
  // The ChangeCipherSpec record that follows it in the segment.
  CHECK_FALSE(parseServerHello(tls13.data() + 93, tls13.size() - 93, h, why));
  CHECK(why == ServerHelloAnomaly::NotHandshake);
  const uint8_t http[] = "HTTP/1.1 400 Bad Request\r\n";
  CHECK_FALSE(parseServerHello(http, sizeof http - 1, h, why));
  CHECK(why == ServerHelloAnomaly::NotHandshake);
  const auto client = unhex(kHelloHex);
  CHECK_FALSE(parseServerHello(client.data(), client.size(), h, why));
  CHECK(why == ServerHelloAnomaly::NotServerHello);
  // The extensions block claims one byte more than the message holds.
  auto bad = tls13;
  bad[5 + 4 + 2 + 32 + 1 + 32 + 2 + 1 + 1] += 1;
  CHECK_FALSE(parseServerHello(bad.data(), bad.size(), h, why));
  CHECK(why == ServerHelloAnomaly::Malformed);
  // supported_versions with three bytes instead of two.
  bad = tls13;
  bad[5 + 4 + 2 + 32 + 1 + 32 + 2 + 1 + 2 + 2 + 1] = 3;
  CHECK_FALSE(parseServerHello(bad.data(), bad.size(), h, why));
  CHECK(why == ServerHelloAnomaly::Malformed);
  // A handshake message longer than its record (it would span records).
  bad = tls13;
  bad[8] = static_cast<uint8_t>(bad[8] + 8);
  CHECK_FALSE(parseServerHello(bad.data(), bad.size(), h, why));
  CHECK(why == ServerHelloAnomaly::Truncated);
}

TEST_CASE("tracker: the ServerHello gives the pair its JA3S and negotiated version") {
  score::TlsScoreConfig cfg;
  score::TlsTracker t(cfg, 300);
  const auto client = unhex(kHelloHex);
  const auto server = unhex(kServerHelloTls13Hex);
  const auto key = t.pairKey(IpAddress::v4((const uint8_t*)"\x0a\x00\x00\x02"),
                             IpAddress::v4((const uint8_t*)"\x0a\x00\x00\x01"), 8443);
  // A server payload before any ClientHello (a flow picked up mid-stream) is
  // not looked at.
  t.onTcpSegment(segment(false, 1, server.data(), static_cast<uint32_t>(server.size()),
                         static_cast<uint32_t>(server.size()), 100));
  CHECK(t.stats().server_hellos == 0);
  CHECK(t.weird().total() == 0);

  score::TlsTracker t2(cfg, 300);
  t2.onTcpSegment(segment(true, 1000, client.data(), static_cast<uint32_t>(client.size()),
                          static_cast<uint32_t>(client.size()), 100));
  const score::TlsPairRecord* pr = t2.pair(key);
  REQUIRE(pr != nullptr);
  CHECK(pr->server_version == 0);
  t2.onTcpSegment(segment(false, 1, server.data(), static_cast<uint32_t>(server.size()),
                          static_cast<uint32_t>(server.size()), 100));
  CHECK(t2.stats().server_hellos == 1);
  CHECK(pr->version == 0x0304);
  CHECK(pr->server_version == 0x0304);
  uint8_t md5[16];
  std::memcpy(md5, pr->ja3s, sizeof md5);
  char hex[33];
  hex16(md5, hex);
  CHECK(std::string(hex) == "15af977ce25de452b96affa2addb1036");
  CHECK(t2.ja3sText(pr->ja3s) == "771,4866,43-51");
  // Only the server's first payload is looked at: a later one changes nothing.
  static uint8_t appdata[40] = {23, 3, 3, 0, 35};
  t2.onTcpSegment(segment(false, 1 + static_cast<uint32_t>(server.size()), appdata, 40, 40, 100));
  CHECK(t2.stats().server_hellos == 1);
  CHECK(t2.weird().total() == 0);

  // A server that answers with an alert record: counted by name.
  score::TlsTracker t3(cfg, 300);
  t3.onTcpSegment(segment(true, 1000, client.data(), static_cast<uint32_t>(client.size()),
                          static_cast<uint32_t>(client.size()), 100));
  static uint8_t alert[7] = {21, 3, 3, 0, 2, 2, 40};
  t3.onTcpSegment(segment(false, 1, alert, 7, 7, 100));
  CHECK(t3.weird().get(Weird::TlsServerNotHandshake) == 1);
  CHECK(t3.pair(key)->server_version == 0);
}
