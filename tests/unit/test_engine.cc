// test_engine.cc: the whole Engine on small hand-built frames, through its
// public API only (constructor, process, stats, weird, setObserver, adopt)
// and the EVE lines it writes, so that these tests hold any rework of its
// inside to the same behaviour.
#include <doctest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "alert/json.h"
#include "engine/engine.h"
#include "engine/pipeline.h"
#include "frame_builder.h"
#include "json_flat.h"

namespace exfilwatch {
namespace {

using namespace exfilwatch::testing;
namespace fs = std::filesystem;

// ---- the engine's surroundings ----

// Keeps every EVE line; an alert's delivery fields must agree with its line.
struct CapturingSink final : EveSink {
  void write(std::string_view line) override { lines.emplace_back(line); }
  void writeAlert(std::string_view line, const AlertFields& f) override {
    lines.emplace_back(line);
    Json j;
    REQUIRE(JsonFlattener::parse(line, j));
    CHECK(std::to_string(f.signature_id) == j["alert.signature_id"]);
    CHECK(std::to_string(f.flow_id) == j["flow_id"]);
    CHECK(f.src_ip == j["src_ip"]);
    // The fields hold the domain's bytes, the line their escaped text.
    std::string domain;
    JsonWriter::appendEscaped(domain, f.domain);
    CHECK(f.domain.empty() == (j.count("exfilwatch.registered_domain") == 0));
    if (!f.domain.empty()) {
      CHECK(line.find("\"registered_domain\":\"" + domain + "\"") != std::string_view::npos);
    }
  }
  void flush() override {}
  std::vector<std::string> lines;
};

// Small scoring tables: capacity only, no threshold differs from the defaults.
Config testConfig() {
  Config c;
  c.rules.enabled = false;
  c.score.dns.memory_bytes = 1 << 20;
  c.score.dns.seen_names_bytes = 1 << 16;
  c.score.tls.memory_bytes = 1 << 20;
  return c;
}

// The control plane as every command builds it; `rules_yaml`, when given,
// is the only rule file of a fresh rules directory.
ControlPlanePtr planeOf(Config c, const std::string& rules_yaml = {}) {
  if (rules_yaml.empty()) return engine::buildControlPlane(std::move(c), 1);
  static std::atomic<int> n{0};
  const fs::path dir =
      fs::temp_directory_path() /
      ("exfilwatch-engine-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
  fs::create_directories(dir);
  struct Remove {
    const fs::path& dir;
    ~Remove() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } remove{dir};  // the rules are compiled into the plane
  std::ofstream(dir / "rules.yaml") << rules_yaml;
  c.rules.enabled = true;
  c.rules.directory = dir.string();
  c.rules.cache_directory = "off";
  return engine::buildControlPlane(std::move(c), 1);
}

// An alert rule on names starting "evil.", and an allow rule for one zone.
const std::string kRules =
    "rules:\n"
    "  - id: 42\n"
    "    name: test evil name\n"
    "    field: dns.qname\n"
    "    pattern: '^evil\\.'\n"
    "    category: Test tunnel\n"
    "    severity: 2\n"
    "    tags: [eviltool]\n"
    "  - id: 7\n"
    "    name: allow the allowed zone\n"
    "    field: dns.qname\n"
    "    literal: allowed-example.com\n"
    "    anchor: domain\n"
    "    action: allow\n";

const Host kClientA = ip4(10, 0, 0, 1);
const Host kClientB = ip4(10, 0, 0, 2);
const Host kClientC = ip4(10, 0, 0, 3);
const Host kResolver = ip4(192, 0, 2, 53);
const Host kResolver2 = ip4(192, 0, 2, 54);

// One Engine and what it wrote. With a VNI, every frame is sent inside
// VXLAN, as a traffic mirror delivers it.
struct Sensor {
  explicit Sensor(ControlPlanePtr plane, uint32_t vni = 0)
      : engine(std::move(plane), sink), vni(vni) {}

  void send(const Bytes& frame, int64_t sec) {
    const Bytes wire = vni ? vxlanFrame(frame, vni) : frame;
    Frame f;
    f.data = wire.data();
    f.caplen = f.wirelen = static_cast<uint32_t>(wire.size());
    f.ts = {sec, 0};
    engine.process(f, ++frames);
  }
  // A query for `names` from `client` (source port 40000) to `server`.
  void askAll(const Host& client, const std::vector<std::string>& names, int64_t sec,
              const Host& server = kResolver) {
    send(udpFrame(client, 40000, server, 53, dnsQuery(static_cast<uint16_t>(frames), names)), sec);
  }
  void ask(const Host& client, const std::string& name, int64_t sec,
           const Host& server = kResolver) {
    askAll(client, {name}, sec, server);
  }
  // A raw UDP payload to port 53 (malformed messages).
  void sendDns(const Bytes& payload, int64_t sec) {
    send(udpFrame(kClientA, 40000, kResolver, 53, payload), sec);
  }

  // The records of one event_type, parsed.
  std::vector<Json> records(const std::string& event_type) const {
    std::vector<Json> out;
    for (const auto& line : sink.lines) {
      Json j;
      REQUIRE_MESSAGE(JsonFlattener::parse(line, j), line);
      if (j["event_type"] == event_type) out.push_back(std::move(j));
    }
    return out;
  }
  std::vector<Json> alerts() const { return records("alert"); }

  CapturingSink sink;
  Engine engine;
  uint32_t vni;
  uint64_t frames = 0;
};

std::size_t countSignature(const std::vector<Json>& alerts, uint32_t id) {
  return static_cast<std::size_t>(std::count_if(alerts.begin(), alerts.end(), [&](const Json& a) {
    return a.at("alert.signature_id") == std::to_string(id);
  }));
}

// Random labels of the base32 alphabet (iodine's base32 encoding): high
// information per character. Seeded: every run sends the same names.
struct Base32Names {
  explicit Base32Names(uint64_t seed) : rng(seed) {}
  std::string label(int n) {
    static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    std::string out;
    for (int i = 0; i < n; ++i) out += kAlphabet[rng() % 32];
    return out;
  }
  std::mt19937_64 rng;
};

// Counts what the observer is shown.
struct Watcher final : EngineObserver {
  void onName(const Name& n) override {
    names.emplace_back(n.name);
    domains.emplace_back(n.registered_domain);
    allowed_by.push_back(n.allowed_by ? n.allowed_by->id : 0);
  }
  void onAlert(const AlertEvent& e) override {
    ++(e.suppressed ? held : raised);
    if (e.suppressed) held_ids.push_back(e.alert.signature_id);
    last_alert = {e.alert.signature_id, e.client.toString(), std::string(e.domain),
                  std::string(e.name),  e.server.toString(), e.server_port};
  }
  std::vector<std::string> names, domains;
  std::vector<uint32_t> allowed_by, held_ids;
  int raised = 0, held = 0;
  struct Seen {
    uint32_t signature_id = 0;
    std::string client, domain, name, server;
    uint16_t server_port = 0;
    bool operator==(const Seen&) const = default;
  } last_alert;
};

constexpr uint32_t kScoreSid = 9000001;
constexpr uint32_t kTlsBulkSid = 9000003;

}  // namespace

// ---- DNS messages, counters and the DNS log ----

TEST_CASE("engine: a query and its response are counted and logged as one flow") {
  Host client = kClientA, server = kResolver;
  std::string client_text = "10.0.0.1", server_text = "192.0.2.53";
  SUBCASE("IPv4") {}
  SUBCASE("IPv6") {
    client = ip6(1);
    server = ip6(0x53);
    client_text = "2001:db8::1";
    server_text = "2001:db8::53";
  }
  Config c = testConfig();
  c.dns_log = true;
  Sensor s(planeOf(c));

  const Bytes q1 = dnsQuery(0x1111, {"www.example.com"});
  const Bytes q2 = dnsQuery(0x2222, {"nothing-here.example.org"});
  s.send(udpFrame(client, 40000, server, 53, q1), 1000);
  s.send(udpFrame(server, 53, client, 40000, dnsResponse(q1, 0, {93, 184, 216, 34})), 1000);
  s.send(udpFrame(client, 40001, server, 53, q2), 1001);
  s.send(udpFrame(server, 53, client, 40001, dnsResponse(q2, 3)), 1001);  // NXDOMAIN

  const EngineStats& st = s.engine.stats();
  CHECK(st.dns_messages == 4);
  CHECK(st.dns_queries == 2);
  CHECK(st.dns_responses == 2);
  CHECK(st.rcodes[0] == 3);  // two queries, one NOERROR
  CHECK(st.rcodes[3] == 1);
  CHECK(st.dns_unparsable == 0);
  CHECK(st.dns_incomplete == 0);
  CHECK(st.alerts == 0);
  CHECK(st.eve_records == 4);
  CHECK(s.engine.weird().total() == 0);

  const auto dns = s.records("dns");
  REQUIRE(dns.size() == 4);
  CHECK(dns[0].at("dns.type") == "request");
  CHECK(dns[1].at("dns.type") == "response");
  CHECK(dns[0].at("dns.id") == "4369");
  CHECK(dns[1].at("dns.id") == "4369");
  CHECK(dns[0].at("dns.queries.0.rrname") == "www.example.com");
  CHECK(dns[0].at("src_ip") == client_text);
  CHECK(dns[0].at("dest_ip") == server_text);
  CHECK(dns[1].at("src_ip") == server_text);
  CHECK(dns[1].at("dns.rcode") == "NOERROR");
  CHECK(dns[1].at("dns.answers.0.rdata") == "93.184.216.34");
  CHECK(dns[0].at("exfilwatch.registered_domain") == "example.com");
  CHECK(dns[3].at("dns.rcode") == "NXDOMAIN");
  CHECK(dns[3].at("exfilwatch.registered_domain") == "example.org");
  // One flow per (addresses, ports), the same id both ways.
  CHECK(dns[0].at("flow_id") == dns[1].at("flow_id"));
  CHECK(dns[2].at("flow_id") == dns[3].at("flow_id"));
  CHECK(dns[0].at("flow_id") != dns[2].at("flow_id"));
  CHECK(dns[0].at("pcap_cnt") == "1");
  CHECK(dns[3].at("pcap_cnt") == "4");
}

TEST_CASE("engine: with the DNS log off, messages are counted but not written") {
  Sensor s(planeOf(testConfig()));
  const Bytes q = dnsQuery(7, {"www.example.com"});
  s.send(udpFrame(kClientA, 40000, kResolver, 53, q), 1000);
  s.send(udpFrame(kResolver, 53, kClientA, 40000, dnsResponse(q, 2)), 1000);  // SERVFAIL
  CHECK(s.engine.stats().dns_messages == 2);
  CHECK(s.engine.stats().rcodes[2] == 1);
  CHECK(s.engine.stats().eve_records == 0);
  CHECK(s.sink.lines.empty());
}

// ---- analyst rules ----

TEST_CASE("engine: a rule alert is raised once per suppression interval, by packet time") {
  Config c = testConfig();
  const int64_t interval = c.alert_suppress_seconds;
  REQUIRE(interval > 10);
  Sensor s(planeOf(c, kRules));
  Watcher w;
  s.engine.setObserver(&w);
  const int64_t t0 = 1000;

  s.ask(kClientA, "evil.bad-example.org", t0);
  auto alerts = s.alerts();
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0].at("alert.signature_id") == "42");
  CHECK(alerts[0].at("alert.signature") == "test evil name");
  CHECK(alerts[0].at("alert.category") == "Test tunnel");
  CHECK(alerts[0].at("alert.severity") == "2");
  CHECK(alerts[0].at("alert.metadata.tool.0") == "eviltool");
  CHECK(alerts[0].at("exfilwatch.detector") == "rule");
  CHECK(alerts[0].at("exfilwatch.registered_domain") == "bad-example.org");
  CHECK(alerts[0].at("src_ip") == "10.0.0.1");
  CHECK(alerts[0].at("dns.queries.0.rrname") == "evil.bad-example.org");
  CHECK(s.engine.stats().rule_alerts == 1);

