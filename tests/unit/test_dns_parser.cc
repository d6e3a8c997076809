// test_dns_parser.cc: unit tests of the DNS message parser (src/dns/message.cc).
// Messages are built byte by byte so each test states exactly what is on the
// wire; a few are real payloads taken with tshark from the shared captures, so
// the parser is also held to what another implementation decodes.
#include <doctest.h>

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "capture/pcap_source.h"
#include "decode/decoder.h"
#include "dns/message.h"
#include "dns/tcp_stream.h"

using exfilwatch::Weird;
using exfilwatch::WeirdCounters;
using namespace exfilwatch::dns;

namespace {

// Builds a DNS message on the wire.
struct Wire {
  std::vector<uint8_t> b;

  std::size_t pos() const { return b.size(); }
  Wire& u8(uint8_t v) {
    b.push_back(v);
    return *this;
  }
  Wire& u16(uint16_t v) {
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
    return *this;
  }
  Wire& u32(uint32_t v) {
    u16(static_cast<uint16_t>(v >> 16));
    return u16(static_cast<uint16_t>(v));
  }
  Wire& bytes(std::initializer_list<uint8_t> v) {
    b.insert(b.end(), v.begin(), v.end());
    return *this;
  }
  Wire& str(std::string_view s) {
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Wire& header(uint16_t id, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns, uint16_t ar) {
    return u16(id).u16(flags).u16(qd).u16(an).u16(ns).u16(ar);
  }
  // One label, bytes as given (may hold '.', NUL or 8-bit bytes).
  Wire& label(std::string_view raw) {
    u8(static_cast<uint8_t>(raw.size()));
    return str(raw);
  }
  // Labels of a dotted name, without the terminating root octet.
  Wire& labels(std::string_view dotted) {
    while (!dotted.empty()) {
      const auto dot = dotted.find('.');
      label(dotted.substr(0, dot));
      if (dot == std::string_view::npos) break;
      dotted.remove_prefix(dot + 1);
    }
    return *this;
  }
  Wire& name(std::string_view dotted) { return labels(dotted).u8(0); }
  Wire& ptr(std::size_t off) { return u16(static_cast<uint16_t>(0xC000 | off)); }
  Wire& question(std::string_view dotted, uint16_t type, uint16_t qclass = 1) {
    return name(dotted).u16(type).u16(qclass);
  }
  // Type, class, TTL, then a placeholder rdlength; returns where RDATA starts.
  std::size_t rrFixed(uint16_t type, uint16_t rclass, uint32_t ttl) {
    u16(type).u16(rclass).u32(ttl).u16(0);
    return pos();
  }
  // Patches the rdlength of the RDATA that started at `start`.
  Wire& endRdata(std::size_t start) {
    const std::size_t n = pos() - start;
    b[start - 2] = static_cast<uint8_t>(n >> 8);
    b[start - 1] = static_cast<uint8_t>(n);
    return *this;
  }
};

std::vector<uint8_t> fromHex(std::string_view hex) {
  std::vector<uint8_t> out;
  auto nib = [](char c) -> uint8_t {
    if (c >= '0' && c <= '9') return static_cast<uint8_t>(c - '0');
    if (c >= 'a' && c <= 'f') return static_cast<uint8_t>(c - 'a' + 10);
    return static_cast<uint8_t>(c - 'A' + 10);
  };
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<uint8_t>((nib(hex[i]) << 4) | nib(hex[i + 1])));
  return out;
}

std::string ipv4(const exfilwatch::IpAddress& a) {
  return std::to_string(a.bytes[0]) + "." + std::to_string(a.bytes[1]) + "." +
         std::to_string(a.bytes[2]) + "." + std::to_string(a.bytes[3]);
}

bool parse(const std::vector<uint8_t>& w, DnsMessage& m, WeirdCounters& weird,
           ParseLimits limits = {}) {
  return Parser(limits).parse(w.data(), w.size(), m, weird);
}

// www.example.com A response: CNAME to web.example.com (compressed twice),
// then its A record, then an OPT. Used by several tests.
std::vector<uint8_t> compressedResponse() {
  Wire w;
  w.header(0x1234, 0x8180, 1, 2, 0, 1);
  w.question("www.example.com", rrtype::A);  // "example" label at offset 16
  w.ptr(12);
  std::size_t rd = w.rrFixed(rrtype::CNAME, 1, 300);
  const std::size_t target = w.pos();
  w.label("web").ptr(16).endRdata(rd);
  w.ptr(target);
  rd = w.rrFixed(rrtype::A, 1, 60);
  w.bytes({93, 184, 216, 34}).endRdata(rd);
  w.u8(0);
  rd = w.rrFixed(rrtype::OPT, 1232, 0x00008000);
  w.u16(10).u16(8).bytes({1, 2, 3, 4, 5, 6, 7, 8}).endRdata(rd);
  return w.b;
}

}  // namespace

TEST_CASE("dns: simple query") {
  Wire w;
  w.header(0xbeef, 0x0100, 1, 0, 0, 0).question("Example.COM", rrtype::AAAA);
  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(w.b, m, weird));
  CHECK(m.id == 0xbeef);
  CHECK_FALSE(m.qr);
  CHECK(m.opcode == 0);
  CHECK(m.rd);
  CHECK_FALSE(m.aa);
  CHECK(m.qdcount == 1);
  CHECK(m.complete);
  REQUIRE(m.questions.size() == 1);
  const Question& q = m.questions[0];
  CHECK(q.name.valid);
  CHECK(q.name.labels == 2);
  CHECK(m.raw(q.name) == "Example.COM");
  CHECK(m.lower(q.name) == "example.com");
  CHECK(q.type == rrtype::AAAA);
  CHECK(q.qclass == 1);
  CHECK(m.answers.empty());
  CHECK_FALSE(m.edns.present);
  CHECK(m.bytes() == w.b.data());
  CHECK(m.size() == w.b.size());
  CHECK(weird.total() == 0);
}

TEST_CASE("dns: header flags and opcode") {
  Wire w;
  w.header(1, 0xAFF3, 0, 0, 0, 0);
  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(w.b, m, weird));
  CHECK(m.qr);
  CHECK(m.opcode == 5);
  CHECK(m.aa);
  CHECK(m.tc);
  CHECK(m.rd);
  CHECK(m.ra);
  CHECK(m.z);
  CHECK(m.ad);
  CHECK(m.cd);
  CHECK(m.rcode == rcode::NXDOMAIN);
  CHECK(m.complete);
  CHECK(weird.get(Weird::DnsOpcodeUpdate) == 1);  // named, not refused
  CHECK(weird.total() == 1);
}

TEST_CASE("dns: short header is refused") {
  DnsMessage m;
  WeirdCounters weird;
  const uint8_t b[11] = {};
  CHECK_FALSE(Parser().parse(b, sizeof b, m, weird));
  CHECK(weird.get(Weird::DnsTruncatedHeader) == 1);
  CHECK_FALSE(Parser().parse(nullptr, 0, m, weird));
  CHECK(weird.get(Weird::DnsTruncatedHeader) == 2);
  CHECK_FALSE(m.complete);
}

TEST_CASE("dns: response with compressed names and EDNS0") {
  const auto b = compressedResponse();
  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(b, m, weird));
  CHECK(m.complete);
  CHECK(weird.total() == 0);
  CHECK(m.qr);
  REQUIRE(m.questions.size() == 1);
  CHECK(m.raw(m.questions[0].name) == "www.example.com");
  REQUIRE(m.answers.size() == 2);
  const ResourceRecord& cname = m.answers[0];
  CHECK(m.raw(cname.name) == "www.example.com");
  CHECK(cname.type == rrtype::CNAME);
  CHECK(cname.ttl == 300);
  CHECK(cname.kind == RdataKind::Name);
  CHECK(cname.rdata_ok);
  CHECK(cname.rdlength == 6);
  CHECK(m.raw(cname.target) == "web.example.com");
  CHECK(cname.target.labels == 3);
  const ResourceRecord& a = m.answers[1];
  CHECK(m.raw(a.name) == "web.example.com");  // pointer to a name that itself ends in a pointer
  CHECK(a.kind == RdataKind::Address);
  CHECK(ipv4(a.address) == "93.184.216.34");
  REQUIRE(m.additionals.size() == 1);
  CHECK(m.additionals[0].kind == RdataKind::Opt);
  CHECK(m.raw(m.additionals[0].name).empty());
  CHECK(m.edns.present);
  CHECK(m.edns.udp_payload_size == 1232);
  CHECK(m.edns.dnssec_ok);
}

