// shared_state.h: what the DNS scorer tells the fleet's shared state and
// reads back from it (issue 22, docs/fleet.md). The scorer keeps counting on
// its own records; a SharedStateHook (src/share) learns which pairs changed
// and which names were new here, flushes deltas to Redis off the packet path
// and keeps, per pair, what the other sensors added to each window bucket.
// The verdict adds that to the local counts: effective = local + others.
// Without a hook (no fleet) nothing here costs more than a null test.
#pragma once

#include <any>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>

#include "decode/packet.h"
#include "score/score_config.h"

namespace exfilwatch::score {

// The window counters shared with the fleet, in DnsCounters' order.
enum SharedField : uint8_t {
  kSharedInfoBits,
  kSharedAnswerBytes,
  kSharedQueries,
  kSharedNewNames,
  kSharedNxdomain,
  kSharedRisky,
  kSharedLexical,
  kSharedRuleCenti,
  kSharedFields
};
using SharedCounts = std::array<int64_t, kSharedFields>;

// Other sensors' part of one window's buckets `bucket` and `bucket - 1`
// (signed: a name this sensor counted as new may have been seen elsewhere).
struct SharedWindow {
  uint32_t bucket = 0;
  SharedCounts cur{}, prev{};
};
struct SharedPairView {
  SharedWindow w[kWindows];
  double distinct = 0;  // fleet-wide distinct names of the pair (HyperLogLog)
  // Other sensors' part of the daily budget: bytes on UTC day `day` and
  // the day before (unix seconds / 86400, as DnsPairRecord::day).
  uint32_t day = 0;
  int64_t day_cur = 0, day_prev = 0;
};

// The fleet's totals of one registered domain over all clients of all
// sensors (this one included): information bits, queries and new names per
// window bucket, and the clients that sent names (HyperLogLog). The domain
// view takes the larger of these and its local aggregate (never the sum:
// the totals hold this sensor's part).
enum SharedDomainField : uint8_t {
  kDomainInfoBits,
  kDomainQueries,
  kDomainNewNames,
  kDomainFields
};
using SharedDomainCounts = std::array<int64_t, kDomainFields>;
struct SharedDomainView {
  struct Window {
    uint32_t bucket = 0;
    SharedDomainCounts cur{}, prev{};
  } w[kWindows];
  double clients = 0;
};

// Another sensor's (or the fleet's) counts of one window, weighed as the
// local sliding windows weigh their buckets at bucket `b` with `elapsed`
// of it gone: the current bucket whole, the previous one for what is left;
// one bucket on, the old current for what is left; time gone back, both.
// `w` has `bucket`, `cur` and `prev` (arrays of counts).
template <class Window>
auto weighWindow(const Window& w, uint32_t b, double elapsed) {
  std::array<double, std::tuple_size_v<decltype(w.cur)>> out{};
  auto take = [&](const auto& c, double weight) {
    for (std::size_t k = 0; k < out.size(); ++k) out[k] += static_cast<double>(c[k]) * weight;
  };
  if (w.bucket == b) {
    take(w.cur, 1.0);
    take(w.prev, 1.0 - elapsed);
  } else if (w.bucket + 1 == b) {
    take(w.cur, 1.0 - elapsed);
  } else if (w.bucket > b) {
    take(w.cur, 1.0);
    take(w.prev, 1.0);
  }
  return out;
}

// Fleet-wide alert suppression: one alert per pair and interval over all
// sensors. Unknown when the fleet cannot say (Redis down): local
// suppression alone then applies (fail open).
enum class ClaimOutcome : uint8_t { Initial, Update, Suppressed, Unknown };

class SharedStateHook {
 public:
  virtual ~SharedStateHook() = default;
  // A pair's record changed for the first time since the last flush.
  virtual void touched(uint64_t key, const IpAddress& client, const IpAddress& server,
                       std::string_view domain, uint32_t now) = 0;
  // The score under which a pair not shared yet is not noted at all (the
  // hook's own floor; the many pairs of repeated look-ups stay local).
  virtual double shareFloor() const { return 0.0; }
  // A name new to this sensor under its domain, and what it added to the
  // pair's windows: the fleet takes it back when another sensor had it.
  virtual void novelName(uint64_t key, uint64_t fingerprint, uint32_t now, uint32_t info_bits,
                         bool lexical, uint32_t rule_centi) = 0;
  // Other sensors' counts for the pair; null when none are known.
  virtual const SharedPairView* view(uint64_t key) const = 0;
  // The fleet's totals of a domain (score::domainKey); null when none.
  virtual const SharedDomainView* domainView(uint64_t domain_key) const {
    (void)domain_key;
    return nullptr;
  }
  // Asks the fleet whether this sensor may raise the pair's alert now
  // (the domain view's: `client` unset, one alert per domain).
  virtual ClaimOutcome claim(const IpAddress& client, std::string_view domain,
                             uint32_t signature_id, int64_t now, uint32_t suppress_seconds) = 0;

  // A live sensor cannot wait for a claim's answer: when defersClaims(),
  // the engine formats the alert both ways and hands it over; the hook
  // writes one of them (or none) when the fleet answers, and the local one
  // when it cannot (fail open).
  struct DeferredAlert {
    IpAddress client;
    std::string domain;
    uint32_t signature_id = 0;
    int64_t now = 0;
    uint32_t suppress_seconds = 0;
    bool local_update = false;               // what local suppression alone would say
    std::string initial, update;             // the EVE lines
    std::any initial_fields, update_fields;  // what delivery needs of each (opaque here)
  };
  virtual bool defersClaims() const { return false; }
  // False when it takes no more (the engine then writes the local line).
  virtual bool deferClaim(DeferredAlert&& alert) {
    (void)alert;
    return false;
  }
};

}  // namespace exfilwatch::score
