// test_score.cc: the scoring engine's parts: the bounded LRU state table
// (budget, eviction order, eviction counter, expiry), the seen-name set,
// sliding windows, HyperLogLog accuracy, the n-gram model and information
// estimate, and the DNS scorer end to end on synthetic queries.
#include <doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/hash.h"
#include "common/huge_array.h"
#include "score/dns_scorer.h"
#include "score/ngram_model.h"
#include "score/state_table.h"
#include "score/window.h"

using namespace exfilwatch;
using namespace exfilwatch::score;

namespace {
struct Rec {
  uint64_t key;
  uint32_t lru_prev, lru_next, chain;
  uint32_t value;
};
}  // namespace

TEST_CASE("state table: LRU eviction, counter, budget") {
  StateTable<Rec> t(4);
  bool ins = false;
  for (uint64_t k = 1; k <= 4; ++k) t.findOrInsert(k, ins).value = static_cast<uint32_t>(k);
  CHECK(t.size() == 4);
  CHECK(t.evictions() == 0);
  REQUIRE(t.find(1) != nullptr);  // 1 becomes most recent; 2 is now the oldest
  t.findOrInsert(5, ins);
  CHECK(ins);
  CHECK(t.evictions() == 1);
  CHECK(t.peek(2) == nullptr);
  CHECK(t.peek(1) != nullptr);
  CHECK(t.find(5)->value == 0);  // recycled records start zeroed
  // A million unique keys through a 1,000-record table: size and memory stay.
  StateTable<Rec> big(StateTable<Rec>::capacityFor(1000 * (sizeof(Rec) + 4)));
  const std::size_t mem = big.memoryBytes();
  for (uint64_t k = 1; k <= 1000000; ++k) big.findOrInsert(hashing::fmix64(k) | 1, ins);
  CHECK(big.size() == big.capacity());
  CHECK(big.memoryBytes() == mem);
  CHECK(big.evictions() == 1000000 - big.capacity());
  CHECK(mem <= 1000 * (sizeof(Rec) + 4));
  // Expiry frees slots for reuse without evicting.
  const std::size_t before = big.size();
  CHECK(big.expireLru([n = 0](Rec&) mutable { return n++ < 10; }) == 10);
  CHECK(big.size() == before - 10);
  const uint64_t ev = big.evictions();
  for (uint64_t k = 1; k <= 10; ++k) big.findOrInsert(k << 40, ins);
  CHECK(big.evictions() == ev);
}

TEST_CASE("state table: random operations agree with a reference LRU") {
  // 16 records over 8 buckets: chains of two and more, so look-ups that
  // move a record to its chain's front, evictions and expiry all unlink
  // from the middle of chains. A reference list says what must be there.
  StateTable<Rec> t(16);
  std::vector<uint64_t> lru;  // most recent first
  std::mt19937_64 rng(7);
  bool ins = false;
  auto touchRef = [&](uint64_t k) {
    lru.erase(std::find(lru.begin(), lru.end(), k));
    lru.insert(lru.begin(), k);
  };
  for (int step = 0; step < 20000; ++step) {
    const uint64_t k = 1 + rng() % 40;
    const bool present = std::find(lru.begin(), lru.end(), k) != lru.end();
    switch (rng() % 4) {
      case 0: {  // find
        Rec* r = t.find(k);
        REQUIRE((r != nullptr) == present);
        if (present) {
          CHECK(r->value == k);
          touchRef(k);
        }
        break;
      }
      case 3:  // expire the oldest few
        if (rng() % 8 == 0) {
          std::size_t n = rng() % 3;
          const std::size_t gone = t.expireLru([&n](Rec&) { return n > 0 && n-- > 0; });
          REQUIRE(gone <= lru.size());
          lru.resize(lru.size() - gone);
          break;
        }
        [[fallthrough]];
      default: {  // find or insert
        Rec& r = t.findOrInsert(k, ins);
        REQUIRE(ins == !present);
        if (ins) {
          CHECK(r.value == 0);
          r.value = static_cast<uint32_t>(k);
          if (lru.size() == t.capacity()) lru.pop_back();
          lru.insert(lru.begin(), k);
        } else {
          CHECK(r.value == k);
          touchRef(k);
        }
      }
    }
    REQUIRE(t.size() == lru.size());
  }
  for (uint64_t k = 1; k <= 40; ++k) {
    CHECK((t.peek(k) != nullptr) == (std::find(lru.begin(), lru.end(), k) != lru.end()));
  }
}

