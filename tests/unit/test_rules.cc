// test_rules.cc: the analyst rule engine (src/rules): strict loading with
// file:line errors for every kind of broken file, the shipped rules' own
// tests, conditions and actions, TLS fields, the compiled-database cache,
// swapping rule sets under a running matcher, and failed reloads.
#include <doctest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "build_config.h"
#include "corpus_names.h"
#include "engine/pipeline.h"
#include "rules/cache.h"
#include "rules/loader.h"
#include "rules/matcher.h"

using namespace exfilwatch;
using namespace exfilwatch::rules;
namespace fs = std::filesystem;

namespace {

// A fresh directory under the system temp dir, removed at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    static std::atomic<int> n{0};
    path = fs::temp_directory_path() /
           ("exfilwatch-rules-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name, std::ios::binary) << text;
    return (path / name).string();
  }
  std::string str() const { return path.string(); }
};

const std::string kGoodRule =
    "rules:\n"
    "  - id: 42\n"
    "    name: test rule\n"
    "    field: dns.qname\n"
    "    pattern: '^evil\\.'\n";

std::string shippedRules() { return std::string(EXFILWATCH_SOURCE_DIR) + "/rules"; }

// Matches one value of one field with conditions satisfied.
struct Probe {
  RuleSetPtr set;
  Matcher m;
  explicit Probe(RuleSetPtr s) : set(std::move(s)) { REQUIRE(m.adopt(set)); }
  std::vector<uint32_t> hits(Field f, std::string_view value, MatchContext ctx = {}) {
    m.begin(ctx);
    m.scan(f, value);
    std::vector<uint32_t> ids;
    for (std::size_t i = 0; i < m.hitCount(); ++i) ids.push_back(m.hit(i).id);
    return ids;
  }
};

RuleSetPtr compile(const std::string& yaml) {
  return RuleSet::build(parseRuleFile(yaml, "inline.yaml"), "", BuildOptions{});
}

}  // namespace

