// The engine's parts: NameContext (a name's aggregation domain and rule
// verdict, cached per name), the rules' value verdict, and the one alert
// gate every detector shares.
#include <doctest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "build_config.h"
#include "decode/weird.h"
#include "dns/message.h"
#include "engine/name_context.h"
#include "rules/loader.h"
#include "rules/matcher.h"
#include "score/alert_gate.h"

namespace exfilwatch {
namespace {

// One query on the wire: each label as given (bytes kept, dots and all).
std::vector<uint8_t> query(const std::vector<std::string>& labels, uint16_t qtype = 1) {
  std::vector<uint8_t> w = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  for (const auto& l : labels) {
    w.push_back(static_cast<uint8_t>(l.size()));
    w.insert(w.end(), l.begin(), l.end());
  }
  w.push_back(0);
  w.push_back(static_cast<uint8_t>(qtype >> 8));
  w.push_back(static_cast<uint8_t>(qtype));
  w.push_back(0);
  w.push_back(1);
  return w;
}

std::vector<std::string> split(std::string_view dotted) {
  std::vector<std::string> out;
  while (!dotted.empty()) {
    const auto dot = dotted.find('.');
    out.emplace_back(dotted.substr(0, dot));
    if (dot == std::string_view::npos) break;
    dotted.remove_prefix(dot + 1);
  }
  return out;
}

IpAddress v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  const uint8_t bytes[4] = {a, b, c, d};
  return IpAddress::v4(bytes);
}

rules::RuleSetPtr compile(const std::string& yaml) {
  return rules::RuleSet::build(rules::parseRuleFile(yaml, "inline.yaml"), "", rules::BuildOptions{});
}

// A rule on each field the name context scans, and an allow rule.
const std::string kRules =
    "rules:\n"
    "  - {id: 1, name: qname, field: dns.qname, pattern: 'evil'}\n"
    "  - {id: 2, name: raw, field: dns.qname.raw, pattern: 'EVIL'}\n"
    "  - {id: 3, name: registered, field: dns.registered_domain, pattern: '^tunnel-example\\.com$'}\n"
    "  - {id: 4, name: subdomain, field: dns.subdomain, pattern: '^[0-9a-f]{16}'}\n"
    "  - {id: 5, name: allow, field: dns.qname, action: allow, pattern: '\\.av-example\\.net$'}\n";

struct Fixture {
  dns::RegisteredDomain psl;
  rules::Matcher matcher{0};  // no scan cache of its own: every value is scanned
  rules::Matcher reference{0};
  NameContext names{psl, matcher, 64};
  dns::Parser parser;
  dns::DnsMessage msg;
  WeirdCounters weird;
  IpAddress server = v4(10, 0, 0, 53);

  explicit Fixture(const rules::RuleSetPtr& set) {
    REQUIRE(matcher.adopt(set));
    REQUIRE(reference.adopt(set));
  }
  NameContext::Name analyze(const std::vector<uint8_t>& wire) {
    REQUIRE(parser.parse(wire.data(), wire.size(), msg, weird));
    return names.analyze(msg, msg.questions.front(), {}, server, true);
  }
  std::vector<uint32_t> ids(const rules::Matcher& m) const {
    std::vector<uint32_t> out;
    for (std::size_t i = 0; i < m.hitCount(); ++i) out.push_back(m.hit(i).id);
    std::sort(out.begin(), out.end());
    return out;
  }
  // What the matcher finds scanning each field on its own.
  std::vector<uint32_t> direct(const NameContext::Name& n) {
    reference.begin({});
    reference.scan(rules::Field::DnsQname, n.lower);
    reference.scan(rules::Field::DnsQnameRaw, n.raw);
    reference.scan(rules::Field::DnsRegisteredDomain, n.domain);
    reference.scan(rules::Field::DnsSubdomain, rules::subdomainOf(n.lower, n.domain));
    return ids(reference);
  }
};

}  // namespace

TEST_CASE("name context: a cached name gives the domain and rule hits of a fresh analysis") {
  Fixture fx(compile(kRules));
  const std::vector<std::string> names = {
      "0123456789abcdef0.tunnel-example.com", "www.EVIL.example.org", "evil.co.uk",
      "x.av-example.net",                      "www.example.com",      "com"};
  for (const auto& dotted : names) {
    CAPTURE(dotted);
    const auto wire = query(split(dotted));
    const NameContext::Name first = fx.analyze(wire);
    const auto first_hits = fx.ids(fx.matcher);
    const std::string first_domain(first.domain);
    CHECK(first_hits == fx.direct(first));
    const uint64_t hits_before = fx.names.hits();
    const NameContext::Name again = fx.analyze(wire);
    CHECK(fx.names.hits() == hits_before + 1);  // served by the cache
    CHECK(again.domain == first_domain);
    CHECK(fx.ids(fx.matcher) == first_hits);
  }
  // Spot values: the rules are the ones the fields say.
  fx.analyze(query(split("0123456789abcdef0.tunnel-example.com")));
  CHECK(fx.ids(fx.matcher) == std::vector<uint32_t>{3, 4});
  fx.analyze(query(split("www.EVIL.example.org")));
  CHECK(fx.ids(fx.matcher) == std::vector<uint32_t>{1, 2});
  const auto bare = fx.analyze(query(split("com")));
  CHECK(bare.domain.empty());
  fx.analyze(query(split("x.av-example.net")));
  REQUIRE(fx.matcher.verdict().allowed());
  CHECK(fx.matcher.verdict().allowed_by->id == 5);
}