TEST_CASE("state table: lazy LRU evicts only among the least recently used quarter") {
  // Records with an lru_stamp skip the move to the front when they moved
  // recently. Whatever is evicted must still be among the capacity/4 least
  // recently *accessed* records: never one in use.
  struct LazyRec {
    uint64_t key;
    uint32_t lru_prev, lru_next, chain;
    uint16_t lru_stamp;
    uint32_t value;
  };
  constexpr std::size_t kCap = 64;
  StateTable<LazyRec> t(kCap);
  std::vector<uint64_t> lru;  // exact order of access, most recent first
  std::mt19937_64 rng(11);
  bool ins = false;
  std::size_t evicted = 0, skipped_moves = 0;
  for (int step = 0; step < 50000; ++step) {
    // Skewed keys: a hot set asked again and again, and a long tail.
    const uint64_t k = rng() % 4 ? 1 + rng() % 48 : 100 + rng() % 400;
    const auto at = std::find(lru.begin(), lru.end(), k);
    const bool present = at != lru.end();
    if (present) lru.erase(at);
    const std::size_t before = t.evictions();
    LazyRec& r = t.findOrInsert(k, ins);
    REQUIRE(ins == !present);
    if (ins) {
      r.value = static_cast<uint32_t>(k);
      if (t.evictions() != before) {
        // Which key went, and how far from the exact LRU end it was.
        std::size_t gone = 0, from_end = 0;
        for (std::size_t j = 0; j < lru.size(); ++j) {
          if (t.peek(lru[j]) == nullptr) {
            ++gone;
            from_end = lru.size() - 1 - j;
            lru.erase(lru.begin() + static_cast<std::ptrdiff_t>(j));
            break;
          }
        }
        REQUIRE(gone == 1);
        CHECK(from_end < kCap / 4);
        skipped_moves += from_end > 0;
        ++evicted;
      }
    } else {
      CHECK(r.value == k);
    }
    lru.insert(lru.begin(), k);
    REQUIRE(t.size() == lru.size());
  }
  CHECK(evicted > 1000);
  CHECK(skipped_moves > 0);  // the laziness did change the order sometimes
}

TEST_CASE("huge array: zeroed, filled, aligned for huge pages, moved without copying") {
  HugeArray<uint32_t> small(1000);  // under one huge page: plain pages
  REQUIRE(small.size() == 1000);
  CHECK(small[0] == 0);
  CHECK(small[999] == 0);
  small.fill(kNil);
  CHECK(small[0] == kNil);
  CHECK(small[999] == kNil);
  // 3 MiB of records: starts on a 2 MiB boundary so the kernel can back it
  // with huge pages; every record zero, every byte writable.
  HugeArray<Rec> big((std::size_t{3} << 20) / sizeof(Rec));
  CHECK(reinterpret_cast<std::uintptr_t>(big.data()) % HugeArray<Rec>::kHugePage == 0);
  bool all_zero = true;
  for (std::size_t i = 0; i < big.size(); ++i) all_zero &= big[i].key == 0 && big[i].value == 0;
  CHECK(all_zero);
  big[big.size() - 1].value = 7;
  const Rec* where = big.data();
  HugeArray<Rec> moved(std::move(big));
  CHECK(moved.data() == where);
  CHECK(moved[moved.size() - 1].value == 7);
  CHECK(big.size() == 0);  // NOLINT(bugprone-use-after-move): a moved-from array is empty
  HugeArray<Rec> assigned;
  assigned = std::move(moved);
  CHECK(assigned.data() == where);
}

TEST_CASE("per-pair record stays within 256 bytes") {
  CHECK(sizeof(DnsPairRecord) <= 248);
  StateTable<DnsPairRecord> t(StateTable<DnsPairRecord>::capacityFor(1 << 20));
  CHECK(t.bytesPerRecord() <= 256.0);
}

TEST_CASE("seen set") {
  SeenSet s(1 << 12);
  CHECK_FALSE(s.testAndSet(42));
  CHECK(s.testAndSet(42));
  CHECK(s.memoryBytes() <= (1 << 12));
}

TEST_CASE("sliding window") {
  struct C {
    uint32_t n = 0;
  };
  SlidingWindow<C> w;
  w.advance(600, 60);  // bucket 10
  w.cur.n = 60;
  w.advance(630, 60);  // same bucket
  CHECK(w.cur.n == 60);
  w.advance(660, 60);  // next bucket: cur -> prev
  CHECK(w.prev.n == 60);
  CHECK(w.cur.n == 0);
  CHECK(w.prevWeight(660, 60) == doctest::Approx(1.0));
  CHECK(w.prevWeight(690, 60) == doctest::Approx(0.5));
  w.advance(900, 60);  // a gap of several buckets: both empty
  CHECK(w.prev.n == 0);
  w.advance(100, 60);  // time going back stays in the current bucket
  CHECK(w.bucket == 15);
  uint16_t sat = 65530;
  satAdd(sat, 100);
  CHECK(sat == 65535);
}

