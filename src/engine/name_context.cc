// name_context.cc: the per-name cache of aggregation domain and rule hits.
#include "engine/name_context.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "common/hash.h"
#include "rules/rule.h"

namespace exfilwatch {

NameContext::NameContext(dns::RegisteredDomain& psl, rules::Matcher& matcher, std::size_t slots)
    : psl_(psl),
      matcher_(matcher),
      cache_(std::bit_ceil(std::max<std::size_t>(slots, 2))),
      seed_(hashing::randomSeed()) {}

void NameContext::invalidate() {
  if (++generation_ == 0) {
    cache_.fill(Entry{});
    generation_ = 1;
  }
}

NameContext::Name NameContext::analyze(const dns::DnsMessage& msg, const dns::Question& q,
                                       const rules::MatchContext& ctx, const IpAddress& server,
                                       bool rules) {
  Name n{msg.lower(q.name), msg.raw(q.name), {}};
  if (rules) matcher_.begin(ctx);
  const bool cacheable = !n.raw.empty() && n.raw.size() <= kMaxName;
  uint64_t hash = 0;
  Entry* set = nullptr;
  if (cacheable) {
    hash = hashing::hashBytes(n.raw.data(), n.raw.size(), seed_ ^ q.name.labels);
    set = &cache_[hash & (cache_.size() - 2)];  // a set is two adjacent entries
    for (Entry* way = set; way != set + 2; ++way) {
      if (way->generation == generation_ && way->hash == hash && way->length == n.raw.size() &&
          way->labels == q.name.labels && std::memcmp(way->raw, n.raw.data(), n.raw.size()) == 0) {
        ++hits_;
        if (way->domain_len) n.domain = n.lower.substr(way->domain_at, way->domain_len);
        if (rules) matcher_.acceptHits(way->hits, way->hit_count);
        return n;
      }
    }
  }
  ++misses_;
  // Only a name with a real top-level domain has an answer of its own; the
  // "@server" of one without depends on the packet, so it is not cached.
  const bool plausible = score::plausibleTld(n.lower);
  n.domain = plausible ? psl_.lookup(n.lower, q.name.labels) : server_domain_.set(server);
  rules::Matcher::PatternHits hits;
  if (rules) {
    matcher_.scanCollect(rules::Field::DnsQname, n.lower, hits);
    matcher_.scanCollect(rules::Field::DnsQnameRaw, n.raw, hits);
    matcher_.scanCollect(rules::Field::DnsRegisteredDomain, n.domain, hits);
    matcher_.scanCollect(rules::Field::DnsSubdomain, rules::subdomainOf(n.lower, n.domain), hits);
  }
  if (!cacheable || !plausible || hits.overflow) return n;
  // Into the first way; what was there moves to the second, whose entry
  // (the older of the two) is dropped.
  if (set[0].generation == generation_) set[1] = set[0];
  Entry& e = set[0];
  e.hash = hash;
  e.generation = generation_;
  e.length = static_cast<uint8_t>(n.raw.size());
  e.labels = q.name.labels;
  e.domain_len = static_cast<uint8_t>(n.domain.size());
  e.domain_at = static_cast<uint8_t>(n.domain.empty() ? 0 : n.domain.data() - n.lower.data());
  e.hit_count = hits.count;
  std::copy_n(hits.index, hits.count, e.hits);
  std::memcpy(e.raw, n.raw.data(), n.raw.size());
  return n;
}

}  // namespace exfilwatch
