// matcher.cc: rule-set compilation (or cache load) and per-worker scanning.
#include "rules/matcher.h"

#include <hs/hs.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include "common/escape.h"
#include "common/hash.h"

namespace exfilwatch::rules {

namespace {

double msSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

struct CompileInput {
  std::vector<std::string> expressions;
  std::vector<const char*> cstrs;
  std::vector<unsigned> flags;
  std::vector<unsigned> ids;  // rule indexes
};

// Hyperscan's per-expression check: parses and analyses one pattern without
// building a database, so every bad rule is reported, not only the first.
void checkExpression(const Rule& r, std::vector<std::string>& errors) {
  const std::string expr = r.expression();
  hs_expr_info_t* info = nullptr;
  hs_compile_error_t* err = nullptr;
  if (hs_expression_info(expr.c_str(), r.hsFlags(), &info, &err) != HS_SUCCESS) {
    errors.push_back(r.wherePattern() + "pattern '" + expr +
                     "': Hyperscan: " + (err && err->message ? err->message : "unknown error"));
    hs_free_compile_error(err);
    return;
  }
  // A pattern that matches the empty string matches every name: certainly a
  // mistake (Hyperscan itself refuses it at compile time).
  if (info && info->min_width == 0) {
    errors.push_back(r.wherePattern() + "pattern '" + expr +
                     "' matches the empty string (every value)");
  }
  std::free(info);
}

void freeAll(DatabaseArray& dbs) {
  for (auto& db : dbs) {
    if (db) hs_free_database(db);
    db = nullptr;
  }
}

}  // namespace

RuleSet::~RuleSet() {
  if (prototype_) hs_free_scratch(prototype_);
  freeAll(dbs_);
}

std::shared_ptr<const RuleSet> RuleSet::build(std::vector<Rule> rules, const std::string& key,
                                              const BuildOptions& options, BuildInfo* info) {
  BuildInfo local;
  BuildInfo& bi = info ? *info : local;
  std::shared_ptr<RuleSet> set(new RuleSet());
  set->rules_ = std::move(rules);
  set->key_ = key;
  bi.rules = set->rules_.size();
  bi.key = key;

  std::array<CompileInput, kFieldCount> inputs;
  std::vector<std::string> errors;
  for (uint32_t i = 0; i < set->rules_.size(); ++i) {
    const Rule& r = set->rules_[i];
    if (!r.enabled) continue;
    ++bi.enabled;
    auto& in = inputs[static_cast<std::size_t>(r.field)];
    in.expressions.push_back(r.expression());
    in.flags.push_back(r.hsFlags());
    in.ids.push_back(i);
  }
  bool cached = false;
  if (!options.cache_dir.empty() && !key.empty()) {
    const auto start = std::chrono::steady_clock::now();
    std::string why;
    cached = loadCachedDatabases(options.cache_dir, key, set->dbs_, why);
    // A hit must also agree with what this rule set compiles to: one
    // database per field that has enabled rules, none elsewhere.
    for (std::size_t f = 0; cached && f < kFieldCount; ++f) {
      if ((set->dbs_[f] != nullptr) != !inputs[f].ids.empty()) {
        cached = false;
        why = "corrupt (field layout)";
        freeAll(set->dbs_);
      }
    }
    bi.cache = why;
    if (cached) bi.cache_load_ms = msSince(start);
  } else {
    bi.cache = "off";
  }

  // A cache hit means these exact files compiled before; otherwise check
  // every expression first (disabled rules too: `rules check` validates
  // all), so all bad patterns are reported at once.
  if (!cached) {
    for (const Rule& r : set->rules_) checkExpression(r, errors);
    if (!errors.empty()) throw RuleError(std::move(errors));
  }

  if (!cached) {
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t f = 0; f < kFieldCount; ++f) {
      auto& in = inputs[f];
      if (in.ids.empty()) continue;
      for (const auto& e : in.expressions) in.cstrs.push_back(e.c_str());
      hs_compile_error_t* err = nullptr;
      const hs_error_t rc = hs_compile_multi(in.cstrs.data(), in.flags.data(), in.ids.data(),
                                             static_cast<unsigned>(in.ids.size()), HS_MODE_BLOCK,
                                             nullptr, &set->dbs_[f], &err);
      if (rc != HS_SUCCESS) {
        std::string message = err && err->message ? err->message : "unknown error";
        std::string where = std::string(fieldName(static_cast<Field>(f))) + ": ";
        if (err && err->expression >= 0 &&
            static_cast<std::size_t>(err->expression) < in.ids.size()) {
          const Rule& r = set->rules_[in.ids[static_cast<std::size_t>(err->expression)]];
          where = r.wherePattern() + "pattern '" +
                  in.expressions[static_cast<std::size_t>(err->expression)] + "': ";
        }
        hs_free_compile_error(err);
        throw RuleError(where + "Hyperscan: " + message);
      }
    }
    bi.compile_ms = msSince(start);
    if (!options.cache_dir.empty() && !key.empty()) {
      std::string why;
      if (!storeCachedDatabases(options.cache_dir, key, set->dbs_, why)) {
        bi.cache += "; store failed: " + why;
      }
    }
  }