TEST_CASE("hyperloglog accuracy") {
  for (const int n : {10, 100, 1000, 10000, 100000}) {
    Hll64 h;
    for (int i = 0; i < n; ++i) h.add(hashing::fmix64(static_cast<uint64_t>(i) * 7919 + 1));
    for (int i = 0; i < n; ++i)
      h.add(hashing::fmix64(static_cast<uint64_t>(i) * 7919 + 1));  // repeats
    const double err = std::fabs(h.estimate() - n) / n;
    CAPTURE(n);
    CAPTURE(h.estimate());
    CHECK(err < 0.4);  // 3 standard errors of 13%
  }
  CHECK(sizeof(Hll64) == 32);
}

TEST_CASE("n-gram model: file round trip, benign cheaper than random") {
  NgramModel::Counts c;
  for (const char* n :
       {"www.google.com", "mail.google.com", "api.github.com", "login.microsoftonline.com",
        "www.amazon.com", "cdn.jsdelivr.net", "www.wikipedia.org", "update.microsoft.com"}) {
    c.addName(n);
  }
  const std::string text = NgramModel::serialize(c, {"unit"}, "test");
  std::string error;
  auto m = NgramModel::parse(text, error);
  REQUIRE(m != nullptr);
  CHECK(NgramModel::serialize(c, {"unit"}, "test") == text);  // deterministic
  CHECK(m->labelBits("www") < m->labelBits("xq7"));
  CHECK(prefixModelBitsPerChar(m.get(), "mail") < prefixModelBitsPerChar(m.get(), "z8kq2v"));
  // Information: hex costs 4 bits a character at most, whatever the model.
  const double hex = prefixInfoBits(m.get(), "0123456789abcdef0123456789abcdef");
  CHECK(hex <= 32 * 4 + 6 + 0.01);
  CHECK(prefixInfoBits(m.get(), "www") < 3 * 5.25 + 6);
  CHECK(prefixInfoBits(nullptr, "") == 0.0);
  // Without a model, information is the uniform cost: per label, its length
  // times the bits of the smallest standard alphabet that covers it, plus 6.
  const struct {
    const char* label;
    double bits_per_char;
  } alphabets[] = {
      {"0123456789", 3.32}, {"12-34", 3.32},   {"deadbeef", 4.0}, {"DEADBEEF", 4.0},
      {"A1", 4.0},          {"abcdefg", 5.0},  {"mzxw6ytb", 5.0}, {"MZXW6YTB", 5.0},
      {"mzxw6yt1", 5.25},   {"abc-def", 5.25}, {"---", 5.25},     {"a_b", 5.25},
      {"aBc", 6.0},         {"abc+", 6.0},     {"ab/c=", 6.0},    {"ab*c", 6.57},
      {"a b", 6.57},        {"ab\x80", 8.0},   {"\x01", 8.0},
  };
  for (const auto& a : alphabets) {
    const std::string_view label = a.label;
    INFO(label);
    CHECK(prefixInfoBits(nullptr, label) ==
          doctest::Approx(static_cast<double>(label.size()) * a.bits_per_char + 6.0));
  }
  CHECK(prefixInfoBits(nullptr, "deadbeef.0123") == doctest::Approx(8 * 4.0 + 6 + 4 * 3.32 + 6));
  // Broken files are refused with a line number.
  CHECK(NgramModel::parse("format exfilwatch-ngram 2\n", error) == nullptr);
  CHECK(error.find("line 1") != std::string::npos);
  CHECK(NgramModel::parse(text.substr(0, text.size() - 4), error) == nullptr);
  // The shipped model loads.
  CHECK(NgramModel::builtin() != nullptr);
}