  // The same name within the interval: held back and counted.
  s.ask(kClientA, "evil.bad-example.org", t0 + 10);
  s.ask(kClientA, "evil.bad-example.org", t0 + interval - 1);
  CHECK(s.alerts().size() == 1);
  CHECK(s.engine.stats().alerts_suppressed == 2);
  CHECK(w.held == 2);
  CHECK(w.held_ids == std::vector<uint32_t>{42, 42});
  // Another client's pair is its own.
  s.ask(kClientB, "evil.bad-example.org", t0 + 10);
  // Once the interval has passed (packet time), raised again.
  s.ask(kClientA, "evil.bad-example.org", t0 + interval);
  alerts = s.alerts();
  REQUIRE(alerts.size() == 3);
  CHECK(alerts[1].at("src_ip") == "10.0.0.2");
  CHECK(alerts[2].at("src_ip") == "10.0.0.1");
  CHECK(countSignature(alerts, 42) == 3);
  CHECK(s.engine.stats().alerts == 3);
  CHECK(s.engine.stats().rule_alerts == 3);
  CHECK(s.engine.stats().alerts_suppressed == 2);
  CHECK(w.raised == 3);
}

TEST_CASE("engine: an allow rule takes a name: no alert, counted, and the observer sees the rule") {
  Sensor s(planeOf(testConfig(), kRules));
  Watcher w;
  s.engine.setObserver(&w);
  Base32Names gen(1);
  // Under the allowed zone: a name the alert rule matches, and a run of
  // names that would otherwise be scored as a tunnel.
  s.ask(kClientA, "evil.allowed-example.com", 1000);
  for (int i = 0; i < 20; ++i) s.ask(kClientA, gen.label(52) + ".allowed-example.com", 1001 + i);

  CHECK(s.alerts().empty());
  CHECK(s.engine.stats().alerts == 0);
  CHECK(s.engine.stats().rule_alerts == 0);
  CHECK(s.engine.stats().rule_allowed == 21);
  REQUIRE(w.names.size() == 21);
  CHECK(w.names[0] == "evil.allowed-example.com");
  CHECK(w.domains[0] == "allowed-example.com");
  CHECK(std::all_of(w.allowed_by.begin(), w.allowed_by.end(), [](uint32_t id) { return id == 7; }));

  // The same traffic under another zone is caught: the allow rule did it.
  for (int i = 0; i < 20; ++i) s.ask(kClientA, gen.label(52) + ".other-example.com", 1100 + i);
  // (Another client: the scorer's alert holds the first client's pair.)
  s.ask(kClientB, "evil.other-example.com", 1200);
  const auto alerts = s.alerts();
  CHECK(countSignature(alerts, kScoreSid) == 1);
  CHECK(countSignature(alerts, 42) == 1);
  CHECK(s.engine.stats().rule_allowed == 21);
  CHECK(w.allowed_by.back() == 0);
  // One alert per pair per interval, whichever detector: the rule on the
  // pair the scorer has just alerted on is held back.
  const uint64_t held = s.engine.stats().alerts_suppressed;
  s.ask(kClientA, "evil.other-example.com", 1201);
  CHECK(countSignature(s.alerts(), 42) == 1);
  CHECK(s.engine.stats().alerts_suppressed == held + 1);
}