  for (auto* db : set->dbs_) {
    if (!db) continue;
    std::size_t sz = 0;
    if (hs_database_size(db, &sz) == HS_SUCCESS) bi.database_bytes += sz;
    // One prototype scratch large enough for every database of the set.
    if (hs_alloc_scratch(db, &set->prototype_) != HS_SUCCESS) {
      throw RuleError("Hyperscan: cannot allocate scratch space");
    }
  }
  return set;
}

std::shared_ptr<const RuleSet> RuleSet::loadDirectory(const std::string& dir,
                                                      const BuildOptions& options,
                                                      BuildInfo* info) {
  BuildInfo local;
  BuildInfo& bi = info ? *info : local;
  const auto start = std::chrono::steady_clock::now();
  const std::vector<RuleSource> sources = readRuleDirectory(dir);
  std::vector<Rule> rules = parseRuleSources(sources);
  bi.load_ms = msSince(start);
  return build(std::move(rules), cacheKey(sources), options, &bi);
}

std::vector<std::string> RuleSet::selfTest() const {
  std::vector<std::string> problems;
  // The matcher needs a shared_ptr; borrow this set without owning it.
  Matcher m(0);  // no scan cache: every test value is scanned
  if (!m.adopt(RuleSetPtr(RuleSetPtr{}, this))) return {"cannot allocate scratch for self-test"};
  for (uint32_t i = 0; i < rules_.size(); ++i) {
    const Rule& r = rules_[i];
    if (!r.enabled) continue;  // not compiled; `rules check` lists them as disabled
    auto matched = [&](const std::string& value) {
      MatchContext ctx;
      // Conditions are the packet's business; tests check the pattern, so
      // scan with the rule's own conditions satisfied.
      ctx.qtype = r.qtypes.empty() ? 0 : r.qtypes.front();
      ctx.response = r.direction == Direction::Response;
      ctx.server_port = r.ports.empty() ? 0 : r.ports.front();
      m.begin(ctx);
      m.scan(r.field, value);
      for (std::size_t h = 0; h < m.hitCount(); ++h) {
        if (&m.hit(h) == &r) return true;
      }
      return false;
    };
    auto printable = [](const std::string& v) {
      return escape::escaped(v, escape::printableNoBackslash);
    };
    for (const auto& v : r.test_match) {
      if (!matched(v))
        problems.push_back(r.where() + "test: '" + printable(v) + "' should match but does not");
    }
    for (const auto& v : r.test_no_match) {
      if (matched(v))
        problems.push_back(r.where() + "test: '" + printable(v) + "' should not match but does");
    }
  }
  return problems;
}

std::vector<std::string> RuleSet::lint(dns::RegisteredDomain& psl) const {
  std::vector<std::string> warnings;
  Matcher m(0);
  if (!m.adopt(RuleSetPtr(RuleSetPtr{}, this))) return warnings;
  for (uint32_t i = 0; i < rules_.size(); ++i) {
    const Rule& r = rules_[i];
    if (!r.enabled || !r.isToolRule()) continue;
    if (r.field != Field::DnsQname && r.field != Field::DnsQnameRaw) continue;
    MatchContext ctx;
    ctx.qtype = r.qtypes.empty() ? 0 : r.qtypes.front();
    ctx.response = r.direction == Direction::Response;
    ctx.server_port = r.ports.empty() ? 0 : r.ports.front();
    auto matches = [&](std::string_view value) {
      m.begin(ctx);
      m.scan(r.field, value);
      for (std::size_t h = 0; h < m.hitCount(); ++h) {
        if (&m.hit(h) == &r) return true;
      }
      return false;
    };
    std::string found;
    for (const auto& test : r.test_match) {
      std::string lower = test;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const std::string registered(psl.lookup(lower));
      const auto dot = registered.find('.');
      if (registered.empty() || dot == std::string::npos) continue;
      // A last label that cannot be a top-level domain (digits: dnscat2's
      // hex straight to its server) makes no registrable name.
      const auto tld = registered.substr(registered.rfind('.') + 1);
      if (!std::all_of(tld.begin(), tld.end(), [](char c) { return c >= 'a' && c <= 'z'; })) {
        continue;
      }
      const std::string suffix = registered.substr(dot);  // ".net", ".co.uk"
      std::vector<std::string> probes{registered};
      const std::string_view sub = subdomainOf(lower, registered);
      for (std::size_t at = 0; at < sub.size();) {
        const std::size_t end = std::min(sub.find('.', at), sub.size());
        probes.push_back(std::string(sub.substr(at, end - at)) + suffix);
        at = end + 1;
      }
      for (const auto& p : probes) {
        if (matches(p)) {
          found = p;
          break;
        }
      }
      if (!found.empty()) break;
    }
    if (!found.empty()) {
      warnings.push_back(r.wherePattern() + "tool signature on " + std::string(fieldName(r.field)) +
                         " matches the bare registered domain '" +
                         escape::escaped(found, escape::printableNoBackslash) +
                         "', a name its owner's users query; a tunnel's data can only be left "
                         "of the registered domain: write it on dns.subdomain");
    }
  }
  return warnings;
}