namespace {
// A one-question DNS query message in wire format.
std::vector<uint8_t> query(const std::string& name, uint16_t qtype = 1) {
  std::vector<uint8_t> m = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    m.push_back(static_cast<uint8_t>(dot - start));
    m.insert(m.end(), name.begin() + static_cast<long>(start),
             name.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  m.push_back(0);
  m.push_back(static_cast<uint8_t>(qtype >> 8));
  m.push_back(static_cast<uint8_t>(qtype));
  m.push_back(0);
  m.push_back(1);
  return m;
}
}  // namespace

TEST_CASE("DNS scorer: hex leak alerts once per interval; repeats carry no information") {
  DnsScoreConfig cfg;
  cfg.memory_bytes = 1 << 20;
  cfg.seen_names_bytes = 1 << 16;
  cfg.lexical_hits = 0;  // volume only
  DnsScorer s(cfg, NgramModel::builtin(), 300, LexicalThresholds{});
  dns::Parser parser;
  dns::DnsMessage msg;
  WeirdCounters weird;
  PacketContext pkt;
  const uint8_t client[4] = {10, 0, 0, 9};
  pkt.src = IpAddress::v4(client);
  std::mt19937_64 rng(7);
  int verdicts = 0, first_at = 0;
  for (int i = 0; i < 400; ++i) {
    char hex[33];
    std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                  static_cast<unsigned long long>(rng()));
    const auto m = query(std::string(hex) + ".leak-example.com");
    REQUIRE(parser.parse(m.data(), m.size(), msg, weird));
    pkt.ts.sec = 1000 + i * 4;  // one 16-byte name every 4 s
    if (const DnsVerdict* v = s.observeQuery(pkt, msg, "leak-example.com", RuleHits{})) {
      ++verdicts;
      if (!first_at) first_at = i + 1;
      CHECK(v->reasons.find("info_bytes_10m=") != std::string_view::npos);
      CHECK(v->domain == "leak-example.com");
    }
  }
  CHECK(first_at > 0);
  CHECK(first_at < 200);
  CHECK(verdicts >= 2);  // a first alert, then updates ...
  CHECK(verdicts <= 6);  // ... at most one per 300 s of the 1,600 s
  // The same name again and again: no new information, no verdict.
  DnsScorer quiet(cfg, NgramModel::builtin(), 300, LexicalThresholds{});
  const auto m = query("0123456789abcdef0123456789abcdef.av-example.net");
  REQUIRE(parser.parse(m.data(), m.size(), msg, weird));
  for (int i = 0; i < 5000; ++i) {
    pkt.ts.sec = 1000 + i;
    CHECK(quiet.observeQuery(pkt, msg, "av-example.net", RuleHits{}) == nullptr);
  }
  DnsFeatures f;
  REQUIRE(quiet.features(quiet.pairKey(pkt.src, "av-example.net"), 6000, f));
  CHECK(f.w[1].queries > 500);
  CHECK(f.w[1].unique < 1.0);
  // An allow rule: no state at all.
  DnsScorer allowed(cfg, NgramModel::builtin(), 300, LexicalThresholds{});
  RuleHits allow;
  allow.allowed = true;
  CHECK(allowed.observeQuery(pkt, msg, "av-example.net", allow) == nullptr);
  CHECK(allowed.pairs() == 0);
}

TEST_CASE("DNS scorer: one random-ID name never alerts alone; a channel of new names does") {
  DnsScoreConfig cfg;
  cfg.memory_bytes = 1 << 20;
  cfg.seen_names_bytes = 1 << 16;
  DnsScorer s(cfg, NgramModel::builtin(), 300, LexicalThresholds{});
  dns::Parser parser;
  dns::DnsMessage msg;
  WeirdCounters weird;
  PacketContext pkt;
  pkt.ts.sec = 5000;
  std::mt19937_64 rng(11);
  auto randomLabel = [&](int n) {
    static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    std::string out;
    for (int i = 0; i < n; ++i) out += kAlphabet[rng() % 32];
    return out;
  };
  // Each client asks one base32 ID under a cloud-style domain: tunnel-shaped
  // (the lexical rule alone would reach the score) but used once.
  for (uint8_t c = 1; c <= 50; ++c) {
    const uint8_t client[4] = {10, 1, 0, c};
    pkt.src = IpAddress::v4(client);
    const auto m = query(randomLabel(52) + ".fn.cloud-example.com");
    REQUIRE(parser.parse(m.data(), m.size(), msg, weird));
    CHECK(s.observeQuery(pkt, msg, "cloud-example.com", RuleHits{}) == nullptr);
    DnsFeatures f;
    REQUIRE(s.features(s.pairKey(pkt.src, "cloud-example.com"), 5000, f));
    CHECK(f.score >= cfg.alert_score);  // over the score: only the gate held it
  }
  CHECK(s.stats().single_use == 50);
  // One client, new names in a row: the min_new_names-th one alerts.
  const uint8_t tunnel[4] = {10, 1, 1, 1};
  pkt.src = IpAddress::v4(tunnel);
  int first = 0;
  for (int i = 1; i <= 10 && !first; ++i) {
    const auto m = query(randomLabel(52) + ".t.tunnel-example.com");
    REQUIRE(parser.parse(m.data(), m.size(), msg, weird));
    pkt.ts.sec = 5000 + i;
    if (const DnsVerdict* v = s.observeQuery(pkt, msg, "tunnel-example.com", RuleHits{})) {
      first = i;
      CHECK(v->reasons.find("unique_subdomains_10m=3") != std::string_view::npos);
    }
  }
  CHECK(first == static_cast<int>(cfg.min_new_names));
  // A score rule on one name does not stand in for repeated use (random
  // hex fits the dnscat2-shaped rule one time in 50).
  const uint8_t ruled[4] = {10, 1, 1, 2};
  pkt.src = IpAddress::v4(ruled);
  RuleHits hits;
  hits.score_weight = 1.0;
  const auto m = query(randomLabel(52) + ".fn.rule-example.com");
  REQUIRE(parser.parse(m.data(), m.size(), msg, weird));
  CHECK(s.observeQuery(pkt, msg, "rule-example.com", hits) == nullptr);
}