TEST_CASE("engine: a second question behind an allow-listed first is still judged") {
  Sensor s(planeOf(testConfig(), kRules));
  Watcher w;
  s.engine.setObserver(&w);

  // A rule name in second place.
  s.askAll(kClientA, {"cdn.allowed-example.com", "evil.bad-example.org"}, 1000);
  auto alerts = s.alerts();
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0].at("alert.signature_id") == "42");
  CHECK(alerts[0].at("exfilwatch.registered_domain") == "bad-example.org");
  CHECK(s.engine.stats().rule_allowed == 1);
  CHECK(s.engine.weird().get(Weird::DnsMultipleQuestions) == 1);
  REQUIRE(w.allowed_by.size() == 2);
  CHECK(w.allowed_by[0] == 7);
  CHECK(w.allowed_by[1] == 0);

  // A tunnel riding in second place, a new name each time.
  Base32Names gen(2);
  for (int i = 0; i < 10; ++i) {
    s.askAll(kClientB, {"cdn.allowed-example.com", gen.label(52) + ".t.tunnel-example.com"},
             1001 + i);
  }
  alerts = s.alerts();
  REQUIRE(countSignature(alerts, kScoreSid) == 1);
  CHECK(alerts.back().at("exfilwatch.registered_domain") == "tunnel-example.com");
  CHECK(alerts.back().at("src_ip") == "10.0.0.2");
  CHECK(s.engine.stats().rule_allowed == 11);
}