Matcher::Matcher(std::size_t scan_cache_slots)
    : scan_cache_slots_(scan_cache_slots ? std::bit_ceil(std::max<std::size_t>(scan_cache_slots, 2))
                                         : 0) {}

Matcher::~Matcher() {
  if (scratch_) hs_free_scratch(scratch_);
}

bool Matcher::adopt(RuleSetPtr set) {
  if (set == set_) return true;
  hs_scratch_t* scratch = nullptr;
  if (set && set->prototype_ && hs_clone_scratch(set->prototype_, &scratch) != HS_SUCCESS) {
    return false;
  }
  // Carry the lifetime counters over by rule id.
  std::vector<uint64_t> counts(set ? set->size() : 0, 0);
  if (set_ && set) {
    std::unordered_map<uint32_t, uint64_t> by_id;
    for (std::size_t i = 0; i < set_->size() && i < rule_hits_.size(); ++i) {
      by_id[set_->rule(static_cast<uint32_t>(i)).id] = rule_hits_[i];
    }
    for (std::size_t i = 0; i < set->size(); ++i) {
      const auto it = by_id.find(set->rule(static_cast<uint32_t>(i)).id);
      if (it != by_id.end()) counts[i] = it->second;
    }
  }
  if (scratch_) hs_free_scratch(scratch_);
  scratch_ = scratch;
  set_ = std::move(set);
  const std::size_t n = set_ ? set_->size() : 0;
  hits_.assign(n, 0);
  seen_.assign(n, 0);
  rule_hits_ = std::move(counts);
  epoch_ = 0;
  // Entries of the previous set name its rule indices: forget them all.
  if (scan_cache_.size() != scan_cache_slots_) {
    scan_cache_ = HugeArray<ScanCacheEntry>(scan_cache_slots_);
    cache_seed_ = hashing::randomSeed();
  }
  if (++cache_generation_ == 0) {
    scan_cache_.fill(ScanCacheEntry{});
    cache_generation_ = 1;
  }
  begin(MatchContext{});
  return true;
}

void Matcher::begin(const MatchContext& ctx) {
  ctx_ = ctx;
  hits_n_ = 0;
  verdict_.allowed_by = nullptr;
  verdict_.alert_count = 0;
  verdict_.score = RuleScore{};
  if (++epoch_ == 0) {  // wrapped: forget every stamp once per 2^32 names
    std::fill(seen_.begin(), seen_.end(), 0);
    epoch_ = 1;
  }
}

int Matcher::onHsMatch(unsigned int id, unsigned long long, unsigned long long to, unsigned int,
                       void* ctx) {
  static_cast<Matcher*>(ctx)->record(id, static_cast<std::size_t>(to));
  return 0;  // keep scanning: every rule on the field gets its chance
}

void Matcher::record(uint32_t index, std::size_t end) {
  if (index >= seen_.size()) return;
  if (!capturing_ && collect_ == nullptr && seen_[index] == epoch_) return;  // once per name
  const Rule& r = set_->rule(index);
  if (!r.literalFits(value_, end)) return;  // another occurrence may still fit
  if (collect_ != nullptr) {
    PatternHits& c = *collect_;
    if (std::find(c.index, c.index + c.count, index) == c.index + c.count) {
      if (c.count < PatternHits::kMaxHits) {
        c.index[c.count++] = index;
      } else {
        c.overflow = true;
      }
    }
    if (seen_[index] == epoch_) return;
  }
  if (capturing_) {
    // The cache entry is about this value alone, whatever earlier values of
    // the same name (other TXT strings) matched: record each rule once.
    if (std::find(captured_, captured_ + captured_n_, index) != captured_ + captured_n_) return;
    if (captured_n_ < kScanCacheMaxHits) {
      captured_[captured_n_++] = index;
    } else {
      capture_overflow_ = true;
    }
    if (seen_[index] == epoch_) return;
  }
  seen_[index] = epoch_;
  accept(index);
}