TEST_CASE("DNS scorer: answers carry downstream information, once") {
  DnsScoreConfig cfg;
  cfg.memory_bytes = 1 << 20;
  cfg.seen_names_bytes = 1 << 16;
  DnsScorer s(cfg, NgramModel::builtin(), 300, LexicalThresholds{});
  dns::Parser parser;
  dns::DnsMessage msg;
  WeirdCounters weird;
  PacketContext q, r;
  const uint8_t client[4] = {10, 2, 0, 1}, server[4] = {10, 53, 0, 1};
  q.src = r.dst = IpAddress::v4(client);
  q.dst = r.src = IpAddress::v4(server);
  q.ts.sec = r.ts.sec = 7000;
  const std::string name = "0a1b02c3d4.dl.down-example.com";
  auto m = query(name, 16);
  REQUIRE(parser.parse(m.data(), m.size(), msg, weird));
  s.observeQuery(q, msg, "down-example.com", RuleHits{});
  DnsFeatures before;
  REQUIRE(s.features(s.pairKey(q.src, "down-example.com"), 7000, before));
  // The response: the question, then one TXT answer (compressed owner) of
  // 200 hex characters, and one CNAME whose target is a hex name under the
  // same domain, as dnscat2 answers.
  std::mt19937_64 rng(3);
  std::string txt;
  for (int i = 0; i < 200; ++i) txt += "0123456789abcdef"[rng() % 16];
  m[2] = 0x81;
  m[3] = 0x80;
  m[7] = 2;  // ancount
  const uint8_t owner[] = {0xc0, 0x0c};
  m.insert(m.end(), owner, owner + 2);
  const uint8_t txt_head[] = {0, 16, 0, 1, 0, 0, 0, 60, 0, 201, 200};
  m.insert(m.end(), txt_head, txt_head + sizeof txt_head);
  m.insert(m.end(), txt.begin(), txt.end());
  m.insert(m.end(), owner, owner + 2);
  const std::string target_label = txt.substr(0, 40);
  const uint16_t rdlen = static_cast<uint16_t>(1 + target_label.size() + 2 + 3);  // label, pointer
  const uint8_t cname_head[] = {
      0, 5, 0, 1, 0, 0, 0, 60, static_cast<uint8_t>(rdlen >> 8), static_cast<uint8_t>(rdlen)};
  m.insert(m.end(), cname_head, cname_head + sizeof cname_head);
  m.push_back(static_cast<uint8_t>(target_label.size()));
  m.insert(m.end(), target_label.begin(), target_label.end());
  m.push_back(2);  // "dl", then a pointer to "down-example.com" in the question
  m.push_back('d');
  m.push_back('l');
  m.push_back(0xc0);
  m.push_back(static_cast<uint8_t>(12 + 1 + 10 + 1 + 2));
  REQUIRE(parser.parse(m.data(), m.size(), msg, weird));
  REQUIRE(msg.answers.size() == 2);
  s.observeResponse(r, msg, "down-example.com");
  DnsFeatures after;
  REQUIRE(s.features(s.pairKey(q.src, "down-example.com"), 7000, after));
  // 200 hex characters and the target's "<40 hex>.dl": about 120 raw bytes, less
  // after compression (the cheaper of the model and the hex code per label).
  CHECK(after.w[1].info_bytes - before.w[1].info_bytes >= 60);
  CHECK(after.info_day_bytes - before.info_day_bytes >= 60);
  // The same answer again (a retransmission, another client's cache fill):
  // nothing new.
  s.observeResponse(r, msg, "down-example.com");
  DnsFeatures again;
  REQUIRE(s.features(s.pairKey(q.src, "down-example.com"), 7000, again));
  CHECK(again.w[1].info_bytes == doctest::Approx(after.w[1].info_bytes));
}

