// test_registered_domain.cc: eTLD+1 from the system public suffix list.
#include <doctest.h>

#include <string>

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
  CHECK(rd.lookup("www.sub.a.b.c.d.example.org") == "example.org");
}

TEST_CASE("missing list file is a clear configuration error") {
  CHECK_THROWS_WITH_AS(RegisteredDomain("/nonexistent/list.dat"),
                       doctest::Contains("/nonexistent/list.dat"), std::runtime_error);
}
