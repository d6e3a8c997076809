// test_share.cc: the fleet's shared state on a worker (src/share): deltas
// collected from the scorer's records (and only the change since the last
// flush), the local floor, the overlay of other sensors' counts on the
// verdict (effective = local + fleet total - sent), names another sensor had
// taken back, and a failed flush resent. Redis itself is in
// tests/integration/fleet_shards.py; here the replies are made by hand.
#include <doctest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "decode/weird.h"
#include "dns/message.h"
#include "resp_args.h"
#include "score/dns_scorer.h"
#include "share/pair_sync.h"

using namespace exfilwatch;
using namespace exfilwatch::score;

namespace {
std::vector<uint8_t> query(const std::string& name) {
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
  m.insert(m.end(), {0, 1, 0, 1});
  return m;
}

// A command's per-window deltas: [window][0 cur / 1 prev][field].
struct Deltas {
  int64_t v[kWindows][2][kSharedFields];
  int64_t names;
  int64_t day, day_cur, day_prev;  // the daily budget: its day and the two deltas
};
Deltas deltas(const std::vector<std::string>& a) {
  Deltas d{};
  d.day = std::stoll(a[7]);  // EVALSHA sha 1 key client nwin slack day today yesterday
  d.day_cur = std::stoll(a[8]);
  d.day_prev = std::stoll(a[9]);
  std::size_t p = 10;
  for (int i = 0; i < kWindows; ++i) {
    p += 2;  // width, bucket
    for (int c = 0; c < 2; ++c)
      for (int k = 0; k < kSharedFields; ++k) d.v[i][c][k] = std::stoll(a[p++]);
  }
  d.names = std::stoll(a[p + 1]);
  return d;
}

template <class Counts>
fleet::RedisReply counts(const Counts& c) {
  fleet::RedisReply r;
  r.type = fleet::RedisReply::Type::Array;
  for (int64_t v : c) {
    fleet::RedisReply e;
    e.type = fleet::RedisReply::Type::String;
    e.str = std::to_string(v);
    r.elements.push_back(e);
  }
  return r;
}

// The script's reply: the fleet totals are what was sent plus `others`
// (every window, current bucket).
fleet::BatchResult reply(const share::PairSync::Flush& f, const SharedCounts& others,
                         const SharedDomainCounts& domain = {}, int64_t clients = 42,
                         int64_t others_today = 0) {
  fleet::BatchResult res;
  for (std::size_t i = 0; i < f.batch.size(); ++i) {
    res.replies.emplace_back();
    res.failures.push_back(fleet::Failure::None);
  }
  for (const auto& item : f.items) {
    fleet::RedisReply r;
    r.type = fleet::RedisReply::Type::Array;
    for (int i = 0; i < kWindows; ++i) {
      SharedCounts cur = item.sent_cur[i];
      for (int k = 0; k < kSharedFields; ++k) cur[k] += others[k];
      r.elements.push_back(counts(cur));
      r.elements.push_back(counts(item.sent_prev[i]));
    }
    fleet::RedisReply n;
    n.type = fleet::RedisReply::Type::Integer;
    n.integer = 42;
    r.elements.push_back(n);
    for (int i = 0; i < kWindows; ++i) {
      r.elements.push_back(counts(domain));                // the domain's current bucket ...
      r.elements.push_back(counts(SharedDomainCounts{}));  // ... and previous one
    }
    fleet::RedisReply c;
    c.type = fleet::RedisReply::Type::Integer;
    c.integer = clients;
    r.elements.push_back(c);
    for (int64_t day : {item.sent_day_cur + others_today, item.sent_day_prev}) {
      fleet::RedisReply y;
      y.type = fleet::RedisReply::Type::Integer;
      y.integer = day;
      r.elements.push_back(y);
    }
    res.replies[item.command] = r;
  }
  return res;
}

struct Fixture {
  DnsScoreConfig cfg;
  std::unique_ptr<DnsScorer> s;
  share::PairSync sync;
  dns::Parser parser;
  dns::DnsMessage msg;
  WeirdCounters weird;
  PacketContext pkt;
  std::mt19937_64 rng{11};
  Fixture() : cfg(config()), sync(cfg, share::ShareOptions{}) {
    s = std::make_unique<DnsScorer>(cfg, NgramModel::builtin(), 300, LexicalThresholds{});
    s->setSharedState(&sync);
    const uint8_t client[4] = {10, 0, 0, 9};
    pkt.src = IpAddress::v4(client);
  }
  static DnsScoreConfig config() {
    DnsScoreConfig c;
    c.memory_bytes = 1 << 20;
    c.seen_names_bytes = 1 << 16;
    c.lexical_hits = 0;  // volume only
    return c;
  }
  const DnsVerdict* hexQuery(uint32_t t) {
    char hex[33];
    std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                  static_cast<unsigned long long>(rng()));
    const auto m = query(std::string(hex) + ".leak-example.com");
    REQUIRE(parser.parse(m.data(), m.size(), msg, weird));
    pkt.ts.sec = t;
    return s->observeQuery(pkt, msg, "leak-example.com", RuleHits{});
  }
  uint64_t key() const { return s->pairKey(pkt.src, "leak-example.com"); }
};
}  // namespace