TEST_CASE("dns: RDATA of each decoded type") {
  Wire w;
  w.header(7, 0x8400, 1, 12, 0, 0).question("z.test", rrtype::ANY);  // z.test at 12
  std::size_t rd;

  w.ptr(12);
  rd = w.rrFixed(rrtype::A, 1, 1);
  w.bytes({10, 0, 0, 1}).endRdata(rd);

  w.ptr(12);
  rd = w.rrFixed(rrtype::AAAA, 1, 1);
  w.bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53}).endRdata(rd);

  w.ptr(12);
  rd = w.rrFixed(rrtype::CNAME, 1, 1);
  w.name("alias.test").endRdata(rd);

  w.ptr(12);
  rd = w.rrFixed(rrtype::NS, 1, 1);
  w.label("ns1").ptr(14).endRdata(rd);  // ns1.test, compressed inside RDATA

  w.ptr(12);
  rd = w.rrFixed(rrtype::PTR, 1, 1);
  w.name("host.in-addr.arpa").endRdata(rd);

  w.ptr(12);
  rd = w.rrFixed(rrtype::MX, 1, 1);
  w.u16(10).label("mail").ptr(14).endRdata(rd);

  w.ptr(12);
  rd = w.rrFixed(rrtype::TXT, 1, 1);
  w.label("v=spf1 -all").label("").label("second").endRdata(rd);

  w.ptr(12);
  rd = w.rrFixed(rrtype::NULL_, 1, 0);
  w.bytes({0x00, 0xff, 0x80, 0x2e}).endRdata(rd);

  w.ptr(12);
  rd = w.rrFixed(rrtype::SRV, 1, 1);
  w.u16(5).u16(20).u16(5060).name("sip.test").endRdata(rd);

  w.ptr(12);
  rd = w.rrFixed(rrtype::SOA, 1, 1);
  w.label("ns").ptr(12).label("hostmaster").ptr(12);
  w.u32(2024010101).u32(7200).u32(900).u32(1209600).u32(300).endRdata(rd);

  w.ptr(12);
  rd = w.rrFixed(rrtype::KEY, 1, 1);
  w.u16(0x0100).u8(3).u8(8).bytes({0xaa, 0xbb, 0xcc}).endRdata(rd);

  w.ptr(12);
  rd = w.rrFixed(0xfe01, 1, 1);  // unassigned type: kept raw
  w.bytes({1, 2, 3}).endRdata(rd);

  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(w.b, m, weird));
  CHECK(weird.total() == 0);
  CHECK(m.complete);
  REQUIRE(m.answers.size() == 12);
  for (const auto& rr : m.answers) {
    CHECK(rr.rdata_ok);
    CHECK(m.raw(rr.name) == "z.test");
  }
  const auto& an = m.answers;

  CHECK(an[0].kind == RdataKind::Address);
  CHECK(an[0].address.family == 4);
  CHECK(ipv4(an[0].address) == "10.0.0.1");

  CHECK(an[1].kind == RdataKind::Address);
  CHECK(an[1].address.family == 6);
  CHECK(an[1].address.bytes[0] == 0x20);
  CHECK(an[1].address.bytes[15] == 0x53);

  CHECK(an[2].kind == RdataKind::Name);
  CHECK(m.raw(an[2].target) == "alias.test");
  CHECK(an[3].kind == RdataKind::Name);
  CHECK(m.raw(an[3].target) == "ns1.test");
  CHECK(an[4].kind == RdataKind::Name);
  CHECK(m.raw(an[4].target) == "host.in-addr.arpa");

  CHECK(an[5].kind == RdataKind::Mx);
  CHECK(an[5].preference == 10);
  CHECK(m.raw(an[5].target) == "mail.test");

  CHECK(an[6].kind == RdataKind::Txt);
  REQUIRE(an[6].txt_count == 3);
  const auto& segs = m.txtSegments();
  CHECK(m.txt(segs[an[6].txt_first]) == "v=spf1 -all");
  CHECK(m.txt(segs[an[6].txt_first + 1]).empty());
  CHECK(m.txt(segs[an[6].txt_first + 2]) == "second");

  CHECK(an[7].kind == RdataKind::Null);
  CHECK(an[7].rdlength == 4);
  CHECK(m.bytes()[an[7].rdata_offset + 1] == 0xff);

  CHECK(an[8].kind == RdataKind::Srv);
  CHECK(an[8].preference == 5);
  CHECK(an[8].weight == 20);
  CHECK(an[8].port == 5060);
  CHECK(m.raw(an[8].target) == "sip.test");

  CHECK(an[9].kind == RdataKind::Soa);
  CHECK(m.raw(an[9].target) == "ns.z.test");
  CHECK(m.raw(an[9].target2) == "hostmaster.z.test");
  CHECK(an[9].soa_values[0] == 2024010101u);
  CHECK(an[9].soa_values[1] == 7200);
  CHECK(an[9].soa_values[2] == 900);
  CHECK(an[9].soa_values[3] == 1209600);
  CHECK(an[9].soa_values[4] == 300);

  CHECK(an[10].kind == RdataKind::Key);
  CHECK(an[10].key_flags == 0x0100);
  CHECK(an[10].key_protocol == 3);
  CHECK(an[10].key_algorithm == 8);
  CHECK(an[10].rdlength == 7);

  CHECK(an[11].kind == RdataKind::Raw);
  CHECK(an[11].type == 0xfe01);
  CHECK(an[11].rdlength == 3);
  CHECK(m.bytes()[an[11].rdata_offset + 2] == 3);
}

TEST_CASE("dns: SPF is decoded like TXT") {
  Wire w;
  w.header(1, 0x8000, 0, 1, 0, 0).u8(0);
  const std::size_t rd = w.rrFixed(rrtype::SPF, 1, 1);
  w.label("v=spf1").label("include:x").endRdata(rd);
  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(w.b, m, weird));
  REQUIRE(m.answers.size() == 1);
  CHECK(m.answers[0].kind == RdataKind::Txt);
  CHECK(m.answers[0].txt_count == 2);
  CHECK(m.txt(m.txtSegments()[1]) == "include:x");
  CHECK(weird.total() == 0);
}

TEST_CASE("dns: RDATA that does not match its type") {
  Wire w;
  w.header(1, 0x8000, 0, 6, 0, 0);
  std::size_t rd;
  w.u8(0);
  rd = w.rrFixed(rrtype::A, 1, 1);
  w.bytes({1, 2, 3, 4, 5}).endRdata(rd);  // 5 bytes for an A
  w.u8(0);
  rd = w.rrFixed(rrtype::CNAME, 1, 1);
  w.name("a.b").u8(0xee).endRdata(rd);  // a byte after the name
  w.u8(0);
  rd = w.rrFixed(rrtype::MX, 1, 1);
  w.u16(1).label("mx");  // name goes on past the RDATA...
  w.endRdata(rd);
  w.u8(0);                // ...into the next record's owner (root)
  rd = w.rrFixed(rrtype::TXT, 1, 1);
  w.label("ok").u8(40).str("short").endRdata(rd);  // second string overruns
  w.u8(0);
  rd = w.rrFixed(rrtype::KEY, 1, 1);
  w.bytes({1, 2}).endRdata(rd);
  w.u8(0);
  rd = w.rrFixed(rrtype::A, 1, 1);
  w.bytes({192, 0, 2, 1}).endRdata(rd);

  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(w.b, m, weird));
  CHECK(m.complete);  // every record was walked using rdlength
  REQUIRE(m.answers.size() == 6);
  CHECK_FALSE(m.answers[0].rdata_ok);
  CHECK_FALSE(m.answers[1].rdata_ok);
  CHECK_FALSE(m.answers[2].rdata_ok);
  CHECK_FALSE(m.answers[3].rdata_ok);
  CHECK(m.answers[3].txt_count == 1);
  CHECK(m.txt(m.txtSegments()[m.answers[3].txt_first]) == "ok");
  CHECK_FALSE(m.answers[4].rdata_ok);
  CHECK(m.answers[5].rdata_ok);
  CHECK(ipv4(m.answers[5].address) == "192.0.2.1");
  CHECK(weird.get(Weird::DnsRdataBadLength) == 4);  // A, CNAME, MX, KEY
  CHECK(weird.get(Weird::DnsTxtBadLength) == 1);
}

TEST_CASE("dns: empty RDATA where a name is due") {
  Wire w;
  w.header(1, 0x8000, 0, 1, 0, 0).u8(0);
  w.endRdata(w.rrFixed(rrtype::CNAME, 1, 0));  // last bytes of the message
  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(w.b, m, weird));
  CHECK(weird.get(Weird::DnsRdataBadLength) == 1);
  CHECK(weird.total() == 1);  // not reported as a truncated name
  REQUIRE(m.answers.size() == 1);
  CHECK_FALSE(m.answers[0].rdata_ok);
  CHECK(m.raw(m.answers[0].target).empty());
  CHECK(m.complete);
}

TEST_CASE("dns: empty RDATA of an UPDATE delete is fine") {
  Wire w;
  w.header(1, 0x2800, 0, 0, 1, 0).name("a.test");
  w.rrFixed(rrtype::A, 255, 0);  // class ANY, rdlength 0: delete the RRset
  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(w.b, m, weird));
  CHECK(m.opcode == 5);
  REQUIRE(m.authorities.size() == 1);
  CHECK(m.authorities[0].rdata_ok);
  CHECK(m.authorities[0].rdlength == 0);
  CHECK(weird.get(Weird::DnsOpcodeUpdate) == 1);
  CHECK(weird.total() == 1);
}

TEST_CASE("dns: EDNS0 payload size, DO bit, options and extended rcode") {
  Wire w;
  w.header(9, 0x8183, 1, 0, 0, 1).question("x.test", rrtype::TXT);  // header rcode 3
  w.u8(0);
  const std::size_t rd = w.rrFixed(rrtype::OPT, 4096, 0x01008000);  // ext rcode 1, v0, DO
  w.u16(10).u16(8).bytes({1, 2, 3, 4, 5, 6, 7, 8});  // COOKIE
  w.u16(12).u16(0);                                   // PADDING, empty
  w.u16(15).u16(2).u16(18).endRdata(rd);              // EDE
  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(w.b, m, weird));
  CHECK(weird.total() == 0);
  CHECK(m.complete);
  const Edns& e = m.edns;
  CHECK(e.present);
  CHECK(e.udp_payload_size == 4096);
  CHECK(e.extended_rcode == 1);
  CHECK(e.version == 0);
  CHECK(e.dnssec_ok);
  CHECK(m.rcode == ((1 << 4) | 3));
  REQUIRE(e.option_count == 3);
  const auto& o = m.ednsOptions();
  CHECK(o[e.option_first].code == 10);
  CHECK(o[e.option_first].length == 8);
  CHECK(m.bytes()[o[e.option_first].offset] == 1);
  CHECK(m.bytes()[o[e.option_first].offset + 7] == 8);
  CHECK(o[e.option_first + 1].code == 12);
  CHECK(o[e.option_first + 1].length == 0);
  CHECK(o[e.option_first + 2].code == 15);
  CHECK(exfilwatch::loadBe16(m.bytes() + o[e.option_first + 2].offset) == 18);
}