namespace {
// A message whose one question names `zone` (SOA) and whose authority
// section holds one A record owned by `owner`: an UPDATE (opcode 5) adding
// it, or with opcode 0 a query carrying it along.
Bytes withAuthority(uint8_t opcode, const std::string& zone, const std::string& owner) {
  Bytes m;
  put16(m, 0x4242);
  put16(m, static_cast<uint16_t>(opcode) << 11);
  put16(m, 1);  // zone
  put16(m, 0);  // prerequisites
  put16(m, 1);  // updates
  put16(m, 0);
  append(m, dnsName(zone));
  put16(m, 6);  // SOA
  put16(m, 1);
  append(m, dnsName(owner));
  put16(m, kTypeA);
  put16(m, 1);
  put32(m, 60);
  put16(m, 4);
  append(m, {10, 9, 9, 9});
  return m;
}
}  // namespace

TEST_CASE("engine: an UPDATE's record names are judged like questions") {
  Sensor s(planeOf(testConfig(), kRules));
  s.sendDns(withAuthority(0, "bad-example.org", "evil.bad-example.org"), 1000);
  CHECK(s.alerts().empty());  // a query's authority records are not asked for
  s.sendDns(withAuthority(5, "bad-example.org", "evil.bad-example.org"), 1001);
  const auto alerts = s.alerts();
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0].at("alert.signature_id") == "42");
  CHECK(alerts[0].at("exfilwatch.registered_domain") == "bad-example.org");
  CHECK(s.engine.weird().get(Weird::DnsOpcodeUpdate) == 1);
  CHECK(s.engine.stats().dns_queries == 2);
}

