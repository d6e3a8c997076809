// test_registered_domain.cc: eTLD+1 from the system public suffix list.
#include <doctest.h>

#include <libpsl.h>

#include <random>
#include <string>
#include <vector>

#include "build_config.h"
#include "corpus_names.h"
#include "dns/registered_domain.h"

using exfilwatch::dns::RegisteredDomain;

TEST_CASE("registered domains from the public suffix list") {
  RegisteredDomain rd;
  CHECK(rd.lookup("www.example.com") == "example.com");
  CHECK(rd.lookup("a.b.c.example.co.uk") == "example.co.uk");
  CHECK(rd.lookup("example.com") == "example.com");
  CHECK(rd.lookup("com") == "");
  CHECK(rd.lookup("co.uk") == "");
  CHECK(rd.lookup("") == "");
  // private section: each bucket host is its own registered domain
  CHECK(rd.lookup("x.mybucket.s3.amazonaws.com") == "mybucket.s3.amazonaws.com");
  CHECK(rd.lookup("foo.blogspot.com") == "foo.blogspot.com");
  // tunnel-style names share the domain
  CHECK(rd.lookup("paaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.t1.tunnel-lab.net") == "tunnel-lab.net");
}

TEST_CASE("cached answers equal fresh ones, even for deep wildcard rules") {
  RegisteredDomain cached(exfilwatch::dns::kDefaultPublicSuffixList, 64);
  const char* names[] = {"a.b.c.d.e.f.g.example.com",
                         "q.x.y.z.eu-west-1.compute.amazonaws.com",
                         "1.2.3.4.5.6.7.8.kawasaki.jp",
                         "deep.deeper.deepest.city.kawasaki.jp",
                         "host.abc.ck",
                         "www.ck"};
  for (int round = 0; round < 3; ++round) {
    for (const char* n : names) {
      RegisteredDomain fresh(exfilwatch::dns::kDefaultPublicSuffixList, 1);
      CHECK(std::string(cached.lookup(n)) == std::string(fresh.lookup(n)));
    }
  }
  CHECK(cached.hits() > 0);
  CHECK(cached.keyLabels() >= 5);
}

TEST_CASE("many random prefixes under one domain hit the cache") {
  RegisteredDomain rd;
  for (int i = 0; i < 1000; ++i) {
    const std::string name = "x" + std::to_string(i * 7919) + ".t1.tunnel-lab.net";
    REQUIRE(rd.lookup(name) == "tunnel-lab.net");
  }
  CHECK(rd.misses() == 1000);  // 4 labels: under the key length, every name is its own key
  CHECK(rd.listLookups() == 1);  // ... but all are decided by "tunnel-lab.net"
  CHECK(rd.lookup("www.sub.a.b.c.d.example.org") == "example.org");
}

TEST_CASE("missing list file is a clear configuration error") {
  CHECK_THROWS_WITH_AS(RegisteredDomain("/nonexistent/list.dat"),
                       doctest::Contains("/nonexistent/list.dat"), std::runtime_error);
}

TEST_CASE("both caches answer exactly what libpsl answers, name by name") {
  // The reference: libpsl on the whole name, no cache.
  psl_ctx_t* psl = psl_load_file(exfilwatch::dns::kDefaultPublicSuffixList);
  REQUIRE(psl != nullptr);
  auto reference = [&](const std::string& name) -> std::string {
    if (name.empty() || name.size() > 255 || name.find('\0') != std::string::npos) return "";
    const char* found = psl_registrable_domain(psl, name.c_str());
    return found ? std::string(found) : std::string();
  };
  std::vector<std::string> names = {
      "com", "example.com", "a.b.example.com", "x.co.uk", "co.uk", "a.b.c.d.e.f.g.h.example.co.uk",
      "foo.blogspot.com", "a.foo.blogspot.com", "host.abc.ck", "www.ck", "a.www.ck", "ck",
      "a.b.city.kawasaki.jp", "x.y.kawasaki.jp", "q.x.y.z.eu-west-1.compute.amazonaws.com",
      "b.mybucket.s3.amazonaws.com", "single", "a.unknowntld", "x.y.z.unknowntld",
      "x.xn--fiqs8s", "www.example.xn--fiqs8s", "a.xn--55qx5d.cn", "b.a.xn--55qx5d.cn",
      "x.a\xc3\xa9roport.ci", "y.x.a\xc3\xa9roport.ci", "a\xc3\xa9roport.ci",
      "a..b.com", ".example.com", "example.com.", "x.e5.sk", "1.2.3.4.zen.spamhaus.org",
      "api.github.com.us-west-2.compute.internal", "a.b.svc.cluster.local"};
  // The name corpus (benign and tunnel names) and random labels over real
  // suffixes, each name twice and in two orders, so both caches are hit.
  exfilwatch::testing::appendCorpusNames(names, 60000);
  std::mt19937 rng(11);
  const std::vector<std::string> suffixes = {"com", "co.uk", "ck", "www.ck", "kawasaki.jp", "city.kawasaki.jp",
                                             "s3.amazonaws.com", "compute.amazonaws.com", "blogspot.com",
                                             "github.io", "nope", "xn--fiqs8s"};
  for (int i = 0; i < 20000; ++i) {
    std::string n = suffixes[rng() % suffixes.size()];
    for (int labels = static_cast<int>(rng() % 9); labels > 0; --labels) {
      n = std::string(1 + rng() % 6, static_cast<char>('a' + rng() % 3)) + "." + n;
    }
    names.push_back(n);
  }
  exfilwatch::dns::RegisteredDomain cached(exfilwatch::dns::kDefaultPublicSuffixList, 512);
  std::size_t wrong = 0;
  for (int round = 0; round < 2; ++round) {
    for (std::size_t i = 0; i < names.size(); ++i) {
      const std::string& n = names[round == 0 ? i : names.size() - 1 - i];
      const std::string want = reference(n);
      const std::string got(cached.lookup(n));
      if (got != want && ++wrong <= 10) MESSAGE(n << ": got '" << got << "', libpsl '" << want << "'");
    }
  }
  CHECK(wrong == 0);
  CHECK(names.size() > 20000);
  // The deciding-suffix cache does the work the name cache cannot.
  CHECK(cached.listLookups() < cached.misses() / 4);
  psl_free(psl);
}