TEST_CASE("dns: malformed OPT records") {
  SUBCASE("option overruns the RDATA") {
    Wire w;
    w.header(1, 0x8000, 0, 0, 0, 1).u8(0);
    const std::size_t rd = w.rrFixed(rrtype::OPT, 512, 0);
    w.u16(10).u16(8).bytes({1, 2, 3, 4, 5, 6, 7, 8});
    w.u16(3).u16(20).bytes({1, 2}).endRdata(rd);  // NSID claims 20, has 2
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CHECK(weird.get(Weird::DnsOptBad) == 1);
    CHECK(m.edns.present);
    CHECK(m.edns.option_count == 1);
    REQUIRE(m.additionals.size() == 1);
    CHECK_FALSE(m.additionals[0].rdata_ok);
    CHECK(m.complete);
  }
  SUBCASE("three bytes of option header") {
    Wire w;
    w.header(1, 0x8000, 0, 0, 0, 1).u8(0);
    const std::size_t rd = w.rrFixed(rrtype::OPT, 512, 0);
    w.bytes({0, 10, 0}).endRdata(rd);
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CHECK(weird.get(Weird::DnsOptBad) == 1);
    CHECK(m.edns.option_count == 0);
  }
  SUBCASE("two OPT records: the first wins") {
    Wire w;
    w.header(1, 0x8000, 0, 0, 0, 2).u8(0);
    w.endRdata(w.rrFixed(rrtype::OPT, 1232, 0));
    w.u8(0);
    w.endRdata(w.rrFixed(rrtype::OPT, 4096, 0x00008000));
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CHECK(weird.get(Weird::DnsOptMultiple) == 1);
    CHECK(m.edns.udp_payload_size == 1232);
    CHECK_FALSE(m.edns.dnssec_ok);
    CHECK(m.additionals.size() == 2);
  }
  SUBCASE("OPT owner is not the root") {
    Wire w;
    w.header(1, 0x8000, 0, 0, 0, 1).name("evil.test");
    w.endRdata(w.rrFixed(rrtype::OPT, 1232, 0));
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CHECK(weird.get(Weird::DnsOptNotRoot) == 1);
    CHECK(m.edns.present);
  }
  SUBCASE("OPT outside the additional section") {
    Wire w;
    w.header(1, 0x8000, 0, 1, 0, 0).u8(0);
    w.endRdata(w.rrFixed(rrtype::OPT, 1232, 0));
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CHECK(weird.get(Weird::DnsOptBad) == 1);
    CHECK_FALSE(m.edns.present);
    REQUIRE(m.answers.size() == 1);
    CHECK_FALSE(m.answers[0].rdata_ok);
  }
}

TEST_CASE("dns: compression pointer loops end, counted") {
  SUBCASE("pointer to itself") {
    Wire w;
    w.header(1, 0, 1, 0, 0, 0).ptr(12).u16(1).u16(1);
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    // Followed (it points forward, onto itself) until the chain bound.
    CHECK(weird.get(Weird::DnsPointerForward) == 1);
    CHECK(weird.get(Weird::DnsPointerChainTooLong) == 1);
    // A question whose name does not decode is not reported: its type
    // would be read from bytes of unknown meaning.
    CHECK(m.questions.empty());
    CHECK_FALSE(m.complete);
  }
  SUBCASE("two pointers pointing at each other") {
    Wire w;
    w.header(1, 0x8000, 0, 2, 0, 0).u8(0);
    const std::size_t rd = w.rrFixed(0xff00, 1, 0);
    const std::size_t p1 = w.pos();
    w.ptr(p1 + 2).ptr(p1).endRdata(rd);  // p1 -> p2 (forward), p2 -> p1
    w.ptr(p1 + 2);                       // owner name enters the loop at p2
    w.endRdata(w.rrFixed(rrtype::A, 1, 0));
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CHECK(weird.get(Weird::DnsPointerForward) == 1);
    CHECK(weird.get(Weird::DnsPointerChainTooLong) == 1);
    REQUIRE(m.answers.size() == 2);
    CHECK_FALSE(m.answers[1].name.valid);
    CHECK(m.complete);  // the owner's end in the stream is known
  }
  SUBCASE("backward pointer re-entering its own labels") {
    // 12: "a" then a pointer back to 12: each turn is strictly backward, so
    // only the chain bound stops it.
    Wire w;
    w.header(1, 0, 1, 0, 0, 0).label("a").ptr(12).u16(1).u16(1);
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CHECK(weird.get(Weird::DnsPointerChainTooLong) == 1);
    CHECK(m.questions.empty());
    CHECK_FALSE(m.complete);
  }
  SUBCASE("backward pointer loop with long labels hits the name length") {
    Wire w;
    w.header(1, 0, 1, 0, 0, 0).label(std::string(63, 'x')).ptr(12).u16(1).u16(1);
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CHECK(weird.get(Weird::DnsNameTooLong) == 1);
  }
}

TEST_CASE("dns: forward pointer is followed and counted") {
  // The shape of suricata-verify's dns-forward-pointer, which Google Public
  // DNS answered and dnsmasq forwards unchanged (tests/data/resolver-forwarding).
  Wire w;
  w.header(1, 0, 2, 0, 0, 0);
  w.ptr(18).u16(rrtype::A).u16(1);        // 12: points at the next question's name
  w.question("Later.test", rrtype::TXT);  // 18
  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(w.b, m, weird));
  CHECK(weird.get(Weird::DnsPointerForward) == 1);
  CHECK(weird.get(Weird::DnsMultipleQuestions) == 1);
  CHECK(weird.total() == 2);
  CHECK(m.complete);
  REQUIRE(m.questions.size() == 2);
  CHECK(m.questions[0].name.valid);
  CHECK(m.raw(m.questions[0].name) == "Later.test");
  CHECK(m.lower(m.questions[0].name) == "later.test");
  CHECK(m.questions[0].name.labels == 2);
  CHECK(m.questions[0].type == rrtype::A);
  CHECK(m.raw(m.questions[1].name) == "Later.test");
  CHECK(m.questions[1].type == rrtype::TXT);
}

TEST_CASE("dns: forward pointer after labels, into a later record") {
  // "x" then a pointer forward to the additional record's owner name (20).
  Wire w;
  w.header(1, 0, 1, 0, 0, 1);
  w.label("x").ptr(20).u16(rrtype::A).u16(1);
  w.name("fwd.example");
  const std::size_t rd = w.rrFixed(rrtype::TXT, 1, 0);
  w.label("v").endRdata(rd);
  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(w.b, m, weird));
  CHECK(m.complete);
  REQUIRE(m.questions.size() == 1);
  CHECK(m.raw(m.questions[0].name) == "x.fwd.example");
  CHECK(m.questions[0].name.labels == 3);
  REQUIRE(m.additionals.size() == 1);
  CHECK(m.raw(m.additionals[0].name) == "fwd.example");
  CHECK(weird.get(Weird::DnsPointerForward) == 1);
  CHECK(weird.total() == 1);
}

TEST_CASE("dns: forward pointer chains are bounded like backward ones") {
  // Question name at 12 is a pointer to 14, 14 to 16, ... each one forward;
  // the last points at a plain name. k pointers in all.
  auto build = [](int k) {
    Wire w;
    w.header(1, 0, 1, 0, 0, 0);
    const std::size_t first = w.pos();
    for (int i = 1; i <= k; ++i) w.ptr(first + 2 * static_cast<std::size_t>(i));
    w.name("end.test");
    return w;
  };
  {
    // 16 pointers: allowed. The question's type and class are read right
    // after its first pointer (bytes 14..17, themselves pointers here): the
    // name's end in the stream is what a pointer fixes, wherever it leads.
    const auto w = build(16);
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    REQUIRE(m.questions.size() == 1);
    CHECK(m.questions[0].name.valid);
    CHECK(m.raw(m.questions[0].name) == "end.test");
    CHECK(weird.get(Weird::DnsPointerForward) == 1);  // once per name
    CHECK(weird.get(Weird::DnsPointerChainTooLong) == 0);
  }
  {
    const auto w = build(17);
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CHECK(m.questions.empty());
    CHECK(weird.get(Weird::DnsPointerChainTooLong) == 1);
    CHECK_FALSE(m.complete);
  }
}

TEST_CASE("dns: forward pointers keep a message's work linear in its length") {
  // The worst case for a walk: every answer's owner is a pointer forward to
  // one 4-label, 253-character name at the end, so none is served from the
  // names remembered by offset. Each costs at most 127 label steps; the
  // message must still parse whole, the stored records capped, every walked
  // owner decoded.
  const std::string l63(63, 'w');
  Wire w;
  const uint16_t answers = 1300;  // pointers reach 16,383 bytes at most
  w.header(1, 0x8000, 1, answers, 0, 0).question("q.test", rrtype::A);
  const std::size_t long_name = w.pos() + std::size_t{answers} * 12;
  REQUIRE(long_name + 256 < 0x3FFF);
  for (uint16_t i = 0; i + 1 < answers; ++i) w.ptr(long_name).rrFixed(0xff00, 1, 0);
  // The last record's RDATA is the long name.
  w.ptr(long_name);
  const std::size_t rd = w.rrFixed(0xff00, 1, 0);
  REQUIRE(w.pos() == long_name);
  w.label(l63).label(l63).label(l63).label(std::string(61, 'z')).u8(0).endRdata(rd);
  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(w.b, m, weird));
  ParseLimits limits;
  CHECK(m.answers.size() == limits.max_records);
  CHECK(weird.get(Weird::DnsTooManyRecords) == 1);
  CHECK(weird.get(Weird::DnsPointerForward) == answers);  // walked owners count too
  CHECK(weird.get(Weird::DnsNameTooLong) == 0);
  for (const auto& rr : m.answers) {
    CHECK(rr.name.valid);
    CHECK(rr.name.labels == 4);
    CHECK(m.raw(rr.name).size() == 253);
  }
  // The arena holds the stored names only, not the walked ones.
  CHECK(m.raw(m.answers.back().name).substr(0, 4) == "wwww");
}