void Matcher::accept(uint32_t index) {
  const Rule& r = set_->rule(index);
  if (!r.appliesTo(ctx_)) return;
  hits_[hits_n_++] = index;
  ++rule_hits_[index];
  switch (r.action) {
    case Action::Allow:
      if (verdict_.allowed_by == nullptr) verdict_.allowed_by = &r;
      break;
    case Action::Alert:
      if (verdict_.alert_count < RuleVerdict::kMaxAlerts) verdict_.alerts[verdict_.alert_count] = &r;
      ++verdict_.alert_count;
      break;
    case Action::Score: {
      RuleScore& score = verdict_.score;
      score.total += r.weight;
      if (score.count < RuleScore::kMaxScoreRules) score.rule_ids[score.count] = r.id;
      ++score.count;
      break;
    }
  }
}

Matcher::Prepared Matcher::prepare(Field field, std::string_view value) const {
  Prepared p{field, value, 0, false};
  if (scan_cache_slots_ == 0 || value.empty() || value.size() > kScanCacheMaxValue || !set_ ||
      !set_->dbs_[static_cast<std::size_t>(field)]) {
    return p;
  }
  p.hash =
      hashing::hashBytes(value.data(), value.size(), cache_seed_ ^ static_cast<uint64_t>(field));
  p.cacheable = true;
  // Both ways of the value's set (adjacent entries).
  const ScanCacheEntry* set = &scan_cache_[p.hash & (scan_cache_slots_ - 2)];
  __builtin_prefetch(set);
  __builtin_prefetch(set + 1);
  return p;
}

void Matcher::scan(const Prepared& prepared) {
  const Field field = prepared.field;
  const std::string_view value = prepared.value;
  // Empty values never match (min_width > 0 is checked at load).
  if (!set_ || !scratch_ || value.empty()) return;
  const hs_database_t* db = set_->dbs_[static_cast<std::size_t>(field)];
  if (!db) return;
  value_ = value;

  ScanCacheEntry* entry = nullptr;
  const uint64_t hash = prepared.hash;
  if (prepared.cacheable) {
    ScanCacheEntry* const set = &scan_cache_[hash & (scan_cache_slots_ - 2)];
    for (ScanCacheEntry* way = set; way != set + 2; ++way) {
      if (way->generation == cache_generation_ && way->hash == hash &&
          way->field == static_cast<uint8_t>(field) && way->length == value.size() &&
          std::memcmp(way->value, value.data(), value.size()) == 0) {
        ++cache_hits_;
        acceptHits(way->hits, way->hit_count);
        return;
      }
    }
    entry = set;  // where a miss is stored (below)
  }

  ++cache_misses_;
  capturing_ = entry != nullptr;
  capture_overflow_ = false;
  captured_n_ = 0;
  const bool ok = hsScan(db);
  capturing_ = false;
  if (!ok) return;
  if (entry && !capture_overflow_) {
    // Into the first way; what was there moves to the second, whose entry
    // (the older of the two) is dropped.
    if (entry[0].generation == cache_generation_) entry[1] = entry[0];
    entry->generation = cache_generation_;
    entry->hash = hash;
    entry->field = static_cast<uint8_t>(field);
    entry->length = static_cast<uint8_t>(value.size());
    entry->hit_count = captured_n_;
    std::copy_n(captured_, captured_n_, entry->hits);
    std::memcpy(entry->value, value.data(), value.size());
  }
}

bool Matcher::hsScan(const hs_database_t* db) {
  if (hs_scan(db, value_.data(), static_cast<unsigned>(value_.size()), 0, scratch_,
              &Matcher::onHsMatch, this) != HS_SUCCESS) {
    ++scan_errors_;
    return false;
  }
  return true;
}

void Matcher::scanCollect(Field field, std::string_view value, PatternHits& hits) {
  if (!set_ || !scratch_ || value.empty()) return;
  const hs_database_t* db = set_->dbs_[static_cast<std::size_t>(field)];
  if (!db) return;
  ++cache_misses_;  // a value Hyperscan scans
  value_ = value;
  collect_ = &hits;
  if (!hsScan(db)) hits.overflow = true;  // a failed scan's hits are not the value's
  collect_ = nullptr;
}

void Matcher::acceptHits(const uint32_t* index, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const uint32_t k = index[i];
    if (k >= seen_.size() || seen_[k] == epoch_) continue;
    seen_[k] = epoch_;
    accept(k);
  }
}

}  // namespace exfilwatch::rules