// ---- the DNS scorer's verdict ----

TEST_CASE("engine: a run of high-information names raises 9000001 once per client") {
  Sensor s(planeOf(testConfig()));
  Watcher w;
  s.engine.setObserver(&w);
  Base32Names gen(3);
  for (int i = 0; i < 30; ++i) s.ask(kClientA, gen.label(52) + ".t.tunnel-example.com", 1000 + i);
  auto alerts = s.alerts();
  REQUIRE(alerts.size() == 1);
  // The observer is shown the pair and the question that tipped it.
  CHECK(w.raised == 1);
  CHECK(w.last_alert == Watcher::Seen{kScoreSid, "10.0.0.1", "tunnel-example.com",
                                      alerts[0].at("dns.queries.0.rrname"), "192.0.2.53", 53});
  CHECK(alerts[0].at("alert.signature_id") == std::to_string(kScoreSid));
  CHECK(alerts[0].at("alert.signature") == "EXFILWATCH DNS tunneling or exfiltration");
  CHECK(alerts[0].at("exfilwatch.detector") == "dns_score");
  CHECK(alerts[0].at("exfilwatch.registered_domain") == "tunnel-example.com");
  CHECK(alerts[0].at("src_ip") == "10.0.0.1");
  CHECK(alerts[0].at("dest_ip") == "192.0.2.53");
  CHECK(!alerts[0].at("exfilwatch.reasons").empty());

  // A second client under the same domain: its own pair, its own alert.
  for (int i = 0; i < 30; ++i) s.ask(kClientB, gen.label(52) + ".t.tunnel-example.com", 1040 + i);
  alerts = s.alerts();
  REQUIRE(alerts.size() == 2);
  CHECK(alerts[1].at("alert.signature_id") == std::to_string(kScoreSid));
  CHECK(alerts[1].at("src_ip") == "10.0.0.2");

  // Benign names, asked again and again: nothing.
  const std::vector<std::string> benign = {"www.example.com", "mail.example.com", "api.example.com",
                                           "cdn.example.net"};
  for (int i = 0; i < 400; ++i) s.ask(kClientC, benign[i % benign.size()], 1100 + i / 4);
  CHECK(s.alerts().size() == 2);
  CHECK(s.engine.stats().alerts == 2);
  CHECK(s.engine.stats().dns_queries == 460);
}

TEST_CASE("engine: responses count: a download channel in TXT answers raises 9000001") {
  Sensor s(planeOf(testConfig()));
  Base32Names gen(8);
  // Low-information names (a counter), each answered: with new random TXT
  // data for client A, with an address for client B.
  for (int i = 0; i < 60; ++i) {
    const std::string label = "c" + std::to_string(i);
    const Bytes qa = dnsQuery(static_cast<uint16_t>(i), {label + ".dl.down-example.com"}, kTypeTxt);
    const Bytes qb =
        dnsQuery(static_cast<uint16_t>(i), {label + ".dl.quiet-example.com"}, kTypeTxt);
    s.send(udpFrame(kClientA, 40000, kResolver, 53, qa), 1000 + i);
    s.send(udpFrame(kResolver, 53, kClientA, 40000, dnsTxtResponse(qa, gen.label(200))), 1000 + i);
    s.send(udpFrame(kClientB, 40000, kResolver, 53, qb), 1000 + i);
    s.send(udpFrame(kResolver, 53, kClientB, 40000, dnsResponse(qb, 0)), 1000 + i);
  }
  const auto alerts = s.alerts();
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0].at("alert.signature_id") == std::to_string(kScoreSid));
  CHECK(alerts[0].at("src_ip") == "10.0.0.1");
  CHECK(alerts[0].at("exfilwatch.registered_domain") == "down-example.com");
  CHECK(s.engine.stats().dns_responses == 120);
}