TEST_CASE("shared state: deltas, floor, overlay on the verdict, re-evaluation") {
  Fixture fx;
  const uint32_t t0 = 1'000'200;  // inside one 10-minute and one hour bucket
  for (int i = 0; i < 20; ++i) CHECK(fx.hexQuery(t0 + i) == nullptr);

  share::PairSync::Flush f;
  REQUIRE(fx.sync.collect(*fx.s, t0 + 20, f));
  REQUIRE(f.items.size() == 1);
  CHECK(f.items[0].domain == "leak-example.com");
  CHECK(f.loads.size() == 1);  // the script is loaded once per slot
  const auto a = respArgs(f.batch.wire(f.items[0].command));
  CHECK(a[0] == "EVALSHA");
  CHECK(a[3] == "exfilwatch:{d:leak-example.com}");
  CHECK(a[4] == "10.0.0.9");
  Deltas d = deltas(a);
  CHECK(d.v[1][0][kSharedQueries] == 20);
  CHECK(d.v[1][0][kSharedNewNames] == 20);
  CHECK(d.v[1][0][kSharedInfoBits] > 20 * 8 * 8);
  CHECK(d.names == 0);  // names of a pair not shared yet stay local
  const int64_t local_bits = d.v[1][0][kSharedInfoBits];

  // Nothing changed: nothing to send. Then only the change goes.
  share::PairSync::Flush empty;
  CHECK_FALSE(fx.sync.collect(*fx.s, t0 + 20, empty));

  // Another sensor sent 3,000 bytes of information to the pair: the verdict
  // now sees them, and re-evaluation raises the alert.
  DnsFeatures before;
  REQUIRE(fx.s->features(fx.key(), t0 + 20, before));
  SharedCounts others{};
  others[kSharedInfoBits] = 3000 * 8;
  others[kSharedQueries] = 100;
  int changed = 0;
  fx.sync.apply(f, reply(f, others), [&](const share::PairSync::Flush::Item& item) {
    ++changed;
    CHECK(item.key == fx.key());
  });
  CHECK(changed == 1);
  DnsFeatures after;
  REQUIRE(fx.s->features(fx.key(), t0 + 20, after));
  CHECK(after.w[1].info_bytes == doctest::Approx(before.w[1].info_bytes + 3000).epsilon(0.01));
  CHECK(after.w[1].queries == doctest::Approx(before.w[1].queries + 100));
  CHECK(after.distinct == doctest::Approx(42));
  CHECK(before.score < 1.0);
  CHECK(after.score >= 1.0);
  const DnsVerdict* v = fx.s->reevaluate(fx.key(), "leak-example.com");
  REQUIRE(v != nullptr);
  CHECK_FALSE(v->update);
  CHECK(fx.s->reevaluate(fx.key(), "leak-example.com") == nullptr);  // suppressed now

  // Five more queries: the next flush sends those five, not the twenty.
  for (int i = 0; i < 5; ++i) fx.hexQuery(t0 + 30 + i);
  share::PairSync::Flush g;
  REQUIRE(fx.sync.collect(*fx.s, t0 + 35, g));
  d = deltas(respArgs(g.batch.wire(g.items[0].command)));
  CHECK(d.v[1][0][kSharedQueries] == 5);
  CHECK(d.names == 5);
  CHECK(g.loads.empty());

  // The five names had been sent by another sensor first: the fleet took
  // their information back, so the pair's effective information drops.
  SharedCounts back{};
  back[kSharedInfoBits] = -(d.v[1][0][kSharedInfoBits]) + 3000 * 8;
  back[kSharedNewNames] = -5;
  back[kSharedQueries] = 100;
  fx.sync.apply(g, reply(g, back), nullptr);
  DnsFeatures taken;
  REQUIRE(fx.s->features(fx.key(), t0 + 35, taken));
  CHECK(taken.w[1].info_bytes == doctest::Approx(local_bits / 8.0 + 3000).epsilon(0.01));

  // A flush that failed before it was sent goes again whole.
  fx.hexQuery(t0 + 40);
  share::PairSync::Flush h;
  REQUIRE(fx.sync.collect(*fx.s, t0 + 40, h));
  fleet::BatchResult lost;
  lost.replies.resize(h.batch.size());
  lost.failures.assign(h.batch.size(), fleet::Failure::Expired);
  lost.failed = h.batch.size();
  fx.sync.apply(h, lost, nullptr);
  CHECK(fx.sync.stats().replies_lost == 1);
  fx.hexQuery(t0 + 41);
  share::PairSync::Flush h2;
  REQUIRE(fx.sync.collect(*fx.s, t0 + 41, h2));
  d = deltas(respArgs(h2.batch.wire(h2.items[0].command)));
  CHECK(d.v[1][0][kSharedQueries] == 2);
  CHECK(h2.loads.size() == 1);  // the node may have restarted: the script is loaded again
}