TEST_CASE("plausibleTld: a last label a resolver could route") {
  using exfilwatch::score::plausibleTld;
  CHECK(plausibleTld("www.example.com"));
  CHECK(plausibleTld("example.co.uk"));
  CHECK(plausibleTld("xn--80ak6aa92e.xn--p1ai"));  // IDN top-level domain
  CHECK(plausibleTld("localhost"));
  CHECK_FALSE(plausibleTld("dnscat.1a2b3c.4d5e6f"));           // hex: no such TLD
  CHECK_FALSE(plausibleTld("host.a"));                         // one letter
  CHECK_FALSE(plausibleTld("a.b.abcdefghijklmnopqrstuvwxy"));  // 25 letters
  CHECK_FALSE(plausibleTld("x.c0m"));
  CHECK_FALSE(plausibleTld("x.COM"));  // callers pass the lower-cased name
  CHECK_FALSE(plausibleTld(""));
  CHECK_FALSE(plausibleTld("example."));
}

namespace {
// Queries of `names` from `clients` in turn, one every `gap` seconds from
// `t0`; counts pair and domain verdicts and keeps the last domain reasons.
struct SpreadRun {
  int pair = 0, domain = 0;
  std::string reasons;
};
SpreadRun spread(DnsScorer& s, const std::vector<std::string>& names, std::string_view reg,
                 int clients, uint32_t t0, uint32_t gap) {
  dns::Parser parser;
  dns::DnsMessage msg;
  WeirdCounters weird;
  PacketContext pkt;
  SpreadRun out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const uint8_t client[4] = {10, 3, static_cast<uint8_t>(i % clients / 250),
                               static_cast<uint8_t>(1 + i % clients % 250)};
    pkt.src = IpAddress::v4(client);
    pkt.ts.sec = t0 + static_cast<uint32_t>(i) * gap;
    const auto m = query(names[i]);
    REQUIRE(parser.parse(m.data(), m.size(), msg, weird));
    if (s.observeQuery(pkt, msg, reg, RuleHits{}) != nullptr) ++out.pair;
    if (const DnsVerdict* v = s.takeDomainVerdict()) {
      ++out.domain;
      out.reasons.assign(v->reasons);
      CHECK(v->domain == reg);
    }
  }
  return out;
}
}  // namespace

TEST_CASE("DNS scorer: the domain view flags a leak spread over clients that no pair crosses") {
  DnsScoreConfig cfg;
  cfg.memory_bytes = 1 << 20;
  cfg.seen_names_bytes = 1 << 20;
  cfg.domain_memory_bytes = 1 << 16;
  std::mt19937_64 rng(22);
  // 3,000 bytes as 750 names of 8 hex characters and a sequence number,
  // one every 4.8 s (here 5 s) over an hour, from 5 hosts in turn.
  std::vector<std::string> leak;
  for (int i = 1; i <= 750; ++i) {
    char hex[9];
    std::snprintf(hex, sizeof hex, "%08llx", static_cast<unsigned long long>(rng() >> 32));
    leak.push_back(std::string(hex) + "." + std::to_string(i) + ".spread-example.com");
  }
  {
    DnsScorer s(cfg, NgramModel::builtin(), 3600, LexicalThresholds{});
    const SpreadRun r = spread(s, leak, "spread-example.com", 5, 100000, 5);
    CHECK(r.pair == 0);    // each host: a fifth, under every pair threshold
    CHECK(r.domain == 1);  // once per suppression interval
    CHECK(r.reasons.find("clients=5 ") != std::string::npos);
    CHECK(r.reasons.find("domain_info_bytes_1h=") != std::string::npos);
    CHECK(s.stats().domain_verdicts == 1);
  }
  {
    // The same leak from one host is the pair's verdict, not the domain's.
    DnsScorer s(cfg, NgramModel::builtin(), 3600, LexicalThresholds{});
    const SpreadRun r = spread(s, leak, "spread-example.com", 1, 100000, 5);
    CHECK(r.pair >= 1);
    CHECK(r.domain == 0);
  }
  {
    // Off: nothing.
    DnsScoreConfig off = cfg;
    off.domain_enabled = false;
    DnsScorer s(off, NgramModel::builtin(), 3600, LexicalThresholds{});
    CHECK(spread(s, leak, "spread-example.com", 5, 100000, 5).domain == 0);
  }
  {
    // 200 hosts asking the same 40 antivirus-style hex names: a name any
    // client asked before adds nothing, so the domain's information is the
    // 40 names once.
    std::vector<std::string> av;
    std::vector<std::string> popular;
    for (int i = 0; i < 40; ++i) {
      char hex[33];
      std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                    static_cast<unsigned long long>(rng()));
      popular.push_back(std::string(hex) + ".avqs.av-example.net");
    }
    for (int c = 0; c < 200; ++c)
      for (const auto& n : popular) av.push_back(n);
    std::shuffle(av.begin(), av.end(), rng);
    DnsScorer s(cfg, NgramModel::builtin(), 3600, LexicalThresholds{});
    const SpreadRun r = spread(s, av, "av-example.net", 200, 200000, 1);
    CHECK(r.domain == 0);
    CHECK(s.domainScoreOf("av-example.net", 200000 + 8000) < 1.0);
  }
  {
    // 300 hosts, one random-ID name each (a cloud function's host): as
    // much new information, but no host uses a channel.
    std::vector<std::string> ids;
    for (int c = 0; c < 300; ++c) {
      char hex[33];
      std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                    static_cast<unsigned long long>(rng()));
      ids.push_back(std::string(hex) + ".fn.cloud-example.com");
    }
    DnsScorer s(cfg, NgramModel::builtin(), 3600, LexicalThresholds{});
    const SpreadRun r = spread(s, ids, "cloud-example.com", 300, 300000, 2);
    CHECK(r.domain == 0);
    CHECK(s.domains() == 0);  // no host used the domain repeatedly: no record
    // The same 300 names from 5 hosts: each a channel, the domain's total
    // over its threshold.
    DnsScorer five(cfg, NgramModel::builtin(), 3600, LexicalThresholds{});
    CHECK(spread(five, ids, "cloud-example.com", 5, 300000, 2).domain == 1);
  }
}