TEST_CASE("engine: names without a plausible TLD aggregate under the server, not per domain") {
  Config c = testConfig();
  c.dns_log = true;
  Sensor s(planeOf(c, kRules));
  Base32Names gen(4);
  // Every name under a new made-up registered domain ("c0m" is no TLD), as
  // a tool talking straight to its server sends them.
  for (int i = 0; i < 30; ++i) {
    s.ask(kClientA, gen.label(40) + "." + gen.label(8) + ".c0m", 1000 + i, kResolver);
  }
  for (int i = 0; i < 30; ++i) {
    s.ask(kClientA, gen.label(40) + "." + gen.label(8) + ".c0m", 1030 + i, kResolver2);
  }
  auto alerts = s.alerts();
  REQUIRE(alerts.size() == 2);  // one per server, not one per made-up domain
  CHECK(countSignature(alerts, kScoreSid) == 2);
  CHECK(alerts[0].at("exfilwatch.registered_domain") == "@192.0.2.53");
  CHECK(alerts[1].at("exfilwatch.registered_domain") == "@192.0.2.54");
  // The DNS log and rule suppression use the same key: a rule's second hit
  // under another made-up domain of that server is a repeat (a new client:
  // the first client's pair has alerted already).
  CHECK(s.records("dns").front().at("exfilwatch.registered_domain") == "@192.0.2.53");
  s.ask(kClientB, "evil." + gen.label(8) + ".c0m", 1100);
  s.ask(kClientB, "evil." + gen.label(8) + ".c0m", 1101);
  alerts = s.alerts();
  REQUIRE(alerts.size() == 3);
  CHECK(alerts[2].at("alert.signature_id") == "42");
  CHECK(alerts[2].at("exfilwatch.registered_domain") == "@192.0.2.53");
  CHECK(s.engine.stats().alerts_suppressed == 1);
}

// ---- malformed input ----

TEST_CASE("engine: malformed DNS is named, counted and never crashes") {
  Config c = testConfig();
  c.dns_log = true;  // the EVE writer sees every message that parsed
  Sensor s(planeOf(c, kRules));
  const EngineStats& st = s.engine.stats();
  const WeirdCounters& weird = s.engine.weird();

  SUBCASE("a header cut short") {
    s.sendDns({0x12, 0x34, 0x01, 0x00, 0, 1, 0}, 1000);
    CHECK(st.dns_unparsable == 1);
    CHECK(st.dns_messages == 0);
    CHECK(weird.get(Weird::DnsTruncatedHeader) == 1);
  }
  SUBCASE("a compression pointer to itself") {
    Bytes m = dnsHeader(1, 1);
    append(m, {0xC0, 0x0C, 0, 1, 0, 1});
    s.sendDns(m, 1000);
    CHECK(st.dns_messages == 1);
    CHECK(st.dns_incomplete == 1);
    CHECK(weird.get(Weird::DnsPointerChainTooLong) == 1);
  }
  SUBCASE("a label longer than 63") {
    Bytes m = dnsHeader(1, 1);
    m.push_back(64);
    m.insert(m.end(), 64, 'a');
    append(m, {3, 'c', 'o', 'm', 0, 0, 1, 0, 1});
    s.sendDns(m, 1000);
    CHECK(st.dns_incomplete == 1);
    CHECK(weird.get(Weird::DnsLabelTooLong) == 1);
  }
  SUBCASE("a name longer than 255") {
    std::string name;
    for (int i = 0; i < 5; ++i) name += std::string(63, 'a' + i) + ".";
    name += "com";
    s.sendDns(dnsQuery(1, {name}), 1000);
    CHECK(st.dns_incomplete == 1);
    CHECK(weird.get(Weird::DnsNameTooLong) == 1);
  }
  SUBCASE("more records than a message may store") {
    Bytes m = dnsHeader(1, 0, 600);
    for (int i = 0; i < 600; ++i) append(m, {0, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1});
    s.sendDns(m, 1000);
    CHECK(st.dns_incomplete == 1);
    CHECK(weird.get(Weird::DnsTooManyRecords) == 1);
  }
  SUBCASE("more questions announced than sent") {
    Bytes m = dnsQuery(1, {"evil.bad-example.org"});
    m[5] = 3;
    s.sendDns(m, 1000);
    CHECK(st.dns_incomplete == 1);
    CHECK(weird.get(Weird::DnsQuestionTruncated) == 1);
    CHECK(st.alerts == 1);  // the question that was there is judged
  }
  SUBCASE("frames cut inside their headers") {
    const Bytes full = udpFrame(kClientA, 40000, kResolver, 53, dnsQuery(1, {"www.example.com"}));
    s.send(Bytes(full.begin(), full.begin() + 10), 1000);  // Ethernet
    s.send(Bytes(full.begin(), full.begin() + 24), 1000);  // IPv4
    CHECK(weird.get(Weird::EtherTruncated) == 1);
    CHECK(weird.get(Weird::Ipv4Truncated) == 1);
    CHECK(st.dns_messages + st.dns_unparsable == 0);
  }
  SUBCASE("random damage to a valid query") {
    const Bytes valid = dnsQuery(9, {"evil.bad-example.org", "www.example.com"});
    std::mt19937_64 rng(5);
    const int kMessages = 3000;
    for (int i = 0; i < kMessages; ++i) {
      Bytes m = valid;
      m.resize(rng() % (valid.size() + 8), 0xC0);
      for (int flips = 1 + static_cast<int>(rng() % 4); flips > 0 && !m.empty(); --flips) {
        m[rng() % m.size()] = static_cast<uint8_t>(rng());
      }
      s.sendDns(m, 1000 + i / 100);
    }
    // Every datagram is one message or one unparsable one; each parsed
    // message got its DNS record.
    CHECK(st.dns_messages + st.dns_unparsable == kMessages);
    CHECK(st.dns_unparsable > 0);
    CHECK(st.dns_incomplete > 0);
    CHECK(s.records("dns").size() == st.dns_messages);
  }
  CHECK(st.eve_records == s.sink.lines.size());
}