TEST_CASE("dns: opcodes other than QUERY are parsed and named") {
  for (uint8_t opcode = 0; opcode < 16; ++opcode) {
    Wire w;
    w.header(7, static_cast<uint16_t>(opcode << 11), 1, 0, 0, 0).question("op.test", rrtype::A);
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CAPTURE(opcode);
    CHECK(m.opcode == opcode);
    CHECK(m.complete);
    REQUIRE(m.questions.size() == 1);
    CHECK(m.raw(m.questions[0].name) == "op.test");
    const Weird expected = opcode == 1   ? Weird::DnsOpcodeIquery
                           : opcode == 4 ? Weird::DnsOpcodeNotify
                           : opcode == 5 ? Weird::DnsOpcodeUpdate
                                         : Weird::DnsOpcodeOther;
    CHECK(weird.total() == (opcode == 0 ? 0U : 1U));
    if (opcode != 0) CHECK(weird.get(expected) == 1);
  }
}

TEST_CASE("dns: IQUERY as RFC 1035 wrote it: the answer section asks") {
  // zeek's dns-inverse-query.pcap: no question, one A record with a root
  // owner; the response's question is the address in brackets.
  Wire q;
  q.header(0x87ee, 0x0980, 0, 1, 0, 0).u8(0);
  const std::size_t rd = q.rrFixed(rrtype::A, 1, 31337);
  q.bytes({4, 3, 2, 1}).endRdata(rd);
  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(q.b, m, weird));
  CHECK(m.opcode == 1);
  CHECK(m.questions.empty());
  CHECK(m.complete);
  REQUIRE(m.answers.size() == 1);
  CHECK(ipv4(m.answers[0].address) == "4.3.2.1");
  CHECK(weird.get(Weird::DnsOpcodeIquery) == 1);
  CHECK(weird.total() == 1);

  Wire r;
  r.header(0x87ee, 0x8980, 1, 1, 0, 0);
  r.labels("[4.3.2.1]").u8(0).u16(rrtype::A).u16(1);
  r.u8(0);
  const std::size_t rd2 = r.rrFixed(rrtype::A, 1, 31337);
  r.bytes({4, 3, 2, 1}).endRdata(rd2);
  WeirdCounters weird2;
  REQUIRE(parse(r.b, m, weird2));
  REQUIRE(m.questions.size() == 1);
  CHECK(m.raw(m.questions[0].name) == "[4.3.2.1]");
  CHECK(m.questions[0].name.labels == 4);
  CHECK(weird2.get(Weird::DnsOpcodeIquery) == 1);
}

TEST_CASE("dns: UPDATE's zone, prerequisite, update and additional sections") {
  // RFC 2136 §2: ZOCOUNT, PRCOUNT, UPCOUNT, ADCOUNT take the places of the
  // four counts, and each section has the layout of the one it replaces.
  Wire w;
  w.header(0x2222, 0x2800, 1, 1, 2, 1).question("zone.test", rrtype::SOA);
  w.labels("exists").ptr(12);
  w.rrFixed(rrtype::A, 255, 0);  // prerequisite: an RRset exists (class ANY, empty)
  w.labels("data-1").ptr(12);
  std::size_t rd = w.rrFixed(rrtype::TXT, 1, 0);  // update: add a TXT record
  w.label("payload").endRdata(rd);
  w.labels("old").ptr(12);
  w.rrFixed(rrtype::TXT, 254, 0);  // update: delete an RR (class NONE, empty here)
  w.u8(0);
  w.endRdata(w.rrFixed(rrtype::OPT, 1232, 0));
  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(w.b, m, weird));
  CHECK(m.complete);
  CHECK(weird.get(Weird::DnsOpcodeUpdate) == 1);
  CHECK(weird.total() == 1);
  REQUIRE(m.questions.size() == 1);
  CHECK(m.raw(m.questions[0].name) == "zone.test");
  CHECK(m.questions[0].type == rrtype::SOA);
  REQUIRE(m.answers.size() == 1);
  CHECK(m.raw(m.answers[0].name) == "exists.zone.test");
  CHECK(m.answers[0].rclass == 255);
  REQUIRE(m.authorities.size() == 2);
  CHECK(m.raw(m.authorities[0].name) == "data-1.zone.test");
  REQUIRE(m.authorities[0].txt_count == 1);
  CHECK(m.txt(m.txtSegments()[m.authorities[0].txt_first]) == "payload");
  CHECK(m.raw(m.authorities[1].name) == "old.zone.test");
  CHECK(m.authorities[1].rdata_ok);
  CHECK(m.edns.present);
}

TEST_CASE("dns: NOTIFY with its SOA answer, DSO with TLVs") {
  {
    Wire w;
    w.header(3, 0x2400, 1, 1, 0, 0).question("notify.test", rrtype::SOA);
    w.ptr(12);
    const std::size_t rd = w.rrFixed(rrtype::SOA, 1, 60);
    w.labels("ns").ptr(12).labels("hostmaster").ptr(12);
    w.u32(2026).u32(1).u32(2).u32(3).u32(4).endRdata(rd);
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CHECK(m.complete);
    CHECK(weird.get(Weird::DnsOpcodeNotify) == 1);
    CHECK(weird.total() == 1);
    REQUIRE(m.answers.size() == 1);
    CHECK(m.raw(m.answers[0].target) == "ns.notify.test");
    CHECK(m.answers[0].soa_values[0] == 2026);
  }
  {
    // RFC 8490: a DSO message has no sections, its TLVs follow the header.
    Wire w;
    w.header(4, 0x3000, 0, 0, 0, 0).u16(1).u16(8).u32(0).u32(0);
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CHECK(m.complete);
    CHECK(weird.get(Weird::DnsOpcodeOther) == 1);
    CHECK(weird.get(Weird::DnsTrailingBytes) == 1);
    CHECK(weird.total() == 2);
  }
}

TEST_CASE("dns: every question of a multi-question message is parsed") {
  Wire w;
  w.header(5, 0x0100, 3, 0, 0, 0);
  w.question("one.Tunnel.test", rrtype::A);  // "tunnel" at 16
  w.labels("two").ptr(16).u16(rrtype::TXT).u16(1);
  w.labels("three").ptr(12).u16(rrtype::NULL_).u16(1);
  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(w.b, m, weird));
  CHECK(m.complete);
  CHECK(weird.get(Weird::DnsMultipleQuestions) == 1);
  CHECK(weird.total() == 1);
  REQUIRE(m.questions.size() == 3);
  CHECK(m.lower(m.questions[0].name) == "one.tunnel.test");
  CHECK(m.raw(m.questions[1].name) == "two.Tunnel.test");
  CHECK(m.questions[1].type == rrtype::TXT);
  CHECK(m.raw(m.questions[2].name) == "three.one.Tunnel.test");
  CHECK(m.questions[2].type == rrtype::NULL_);
}

TEST_CASE("dns: classes other than IN are parsed and named once per message") {
  for (uint16_t qclass : {0, 2, 3, 4, 254, 255, 4660, 65535}) {
    Wire w;
    w.header(6, 0x0100, 2, 0, 0, 0).question("a.test", rrtype::TXT, qclass);
    w.question("b.test", rrtype::TXT, qclass);
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CAPTURE(qclass);
    CHECK(m.complete);
    REQUIRE(m.questions.size() == 2);
    CHECK(m.questions[0].qclass == qclass);
    CHECK(m.raw(m.questions[1].name) == "b.test");
    CHECK(weird.get(Weird::DnsClassNotIn) == 1);
    CHECK(weird.total() == 2);  // and dns.multiple_questions
  }
  Wire w;
  w.header(6, 0x0100, 1, 0, 0, 0).question("in.test", rrtype::TXT, 1);
  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(w.b, m, weird));
  CHECK(weird.total() == 0);
}

TEST_CASE("dns: EDNS options of every size, bounded by the message") {
  // One option of length n after a question, for n from 0 up to the most a
  // 65,535-byte message (the TCP bound; UDP allows less) can hold; then the
  // same option claiming one byte more than its RDATA has.
  const std::size_t fixed = 12 + 7 + 11 + 4;  // header, "t" A IN, OPT, option header
  std::vector<std::size_t> sizes;
  for (std::size_t n = 0; n <= 1100; ++n) sizes.push_back(n);
  for (std::size_t n = 1101; n + fixed <= 65535; n += 997) sizes.push_back(n);
  sizes.push_back(65535 - fixed);
  DnsMessage m;
  for (const std::size_t n : sizes) {
    CAPTURE(n);
    Wire w;
    w.header(8, 0x0100, 1, 0, 0, 1).question("t", rrtype::A);
    w.u8(0);
    const std::size_t rd = w.rrFixed(rrtype::OPT, 4096, 0);
    w.u16(65001).u16(static_cast<uint16_t>(n));
    w.b.resize(w.b.size() + n, static_cast<uint8_t>(n));
    w.endRdata(rd);
    REQUIRE(w.b.size() == fixed + n);
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CHECK(weird.total() == 0);
    CHECK(m.complete);
    REQUIRE(m.edns.option_count == 1);
    const EdnsOption& o = m.ednsOptions()[m.edns.option_first];
    CHECK(o.code == 65001);
    CHECK(o.length == n);
    CHECK(o.offset + o.length == w.b.size());

    // The option claims one byte more than the RDATA holds.
    const std::size_t len_at = rd + 2;
    w.b[len_at] = static_cast<uint8_t>((n + 1) >> 8);
    w.b[len_at + 1] = static_cast<uint8_t>(n + 1);
    WeirdCounters weird2;
    REQUIRE(parse(w.b, m, weird2));
    CHECK(weird2.get(Weird::DnsOptBad) == 1);
    CHECK(m.edns.option_count == 0);
    CHECK(m.complete);  // the record's own length is right: the walk goes on
  }
}

