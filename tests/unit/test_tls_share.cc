// test_tls_share.cc: the fleet's shared TLS upload volume on a worker
// (src/share/tls_sync): the local floor, deltas of the window counters (only
// the change since the last flush), the overlay of the other sensors' counts
// on the tracker's verdict, a failed flush resent, and the reading of the
// script's reply. Redis itself: tests/integration/fleet_tls.py.
#include <doctest.h>

#include <string>
#include <vector>

#include "resp_args.h"
#include "score/tls_tracker.h"
#include "share/tls_sync.h"

using namespace exfilwatch;
using namespace exfilwatch::score;

namespace {
PacketContext upload(uint16_t client_port, uint32_t wire, int64_t sec) {
  static const uint8_t data[8] = {23, 3, 3};
  PacketContext p;
  uint8_t c[4] = {10, 0, 0, 2}, s[4] = {10, 0, 0, 1};
  p.ip_proto = ipproto::kTcp;
  p.src = IpAddress::v4(c);
  p.dst = IpAddress::v4(s);
  p.src_port = client_port;
  p.dst_port = 8443;
  p.payload = data;
  p.payload_len = sizeof data;
  p.payload_wire_len = wire;
  p.ts.sec = sec;
  return p;
}

// `bytes` uploaded on one new flow in 1448-byte segments; the verdicts seen.
int sendFlow(TlsTracker& t, uint16_t client_port, uint64_t bytes, int64_t sec) {
  int verdicts = 0;
  for (uint64_t done = 0; done < bytes; done += 1448) {
    if (t.onTcpSegment(upload(client_port, 1448, sec))) ++verdicts;
  }
  return verdicts;
}

fleet::RedisReply bulk(int64_t v) {
  fleet::RedisReply e;
  e.type = fleet::RedisReply::Type::String;
  e.str = std::to_string(v);
  return e;
}

fleet::RedisReply counts(const TlsSharedCounts& c) {
  fleet::RedisReply r;
  r.type = fleet::RedisReply::Type::Array;
  for (int64_t v : c) r.elements.push_back(bulk(v));
  return r;
}

// The script's reply: the fleet totals are what was sent plus `others`
// (every window's current bucket).
fleet::BatchResult reply(const fleet::CommandBatch& batch, const share::TlsSync::Flush& f,
                         const TlsSharedCounts& others) {
  fleet::BatchResult res;
  res.replies.resize(batch.size());
  res.failures.assign(batch.size(), fleet::Failure::None);
  for (const auto& item : f.items) {
    fleet::RedisReply r;
    r.type = fleet::RedisReply::Type::Array;
    for (int i = 0; i < kWindows; ++i) {
      TlsSharedCounts cur = item.sent_cur[i];
      for (int k = 0; k < kTlsSharedFields; ++k) cur[k] += others[k];
      r.elements.push_back(counts(cur));
      r.elements.push_back(counts(item.sent_prev[i]));
    }
    res.replies[item.command] = r;
  }
  return res;
}

const IpAddress kServer = IpAddress::v4((const uint8_t*)"\x0a\x00\x00\x01");
const IpAddress kClient = IpAddress::v4((const uint8_t*)"\x0a\x00\x00\x02");
}  // namespace

TEST_CASE("tls share: the script's reply is read, anything else refused") {
  fleet::RedisReply r;
  r.type = fleet::RedisReply::Type::Array;
  for (int i = 0; i < 2 * kWindows; ++i) r.elements.push_back(counts({1000 + i, 10, 2, 1}));
  r.elements[1].elements[1].type = fleet::RedisReply::Type::Nil;  // an absent field is 0
  r.elements[2].elements[0] = bulk(int64_t{1} << 60);             // kept far from overflow
  share::TlsTotals t;
  REQUIRE(share::parseTlsReply(r, t));
  CHECK(t.cur[0][kTlsSharedUp] == 1000);
  CHECK(t.prev[0][kTlsSharedDown] == 0);
  CHECK(t.cur[1][kTlsSharedUp] == int64_t{1} << 48);
  CHECK(t.prev[kWindows - 1][kTlsSharedUploadFlows] == 1);

  auto bad = r;
  bad.elements.pop_back();
  CHECK_FALSE(share::parseTlsReply(bad, t));
  bad = r;
  bad.elements[3].elements[2].str = "12x";
  CHECK_FALSE(share::parseTlsReply(bad, t));
  bad = r;
  bad.elements[0].elements.pop_back();
  CHECK_FALSE(share::parseTlsReply(bad, t));
  bad = r;
  bad.elements[0].type = fleet::RedisReply::Type::Integer;
  CHECK_FALSE(share::parseTlsReply(bad, t));
  fleet::RedisReply err;
  err.type = fleet::RedisReply::Type::Error;
  err.str = "NOSCRIPT";
  CHECK_FALSE(share::parseTlsReply(err, t));
}

