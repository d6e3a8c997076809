// test_common.cc: src/common, the pieces every stage shares: the strict YAML
// reader (as the configuration and the rule loader see it), \xNN escaping,
// FNV-1a, and the slot-linked list.
#include <doctest.h>

#include <string>
#include <vector>

#include "common/escape.h"
#include "common/hash.h"
#include "common/slot_list.h"
#include "common/yaml_reader.h"
#include "config/config.h"
#include "rules/loader.h"

using namespace exfilwatch;

namespace {
yaml::Reader reader("t.yaml");

std::string errorOf(const std::string& text, int which) {
  try {
    const YAML::Node n = reader.load(text);
    switch (which) {
      case 0:
        reader.integer<uint32_t>(n, "k", 1, 100);
        break;
      case 1:
        reader.real(n, "k", 0.0, 1.0);
        break;
      default:
        reader.section(n, "s", {{"a", [](const YAML::Node&) {}}, {"b", [](const YAML::Node&) {}}});
    }
  } catch (const yaml::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("yaml reader: integers are base 10, ranges and types are checked") {
  CHECK(reader.integer<uint32_t>(reader.load("42"), "k", 1, 100) == 42);
  CHECK(reader.integer<uint32_t>(reader.load("042"), "k", 1, 100) == 42);  // not octal
  CHECK(errorOf("0x10", 0) == "t.yaml:1: k: expected an integer, got '0x10'");
  CHECK(errorOf("101", 0) == "t.yaml:1: k: 101 is out of range [1, 100]");
  CHECK(errorOf("[1]", 0) == "t.yaml:1: k: expected an integer");
  CHECK(errorOf("1.5", 1) == "t.yaml:1: k: 1.5 is out of range [0, 1]");
  CHECK(errorOf("nan", 1).find("is out of range") != std::string::npos);
  CHECK(errorOf("a: 1\nc: 2\n", 2) == "t.yaml:2: unknown key 's.c' (known: a, b)");
  CHECK(errorOf("a: [", 2).rfind("t.yaml:", 0) == 0);
}

TEST_CASE("yaml reader: configuration and rules share it (base 10, file:line)") {
  CHECK(parseConfig("listen:\n  workers: 0101\n", "c.yaml").listen.workers == 101);
  CHECK_THROWS_WITH_AS(parseConfig("listen:\n  workers: 0x10\n", "c.yaml"),
                       "c.yaml:2: listen.workers: expected an integer, got '0x10'", ConfigError);
  CHECK_THROWS_WITH_AS(rules::parseRuleFile("rules:\n  - id: 7\n    name: x\n    field: "
                                            "dns.qname\n    pattern: a\n    severity: 01\n"
                                            "    weight: 1\n",
                                            "r.yaml"),
                       "r.yaml:7: rule 7: weight: only meaningful with action: score",
                       rules::RuleError);
}

TEST_CASE("escaping: each caller's kept bytes, the rest as \\xNN") {
  const std::string raw("a b\\=\x01\xff", 7);
  CHECK(escape::escaped(raw, escape::printable) == "a b\\=\\x01\\xff");
  CHECK(escape::escaped(raw, escape::printableNoBackslash) == "a b\\x5c=\\x01\\xff");
  CHECK(escape::escaped(raw, escape::alphanumeric) == "a\\x20b\\x5c\\x3d\\x01\\xff");
  std::string hex;
  escape::appendHex(hex, 0xa5);
  CHECK(hex == "a5");
}

TEST_CASE("fnv1a: FNV-1a's reference values from its published offset basis") {
  constexpr uint64_t kFnvBasis = 0xcbf29ce484222325ULL;
  CHECK(hashing::fnv1a("a", 1, kFnvBasis) == 0xaf63dc4c8601ec8cULL);
  CHECK(hashing::fnv1a("foobar", 6, kFnvBasis) == 0x85944171f73967e8ULL);
  // The default start is this project's own fixed value (pair keys and the
  // mirror command's source ports depend on it staying fixed).
  CHECK(hashing::fnv1a("", 0) == hashing::kFnvOffset);
}

TEST_CASE("slot list: push at either end, unlink anywhere") {
  struct Rec {
    uint32_t prev = 0, next = 0;
  };
  std::vector<Rec> slots(4);
  SlotList<&Rec::prev, &Rec::next> list;
  auto order = [&] {
    std::vector<uint32_t> out;
    for (uint32_t i = list.head; i != UINT32_MAX; i = slots[i].next) out.push_back(i);
    return out;
  };
  CHECK(list.empty());
  list.pushBack(slots, 1);
  list.pushBack(slots, 2);
  list.pushFront(slots, 0);
  list.pushBack(slots, 3);
  CHECK(order() == std::vector<uint32_t>{0, 1, 2, 3});
  list.unlink(slots, 2);
  CHECK(order() == std::vector<uint32_t>{0, 1, 3});
  list.unlink(slots, 0);
  list.unlink(slots, 3);
  CHECK(order() == std::vector<uint32_t>{1});
  CHECK(list.head == 1);
  CHECK(list.tail == 1);
  list.unlink(slots, 1);
  CHECK(list.empty());
  CHECK(list.tail == UINT32_MAX);
}