TEST_CASE("dns: pointer chain length bound") {
  // A raw record holds pointers p0..p15, p0 -> the question name, pk -> pk-1.
  // An answer owner pointing at pk follows k+2 pointers.
  auto build = [](int k) {
    Wire w;
    w.header(1, 0x8000, 1, 2, 0, 0).question("a", rrtype::A);
    w.u8(0);
    const std::size_t rd = w.rrFixed(0xff00, 1, 0);
    const std::size_t p0 = w.pos();
    w.ptr(12);
    for (int i = 1; i < 16; ++i) w.ptr(p0 + 2 * (i - 1));
    w.endRdata(rd);
    w.ptr(p0 + 2 * static_cast<std::size_t>(k));
    const std::size_t rd2 = w.rrFixed(rrtype::A, 1, 0);
    w.bytes({1, 2, 3, 4}).endRdata(rd2);
    return w.b;
  };
  static_assert(kMaxPointerChain == 16);
  {
    const auto b = build(14);  // 16 pointers: allowed
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(b, m, weird));
    CHECK(weird.total() == 0);
    REQUIRE(m.answers.size() == 2);
    CHECK(m.answers[1].name.valid);
    CHECK(m.raw(m.answers[1].name) == "a");
  }
  {
    const auto b = build(15);  // 17 pointers
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(b, m, weird));
    CHECK(weird.get(Weird::DnsPointerChainTooLong) == 1);
    REQUIRE(m.answers.size() == 2);
    CHECK_FALSE(m.answers[1].name.valid);
    CHECK(ipv4(m.answers[1].address) == "1.2.3.4");  // the record itself still decodes
    CHECK(m.complete);
  }
}

TEST_CASE("dns: label length and label types") {
  SUBCASE("63 octets is the maximum") {
    Wire w;
    w.header(1, 0, 1, 0, 0, 0).label(std::string(63, 'a')).u8(0).u16(1).u16(1);
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CHECK(weird.total() == 0);
    CHECK(m.raw(m.questions.at(0).name).size() == 63);
  }
  SUBCASE("64 octets") {
    Wire w;
    w.header(1, 0, 1, 0, 0, 0).label(std::string(64, 'a')).u8(0).u16(1).u16(1);
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CHECK(weird.get(Weird::DnsLabelTooLong) == 1);
    CHECK(m.questions.empty());  // the end of an inline name is unknown: stop
    CHECK_FALSE(m.complete);
  }
  SUBCASE("0x80 label type") {
    Wire w;
    w.header(1, 0, 1, 0, 0, 0).label("ok").u8(0x80).u8(0).u16(1).u16(1);
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CHECK(weird.get(Weird::DnsBadLabelType) == 1);
    CHECK_FALSE(m.complete);
  }
  SUBCASE("0x41 binary label (RFC 2673)") {
    Wire w;
    w.header(1, 0, 1, 0, 0, 0).bytes({0x41, 0x08, 0xff}).u8(0).u16(1).u16(1);
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CHECK(weird.get(Weird::DnsBadLabelType) == 1);
  }
}

TEST_CASE("dns: name length bound of 255 wire octets") {
  const std::string l63(63, 'b');
  SUBCASE("exactly 255") {
    Wire w;
    w.header(1, 0, 1, 0, 0, 0).label(l63).label(l63).label(l63).label(std::string(61, 'c'));
    w.u8(0).u16(1).u16(1);
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CHECK(weird.total() == 0);
    CHECK(m.questions.at(0).name.valid);
    CHECK(m.raw(m.questions[0].name).size() == 253);
    CHECK(m.questions[0].name.labels == 4);
  }
  SUBCASE("256 inline") {
    Wire w;
    w.header(1, 0, 1, 0, 0, 0).label(l63).label(l63).label(l63).label(std::string(62, 'c'));
    w.u8(0).u16(1).u16(1);
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CHECK(weird.get(Weird::DnsNameTooLong) == 1);
    CHECK_FALSE(m.complete);
  }
  SUBCASE("too long only through compression") {
    Wire w;
    w.header(1, 0x8000, 1, 1, 0, 0).label(l63).label(l63).label(l63).u8(0).u16(1).u16(1);
    w.label(l63).ptr(12);  // 64 + 193 = 257
    const std::size_t rd = w.rrFixed(rrtype::A, 1, 0);
    w.bytes({5, 6, 7, 8}).endRdata(rd);
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CHECK(weird.get(Weird::DnsNameTooLong) == 1);
    REQUIRE(m.answers.size() == 1);
    CHECK_FALSE(m.answers[0].name.valid);
    CHECK(ipv4(m.answers[0].address) == "5.6.7.8");
    CHECK(m.complete);
  }
}

TEST_CASE("dns: raw 8-bit, '.' and NUL bytes in labels are kept") {
  const std::string label1{'A', '.', '\xc3', '\x89', '\0', 'z', '\xff'};
  Wire w;
  w.header(1, 0, 1, 0, 0, 0).label(label1).label("COM").u8(0).u16(rrtype::NULL_).u16(1);
  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(w.b, m, weird));
  CHECK(weird.total() == 0);
  const NameRef& n = m.questions.at(0).name;
  CHECK(n.valid);
  CHECK(n.labels == 2);
  CHECK(m.raw(n) == label1 + ".COM");
  const std::string lowered{'a', '.', '\xc3', '\x89', '\0', 'z', '\xff'};
  CHECK(m.lower(n) == lowered + ".com");
  CHECK(m.raw(n).size() == label1.size() + 4);
}

TEST_CASE("dns: every truncation of a valid response") {
  Wire w;
  w.header(0x4242, 0x8180, 1, 3, 1, 1).question("www.example.com", rrtype::A);
  w.ptr(12);
  std::size_t rd = w.rrFixed(rrtype::CNAME, 1, 300);
  w.label("web").ptr(16).endRdata(rd);
  w.ptr(12);
  rd = w.rrFixed(rrtype::TXT, 1, 300);
  w.label("hello").label("world").endRdata(rd);
  w.ptr(12);
  rd = w.rrFixed(rrtype::MX, 1, 300);
  w.u16(5).label("mx").ptr(16).endRdata(rd);
  w.ptr(16);
  rd = w.rrFixed(rrtype::SOA, 1, 300);
  w.label("ns").ptr(16).label("root").ptr(16).u32(1).u32(2).u32(3).u32(4).u32(5).endRdata(rd);
  w.u8(0);
  rd = w.rrFixed(rrtype::OPT, 1232, 0x00008000);
  w.u16(10).u16(8).bytes({1, 2, 3, 4, 5, 6, 7, 8}).endRdata(rd);
  const std::vector<uint8_t>& full = w.b;

  DnsMessage m;  // reused on purpose
  {
    WeirdCounters weird;
    REQUIRE(parse(full, m, weird));
    REQUIRE(m.complete);
    REQUIRE(weird.total() == 0);
    REQUIRE(m.answers.size() == 3);
    REQUIRE(m.authorities.size() == 1);
  }
  for (std::size_t len = 0; len < full.size(); ++len) {
    CAPTURE(len);
    // A heap copy of exactly `len` bytes, so ASan sees any read past it.
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
    cut.shrink_to_fit();
    WeirdCounters weird;
    const bool ok = Parser().parse(cut.data(), cut.size(), m, weird);
    CHECK(ok == (len >= 12));
    CHECK_FALSE(m.complete);
    CHECK(weird.total() > 0);
    for (const auto* sec : {&m.answers, &m.authorities, &m.additionals})
      for (const auto& rr : *sec) CHECK(rr.rdata_offset + rr.rdlength <= len);
    for (const auto& q : m.questions) CHECK(q.name.valid);
  }
}

TEST_CASE("dns: a record cut inside its RDATA is kept, clamped") {
  Wire w;
  w.header(1, 0x8000, 0, 1, 0, 0).u8(0);
  w.rrFixed(rrtype::NULL_, 1, 0);
  w.b[w.pos() - 1] = 100;  // rdlength 100, only 4 follow
  w.bytes({1, 2, 3, 4});
  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(w.b, m, weird));
  CHECK(weird.get(Weird::DnsRecordTruncated) == 1);
  REQUIRE(m.answers.size() == 1);
  CHECK(m.answers[0].rdlength == 4);
  CHECK_FALSE(m.answers[0].rdata_ok);
  CHECK(m.answers[0].kind == RdataKind::Raw);
  CHECK_FALSE(m.complete);
}

TEST_CASE("dns: counts larger than what is present") {
  SUBCASE("answers") {
    Wire w;
    w.header(1, 0x8000, 1, 3, 2, 0).question("a.test", rrtype::A);
    w.ptr(12);
    const std::size_t rd = w.rrFixed(rrtype::A, 1, 0);
    w.bytes({1, 1, 1, 1}).endRdata(rd);
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CHECK(weird.get(Weird::DnsRecordTruncated) == 1);
    CHECK(weird.total() == 1);
    CHECK(m.answers.size() == 1);
    CHECK(ipv4(m.answers[0].address) == "1.1.1.1");
    CHECK_FALSE(m.complete);
  }
  SUBCASE("questions") {
    Wire w;
    w.header(1, 0, 65535, 65535, 65535, 65535).question("a.test", rrtype::A);
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(w.b, m, weird));
    CHECK(weird.get(Weird::DnsQuestionTruncated) == 1);
    CHECK(weird.get(Weird::DnsMultipleQuestions) == 1);
    CHECK(weird.total() == 2);
    CHECK(m.questions.size() == 1);
    CHECK(m.answers.empty());
    CHECK_FALSE(m.complete);
  }
}

TEST_CASE("dns: trailing bytes after the announced sections") {
  Wire w;
  w.header(1, 0, 1, 0, 0, 0).question("a.test", rrtype::A).bytes({0xde, 0xad});
  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(w.b, m, weird));
  CHECK(weird.get(Weird::DnsTrailingBytes) == 1);
  CHECK(m.complete);
}