namespace {
// The spread leak's names (as tests/data/fleet-lab/spread-5hosts.pcap: 8 hex
// characters of secret and a sequence number), query i from client i % 5.
std::vector<std::string> spreadLeak(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> leak;
  for (int i = 1; i <= 750; ++i) {
    char hex[9];
    std::snprintf(hex, sizeof hex, "%08llx", static_cast<unsigned long long>(rng() >> 32));
    leak.push_back(std::string(hex) + "." + std::to_string(i) + ".fanout-example.com");
  }
  return leak;
}
// Feeds query i of `names` (client i % 5, one every 5 s) to
// scorers[(i % 5) % scorers.size()], as a sensor's hand-off puts each
// client on one worker; only the queries of `only` (-1: all) clients'
// worker. Counts domain verdicts, initial and update.
struct WorkerRun {
  int initial = 0, update = 0, pair = 0;
};
WorkerRun feedWorkers(const std::vector<DnsScorer*>& scorers, const std::vector<std::string>& names,
                      int only = -1) {
  dns::Parser parser;
  dns::DnsMessage msg;
  WeirdCounters weird;
  PacketContext pkt;
  WorkerRun out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const int c = static_cast<int>(i % 5);
    const std::size_t w = static_cast<std::size_t>(c) % scorers.size();
    if (only >= 0 && w != static_cast<std::size_t>(only)) continue;
    const uint8_t client[4] = {10, 53, 0, static_cast<uint8_t>(2 + c)};
    pkt.src = IpAddress::v4(client);
    pkt.ts.sec = 100000 + static_cast<uint32_t>(i) * 5;
    const auto m = query(names[i]);
    REQUIRE(parser.parse(m.data(), m.size(), msg, weird));
    if (scorers[w]->observeQuery(pkt, msg, "fanout-example.com", RuleHits{}) != nullptr) ++out.pair;
    if (const DnsVerdict* v = scorers[w]->takeDomainVerdict())
      ++(v->update ? out.update : out.initial);
  }
  return out;
}
}  // namespace