TEST_CASE("shared state: pairs below the local floor stay local") {
  Fixture fx;
  share::ShareOptions o;
  o.floor_score = 0.1;
  share::PairSync sync(fx.cfg, o);
  DnsScorer s(fx.cfg, NgramModel::builtin(), 300, LexicalThresholds{});
  s.setSharedState(&sync);
  fx.s = nullptr;
  const auto m = query("abcdef0123456789.leak-example.com");
  REQUIRE(fx.parser.parse(m.data(), m.size(), fx.msg, fx.weird));
  fx.pkt.ts.sec = 2'000'000;
  s.observeQuery(fx.pkt, fx.msg, "leak-example.com", RuleHits{});
  share::PairSync::Flush f;
  CHECK_FALSE(sync.collect(s, 2'000'001, f));
  CHECK(sync.stats().below_floor == 0);  // under the floor: not even noted
  CHECK(sync.pairs() == 0);
  // The same name again and again adds no information: still local.
  for (int i = 0; i < 50; ++i) s.observeQuery(fx.pkt, fx.msg, "leak-example.com", RuleHits{});
  CHECK_FALSE(sync.collect(s, 2'000'002, f));
  // Past the floor (new names), the first flush carries everything the pair has.
  std::mt19937_64 rng(3);
  int n = 0;
  for (; n < 200 && !sync.pairs(); ++n) {
    char hex[33];
    std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                  static_cast<unsigned long long>(rng()));
    const auto q = query(std::string(hex) + ".leak-example.com");
    REQUIRE(fx.parser.parse(q.data(), q.size(), fx.msg, fx.weird));
    s.observeQuery(fx.pkt, fx.msg, "leak-example.com", RuleHits{});
    if (sync.collect(s, 2'000'002, f)) break;
  }
  REQUIRE(!f.items.empty());
  CHECK(n > 1);  // not at once: a few names are under the floor
  CHECK(deltas(respArgs(f.batch.wire(f.items[0].command))).v[0][0][kSharedQueries] == 51 + n + 1);
}

