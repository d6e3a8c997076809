// test_lexical.cc: lexical features and the first tunnel-shape verdict.
#include <doctest.h>

#include <string>

#include "score/lexical.h"

using namespace exfilwatch::score;

TEST_CASE("entropy") {
  CHECK(shannonEntropy("") == doctest::Approx(0.0));
  CHECK(shannonEntropy("aaaa") == doctest::Approx(0.0));
  CHECK(shannonEntropy("abab") == doctest::Approx(1.0));
  CHECK(shannonEntropy("abcdefghijklmnop") == doctest::Approx(4.0));
}

TEST_CASE("features split the prefix from the registered domain") {
  const auto f = lexicalFeatures("www.Mail2.example.com", "example.com");
  CHECK(f.name_length == 21);
  CHECK(f.label_count == 4);
  CHECK(f.prefix_labels == 2);
  CHECK(f.prefix_length == 8);  // "wwwMail2"
  CHECK(f.digits == 1);
  CHECK(f.uppercase == 1);
  CHECK(f.max_label_length == 7);
  const auto apex = lexicalFeatures("example.com", "example.com");
  CHECK(apex.prefix_length == 0);
  CHECK(apex.prefix_labels == 0);
}

TEST_CASE("tunnel-shaped names and their near misses") {
  const LexicalThresholds t;
  // iodine base32 data query (from iodine-txt-base32.pcap's shape)
  const std::string base32 =
      "0aabaehqd2ezdgmrsgyzdcmzqhe4toobsgm3dknbtgaytonrrgm2tgnjrgmzdo.obrg4ztgnzwgyzdsmzsg.t1.tunnel-lab.net";
  CHECK(judgeLexical(lexicalFeatures(base32, "tunnel-lab.net"), t) == LexicalVerdict::HighEntropy);
  // hex is below the entropy bar (the scoring engine handles slow hex leaks)
  const std::string hex = "6f1c2a9be0d3447f8812aa0c9e7b1d3f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d.example.com";
  CHECK(judgeLexical(lexicalFeatures(hex, "example.com"), t) == LexicalVerdict::Benign);
  // a short random-looking CDN name is benign
  CHECK(judgeLexical(lexicalFeatures("d3k81ch9hvuctc.cloudfront.net", "cloudfront.net"), t) ==
        LexicalVerdict::Benign);
  // raw 8-bit labels, as iodine's raw/base128 codecs send
  std::string binary = "ab";
  for (int i = 0; i < 30; ++i) binary += static_cast<char>(0xC0 + i);
  binary += ".t1.tunnel-lab.net";
  CHECK(judgeLexical(lexicalFeatures(binary, "tunnel-lab.net"), t) == LexicalVerdict::BinaryLabels);
  // long but low-entropy (a Kubernetes search-path expansion) is benign
  const std::string k8s = "my-service.my-namespace.svc.cluster.local.us-east-1.compute.internal";
  CHECK(judgeLexical(lexicalFeatures(k8s, ""), t) == LexicalVerdict::Benign);
}
