// name_context.h: what the packet path knows about one DNS name, worked out
// once: the domain it is aggregated under (its registered domain, or
// "@server" when it has no plausible top-level domain) and the rules'
// verdict on all of its fields (dns.qname, dns.qname.raw,
// dns.registered_domain, dns.subdomain).
//
// Names repeat heavily (the reason resolvers cache), so both answers are
// cached per name: one hash, one look-up and one compare give the
// registered domain and every rule's pattern hits. A name seen for the first
// time is split by the public suffix list and scanned field by field, once.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/huge_array.h"
#include "common/net.h"
#include "dns/message.h"
#include "dns/registered_domain.h"
#include "rules/matcher.h"
#include "score/dns_scorer.h"

namespace exfilwatch {

class NameContext {
 public:
  // `slots`: cache entries, rounded up to a power of two (at least 2).
  NameContext(dns::RegisteredDomain& psl, rules::Matcher& matcher,
              std::size_t slots = kDefaultSlots);

  struct Name {
    std::string_view lower;   // ASCII lower-cased text
    std::string_view raw;     // as sent
    std::string_view domain;  // aggregation domain ("" when the name is a bare suffix)
  };

  // Works out `q`'s name in `msg`; its rule verdict is then matcher's
  // (begun with `ctx`), unless `rules` is false. `server`: the resolver, for
  // "@server". The views stay valid until the next call or the next message.
  Name analyze(const dns::DnsMessage& msg, const dns::Question& q, const rules::MatchContext& ctx,
               const IpAddress& server, bool rules);

  // The rule set changed (Engine::adopt): cached pattern hits name the old
  // set's rules.
  void invalidate();

  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

  // A name with more pattern hits than an entry holds is not cached; one
  // longer than kMaxName neither (a tunnel's names rarely repeat anyway).
  static constexpr std::size_t kMaxName = 116;
  static constexpr std::size_t kDefaultSlots = 65536;

 private:
  // 160 bytes: hash, the generation of the rule set it was scanned with,
  // where the domain starts, and the name's pattern hits.
  struct Entry {
    uint64_t hash = 0;
    uint32_t generation = 0;  // 0: empty
    uint8_t length = 0;
    uint8_t labels = 0;  // a raw '.' inside a label makes texts alike
    uint8_t domain_at = 0;
    uint8_t domain_len = 0;  // 0: no registered domain
    uint8_t hit_count = 0;
    uint32_t hits[rules::Matcher::PatternHits::kMaxHits] = {};
    char raw[kMaxName] = {};
  };
  static_assert(sizeof(Entry) == 160);

  dns::RegisteredDomain& psl_;
  rules::Matcher& matcher_;
  HugeArray<Entry> cache_;
  uint64_t seed_;
  uint32_t generation_ = 1;
  score::ServerDomain server_domain_;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
};

}  // namespace exfilwatch