TEST_CASE("DNS scorer: workers sharing the sensor's domain table flag a spread leak once") {
  DnsScoreConfig cfg;
  cfg.memory_bytes = 1 << 20;
  cfg.seen_names_bytes = 1 << 20;
  const std::vector<std::string> leak = spreadLeak(5);
  auto two = [&](bool share_domains) {
    auto a = std::make_unique<DnsScorer>(cfg, NgramModel::builtin(), 3600, LexicalThresholds{});
    auto b = std::make_unique<DnsScorer>(cfg, NgramModel::builtin(), 3600, LexicalThresholds{});
    b->shareSeenNames(*a);  // as the sensor's workers do
    if (share_domains) {
      auto table = std::make_shared<DomainTable>(cfg.domain_memory_bytes, true);
      a->shareDomainTable(table);
      b->shareDomainTable(table);
    }
    return std::make_pair(std::move(a), std::move(b));
  };
  {
    // Private tables (each worker its own domain view): clients 0, 2, 4 on
    // one, 1 and 3 on the other; neither has enough of the domain.
    auto [a, b] = two(false);
    const WorkerRun r = feedWorkers({a.get(), b.get()}, leak);
    CHECK(r.pair == 0);
    CHECK(r.initial + r.update == 0);
    CHECK(a->domains() == 1);
    CHECK(b->domains() == 1);
  }
  {
    // One table for both: what one scorer flags, once between them.
    auto [a, b] = two(true);
    const WorkerRun r = feedWorkers({a.get(), b.get()}, leak);
    CHECK(r.pair == 0);
    CHECK(r.initial == 1);
    CHECK(r.update == 0);
    CHECK(a->stats().domain_verdicts + b->stats().domain_verdicts == 1);
    CHECK(a->domains() == 1);  // the same record, seen from either
    CHECK(b->domains() == 1);
    CHECK(&a->domainTable() == &b->domainTable());
    // Once the domain alerted, the other worker's next crossing is held
    // back by the record's suppression, not raised again.
    CHECK(a->stats().domain_suppressed + b->stats().domain_suppressed >= 1);
    // And the reference: one scorer with every client.
    DnsScorer one(cfg, NgramModel::builtin(), 3600, LexicalThresholds{});
    const WorkerRun r1 = feedWorkers({&one}, leak);
    CHECK(r1.initial == 1);
  }
  {
    // Two threads at once, each feeding its own clients: one initial alert
    // between them, whichever crosses first.
    auto [a, b] = two(true);
    WorkerRun ra, rb;
    std::thread ta([&] { ra = feedWorkers({a.get(), b.get()}, leak, 0); });
    std::thread tb([&] { rb = feedWorkers({a.get(), b.get()}, leak, 1); });
    ta.join();
    tb.join();
    CHECK(ra.initial + rb.initial == 1);
    CHECK(ra.pair + rb.pair == 0);
  }
}

TEST_CASE("DomainTable: stripes from the budget, counts for other threads") {
  DomainTable big(8 << 20, true);
  CHECK(big.stripes() == 64);
  CHECK(big.capacity() == 64 * StateTable<DnsDomainRecord>::capacityFor((8 << 20) / 64));
  DomainTable small(1 << 16, true);
  CHECK(small.stripes() == 4);  // each at least 16 KiB
  DomainTable own(8 << 20, false);
  CHECK(own.stripes() == 1);
  CHECK(own.capacity() == StateTable<DnsDomainRecord>::capacityFor(8 << 20));
  // Inserting through a stripe's lock publishes its count on release.
  std::size_t inserted = 0;
  for (uint64_t k = 1; k <= 1000; ++k) {
    const uint64_t key = hashing::fmix64(k) | 1;
    bool fresh = false;
    small.lock(key)->findOrInsert(key, fresh);
    inserted += fresh;
  }
  CHECK(small.size() + small.evictions() == inserted);
  CHECK(small.size() <= small.capacity());
  CHECK(small.evictions() > 0);  // 1000 domains, about 360 records
}

TEST_CASE("DNS scorer: the domain view's table is bounded") {
  DnsScoreConfig cfg;
  cfg.memory_bytes = 1 << 20;
  cfg.seen_names_bytes = 1 << 16;
  cfg.domain_memory_bytes = 1 << 16;
  DnsScorer s(cfg, NgramModel::builtin(), 300, LexicalThresholds{});
  const std::size_t mem = s.memoryBytes();
  dns::Parser parser;
  dns::DnsMessage msg;
  WeirdCounters weird;
  PacketContext pkt;
  const uint8_t client[4] = {10, 4, 0, 1};
  pkt.src = IpAddress::v4(client);
  const std::size_t cap = StateTable<DnsDomainRecord>::capacityFor(cfg.domain_memory_bytes);
  // Each domain used repeatedly (min_new_names names), so each is recorded.
  for (int i = 0; i < 20000; ++i) {
    const std::string reg = "d" + std::to_string(i) + ".example";
    for (uint32_t k = 0; k < cfg.min_new_names; ++k) {
      const auto m = query("x" + std::to_string(k) + "." + reg);
      REQUIRE(parser.parse(m.data(), m.size(), msg, weird));
      pkt.ts.sec = 1000 + i;
      s.observeQuery(pkt, msg, reg, RuleHits{});
    }
  }
  CHECK(s.domains() == cap);
  CHECK(s.domainEvictions() == 20000 - cap);
  CHECK(s.memoryBytes() == mem);
}