TEST_CASE("dns: too many records") {
  Wire w;
  w.header(1, 0x8000, 1, 5, 0, 1).question("many.test", rrtype::A);
  for (uint8_t i = 0; i < 5; ++i) {
    w.ptr(12);
    const std::size_t rd = w.rrFixed(rrtype::A, 1, 0);
    w.bytes({10, 0, 0, i}).endRdata(rd);
  }
  w.u8(0);
  w.endRdata(w.rrFixed(rrtype::OPT, 1400, 0x00008000));
  DnsMessage m;
  WeirdCounters weird;
  ParseLimits limits;
  limits.max_records = 3;
  REQUIRE(parse(w.b, m, weird, limits));
  CHECK(weird.get(Weird::DnsTooManyRecords) == 1);
  CHECK(weird.total() == 1);
  CHECK(m.questions.size() == 1);
  REQUIRE(m.answers.size() == 3);
  CHECK(ipv4(m.answers[2].address) == "10.0.0.2");
  CHECK(m.additionals.empty());
  CHECK(m.edns.present);  // walked past the limit, the OPT still counts
  CHECK(m.edns.udp_payload_size == 1400);
  CHECK_FALSE(m.complete);

  // The same message under the default limit is complete.
  WeirdCounters weird2;
  REQUIRE(parse(w.b, m, weird2));
  CHECK(m.complete);
  CHECK(m.answers.size() == 5);
  CHECK(weird2.total() == 0);
}

TEST_CASE("dns: reuse keeps capacity (no steady-state allocation)") {
  const auto big = compressedResponse();
  Wire small;
  small.header(1, 0, 1, 0, 0, 0).question("a", rrtype::A);
  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(big, m, weird));
  const auto* answers = m.answers.data();
  const auto cap = m.answers.capacity();
  const auto* questions = m.questions.data();
  REQUIRE(parse(small.b, m, weird));
  CHECK(m.answers.empty());
  REQUIRE(parse(big, m, weird));
  CHECK(m.answers.data() == answers);
  CHECK(m.answers.capacity() == cap);
  CHECK(m.questions.data() == questions);
  CHECK(m.raw(m.answers[0].target) == "web.example.com");
  m.clear();
  CHECK(m.answers.capacity() == cap);
  CHECK(m.questions.empty());
  CHECK_FALSE(m.edns.present);
  CHECK(m.bytes() == nullptr);
}

TEST_CASE("dns: random mutations never break the invariants") {
  const auto base = compressedResponse();
  std::mt19937 rng(12345);
  DnsMessage m;
  WeirdCounters weird;
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<uint8_t> b = base;
    const int flips = 1 + static_cast<int>(rng() % 6);
    for (int f = 0; f < flips; ++f) b[rng() % b.size()] = static_cast<uint8_t>(rng());
    b.resize(12 + rng() % (b.size() - 11));
    b.shrink_to_fit();
    Parser().parse(b.data(), b.size(), m, weird);
    for (const auto& q : m.questions) CHECK(m.raw(q.name).size() <= 253);
    for (const auto* sec : {&m.answers, &m.authorities, &m.additionals}) {
      for (const auto& rr : *sec) {
        REQUIRE(rr.rdata_offset + rr.rdlength <= b.size());
        CHECK(m.raw(rr.name).size() <= 253);
        CHECK(m.lower(rr.name).size() == m.raw(rr.name).size());
      }
    }
    for (uint32_t i = 0; i < m.edns.option_count; ++i) {
      const auto& o = m.ednsOptions()[m.edns.option_first + i];
      REQUIRE(o.offset + o.length <= b.size());
    }
  }
}

TEST_CASE("dns: type and rcode names") {
  CHECK(rrtypeName(1) == "A");
  CHECK(rrtypeName(23) == "NSAP-PTR");
  CHECK(rrtypeName(28) == "AAAA");
  CHECK(rrtypeName(41) == "OPT");
  CHECK(rrtypeName(65) == "HTTPS");
  CHECK(rrtypeName(99) == "SPF");
  CHECK(rrtypeName(255) == "ANY");
  CHECK(rrtypeName(257) == "CAA");
  CHECK(rrtypeName(260) == "AMTRELAY");
  CHECK(rrtypeName(32768) == "TA");
  CHECK(rrtypeName(32769) == "DLV");
  CHECK(rrtypeName(0).empty());
  CHECK(rrtypeName(54).empty());
  CHECK(rrtypeName(65535).empty());
  CHECK(rrtypeText(16) == "TXT");
  CHECK(rrtypeText(0) == "TYPE0");
  CHECK(rrtypeText(65280) == "TYPE65280");
  CHECK(rcodeName(0) == "NOERROR");
  CHECK(rcodeName(3) == "NXDOMAIN");
  CHECK(rcodeName(11) == "DSOTYPENI");
  CHECK(rcodeName(12).empty());
  CHECK(rcodeName(16) == "BADVERS");
  CHECK(rcodeName(23) == "BADCOOKIE");
  CHECK(rcodeName(24).empty());
  CHECK(rcodeText(5) == "REFUSED");
  CHECK(rcodeText(12) == "12");
  CHECK(rcodeText(4095) == "4095");
}

// Real payloads, extracted with
//   tshark -r <pcap> -T fields -e udp.payload
// and checked against what tshark -V decodes.

TEST_CASE("dns: real capture, dnscap dns.pcap query and response") {
  // frame 1: Standard query 0xe7af A google.com
  const auto q = fromHex("e7af0100000100000000000006676f6f676c6503636f6d0000010001");
  // frame 2: ... A 216.58.218.206, NS ns4/ns3/ns1/ns2.google.com, glue A records
  const auto r = fromHex(
      "e7af8180000100010004000406676f6f676c6503636f6d0000010001c00c000100010000002c0004d83adace"
      "c00c00020001000268b80006036e7334c00cc00c00020001000268b80006036e7333c00cc00c000200010002"
      "68b80006036e7331c00cc00c00020001000268b80006036e7332c00cc06e00010001000268b80004d8ef220a"
      "c05c000100010005106a0004d8ef200ac04a00010001000268b80004d8ef240ac03800010001000268b80004"
      "d8ef260a");
  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(q, m, weird));
  CHECK(m.id == 0xe7af);
  CHECK_FALSE(m.qr);
  CHECK(m.complete);
  REQUIRE(m.questions.size() == 1);
  CHECK(m.raw(m.questions[0].name) == "google.com");
  CHECK(m.questions[0].type == rrtype::A);

  REQUIRE(parse(r, m, weird));
  CHECK(weird.total() == 0);
  CHECK(m.complete);
  CHECK(m.qr);
  CHECK(m.rcode == rcode::NOERROR);
  REQUIRE(m.answers.size() == 1);
  CHECK(m.raw(m.answers[0].name) == "google.com");
  CHECK(ipv4(m.answers[0].address) == "216.58.218.206");
  CHECK(m.answers[0].ttl == 44);
  REQUIRE(m.authorities.size() == 4);
  const char* ns[] = {"ns4.google.com", "ns3.google.com", "ns1.google.com", "ns2.google.com"};
  for (int i = 0; i < 4; ++i) {
    CHECK(m.authorities[i].type == rrtype::NS);
    CHECK(m.raw(m.authorities[i].target) == ns[i]);
  }
  REQUIRE(m.additionals.size() == 4);
  const char* glue[][2] = {{"ns2.google.com", "216.239.34.10"},
                           {"ns1.google.com", "216.239.32.10"},
                           {"ns3.google.com", "216.239.36.10"},
                           {"ns4.google.com", "216.239.38.10"}};
  for (int i = 0; i < 4; ++i) {
    CHECK(m.raw(m.additionals[i].name) == glue[i][0]);
    CHECK(ipv4(m.additionals[i].address) == glue[i][1]);
  }
  CHECK_FALSE(m.edns.present);
}

TEST_CASE("dns: real capture, iodine base128 NULL query with 8-bit labels") {
  // captures/iodine-null.pcap frame 74 (VXLAN-encapsulated): tshark shows
  // 5 labels, name length 102, type NULL, OPT with DO.
  const auto b = fromHex(
      "a123010000010000000000013e30616362683832ca326862beee59d67764c9fd4a62dede35d4bc7531f7596a"
      "c26730eebf47d438307075c2e864696c6d70d0fbe052c9de5779ca786c6ac015e05736d86df1d6636a7aeac4"
      "5a79666165d171f1530274310a74756e6e656c2d6c6162036e657400000a00010000291000000080000000");
  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(b, m, weird));
  CHECK(weird.total() == 0);
  CHECK(m.complete);
  REQUIRE(m.questions.size() == 1);
  const NameRef& n = m.questions[0].name;
  CHECK(n.labels == 5);
  CHECK(n.length == 102);
  CHECK(m.questions[0].type == rrtype::NULL_);
  const std::string_view raw = m.raw(n);
  const std::string_view low = m.lower(n);
  CHECK(raw.substr(0, 8) == "0acbh82\xca");
  CHECK(raw.substr(raw.size() - 18) == ".t1.tunnel-lab.net");
  // 'J' at label offset 19 is lowered; 8-bit bytes are not.
  CHECK(raw[19] == 'J');
  CHECK(low[19] == 'j');
  CHECK(static_cast<uint8_t>(low[7]) == 0xca);
  CHECK(static_cast<uint8_t>(raw[62]) == '.');  // label boundary, then the 21-byte label
  CHECK(static_cast<uint8_t>(raw[63]) == 0xe0);
  CHECK(m.edns.present);
  CHECK(m.edns.udp_payload_size == 4096);
  CHECK(m.edns.dnssec_ok);
  CHECK(m.edns.option_count == 0);
}

