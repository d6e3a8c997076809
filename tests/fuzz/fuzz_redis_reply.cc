// fuzz_redis_reply.cc: libFuzzer target for the fleet client's reply
// handling (src/fleet): the input is what a Redis server, or whatever sits
// in its place, sends on one connection. The first byte says how the rest is
// split into reads; every reply then takes the client's path: hiredis'
// reader into owned values (with small limits, so they are reached),
// MOVED/ASK parsing of error replies, CLUSTER SLOTS parsing of arrays, and
// the shared state's reading of its scripts' replies (src/share: DNS pairs,
// TLS pairs, claims).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fleet/cluster_slots.h"
#include "fleet/redis_protocol.h"
#include "share/pair_sync.h"
#include "share/tls_sync.h"

namespace {

using namespace exfilwatch::fleet;

void use(const RedisReply& r) {
  exfilwatch::share::PairTotals totals;
  if (exfilwatch::share::parsePairReply(r, totals)) {
    auto bounded = [](int64_t v) { return v <= (int64_t{1} << 48) && v >= -(int64_t{1} << 48); };
    for (const auto& c : totals.cur) {
      for (const int64_t v : c) {
        if (!bounded(v)) __builtin_trap();
      }
    }
    for (const auto& c : totals.domain_cur) {
      for (const int64_t v : c) {
        if (!bounded(v)) __builtin_trap();
      }
    }
    if (!bounded(totals.clients) || !bounded(totals.distinct) || !bounded(totals.day_cur) ||
        !bounded(totals.day_prev)) {
      __builtin_trap();
    }
  }
  exfilwatch::share::TlsTotals tls;
  if (exfilwatch::share::parseTlsReply(r, tls)) {
    for (const auto* side : {&tls.cur, &tls.prev}) {
      for (const auto& c : *side) {
        for (const int64_t v : c) {
          if (v > (int64_t{1} << 48) || v < -(int64_t{1} << 48)) __builtin_trap();
        }
      }
    }
  }
  bool granted = false;
  int64_t count = 0;
  (void)exfilwatch::share::parseClaimReply(r, granted, count);
  if (r.isError()) {
    if (const auto redirect = parseRedirect(r.str)) {
      if (redirect->slot >= kSlots || redirect->target.port == 0) __builtin_trap();
    }
    return;
  }
  if (r.type != RedisReply::Type::Array) return;
  SlotMap map;
  std::string why;
  if (parseClusterSlots(r, Endpoint{"127.0.0.1", 7000}, 16, map, &why)) {
    for (const int16_t owner : map.owner) {
      if (owner >= static_cast<int>(map.masters.size())) __builtin_trap();
    }
  } else if (why.empty()) {
    __builtin_trap();  // a refusal says why
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t chunk = data[0] == 0 ? size : data[0];
  ++data;
  --size;
  ReplyReader reader(ReplyLimits{4096, 256});
  RedisReply reply;
  for (std::size_t at = 0; at < size; at += chunk) {
    const std::size_t n = size - at < chunk ? size - at : chunk;
    if (!reader.feed(reinterpret_cast<const char*>(data + at), n)) break;
    ReplyReader::Next next;
    while ((next = reader.next(reply)) == ReplyReader::Next::Reply) use(reply);
    if (next == ReplyReader::Next::Error) {
      // Failed for good: nothing more is read.
      if (reader.feed("+OK\r\n", 5) || reader.next(reply) != ReplyReader::Next::Error)
        __builtin_trap();
      break;
    }
  }
  return 0;
}