TEST_CASE("shared state: the daily budget adds the fleet's bytes of the day") {
  Fixture fx;
  // A slow leak: windows out of reach, only the daily budget can catch it.
  fx.cfg.info_bytes = {1'000'000, 1'000'000, 1'000'000};
  fx.s = std::make_unique<DnsScorer>(fx.cfg, NgramModel::builtin(), 300, LexicalThresholds{});
  fx.s->setSharedState(&fx.sync);
  fx.sync.reconfigure(fx.cfg);
  const uint32_t t0 = 20'000 * 86'400 + 3'600;  // early on UTC day 20,000
  int n = 0;
  share::PairSync::Flush f;
  for (; n < 100 && !fx.sync.collect(*fx.s, t0 + n, f); ++n) fx.hexQuery(t0 + n);
  REQUIRE(f.items.size() == 1);
  Deltas d = deltas(respArgs(f.batch.wire(f.items[0].command)));
  CHECK(d.day == 20'000);
  CHECK(d.day_cur > 0);
  CHECK(d.day_prev == 0);
  DnsFeatures before;
  REQUIRE(fx.s->features(fx.key(), t0 + n, before));
  CHECK(before.info_day_bytes == doctest::Approx(static_cast<double>(d.day_cur)));
  CHECK(before.score < 1.0);
  // Two other sensors carried 1,600 bytes of the same pair today.
  fx.sync.apply(f, reply(f, SharedCounts{}, {}, 1, 1600), nullptr);
  DnsFeatures after;
  REQUIRE(fx.s->features(fx.key(), t0 + n, after));
  CHECK(after.info_day_bytes == doctest::Approx(before.info_day_bytes + 1600));
  const DnsVerdict* v = fx.s->reevaluate(fx.key(), "leak-example.com");
  REQUIRE(v != nullptr);
  CHECK(v->reasons.find("info_bytes_24h=") != std::string_view::npos);

  // Only the change goes next; a new UTC day moves today's bytes to yesterday.
  fx.hexQuery(t0 + 200);
  share::PairSync::Flush g;
  REQUIRE(fx.sync.collect(*fx.s, t0 + 200, g));
  const Deltas e = deltas(respArgs(g.batch.wire(g.items[0].command)));
  CHECK(e.day_cur > 0);
  CHECK(e.day_cur < 40);
  fx.hexQuery(t0 + 86'400);
  share::PairSync::Flush h;
  REQUIRE(fx.sync.collect(*fx.s, t0 + 86'400, h));
  const Deltas y = deltas(respArgs(h.batch.wire(h.items[0].command)));
  CHECK(y.day == 20'001);
  CHECK(y.day_prev == 0);  // yesterday's bytes were all sent already
  CHECK(y.day_cur > 0);
  // The others' 1,600 bytes are yesterday's now, weighed by what is left of it.
  DnsFeatures next;
  REQUIRE(fx.s->features(fx.key(), t0 + 86'400, next));
  CHECK(next.info_day_bytes > 1600 * 0.9);
  CHECK(next.info_day_bytes < before.info_day_bytes + 1600 + 40);
}

TEST_CASE("shared state: scripts have stable SHA-1s") {
  CHECK(share::pairScriptSha().size() == 40);
  CHECK(share::claimScriptSha().size() == 40);
  CHECK(share::pairScriptSha() != share::claimScriptSha());
}

TEST_CASE("shared state: the domain view reads the fleet's domain totals") {
  Fixture fx;
  const uint32_t t0 = 1'000'200;
  for (int i = 0; i < 20; ++i) CHECK(fx.hexQuery(t0 + i) == nullptr);
  CHECK(fx.s->takeDomainVerdict() == nullptr);  // one client: never the domain view
  share::PairSync::Flush f;
  REQUIRE(fx.sync.collect(*fx.s, t0 + 20, f));
  REQUIRE(f.items.size() == 1);
  CHECK(fx.sync.domainView(domainKey("leak-example.com")) == nullptr);
  // The fleet: 4,000 bytes in 300 new names from 6 hosts in every window.
  SharedDomainCounts domain{};
  domain[kDomainInfoBits] = 4000 * 8;
  domain[kDomainNewNames] = 300;
  domain[kDomainQueries] = 300;
  fx.sync.apply(f, reply(f, SharedCounts{}, domain, 6), nullptr);
  const SharedDomainView* v = fx.sync.domainView(domainKey("leak-example.com"));
  REQUIRE(v != nullptr);
  CHECK(v->clients == doctest::Approx(6));
  CHECK(v->w[2].cur[kDomainInfoBits] == 4000 * 8);
  CHECK(fx.s->domainScoreOf("leak-example.com", t0 + 20) >= 1.0);
  const DnsVerdict* dv = fx.s->reevaluateDomain("leak-example.com");
  REQUIRE(dv != nullptr);
  CHECK_FALSE(dv->update);
  CHECK(dv->reasons.find("clients=6 ") != std::string_view::npos);
  CHECK(fx.s->reevaluateDomain("leak-example.com") == nullptr);  // one per interval
  // A reply of the old shape (no domain totals) is refused.
  fleet::RedisReply old = reply(f, SharedCounts{}).replies[f.items[0].command];
  old.elements.resize(2 * kWindows + 3);
  share::PairTotals totals;
  CHECK_FALSE(share::parsePairReply(old, totals));
}