TEST_CASE("dns: real capture, iodine NULL response and a DMARC TXT answer") {
  // captures/iodine-null.pcap: "vaaaakastae.t1.tunnel-lab.net" NULL answer, 9 bytes.
  const auto nul = fromHex(
      "f972840000010001000000000b76616161616b61737461650274310a74756e6e656c2d6c6162036e6574000"
      "00a0001c00c000a00010000000000095641434b7afb727100");
  // captures/benign-dns.pcap frame 1637: _dmarc.example.org TXT "v=DMARC1; p=none", OPT 1232.
  const auto txt = fromHex(
      "f79285800001000100000001065f646d617263076578616d706c65036f72670000100001c00c00100001000000"
      "00001110763d444d415243313b20703d6e6f6e6500002904d0000000000000");
  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(parse(nul, m, weird));
  CHECK(m.complete);
  CHECK(m.aa);
  REQUIRE(m.answers.size() == 1);
  CHECK(m.raw(m.answers[0].name) == "vaaaakastae.t1.tunnel-lab.net");
  CHECK(m.answers[0].kind == RdataKind::Null);
  CHECK(m.answers[0].rdlength == 9);
  CHECK(std::string_view(reinterpret_cast<const char*>(m.bytes()) + m.answers[0].rdata_offset, 4) ==
        "VACK");

  REQUIRE(parse(txt, m, weird));
  CHECK(m.complete);
  REQUIRE(m.answers.size() == 1);
  CHECK(m.lower(m.answers[0].name) == "_dmarc.example.org");
  CHECK(m.answers[0].kind == RdataKind::Txt);
  REQUIRE(m.answers[0].txt_count == 1);
  CHECK(m.txt(m.txtSegments()[m.answers[0].txt_first]) == "v=DMARC1; p=none");
  CHECK(m.edns.present);
  CHECK(m.edns.udp_payload_size == 1232);
  CHECK_FALSE(m.edns.dnssec_ok);
  CHECK(weird.total() == 0);
}

TEST_CASE("dns: lower() lower-cases exactly the ASCII letters, for every byte value") {
  // Two questions whose labels hold every byte value 1..127 and 128..255
  // (a name may not exceed 255 octets, so one name cannot hold them all).
  std::vector<uint8_t> msg = {0x12, 0x34, 0x01, 0x00, 0, 2, 0, 0, 0, 0, 0, 0};
  std::string expected_raw[2];
  for (int half = 0; half < 2; ++half) {
    const int lo = half == 0 ? 1 : 128;
    const int hi = half == 0 ? 127 : 255;
    for (int first = lo; first <= hi; first += 50) {
      const int last = std::min(hi, first + 49);
      msg.push_back(static_cast<uint8_t>(last - first + 1));
      if (!expected_raw[half].empty()) expected_raw[half] += '.';
      for (int c = first; c <= last; ++c) {
        msg.push_back(static_cast<uint8_t>(c));
        expected_raw[half] += static_cast<char>(c);
      }
    }
    msg.insert(msg.end(), {0, 0, 1, 0, 1});
  }
  DnsMessage m;
  WeirdCounters weird;
  REQUIRE(Parser().parse(msg.data(), msg.size(), m, weird));
  REQUIRE(m.questions.size() == 2);
  for (int half = 0; half < 2; ++half) {
    const auto& q = m.questions[static_cast<std::size_t>(half)];
    CHECK(m.raw(q.name) == expected_raw[half]);
    std::string expected_lower = expected_raw[half];
    for (char& c : expected_lower) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    }
    CHECK(m.lower(q.name) == expected_lower);
  }
  CHECK(weird.get(Weird::DnsMultipleQuestions) == 1);
  CHECK(weird.total() == 1);
}

namespace {

// The plain way to read a name: follow labels and pointers one by one. Only
// for the well-formed names the test below builds.
std::string referenceName(const std::vector<uint8_t>& b, std::size_t pos, int& labels) {
  std::string text;
  labels = 0;
  for (int steps = 0; steps < 300; ++steps) {
    const uint8_t n = b.at(pos);
    if (n == 0) return text;
    if ((n & 0xC0) == 0xC0) {
      pos = (std::size_t{n & 0x3Fu} << 8) | b.at(pos + 1);
      continue;
    }
    if (labels++ > 0) text += '.';
    text.append(reinterpret_cast<const char*>(b.data() + pos + 1), n);
    pos += 1 + n;
  }
  return "<loop>";
}

std::string asciiLower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

}  // namespace

TEST_CASE("dns: compressed names agree with a plain reference decoder") {
  // Owner names built from random labels (mixed case, 8-bit bytes) and
  // pointers to any earlier label, not only to where a name began: the
  // parser's shortcuts (the copied first run, names remembered by offset)
  // must give the same text as following every pointer.
  std::mt19937 rng(2026);
  DnsMessage m;
  WeirdCounters weird;
  const std::string alphabet = "abcXYZ019-_\x80\xff.";
  for (int iter = 0; iter < 3000; ++iter) {
    Wire w;
    const uint16_t answers = static_cast<uint16_t>(1 + rng() % 8);
    w.header(1, 0x8180, 1, answers, 0, 0);
    std::vector<std::size_t> label_starts;
    std::size_t wire_octets = 0;
    auto someLabels = [&](int count) {
      for (int l = 0; l < count && wire_octets < 150; ++l) {
        label_starts.push_back(w.pos());
        std::string label;
        const std::size_t n = 1 + rng() % 12;
        for (std::size_t i = 0; i < n; ++i) label += alphabet[rng() % alphabet.size()];
        w.label(label);
        wire_octets += 1 + n;
      }
    };
    // The question: plain labels.
    std::vector<std::size_t> names{w.pos()};
    wire_octets = 0;
    someLabels(1 + static_cast<int>(rng() % 4));
    w.u8(0).u16(rrtype::A).u16(1);
    for (uint16_t a = 0; a < answers; ++a) {
      names.push_back(w.pos());
      wire_octets = 0;
      const std::size_t earlier = label_starts[rng() % label_starts.size()];
      switch (rng() % 3) {
        case 0:  // a bare pointer to an earlier label
          w.ptr(earlier);
          break;
        case 1:  // new labels, then a pointer
          someLabels(1 + static_cast<int>(rng() % 3));
          w.ptr(earlier);
          break;
        default:  // new labels only
          someLabels(1 + static_cast<int>(rng() % 3));
          w.u8(0);
          break;
      }
      const std::size_t rd = w.rrFixed(rrtype::A, 1, 60);
      w.bytes({10, 0, 0, 1}).endRdata(rd);
    }
    REQUIRE(parse(w.b, m, weird));
    REQUIRE(m.complete);
    REQUIRE(m.questions.size() == 1);
    REQUIRE(m.answers.size() == answers);
    for (std::size_t i = 0; i < names.size(); ++i) {
      const NameRef& ref = i == 0 ? m.questions[0].name : m.answers[i - 1].name;
      int labels = 0;
      const std::string want = referenceName(w.b, names[i], labels);
      CAPTURE(iter);
      CAPTURE(i);
      CHECK(ref.valid);
      CHECK(m.raw(ref) == want);
      CHECK(m.lower(ref) == asciiLower(want));
      CHECK(ref.labels == labels);
    }
  }
}

// ---------------------------------------------------------------------------
// What resolvers forward (tests/data/resolver-forwarding, recorded by
// tests/lab/resolver_forwarding.py): the messages dnsmasq 2.90 and unbound
// 1.17.1 sent upstream for each odd message class a client gave them.
// ---------------------------------------------------------------------------

namespace {

const char* const kSink = "10.77.2.1";  // the lab's upstream server

// Every DNS message of a recording that went to the sink (port 53), UDP
// payloads and TCP messages reassembled, in order.
std::vector<std::vector<uint8_t>> upstreamMessages(const std::string& resolver,
                                                   const std::string& name) {
  const std::string path =
      std::string(EXFILWATCH_TEST_DATA) + "/resolver-forwarding/" + resolver + "/" + name + ".pcap";
  std::string error;
  auto src = exfilwatch::PcapSource::open(path, error);
  REQUIRE_MESSAGE(src, error);
  struct Sink : TcpMessageSink {
    std::vector<std::vector<uint8_t>> out;
    void onTcpDnsMessage(const exfilwatch::PacketContext& pkt, const uint8_t* msg,
                         std::size_t len) override {
      if (pkt.dst.toString() == kSink && pkt.dst_port == 53) out.emplace_back(msg, msg + len);
    }
  } sink;
  exfilwatch::Decoder decoder;
  TcpReassembler tcp;
  WeirdCounters weird;
  exfilwatch::PacketContext ctx;
  exfilwatch::Frame f;
  while (src->next(f)) {
    if (!decoder.decode(f, ctx, weird)) continue;
    if (ctx.ip_proto == exfilwatch::ipproto::kTcp) {
      tcp.onSegment(ctx, weird, sink);
    } else if (ctx.dst.toString() == kSink && ctx.dst_port == 53) {
      sink.out.emplace_back(ctx.payload, ctx.payload + ctx.payload_len);
    }
  }
  CHECK(weird.total() == 0);  // the recordings themselves are clean
  return sink.out;
}

struct Forwarded {
  const char* name;
  uint8_t opcode;
  uint16_t qdcount;
  std::string first;  // lower-cased text of the first question's name
  std::vector<Weird> weirds;
};

std::string withNul(const char* before, std::size_t n, const char* after) {
  return std::string(before, n) + after;
}

}  // namespace