TEST_CASE("engine: DNS over TCP split over two segments is reassembled and judged") {
  Config c = testConfig();
  c.dns_log = true;
  Sensor s(planeOf(c, kRules));
  const Bytes stream = tcpFramed(dnsQuery(0x3333, {"evil.bad-example.org"}));
  const uint32_t isn = 5000;
  s.send(tcpFrame(kClientA, 40000, kResolver, 53, isn, tcpflags::kSyn, {}), 1000);
  s.send(tcpFrame(kClientA, 40000, kResolver, 53, isn + 1, tcpflags::kAck,
                  Bytes(stream.begin(), stream.begin() + 9)),
         1000);
  CHECK(s.engine.stats().dns_messages == 0);
  s.send(tcpFrame(kClientA, 40000, kResolver, 53, isn + 10, tcpflags::kAck | tcpflags::kPsh,
                  Bytes(stream.begin() + 9, stream.end())),
         1000);
  CHECK(s.engine.stats().dns_messages == 1);
  CHECK(s.engine.stats().dns_incomplete == 0);

  const auto dns = s.records("dns");
  REQUIRE(dns.size() == 1);
  CHECK(dns[0].at("proto") == "TCP");
  CHECK(dns[0].at("dns.id") == "13107");
  CHECK(dns[0].at("dns.queries.0.rrname") == "evil.bad-example.org");
  const auto alerts = s.alerts();
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0].at("alert.signature_id") == "42");
  CHECK(alerts[0].at("proto") == "TCP");
  CHECK(alerts[0].at("flow_id") == dns[0].at("flow_id"));
}

// ---- TLS ----

namespace {
// `segments` full-size TCP segments from client to the server's 8443 (or
// back, `download`), a hundred per second from `t0`.
void tlsTransfer(Sensor& s, const Host& client, int segments, int64_t t0, bool download = false) {
  const Bytes payload(1448, 0x17);
  for (int i = 0; i < segments; ++i) {
    const auto seq = static_cast<uint32_t>(1 + i * 1448);
    const int64_t sec = t0 + i / 100;
    if (download) {
      s.send(tcpFrame(kResolver, 8443, client, 40000, seq, tcpflags::kAck, payload), sec);
    } else {
      s.send(tcpFrame(client, 40000, kResolver, 8443, seq, tcpflags::kAck, payload), sec);
    }
  }
}
}  // namespace

