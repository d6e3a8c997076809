// test_eve.cc: EVE JSON records: escaping, timestamps, the dns block.
#include <doctest.h>

#include <string>

#include "alert/eve.h"
#include "alert/json.h"
#include "common/net.h"

using namespace exfilwatch;

TEST_CASE("strings are escaped the way Suricata escapes them") {
  std::string out;
  JsonWriter::appendEscaped(out, "plain.example.com");
  CHECK(out == "plain.example.com");
  out.clear();
  JsonWriter::appendEscaped(out, std::string("a\"b\\c\n\x01", 7));
  CHECK(out == "a\\\"b\\\\c\\n\\u0001");
  out.clear();
  JsonWriter::appendEscaped(out, "caf\xC3\xA9");  // valid UTF-8 passes through
  CHECK(out == "caf\xC3\xA9");
  out.clear();
  JsonWriter::appendEscaped(out, "a\xFF\x80z");  // invalid UTF-8: \xHH text
  CHECK(out == "a\\\\xff\\\\x80z");
  out.clear();
  JsonWriter::appendEscaped(out, "\xC0\x80");  // overlong NUL is not valid UTF-8
  CHECK(out == "\\\\xc0\\\\x80");
}

TEST_CASE("json writer nests objects and arrays") {
  JsonWriter w;
  w.openObject();
  w.string("a", "x");
  w.openArray("b");
  w.uint({}, 1);
  w.uint({}, 2);
  w.closeArray();
  w.openObject("c");
  w.boolean("d", true);
  w.sint("e", -5);
  w.closeObject();
  w.closeObject();
  CHECK(w.text() == R"({"a":"x","b":[1,2],"c":{"d":true,"e":-5}})");
  w.reset();
  w.openObject();
  w.closeObject();
  CHECK(w.text() == "{}");
}

TEST_CASE("timestamps are Suricata's: UTC with microseconds and +0000") {
  std::string out;
  appendTimestamp(out, Timestamp{1476976981, 75993});
  CHECK(out == "2016-10-20T15:23:01.075993+0000");
}

namespace {
PacketContext packet(const char* src, uint16_t sport, const char* dst, uint16_t dport) {
  PacketContext p;
  REQUIRE(IpAddress::parse(src, p.src));
  REQUIRE(IpAddress::parse(dst, p.dst));
  p.src_port = sport;
  p.dst_port = dport;
  p.ip_proto = ipproto::kUdp;
  return p;
}
}  // namespace

TEST_CASE("flow_id: both directions alike, 51 bits, apart per tuple and VNI") {
  const PacketContext q = packet("10.0.0.1", 40000, "10.0.0.53", 53);
  const PacketContext r = packet("10.0.0.53", 53, "10.0.0.1", 40000);
  CHECK(eveFlowId(q) == eveFlowId(r));
  CHECK(eveFlowId(q) > 0);
  CHECK(eveFlowId(q) < (uint64_t{1} << 51));
  CHECK(eveFlowId(q) != eveFlowId(packet("10.0.0.1", 40001, "10.0.0.53", 53)));
  PacketContext other_vni = q;
  other_vni.tunnels[0] = TunnelLayer{TunnelType::Vxlan, 7};
  other_vni.tunnel_depth = 1;
  PacketContext same_vni = r;
  same_vni.tunnels[0] = TunnelLayer{TunnelType::Vxlan, 7};
  same_vni.tunnel_depth = 1;
  CHECK(eveFlowId(other_vni) != eveFlowId(q));
  CHECK(eveFlowId(other_vni) == eveFlowId(same_vni));
  PacketContext tcp = q;
  tcp.ip_proto = ipproto::kTcp;
  CHECK(eveFlowId(tcp) != eveFlowId(q));
}

TEST_CASE("alert records: typed reasons, metadata arrays, fields for delivery") {
  PacketContext p = packet("10.0.0.1", 40000, "10.0.0.53", 53);
  p.ts = Timestamp{1476976981, 75993};
  Alert a;
  a.signature_id = 9000001;
  a.signature = "EXFILWATCH DNS tunneling or exfiltration";
  a.category = "Potential DNS tunneling";
  a.severity = 1;
  a.detector = "dns_score";
  a.reasons =
      "score=1.06 info_bytes_1m=68 score_rules=1000101,1000102 first_name=a\\x3db.t.example";
  EveFormatter f;
  const std::string line = f.alert(p, EveMeta{3, "s1", "x.pcap"}, a, nullptr, "t.example");
  CHECK(line.find(R"("timestamp":"2016-10-20T15:23:01.075993+0000")") != std::string::npos);
  CHECK(line.find(R"("flow_id":)" + std::to_string(eveFlowId(p))) != std::string::npos);
  CHECK(line.find(R"("pcap_filename":"x.pcap")") != std::string::npos);
  CHECK(line.find(R"("host":"s1")") != std::string::npos);
  CHECK(line.find(R"("registered_domain":["t.example"])") != std::string::npos);
  CHECK(line.find(R"("category":["Potential DNS tunneling"])") != std::string::npos);
  CHECK(line.find(R"("score":1.06,"info_bytes_1m":68,"score_rules":[1000101,1000102])") !=
        std::string::npos);
  CHECK(line.find(R"("first_name":"a=b.t.example")") != std::string::npos);
  const AlertFields& fields = f.alertFields();
  CHECK(fields.domain == "t.example");
  CHECK(fields.flow_id == eveFlowId(p));
  CHECK(fields.signature_id == 9000001);
  CHECK(fields.src_ip == "10.0.0.1");
  CHECK(fields.sensor == "s1");
}