TEST_CASE("dns: what dnsmasq forwards upstream parses whole, oddities named") {
  const std::vector<Forwarded> cases = {
      {"baseline", 0, 1, "baseline.fwd.lab", {}},
      {"baseline-edns", 0, 1, "baseline-edns.fwd.lab", {}},
      {"fwdptr-2q",
       0,
       2,
       "fwdptr-2q.fwd.lab",
       {Weird::DnsPointerForward, Weird::DnsMultipleQuestions}},
      {"fwdptr-additional", 0, 1, "x.fwdptr-add.fwd.lab", {Weird::DnsPointerForward}},
      {"iquery", 1, 0, "", {Weird::DnsOpcodeIquery}},
      {"iquery-question", 1, 1, "iquery-q.fwd.lab", {Weird::DnsOpcodeIquery}},
      {"status", 2, 1, "status.fwd.lab", {Weird::DnsOpcodeOther}},
      {"opcode3", 3, 1, "opcode3.fwd.lab", {Weird::DnsOpcodeOther}},
      {"notify", 4, 1, "notify.fwd.lab", {Weird::DnsOpcodeNotify}},
      {"update", 5, 1, "fwd.lab", {Weird::DnsOpcodeUpdate}},
      {"dso", 6, 0, "", {Weird::DnsOpcodeOther, Weird::DnsTrailingBytes}},
      {"opcode15", 15, 1, "opcode15.fwd.lab", {Weird::DnsOpcodeOther}},
      {"qd2", 0, 2, "q2a.fwd.lab", {Weird::DnsMultipleQuestions}},
      {"qd0", 0, 0, "", {}},
      {"class-ch", 0, 1, "ch.fwd.lab", {Weird::DnsClassNotIn}},
      {"class-hs", 0, 1, "hs.fwd.lab", {Weird::DnsClassNotIn}},
      {"class-none", 0, 1, "none.fwd.lab", {Weird::DnsClassNotIn}},
      {"class-any", 0, 1, "any.fwd.lab", {Weird::DnsClassNotIn}},
      {"class-class0", 0, 1, "class0.fwd.lab", {Weird::DnsClassNotIn}},
      {"class-class4660", 0, 1, "class4660.fwd.lab", {Weird::DnsClassNotIn}},
      {"name-dot", 0, 1, "a.b.name-dot.fwd.lab", {}},
      {"name-backslash", 0, 1, "a\\ b\"c.name-backslash.fwd.lab", {}},
      {"name-nul", 0, 1, withNul("nul\0byte", 8, ".name-nul.fwd.lab"), {}},
      {"name-8bit", 0, 1, "\x80\xff\xc3\xa9.name-8bit.fwd.lab", {}},
      {"name-ctrl", 0, 1, "\x01\x1f\x7f.name-ctrl.fwd.lab", {}},
      {"name-mixedcase", 0, 1, "mixed.name-mixedcase.fwd.lab", {}},
      {"name-63", 0, 1, std::string(63, 'l') + ".name-63.fwd.lab", {}},
      {"name-255",
       0,
       1,
       std::string(63, 'm') + "." + std::string(63, 'm') + "." + std::string(63, 'm') + "." +
           std::string(44, 'n') + ".name-255.fwd.lab",
       {}},
      {"edns-opt-0", 0, 1, "edns-opt-0.fwd.lab", {}},
      {"edns-opt-1", 0, 1, "edns-opt-1.fwd.lab", {}},
      {"edns-opt-100", 0, 1, "edns-opt-100.fwd.lab", {}},
      {"edns-opt-1000", 0, 1, "edns-opt-1000.fwd.lab", {}},
      {"edns-opt-16000-tcp", 0, 1, "edns-opt-16000.fwd.lab", {}},
      {"edns-many", 0, 1, "edns-many.fwd.lab", {}},
      {"edns-version1", 0, 1, "edns-v1.fwd.lab", {}},
      {"edns-bad-option", 0, 1, "edns-bad.fwd.lab", {Weird::DnsOptBad}},
      {"edns-two-opt", 0, 1, "edns-two.fwd.lab", {Weird::DnsOptMultiple}},
      {"edns-do-extrcode", 0, 1, "edns-do.fwd.lab", {}},
  };
  for (const Forwarded& c : cases) {
    CAPTURE(c.name);
    const auto up = upstreamMessages("dnsmasq", c.name);
    REQUIRE(up.size() == 1);
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(up[0], m, weird));
    CHECK_FALSE(m.qr);
    CHECK(m.opcode == c.opcode);
    CHECK(m.complete);
    CHECK(m.qdcount == c.qdcount);
    REQUIRE(m.questions.size() == c.qdcount);
    if (c.qdcount > 0) {
      CHECK(m.questions[0].name.valid);
      CHECK(m.lower(m.questions[0].name) == c.first);
    }
    for (Weird w : c.weirds) CHECK(weird.get(w) == 1);
    CHECK(weird.total() == c.weirds.size());
  }
}

TEST_CASE("dns: the oddities dnsmasq forwards, in detail") {
  DnsMessage m;
  WeirdCounters weird;
  {
    // Two questions, the first a forward pointer to the second's name.
    const auto up = upstreamMessages("dnsmasq", "fwdptr-2q");
    REQUIRE(parse(up.at(0), m, weird));
    REQUIRE(m.questions.size() == 2);
    CHECK(m.raw(m.questions[1].name) == "fwdptr-2q.fwd.lab");
  }
  {
    // IQUERY: the question is in the answer section.
    const auto up = upstreamMessages("dnsmasq", "iquery");
    REQUIRE(parse(up.at(0), m, weird));
    REQUIRE(m.answers.size() == 1);
    CHECK(ipv4(m.answers[0].address) == "4.3.2.1");
  }
  {
    // UPDATE: the data sits in the update section.
    const auto up = upstreamMessages("dnsmasq", "update");
    REQUIRE(parse(up.at(0), m, weird));
    REQUIRE(m.authorities.size() == 1);
    CHECK(m.raw(m.authorities[0].name) == "upd-data.fwd.lab");
    REQUIRE(m.authorities[0].txt_count == 1);
    CHECK(m.txt(m.txtSegments()[m.authorities[0].txt_first]) == "payload");
  }
  {
    const auto up = upstreamMessages("dnsmasq", "qd2");
    REQUIRE(parse(up.at(0), m, weird));
    REQUIRE(m.questions.size() == 2);
    CHECK(m.raw(m.questions[1].name) == "q2b.fwd.lab");
    CHECK(m.questions[1].type == rrtype::TXT);
  }
  {
    const auto up = upstreamMessages("dnsmasq", "class-ch");
    REQUIRE(parse(up.at(0), m, weird));
    CHECK(m.questions.at(0).qclass == 3);
  }
  {
    // A '.' inside a label stays one label; case is kept in raw().
    const auto up = upstreamMessages("dnsmasq", "name-dot");
    REQUIRE(parse(up.at(0), m, weird));
    CHECK(m.questions.at(0).name.labels == 4);
    const auto up2 = upstreamMessages("dnsmasq", "name-mixedcase");
    REQUIRE(parse(up2.at(0), m, weird));
    CHECK(m.raw(m.questions.at(0).name) == "MiXeD.name-mixedcase.fwd.lab");
  }
  for (const auto& [name, size] :
       std::vector<std::pair<const char*, uint16_t>>{{"edns-opt-0", 0},
                                                     {"edns-opt-1", 1},
                                                     {"edns-opt-100", 100},
                                                     {"edns-opt-1000", 1000},
                                                     {"edns-opt-16000-tcp", 16000}}) {
    CAPTURE(name);
    const auto up = upstreamMessages("dnsmasq", name);
    REQUIRE(parse(up.at(0), m, weird));
    REQUIRE(m.edns.option_count == 1);
    const EdnsOption& o = m.ednsOptions()[m.edns.option_first];
    CHECK(o.code == 65001);
    CHECK(o.length == size);
  }
  {
    const auto up = upstreamMessages("dnsmasq", "edns-many");
    REQUIRE(parse(up.at(0), m, weird));
    CHECK(m.edns.option_count == 4);
    const auto v1 = upstreamMessages("dnsmasq", "edns-version1");
    REQUIRE(parse(v1.at(0), m, weird));
    CHECK(m.edns.version == 1);
  }
  // dnsmasq refuses a pointer loop and drops a UDP query larger than its
  // 1232-byte buffer: nothing goes upstream.
  CHECK(upstreamMessages("dnsmasq", "fwdptr-loop").empty());
  CHECK(upstreamMessages("dnsmasq", "edns-opt-4000").empty());
}

TEST_CASE("dns: what unbound forwards is a plain query rebuilt from the first question") {
  const std::vector<std::pair<const char*, std::string>> forwarded = {
      {"baseline", "baseline.fwd.lab"},
      {"baseline-edns", "baseline-edns.fwd.lab"},
      {"class-any", "any.fwd.lab"},  // class ANY rewritten to IN
      {"name-dot", "a.b.name-dot.fwd.lab"},
      {"name-backslash", "a\\ b\"c.name-backslash.fwd.lab"},
      {"name-nul", withNul("nul\0byte", 8, ".name-nul.fwd.lab")},
      {"name-8bit", "\x80\xff\xc3\xa9.name-8bit.fwd.lab"},
      {"name-ctrl", "\x01\x1f\x7f.name-ctrl.fwd.lab"},
      {"name-mixedcase", "mixed.name-mixedcase.fwd.lab"},
      {"name-63", std::string(63, 'l') + ".name-63.fwd.lab"},
      {"edns-opt-0", "edns-opt-0.fwd.lab"},
      {"edns-opt-4000", "edns-opt-4000.fwd.lab"},
      {"edns-opt-16000-tcp", "edns-opt-16000.fwd.lab"},
      {"edns-many", "edns-many.fwd.lab"},
      {"edns-bad-option", "edns-bad.fwd.lab"},
      {"edns-do-extrcode", "edns-do.fwd.lab"},
  };
  for (const auto& [name, first] : forwarded) {
    CAPTURE(name);
    const auto up = upstreamMessages("unbound", name);
    REQUIRE(up.size() == 1);
    DnsMessage m;
    WeirdCounters weird;
    REQUIRE(parse(up[0], m, weird));
    CHECK(m.complete);
    CHECK(weird.total() == 0);
    CHECK(m.opcode == 0);
    REQUIRE(m.questions.size() == 1);
    CHECK(m.lower(m.questions[0].name) == first);
    CHECK(m.questions[0].qclass == 1);
    CHECK(m.edns.present);
    CHECK(m.edns.dnssec_ok);
    CHECK(m.edns.option_count == 0);  // the client's options are not passed on
  }
  {
    DnsMessage m;
    WeirdCounters weird;
    const auto up = upstreamMessages("unbound", "name-dot");
    REQUIRE(parse(up.at(0), m, weird));
    CHECK(m.questions.at(0).name.labels == 4);
  }
  for (const char* refused : {"fwdptr-2q",
                              "fwdptr-additional",
                              "fwdptr-loop",
                              "iquery",
                              "iquery-question",
                              "status",
                              "opcode3",
                              "notify",
                              "update",
                              "dso",
                              "opcode15",
                              "qd2",
                              "qd0",
                              "class-ch",
                              "class-hs",
                              "class-none",
                              "class-class0",
                              "class-class4660",
                              "edns-version1",
                              "edns-two-opt"}) {
    CAPTURE(refused);
    CHECK(upstreamMessages("unbound", refused).empty());
  }
}