TEST_CASE("engine: a bulk TLS upload on 8443 raises 9000003 once; a download does not") {
  Config c = testConfig();
  const auto segments = static_cast<int>(c.score.tls.bulk_upload_bytes / 1448 + 10);
  Sensor s(planeOf(c));
  Watcher w;
  s.engine.setObserver(&w);
  tlsTransfer(s, kClientA, segments, 1000);
  auto alerts = s.alerts();
  REQUIRE(alerts.size() == 1);
  CHECK(w.last_alert == Watcher::Seen{kTlsBulkSid, "10.0.0.1", "", "", "192.0.2.53", 8443});
  CHECK(alerts[0].at("alert.signature_id") == std::to_string(kTlsBulkSid));
  CHECK(alerts[0].at("exfilwatch.detector") == "tls_score");
  CHECK(alerts[0].at("proto") == "TCP");
  CHECK(alerts[0].at("src_ip") == "10.0.0.1");
  CHECK(alerts[0].at("dest_port") == "8443");

  tlsTransfer(s, kClientB, segments * 3, 1100, true);
  CHECK(s.alerts().size() == 1);
  CHECK(s.engine.stats().dns_messages == 0);  // TLS ports never reach the DNS path
}

// ---- tunnels ----

namespace {
// Mixed traffic with every kind of verdict.
void mixedTraffic(Sensor& s) {
  Base32Names gen(6);
  for (int i = 0; i < 20; ++i) s.ask(kClientA, gen.label(52) + ".t.tunnel-example.com", 1000 + i);
  s.ask(kClientB, "evil.bad-example.org", 1001);
  s.ask(kClientB, "evil.allowed-example.com", 1002);
  s.askAll(kClientB, {"x.allowed-example.com", "evil.other-example.net"}, 1003);
  for (int i = 0; i < 50; ++i) s.ask(kClientC, "www.example.com", 1000 + i);
  tlsTransfer(s, kClientC, 800, 1100);
}

// What a verdict is, apart from how it arrived.
using Verdict = std::tuple<std::string, std::string, std::string, std::string, std::string>;
std::vector<Verdict> verdicts(const std::vector<Json>& alerts) {
  std::vector<Verdict> out;
  for (const auto& a : alerts) {
    const auto domain = a.find("exfilwatch.registered_domain");
    out.emplace_back(a.at("alert.signature_id"), a.at("src_ip"), a.at("dest_ip"), a.at("dest_port"),
                     domain == a.end() ? "" : domain->second);
  }
  return out;
}
}  // namespace

TEST_CASE("engine: VXLAN-encapsulated and plain frames give the same verdicts") {
  const ControlPlanePtr plane = planeOf(testConfig(), kRules);
  Sensor plain(plane), tunneled(plane, 42);
  mixedTraffic(plain);
  mixedTraffic(tunneled);

  const auto plain_alerts = plain.alerts(), tunneled_alerts = tunneled.alerts();
  CHECK(countSignature(plain_alerts, kScoreSid) == 1);
  CHECK(countSignature(plain_alerts, 42) == 2);
  CHECK(countSignature(plain_alerts, kTlsBulkSid) == 1);
  CHECK(verdicts(tunneled_alerts) == verdicts(plain_alerts));
  for (const auto& a : tunneled_alerts) {
    CHECK(a.at("exfilwatch.tunnel.type") == "vxlan");
    CHECK(a.at("exfilwatch.tunnel.vni") == "42");
    CHECK(a.at("tunnel.depth") == "1");
  }
  for (const auto& a : plain_alerts) CHECK(a.count("exfilwatch.tunnel.vni") == 0);

  const EngineStats &p = plain.engine.stats(), &t = tunneled.engine.stats();
  CHECK(t.dns_messages == p.dns_messages);
  CHECK(t.alerts == p.alerts);
  CHECK(t.rule_allowed == p.rule_allowed);
  CHECK(p.rule_allowed == 2);
  CHECK(tunneled.engine.decodeStats().tunneled == tunneled.frames);
}

// ---- control plane ----

TEST_CASE("engine: adopting a plane with rules applies them from the next frame") {
  Config c = testConfig();
  Sensor s(planeOf(c));
  s.ask(kClientA, "evil.bad-example.org", 1000);
  CHECK(s.alerts().empty());

  s.engine.adopt(planeOf(c, kRules));
  s.ask(kClientA, "evil.bad-example.org", 1001);
  s.ask(kClientA, "evil.allowed-example.com", 1002);
  const auto alerts = s.alerts();
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0].at("alert.signature_id") == "42");
  CHECK(s.engine.stats().rule_allowed == 1);
  CHECK(s.engine.stats().dns_messages == 3);  // counters live on across planes
  CHECK(s.engine.stats().rule_adopt_failures == 0);
}

}  // namespace exfilwatch