TEST_CASE("broken rule files: each kind gets file, line and a clear message") {
  struct Case {
    const char* what;
    std::vector<std::pair<std::string, std::string>> files;
    std::string expect_where;  // "file:line"
    std::string expect_text;
  };
  const std::vector<Case> cases = {
      {"bad regex",
       {{"a.yaml",
         "rules:\n  - id: 7\n    name: x\n    field: dns.qname\n    pattern: 'abc(def'\n"}},
       "a.yaml:5",  // the pattern's own line
       "rule 7: pattern 'abc(def': Hyperscan: "},
      {"pattern matching the empty string",
       {{"a.yaml", "rules:\n  - id: 8\n    name: x\n    field: dns.qname\n    pattern: 'a*'\n"}},
       "a.yaml:5",
       "rule 8: pattern 'a*' matches the empty string"},
      {"duplicate id across files",
       {{"a.yaml", kGoodRule},
        {"b.yaml", "rules:\n\n  - id: 42\n    name: y\n    field: dns.qname\n    literal: x\n"}},
       "b.yaml:3",
       "rule 42: duplicate id (first defined at"},
      {"unknown field",
       {{"a.yaml", "rules:\n  - id: 9\n    name: x\n    field: dns.qnam\n    pattern: 'a'\n"}},
       "a.yaml:4",
       "rule 9: field: unknown field 'dns.qnam' (known: dns.qname"},
      {"unknown key",
       {{"a.yaml",
         "rules:\n  - id: 9\n    name: x\n    field: dns.qname\n    pattern: 'a'\n    sevrity: "
         "1\n"}},
       "a.yaml:6",
       "rule 9: unknown key 'sevrity'"},
      {"wrong type (id)",
       {{"a.yaml", "rules:\n  - id: abc\n    name: x\n    field: dns.qname\n    pattern: 'a'\n"}},
       "a.yaml:2",
       "id: expected an integer, got 'abc'"},
      {"wrong type (flags)",
       {{"a.yaml",
         "rules:\n  - id: 5\n    name: x\n    field: dns.qname\n    pattern: 'a'\n    flags: "
         "caseless\n"}},
       "a.yaml:6",
       "rule 5: flags: expected a list"},
      {"wrong type (severity)",
       {{"a.yaml",
         "rules:\n  - id: 5\n    name: x\n    field: dns.qname\n    pattern: 'a'\n    severity: "
         "[1]\n"}},
       "a.yaml:6",
       "rule 5: severity: expected an integer"},
      {"invalid YAML",
       {{"a.yaml", "rules:\n  - id: 5\n    name: [unclosed\n    field: dns.qname\n"}},
       "a.yaml:",
       "invalid YAML"},
      {"empty file", {{"a.yaml", ""}}, "a.yaml:1", "empty rule file"},
      {"comments only", {{"a.yaml", "# nothing here\n"}}, "a.yaml:1", "empty rule file"},
      {"empty rules list", {{"a.yaml", "rules: []\n"}}, "a.yaml:1", "empty rule file"},
      {"missing pattern",
       {{"a.yaml", "rules:\n  - id: 3\n    name: x\n    field: dns.qname\n"}},
       "a.yaml:2",
       "rule 3: needs a 'pattern' or a 'literal'"},
      {"score without weight",
       {{"a.yaml",
         "rules:\n  - id: 3\n    name: x\n    field: dns.qname\n    literal: a\n    action: "
         "score\n"}},
       "a.yaml:2",
       "rule 3: action score needs a 'weight'"},
      {"bad qtype",
       {{"a.yaml",
         "rules:\n  - id: 3\n    name: x\n    field: dns.qname\n    literal: a\n    qtype: "
         "[TXTT]\n"}},
       "a.yaml:6",
       "rule 3: qtype: unknown DNS type 'TXTT'"},
      {"bad mitre id",
       {{"a.yaml",
         "rules:\n  - id: 3\n    name: x\n    field: dns.qname\n    literal: a\n    mitre: "
         "[T10]\n"}},
       "a.yaml:6",
       "rule 3: mitre: 'T10' is not an ATT&CK technique id"},
      {"failing self-test is not a load error but a bad escape is",
       {{"a.yaml",
         "rules:\n  - id: 3\n    name: x\n    field: dns.qname\n    literal: a\n    tests: {match: "
         "['\\q']}\n"}},
       "a.yaml:6",
       "rule 3: tests.match: bad escape"},
      {"top-level list instead of mapping",
       {{"a.yaml", "- id: 1\n  name: x\n"}},
       "a.yaml:1",
       "expected a mapping with a 'rules' list"},
      {"reserved id",
       {{"a.yaml", "rules:\n  - id: 9000001\n    name: x\n    field: dns.qname\n    literal: a\n"}},
       "a.yaml:2",
       "reserved for exfilwatch's built-in detectors"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    TempDir dir;
    for (const auto& [name, text] : c.files) dir.write(name, text);
    std::string message;
    try {
      RuleSet::loadDirectory(dir.str(), BuildOptions{});
    } catch (const RuleError& e) {
      message = e.what();
    }
    CAPTURE(message);
    CHECK(message.find((dir.path / c.expect_where).string()) != std::string::npos);
    CHECK(message.find(c.expect_text) != std::string::npos);
  }
}

TEST_CASE("every problem of a file is reported, not only the first") {
  TempDir dir;
  dir.write("a.yaml",
            "rules:\n"
            "  - id: 1\n    name: x\n    field: dns.nope\n    literal: a\n"
            "  - id: 2\n    name: y\n    field: dns.qname\n    pattern: '(('\n"
            "  - id: 3\n    name: z\n    field: dns.qname\n    literal: ok\n");
  try {
    RuleSet::loadDirectory(dir.str(), BuildOptions{});
    FAIL("expected a RuleError");
  } catch (const RuleError& e) {
    // Schema errors are all collected first; patterns are checked once the
    // files parse, so here only rule 1's field is reported.
    CHECK(e.messages().size() == 1);
    CHECK(std::string(e.what()).find("rule 1: field: unknown field") != std::string::npos);
  }
  dir.write("a.yaml",
            "rules:\n"
            "  - id: 1\n    name: x\n    field: dns.qname\n    pattern: '[z-a]'\n"
            "  - id: 2\n    name: y\n    field: dns.qname\n    pattern: '(('\n");
  try {
    RuleSet::loadDirectory(dir.str(), BuildOptions{});
    FAIL("expected a RuleError");
  } catch (const RuleError& e) {
    REQUIRE(e.messages().size() == 2);
    CHECK(e.messages()[0].find("rule 1:") != std::string::npos);
    CHECK(e.messages()[1].find("rule 2:") != std::string::npos);
  }
}

TEST_CASE("missing or empty rules directory") {
  CHECK_THROWS_AS(RuleSet::loadDirectory("/nonexistent/rules", BuildOptions{}), RuleError);
  TempDir dir;
  CHECK_THROWS_WITH_AS(RuleSet::loadDirectory(dir.str(), BuildOptions{}),
                       doctest::Contains("no rule files"), RuleError);
}

TEST_CASE("shipped rules: load, and each rule's must-match and near-miss hold") {
  BuildInfo info;
  const RuleSetPtr set = RuleSet::loadDirectory(shippedRules(), BuildOptions{}, &info);
  REQUIRE(set);
  CHECK(info.enabled == set->size());
  for (const auto& r : set->rules()) {
    CAPTURE(r.where());
    CHECK(!r.test_match.empty());     // every shipped rule has a name that must match
    CHECK(!r.test_no_match.empty());  // and a near miss that must not
  }
  const auto problems = set->selfTest();
  for (const auto& p : problems) MESSAGE(p);
  CHECK(problems.empty());
}

TEST_CASE("shipped rules: no alert rule fires on the benign name corpus") {
  const std::string path =
      std::string(EXFILWATCH_SOURCE_DIR) + "/../shared/corpus/names/dns/plain/names.csv";
  std::ifstream in(path);
  if (!in) {
    MESSAGE("skipped: " << path << " not found");
    return;
  }
  Probe p(RuleSet::loadDirectory(shippedRules(), BuildOptions{}));
  exfilwatch::dns::RegisteredDomain psl;
  std::string line;
  std::size_t names = 0, alerts = 0;
  MatchContext q;
  q.qtype = 1;
  while (std::getline(in, line)) {
    const auto comma = line.find(',');
    if (comma == std::string::npos || line.rfind("label", 0) == 0) continue;
    std::string name = line.substr(comma + 1);
    if (!name.empty() && name.back() == '.') name.pop_back();
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    ++names;
    p.m.begin(q);
    p.m.scan(Field::DnsQname, name);
    p.m.scan(Field::DnsSubdomain, subdomainOf(name, psl.lookup(name)));
    if (p.m.alertCount() > 0) {
      ++alerts;
      MESSAGE(name << " -> rule " << p.m.alert(0).id);
    }
  }
  CHECK(names > 1000);
  CHECK(alerts == 0);
}

TEST_CASE("dns.subdomain: the labels left of the registered domain") {
  CHECK(subdomainOf("vaaaakastae.t1.tunnel-lab.net", "tunnel-lab.net") == "vaaaakastae.t1");
  CHECK(subdomainOf("www.example.co.uk", "example.co.uk") == "www");
  CHECK(subdomainOf("example.com", "example.com").empty());             // bare: never scanned
  CHECK(subdomainOf("localhost", "") == "localhost");                   // none: the whole name
  CHECK(subdomainOf("xexample.com", "example.com") == "xexample.com");  // not a label boundary
  CHECK(fieldFromName("dns.subdomain") == Field::DnsSubdomain);
  CHECK(fieldName(Field::DnsSubdomain) == "dns.subdomain");
}

TEST_CASE("shipped tool signatures sit left of the registered domain") {
  Probe p(RuleSet::loadDirectory(shippedRules(), BuildOptions{}));
  exfilwatch::dns::RegisteredDomain psl;
  MatchContext q;
  q.qtype = 10;  // NULL: iodine's record types satisfy every qtype condition below
  // Shaped like iodine's login and version probe, dnscat2's packet: as
  // registered domains (anyone's shop), nothing
  // fires; one label further down, under the same domain, they do.
  for (const std::string reg : {"lad1oekdlhtpspdmmfwv2t5jleuxfgaq.com", "vaaaakastae.net",
                                "2e7701ec07961bc55a19690002924c72e8.org"}) {
    CAPTURE(reg);
    for (const std::string& name : {reg, "www." + reg}) {
      p.m.begin(q);
      p.m.scan(Field::DnsQname, name);
      p.m.scan(Field::DnsSubdomain, subdomainOf(name, psl.lookup(name)));
      CHECK(p.m.alertCount() == 0);
      CHECK(p.m.score().count == 0);
    }
  }
  const std::string tunnel = "lad1oekdlhtpspdmmfwv2t5jleuxfgaq.t1.tunnel-lab.net";
  p.m.begin(q);
  p.m.scan(Field::DnsSubdomain, subdomainOf(tunnel, psl.lookup(tunnel)));
  REQUIRE(p.m.alertCount() == 1);
  CHECK(p.m.alert(0).id == 1000002);
}

TEST_CASE("lint: a tool signature on the whole name that matches a bare registered domain") {
  exfilwatch::dns::RegisteredDomain psl;
  const std::string login =
      "    pattern: '^l[a-z0-5]{31}\\.'\n"
      "    category: \"DNS tunnel tool\"\n"
      "    tests: {match: ['lad1oekdlhtpspdmmfwv2t5jleuxfgaq.t1.tunnel-lab.net']}\n";
  const RuleSetPtr bad =
      compile("rules:\n  - id: 5\n    name: login\n    field: dns.qname\n" + login);
  const auto w = bad->lint(psl);
  REQUIRE(w.size() == 1);
  CHECK(w[0].find("rule 5: tool signature on dns.qname matches the bare registered domain "
                  "'lad1oekdlhtpspdmmfwv2t5jleuxfgaq.net'") != std::string::npos);
  CHECK(w[0].find("dns.subdomain") != std::string::npos);
  // The same written on dns.subdomain, a blocklist on the whole name, and a
  // tool rule that needs two labels before the domain: no warning.
  CHECK(compile("rules:\n  - id: 6\n    name: login\n    field: dns.subdomain\n"
                "    pattern: '^l[a-z0-5]{31}(\\.|$)'\n    category: \"DNS tunnel tool\"\n"
                "    tests: {match: ['lad1oekdlhtpspdmmfwv2t5jleuxfgaq.t1']}\n")
            ->lint(psl)
            .empty());
  CHECK(compile("rules:\n  - id: 7\n    name: bl\n    field: dns.qname\n    literal: evil.com\n"
                "    anchor: domain\n    category: Blocklist\n    tests: {match: ['evil.com']}\n")
            ->lint(psl)
            .empty());
  CHECK(compile("rules:\n  - id: 8\n    name: cs\n    field: dns.qname\n"
                "    pattern: '^api\\.[0-9a-f]{8,16}\\.'\n    category: \"C2 framework\"\n"
                "    tests: {match: ['api.1e3e4d7a5d5c7bc2.example.com']}\n")
            ->lint(psl)
            .empty());
  // The shipped rules are clean.
  const auto shipped = RuleSet::loadDirectory(shippedRules(), BuildOptions{})->lint(psl);
  for (const auto& m : shipped) MESSAGE(m);
  CHECK(shipped.empty());
}

TEST_CASE("scan cache: a repeated value gets exactly the verdict of a fresh scan") {
  // Names of the shipped corpus (tunnels and benign), each scanned twice by
  // one matcher, interleaved so entries are replaced and served again, and
  // compared with a fresh matcher (empty cache) per name.
  std::vector<std::string> names;
  exfilwatch::testing::appendCorpusNames(names, 60000);
  // Values that hit rules, one just at and one beyond the cached length.
  names.push_back("vaaaakarqyx.t.tunnel-lab.net");
  names.push_back("54.127.199.20.zen.spamhaus.org");
  names.push_back("cdn12." + std::string(Matcher::kScanCacheMaxValue - 6, 'a'));
  names.push_back("cdn12." + std::string(Matcher::kScanCacheMaxValue, 'a'));
  const RuleSetPtr set = RuleSet::loadDirectory(shippedRules(), BuildOptions{});
  Probe cached(set);
  auto verdict = [](Matcher& m, const std::string& name, MatchContext ctx) {
    m.begin(ctx);
    m.scan(Field::DnsQname, name);
    std::vector<uint32_t> v;
    for (std::size_t i = 0; i < m.hitCount(); ++i) v.push_back(m.hit(i).id);
    v.push_back(m.allowedBy() ? m.allowedBy()->id : 0);
    v.push_back(static_cast<uint32_t>(m.alertCount()));
    v.push_back(static_cast<uint32_t>(m.score().total * 1000));
    return v;
  };
  std::size_t mismatches = 0, with_hits = 0;
  MatchContext query;
  query.qtype = 10;
  MatchContext response = query;
  response.response = true;
  for (std::size_t i = 0; i < names.size(); ++i) {
    // Each name twice (query, then its response), and an older one again.
    for (const auto& [name, ctx] : {std::pair{names[i], query}, std::pair{names[i], response},
                                    std::pair{names[i / 2], query}}) {
      Matcher fresh(0);  // no scan cache: a real Hyperscan scan every time
      REQUIRE(fresh.adopt(set));
      const auto want = verdict(fresh, name, ctx);
      if (verdict(cached.m, name, ctx) != want) ++mismatches;
      if (want.size() > 3) ++with_hits;
    }
  }
  CHECK(mismatches == 0);
  CHECK(with_hits > 0);
  // The response right after its query is always served from the cache
  // (when the value is short enough to be kept).
  const auto cacheable = std::count_if(names.begin(), names.end(), [](const std::string& n) {
    return n.size() <= Matcher::kScanCacheMaxValue;
  });
  CHECK(cached.m.scanCacheHits() >= static_cast<uint64_t>(cacheable));
  // A matcher built without a cache scans every value, repeated or not.
  Matcher uncached(0);
  REQUIRE(uncached.adopt(set));
  for (int round = 0; round < 2; ++round) verdict(uncached, names.front(), query);
  CHECK(uncached.scanCacheHits() == 0);
  CHECK(uncached.scanCacheMisses() == 2);

  // Two ways per set: with one set (two entries), two values alternate
  // from the cache; a third replaces the older of the two.
  Matcher tiny(2);
  REQUIRE(tiny.adopt(set));
  auto scans = [&](std::initializer_list<const char*> values) {
    const uint64_t before = tiny.scanCacheMisses();
    for (const char* v : values) {
      const auto got = verdict(tiny, v, query);
      Matcher fresh(0);
      REQUIRE(fresh.adopt(set));
      CHECK(got == verdict(fresh, v, query));
    }
    return tiny.scanCacheMisses() - before;
  };
  const char* a = "vaaaakarqyx.t.tunnel-lab.net";  // hits a rule
  const char* b = "www.example.com";
  const char* c = "54.127.199.20.zen.spamhaus.org";
  CHECK(scans({a, b}) == 2);
  CHECK(scans({a, b, a, b}) == 0);
  CHECK(scans({c}) == 1);  // replaces a, the older
  CHECK(scans({b, c}) == 0);
  CHECK(scans({a}) == 1);

  // Several values of one field per name (TXT strings): each value's entry
  // holds its own hits, whatever the earlier values of the name matched.
  Probe txt(compile("rules:\n  - {id: 7, name: t, field: dns.answer.txt, literal: TVqQ}\n"));
  for (int round = 0; round < 2; ++round) {
    txt.m.begin({});
    txt.m.scan(Field::DnsAnswerTxt, "TVqQAAMA");
    txt.m.scan(Field::DnsAnswerTxt, "xxTVqQ");  // same rule again: already seen for this name
    CHECK(txt.m.hitCount() == 1);
    txt.m.begin({});
    txt.m.scan(Field::DnsAnswerTxt, "xxTVqQ");  // alone: must still hit from the cache
    CHECK(txt.m.hitCount() == 1);
  }

  // A new rule set never sees the old set's entries.
  Probe swap(
      compile("rules:\n  - {id: 1, name: a, field: dns.qname, literal: evil, anchor: start}\n"));
  CHECK(swap.hits(Field::DnsQname, "evil.example") == std::vector<uint32_t>{1});
  REQUIRE(
      swap.m.adopt(compile("rules:\n  - {id: 2, name: b, field: dns.qname, literal: nomatch}\n")));
  CHECK(swap.hits(Field::DnsQname, "evil.example").empty());
}

TEST_CASE("conditions: qtype, direction, port") {
  Probe p(
      compile("rules:\n"
              "  - {id: 1, name: q, field: dns.qname, literal: x, direction: query}\n"
              "  - {id: 2, name: r, field: dns.qname, literal: x, direction: response}\n"
              "  - {id: 3, name: t, field: dns.qname, literal: x, qtype: [TXT, NULL, 65399]}\n"
              "  - {id: 4, name: p, field: dns.qname, literal: x, port: [5353]}\n"));
  MatchContext ctx;
  ctx.qtype = 1;
  ctx.server_port = 53;
  CHECK(p.hits(Field::DnsQname, "x", ctx) == std::vector<uint32_t>{1});
  ctx.response = true;
  CHECK(p.hits(Field::DnsQname, "x", ctx) == std::vector<uint32_t>{2});
  ctx.response = false;
  ctx.qtype = 10;  // NULL
  CHECK(p.hits(Field::DnsQname, "x", ctx).size() == 2);
  ctx.qtype = 65399;
  CHECK(p.hits(Field::DnsQname, "x", ctx).size() == 2);
  ctx.qtype = 1;
  ctx.server_port = 5353;
  CHECK(p.hits(Field::DnsQname, "x", ctx).size() == 2);
}

TEST_CASE("actions: allow wins, alerts listed, score weights add up") {
  Probe p(
      compile("rules:\n"
              "  - {id: 10, name: a, field: dns.qname, pattern: '^tun\\.'}\n"
              "  - {id: 11, name: s1, field: dns.qname, literal: tun, action: score, weight: 1.5}\n"
              "  - {id: 12, name: s2, field: dns.registered_domain, literal: example.com, anchor: "
              "exact, action: score, weight: 0.25}\n"
              "  - {id: 13, name: ok, field: dns.qname, literal: safe.example.com, anchor: domain, "
              "action: allow}\n"));
  p.m.begin({});
  p.m.scan(Field::DnsQname, "tun.example.com");
  p.m.scan(Field::DnsRegisteredDomain, "example.com");
  CHECK(p.m.allowedBy() == nullptr);
  REQUIRE(p.m.alertCount() == 1);
  CHECK(p.m.alert(0).id == 10);
  CHECK(p.m.score().total == doctest::Approx(1.75));
  CHECK(p.m.score().count == 2);

  p.m.begin({});
  p.m.scan(Field::DnsQname, "tun.safe.example.com");
  REQUIRE(p.m.allowedBy() != nullptr);
  CHECK(p.m.allowedBy()->id == 13);
  // Anchors: exact and domain literals do not match a longer look-alike.
  CHECK(p.hits(Field::DnsRegisteredDomain, "notexample.com").empty());
  CHECK(p.hits(Field::DnsQname, "x.unsafe.example.com") == std::vector<uint32_t>{});
  // Lifetime counters follow rule indexes.
  CHECK(p.m.ruleHits()[3] == 1);
}

TEST_CASE("literals are matched byte for byte") {
  Probe p(compile(
      "rules:\n  - {id: 1, name: l, field: dns.qname, literal: 'a.b+c(d', anchor: exact}\n"));
  CHECK(p.hits(Field::DnsQname, "a.b+c(d").size() == 1);
  CHECK(p.hits(Field::DnsQname, "aXb+c(d").empty());
}

TEST_CASE("TLS fields take values passed directly") {
  Probe p(
      compile("rules:\n"
              "  - {id: 1, name: sni, field: tls.sni, literal: files-drop.net, anchor: domain}\n"
              "  - {id: 2, name: ja3, field: tls.ja3, literal: 72a589da586844d7f0818ce684948eea, "
              "anchor: exact}\n"
              "  - {id: 3, name: ja4, field: tls.ja4, pattern: '^t13d[0-9]{4}h2_'}\n"));
  CHECK(p.hits(Field::TlsSni, "backup.files-drop.net") == std::vector<uint32_t>{1});
  CHECK(p.hits(Field::TlsSni, "files-drop.net.example").empty());
  CHECK(p.hits(Field::TlsJa3, "72a589da586844d7f0818ce684948eea") == std::vector<uint32_t>{2});
  CHECK(p.hits(Field::TlsJa4, "t13d1516h2_8daaf6152771_02713d6af862") == std::vector<uint32_t>{3});
  CHECK(p.hits(Field::TlsJa4, "t12d1516h2_8daaf6152771_02713d6af862").empty());
  CHECK(p.hits(Field::DnsQname, "backup.files-drop.net").empty());  // other field
}

TEST_CASE("disabled rules are listed but not compiled") {
  const RuleSetPtr set = compile(
      "rules:\n"
      "  - {id: 1, name: on, field: dns.qname, literal: x}\n"
      "  - {id: 2, name: off, field: dns.qname, literal: x, enabled: false}\n");
  CHECK(set->size() == 2);
  Probe p(set);
  CHECK(p.hits(Field::DnsQname, "x") == std::vector<uint32_t>{1});
  CHECK(set->rule(1).toString().find("(disabled)") != std::string::npos);
}

TEST_CASE("sha256") {
  CHECK(sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256Hex(std::string(1000, 'a')) ==
        "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}

TEST_CASE("compiled-database cache: miss, hit, corrupt entries fall back to compiling") {
  TempDir rules_dir, cache_dir;
  rules_dir.write("r.yaml", kGoodRule);
  BuildOptions options;
  options.cache_dir = cache_dir.str();

  BuildInfo first;
  RuleSet::loadDirectory(rules_dir.str(), options, &first);
  CHECK(first.cache == "miss");
  CHECK(first.compile_ms > 0);
  const std::string entry = cacheEntryPath(cache_dir.str(), first.key);
  REQUIRE(fs::exists(entry));

  BuildInfo second;
  const RuleSetPtr hit = RuleSet::loadDirectory(rules_dir.str(), options, &second);
  CHECK(second.cache == "hit");
  CHECK(second.compile_ms == 0);
  CHECK(Probe(hit).hits(Field::DnsQname, "evil.example.com") == std::vector<uint32_t>{42});

  // Flip one byte in the middle: the checksum catches it, we compile again.
  {
    std::fstream f(entry, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(entry) / 2));
    f.put('\x5a');
  }
  BuildInfo third;
  const RuleSetPtr recompiled = RuleSet::loadDirectory(rules_dir.str(), options, &third);
  CHECK(third.cache.find("corrupt") == 0);
  CHECK(third.compile_ms > 0);
  CHECK(Probe(recompiled).hits(Field::DnsQname, "evil.example.com") == std::vector<uint32_t>{42});

  // Truncated entry: same.
  fs::resize_file(entry, 20);
  BuildInfo fourth;
  RuleSet::loadDirectory(rules_dir.str(), options, &fourth);
  CHECK(fourth.cache.find("corrupt") == 0);

  // Changed rules: another key, a miss.
  rules_dir.write("r.yaml", kGoodRule + "  - {id: 43, name: b, field: dns.qname, literal: b}\n");
  BuildInfo fifth;
  RuleSet::loadDirectory(rules_dir.str(), options, &fifth);
  CHECK(fifth.key != first.key);
  CHECK(fifth.cache == "miss");
}

TEST_CASE("rule sets swap atomically under a matching thread") {
  // Two rule sets that answer the same name differently; a worker scans in
  // a loop and adopts whatever is published between "batches", as Engine
  // does. Every answer must be one of the two complete answers, and the
  // sets are freed when the last holder lets go.
  const RuleSetPtr a = compile("rules:\n  - {id: 1, name: a, field: dns.qname, literal: name}\n");
  const RuleSetPtr b = compile(
      "rules:\n  - {id: 2, name: b, field: dns.qname, literal: name}\n"
      "  - {id: 3, name: c, field: dns.qname, literal: nam}\n");
  std::atomic<std::shared_ptr<const RuleSet>> published{a};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> scans{0}, bad{0}, swaps{0};
  std::thread worker([&] {
    Matcher m;
    RuleSetPtr mine;
    while (!stop.load(std::memory_order_acquire)) {
      RuleSetPtr next = published.load(std::memory_order_acquire);
      if (next != mine) {
        if (!m.adopt(next)) ++bad;
        mine = std::move(next);
        ++swaps;
      }
      for (int i = 0; i < 64; ++i) {  // one batch
        m.begin({});
        m.scan(Field::DnsQname, "some.name.example");
        const std::size_t n = m.hitCount();
        // a: rule 1; b: rules 2 and 3; the last set (c): nothing.
        const bool ok = (mine == a && n == 1 && m.hit(0).id == 1) || (mine == b && n == 2) ||
                        (mine != a && mine != b && n == 0);
        if (!ok) ++bad;
        ++scans;
      }
    }
  });
  for (int i = 0; i < 200; ++i) {
    published.store(i % 2 ? a : b, std::memory_order_release);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  // A third set compiled while the worker runs; the old ones are released.
  std::weak_ptr<const RuleSet> weak_b = b;
  const RuleSetPtr c = compile("rules:\n  - {id: 9, name: z, field: dns.qname, literal: zzz}\n");
  published.store(c, std::memory_order_release);
  while (swaps.load() < 2) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop = true;
  worker.join();
  CHECK(bad == 0);
  CHECK(scans > 0);
  CHECK(swaps > 2);
  CHECK(!weak_b.expired());  // still held by this test's `b`
}

TEST_CASE("a broken reload keeps the old rules running and is counted") {
  TempDir dir;
  const std::string rules_path = dir.str() + "/rules";
  fs::create_directories(rules_path);
  std::ofstream(rules_path + "/r.yaml") << kGoodRule;
  const std::string config = dir.write(
      "exfilwatch.yaml", "rules:\n  directory: " + rules_path + "\n  cache_directory: 'off'\n");

  const engine::Pipeline pipeline({config, {}, {}});
  ControlPlaneHolder holder(pipeline.build(1));
  const ControlPlanePtr before = holder.load();
  REQUIRE(before->rules);
  CHECK(before->rules->size() == 1);

  std::ofstream(rules_path + "/r.yaml")
      << "rules:\n  - id: 42\n    name: x\n    field: dns.qname\n    pattern: '(('\n";
  const uint64_t failed_before = engine::reloadCounters().failed.load();
  std::string error;
  CHECK_FALSE(pipeline.reload(holder, error));
  CHECK(error.find("r.yaml:5: rule 42:") != std::string::npos);  // the pattern line
  CHECK(engine::reloadCounters().failed.load() == failed_before + 1);
  CHECK(holder.load() == before);  // the old plane, old rules, still published

  std::ofstream(rules_path + "/r.yaml")
      << kGoodRule << "  - {id: 43, name: b, field: dns.qname, literal: b}\n";
  CHECK(pipeline.reload(holder, error));
  CHECK(holder.load()->rules->size() == 2);
  CHECK(holder.load()->generation == 2);
}

TEST_CASE("the rules config section is strict") {
  const Config c =
      parseConfig("rules:\n  enabled: false\n  directory: /x\n  cache_directory: off\n", "c.yaml");
  CHECK_FALSE(c.rules.enabled);
  CHECK(c.rules.directory == "/x");
  CHECK_THROWS_WITH_AS(parseConfig("rules:\n  dir: /x\n", "c.yaml"),
                       doctest::Contains("c.yaml:2: unknown key 'rules.dir'"), ConfigError);
}