TEST_CASE("name context: conditions are applied per packet, not cached") {
  Fixture fx(compile("rules:\n"
                     "  - {id: 7, name: txt only, field: dns.qname, pattern: 'evil', qtype: [TXT]}\n"));
  const auto a = query(split("evil.example.com"), 1);
  const auto txt = query(split("evil.example.com"), 16);
  dns::DnsMessage m;
  REQUIRE(fx.parser.parse(txt.data(), txt.size(), m, fx.weird));
  rules::MatchContext ctx;
  ctx.qtype = 16;
  fx.names.analyze(m, m.questions.front(), ctx, fx.server, true);
  CHECK(fx.matcher.alertCount() == 1);
  REQUIRE(fx.parser.parse(a.data(), a.size(), m, fx.weird));
  ctx.qtype = 1;
  fx.names.analyze(m, m.questions.front(), ctx, fx.server, true);  // a cache hit
  CHECK(fx.names.hits() == 1);
  CHECK(fx.matcher.alertCount() == 0);
}

TEST_CASE("name context: names without a plausible TLD aggregate per server, uncached") {
  Fixture fx(compile(kRules));
  const auto wire = query(split("dnscat.0123abcd.4567ef01"));
  const auto one = fx.analyze(wire);
  CHECK(one.domain == "@10.0.0.53");
  fx.server = v4(192, 0, 2, 1);
  const auto two = fx.analyze(wire);
  CHECK(two.domain == "@192.0.2.1");  // the same name, another server
  CHECK(fx.names.hits() == 0);
}

TEST_CASE("name context: case and label structure are part of the key") {
  Fixture fx(compile(kRules));
  fx.analyze(query(split("www.evil.example.org")));
  CHECK(fx.ids(fx.matcher) == std::vector<uint32_t>{1});
  // Same lower-case text, other raw bytes: its own entry, its raw rule hit.
  fx.analyze(query(split("www.EVIL.example.org")));
  CHECK(fx.ids(fx.matcher) == std::vector<uint32_t>{1, 2});
  CHECK(fx.names.misses() == 2);
  // "x.example" "com" is not "x" "example" "com", though the texts are
  // alike: two entries.
  const std::string two_labels(fx.analyze(query({"x", "example", "com"})).raw);
  const std::string one_label(fx.analyze(query({"x.example", "com"})).raw);
  CHECK(one_label == two_labels);
  CHECK(fx.names.misses() == 4);
}

TEST_CASE("name context: a new rule set forgets the cached hits") {
  Fixture fx(compile(kRules));
  const auto wire = query(split("www.evil.example.org"));
  fx.analyze(wire);
  CHECK(fx.ids(fx.matcher) == std::vector<uint32_t>{1});
  REQUIRE(fx.matcher.adopt(compile(
      "rules:\n  - {id: 9, name: other, field: dns.registered_domain, pattern: 'example'}\n")));
  fx.names.invalidate();
  fx.analyze(wire);
  CHECK(fx.ids(fx.matcher) == std::vector<uint32_t>{9});
}

TEST_CASE("name context: a flood of unique names never grows the cache") {
  Fixture fx(compile(kRules));
  for (int i = 0; i < 5000; ++i) fx.analyze(query({"n" + std::to_string(i), "example", "com"}));
  CHECK(fx.names.misses() == 5000);
  // The last names are still there; the table is 64 entries.
  fx.analyze(query({"n4999", "example", "com"}));
  CHECK(fx.names.hits() == 1);
  fx.analyze(query({"n0", "example", "com"}));
  CHECK(fx.names.hits() == 1);
}

TEST_CASE("rule verdict: a value with the first alerts, the allow rule and the score") {
  std::string yaml = "rules:\n";
  for (int i = 1; i <= 10; ++i) {
    yaml += "  - {id: " + std::to_string(i) + ", name: r" + std::to_string(i) +
            ", field: dns.qname, pattern: 'x'}\n";
  }
  yaml += "  - {id: 20, name: s, field: dns.qname, action: score, weight: 1.5, pattern: 'x'}\n";
  const auto set = compile(yaml);
  rules::Matcher m(0);
  REQUIRE(m.adopt(set));
  m.begin({});
  m.scan(rules::Field::DnsQname, "x.example.com");
  const rules::RuleVerdict v = m.verdict();  // a copy outlives the next name
  m.begin({});
  m.scan(rules::Field::DnsQname, "y.done.org");
  CHECK(v.alert_count == 10);
  CHECK(v.keptAlerts() == rules::RuleVerdict::kMaxAlerts);
  CHECK_FALSE(v.allowed());
  CHECK(v.score.total == doctest::Approx(1.5));
  CHECK(v.score.count == 1);
  CHECK(m.verdict().alert_count == 0);
}

TEST_CASE("alert gate: one alert per pair per interval, then updates") {
  score::AlertGate gate(1024, 3600);
  const uint64_t pair = 0x9e3779b97f4a7c15ULL, other = 0x632be59bd9b4e019ULL;
  CHECK(gate.admit(pair, 1000) == score::Admission::Initial);
  CHECK(gate.admit(pair, 1000 + 3599) == score::Admission::Suppressed);
  CHECK(gate.holds(pair, 1000 + 3599));
  CHECK(gate.admit(other, 1001) == score::Admission::Initial);  // another pair
  CHECK(gate.admit(pair, 1000 + 3600) == score::Admission::Update);
  CHECK(gate.admit(pair, 1000 + 3601) == score::Admission::Suppressed);
  CHECK(gate.suppressed() == 2);
  score::AlertGate open(16, 0);  // interval 0: every alert goes out
  CHECK(open.admit(1, 5) == score::Admission::Initial);
  CHECK(open.admit(1, 5) == score::Admission::Update);
}
}  // namespace exfilwatch