TEST_CASE("tls share: floor, deltas, the fleet's counts in the verdict, a lost flush resent") {
  TlsScoreConfig cfg;
  TlsTracker t(cfg, 300);
  share::ShareOptions o;
  o.key_prefix = "x:";
  share::TlsSync sync(cfg, o);
  t.setSharedState(&sync);
  const uint64_t key = t.pairKey(kClient, kServer, 8443);

  // 50 kB: under a tenth of the bulk threshold, stays local.
  CHECK(sendFlow(t, 40000, 50000, 1000) == 0);
  fleet::CommandBatch batch;
  share::TlsSync::Flush f;
  CHECK_FALSE(sync.collect(t, 1000, batch, f));
  CHECK(sync.stats().below_floor == 1);
  CHECK(batch.empty());

  // 400 kB more on 4 flows: shared, with the whole count as its first delta.
  for (uint16_t p = 40001; p <= 40004; ++p) CHECK(sendFlow(t, p, 100000, 1001) == 0);
  REQUIRE(sync.collect(t, 1001, batch, f));
  REQUIRE(f.items.size() == 1);
  const auto a = respArgs(batch.wire(f.items[0].command));
  CHECK(a[0] == "EVALSHA");
  CHECK(a[1] == share::tlsScriptSha());
  CHECK(a[3] == "x:{t:10.0.0.1:8443}");
  CHECK(a[4] == "10.0.0.2");
  const TlsPairRecord* r = t.pair(key);
  REQUIRE(r != nullptr);
  // window 1 (the middle one): width, bucket, then cur u d f x
  CHECK(a[7 + 10] == std::to_string(cfg.windows[1]));
  CHECK(std::stoll(a[7 + 10 + 2]) == static_cast<int64_t>(r->win[1].cur.up));
  CHECK(std::stoll(a[7 + 10 + 4]) == 5);  // flows
  CHECK(f.loads.size() == 1);             // the script, once per slot

  // The others sent 600 kB: local 450 kB + 600 kB crosses the bulk threshold.
  const double before = t.scoreOf(key, 1001);
  CHECK(before < 1.0);
  int judged = 0;
  sync.apply(batch, f, reply(batch, f, {600000, 0, 6, 6}),
             [&](const share::TlsSync::Flush::Item& it) {
               ++judged;
               CHECK(it.key == key);
               const TlsVerdict* v = t.reevaluate(it.key, it.server, it.port, it.last_seen);
               REQUIRE(v != nullptr);
               CHECK(!v->update);
               CHECK(std::string(v->reasons).find("upload_bytes_10m=") != std::string::npos);
             });
  CHECK(judged == 1);
  CHECK(t.scoreOf(key, 1001) > before + 0.5);
  // The verdict on the next segment sees the fleet too (suppressed locally: one alert).
  CHECK(sendFlow(t, 40005, 1448, 1002) == 0);
  CHECK(t.stats().suppressed >= 1);

  // Only the change since the last flush is sent; a lost reply resends it.
  fleet::CommandBatch b2;
  share::TlsSync::Flush f2;
  REQUIRE(sync.collect(t, 1002, b2, f2));
  REQUIRE(f2.items.size() == 1);
  const auto a2 = respArgs(b2.wire(f2.items[0].command));
  CHECK(std::stoll(a2[7 + 10 + 2]) == 1448);
  CHECK(std::stoll(a2[7 + 10 + 4]) == 1);
  CHECK(f2.loads.empty());
  fleet::BatchResult lost;
  lost.replies.resize(b2.size());
  lost.failures.assign(b2.size(), fleet::Failure::Expired);
  lost.failed = b2.size();
  sync.apply(b2, f2, lost, nullptr);
  CHECK(sync.stats().replies_lost == 1);
  sync.refreshAll();
  fleet::CommandBatch b3;
  share::TlsSync::Flush f3;
  REQUIRE(sync.collect(t, 1003, b3, f3));
  const auto a3 = respArgs(b3.wire(f3.items[0].command));
  CHECK(std::stoll(a3[7 + 10 + 2]) == 1448);
  CHECK(f3.loads.size() == 1);  // the node may have restarted: the script again
}

TEST_CASE("tls share: claims of a live sensor go with the next flush") {
  TlsScoreConfig cfg;
  share::TlsSync sync(cfg, {});
  sync.setDeferClaims(true);
  TlsSharedHook::DeferredAlert d;
  d.alert.client = kClient;
  d.alert.signature_id = 9000003;
  d.alert.now = 1000;
  d.alert.suppress_seconds = 300;
  d.alert.initial = "initial";
  d.alert.update = "update";
  d.server = kServer;
  d.port = 8443;
  REQUIRE(sync.deferClaim(std::move(d)));
  TlsTracker t(cfg, 300);
  fleet::CommandBatch batch;
  share::TlsSync::Flush f;
  REQUIRE(sync.collect(t, 1000, batch, f));
  REQUIRE(f.claims.size() == 1);
  const auto a = respArgs(batch.wire(f.claims[0].first));
  CHECK(a[0] == "EVAL");
  CHECK(a[3] == "exfilwatch:{t:10.0.0.1:8443}");
  CHECK(a[4] == "10.0.0.2");
  CHECK(a[5] == "tls");  // bulk and drip: one claim per pair
  // Granted and the first: the initial line; denied: nothing.
  for (const auto& [granted, n, want] :
       {std::tuple{1, 1, "initial"}, std::tuple{1, 2, "update"}, std::tuple{0, 1, ""}}) {
    fleet::BatchResult res;
    res.replies.resize(1);
    res.failures.assign(1, fleet::Failure::None);
    res.replies[0].type = fleet::RedisReply::Type::Array;
    for (int v : {granted, n}) {
      fleet::RedisReply e;
      e.type = fleet::RedisReply::Type::Integer;
      e.integer = v;
      res.replies[0].elements.push_back(e);
    }
    std::string got;
    sync.apply(batch, f, res, nullptr,
               [&](const std::string& line, const std::any&) { got = line; });
    CHECK(got == want);
  }
}
