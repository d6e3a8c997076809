// matcher.h: compiled rule sets and the per-worker matcher.
//
// RuleSet: the immutable, shared half. One Hyperscan block-mode database per
// field (hs_compile_multi, every rule HS_FLAG_SINGLEMATCH, the Hyperscan id
// of a pattern is its rule's index), plus a prototype scratch sized for all
// of them. It is built off the packet path (control plane build or reload),
// published inside the ControlPlane by atomic swap, and freed by the last
// shared_ptr owner, i.e. when no worker still holds the plane it came with.
// Nothing in it changes after build(), so any number of workers read it.
//
// Matcher: the per-worker half. It owns the worker's scratch (cloned from
// the prototype when the worker adopts a rule set, between batches) and
// fixed-size result buffers, so scanning allocates nothing and takes no lock.
// It turns raw matches into a verdict for one name: which allow rule (if
// any) let it through, which alert rules fire, and the score-rule total.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/huge_array.h"
#include "dns/registered_domain.h"
#include "rules/cache.h"
#include "rules/loader.h"
#include "rules/rule.h"

struct hs_scratch;

namespace exfilwatch::rules {

struct BuildOptions {
  std::string cache_dir;  // "" = no compiled-database cache
};

// What a build did, for `rules check`, logs and the benchmark.
struct BuildInfo {
  std::size_t rules = 0;           // loaded (enabled or not)
  std::size_t enabled = 0;         // compiled
  double load_ms = 0;              // reading + parsing the files
  double compile_ms = 0;           // Hyperscan compile (0 on a cache hit)
  double cache_load_ms = 0;        // deserializing a cache entry
  std::string cache;               // "off", "hit", "miss", "corrupt (...)", "store failed: ..."
  std::string key;                 // content key (cache key)
  std::size_t database_bytes = 0;  // sum of the databases' sizes
};

class RuleSet {
 public:
  // Validates every expression, then compiles (or loads the cached
  // databases keyed by `key`; empty key: never cached). Throws RuleError
  // with "file:line: rule N: <Hyperscan's message>" for each bad pattern.
  static std::shared_ptr<const RuleSet> build(std::vector<Rule> rules, const std::string& key,
                                              const BuildOptions& options,
                                              BuildInfo* info = nullptr);
  // readRuleDirectory + parseRuleSources + build, keyed by the files' bytes.
  static std::shared_ptr<const RuleSet> loadDirectory(const std::string& dir,
                                                      const BuildOptions& options,
                                                      BuildInfo* info = nullptr);

  ~RuleSet();
  RuleSet(const RuleSet&) = delete;
  RuleSet& operator=(const RuleSet&) = delete;

  const std::vector<Rule>& rules() const { return rules_; }
  const Rule& rule(uint32_t index) const { return rules_[index]; }
  std::size_t size() const { return rules_.size(); }
  bool hasField(Field f) const { return dbs_[static_cast<std::size_t>(f)] != nullptr; }
  const std::string& key() const { return key_; }

  // Runs every rule's own tests (tests: match / no_match) against the
  // compiled databases. Returns one "file:line: rule N: ..." per failure.
  std::vector<std::string> selfTest() const;
  // Warnings for rules that are valid but likely wrong; `rules check` prints
  // them. Today: a tool signature (isToolRule) written on dns.qname or
  // dns.qname.raw that matches a bare registered domain, i.e. a name that
  // ordinary users register and query, where no tunnel can put its
  // handshake. The probes come from the rule's own match tests: each label
  // of a test name made into a registered domain under that name's public
  // suffix (`psl` splits them), and the test name's registered domain.
  std::vector<std::string> lint(dns::RegisteredDomain& psl) const;

 private:
  friend class Matcher;
  RuleSet() = default;
  std::vector<Rule> rules_;
  DatabaseArray dbs_{};
  hs_scratch* prototype_ = nullptr;  // cloned per worker, never scanned with
  std::string key_;
};

using RuleSetPtr = std::shared_ptr<const RuleSet>;

// The rule-score result of one name, for the DNS scorer: the sum of the
// weights of every `score` rule that matched, and which rules they were (the
// first kMaxScoreRules of them).
struct RuleScore {
  static constexpr std::size_t kMaxScoreRules = 8;
  double total = 0;
  uint32_t count = 0;  // score rules matched (may exceed kMaxScoreRules)
  std::array<uint32_t, kMaxScoreRules> rule_ids{};
};

// The rules' verdict on one name, as a value: which allow rule took it (no
// detection then), which alert rules fire (the first kMaxAlerts; rules point
// into the RuleSet, which outlives every verdict of the plane it came with),
// and the score rules' total.
struct RuleVerdict {
  static constexpr std::size_t kMaxAlerts = 8;
  const Rule* allowed_by = nullptr;
  uint32_t alert_count = 0;  // kept: min(alert_count, kMaxAlerts)
  std::array<const Rule*, kMaxAlerts> alerts{};
  RuleScore score;

  bool allowed() const { return allowed_by != nullptr; }
  std::size_t keptAlerts() const { return std::min<std::size_t>(alert_count, kMaxAlerts); }
};

// Sees every rule hit; set by `exfilwatch rules test`, null in the sensor.
class Observer {
 public:
  virtual ~Observer() = default;
  // A rule matched `name` (its conditions held).
  virtual void onMatch(const Rule& rule, std::string_view name) = 0;
  // `allow` suppressed a detection on `name`; `what` names it ("rule 1000001
  // <name>" or "lexical detector").
  virtual void onSuppressed(const Rule& allow, std::string_view name, std::string_view what) = 0;
};

class Matcher {
 public:
  // `scan_cache_slots`: entries of the scan cache (below), rounded up to a
  // power of two; 0 scans every value (the rules' self-tests, a reference
  // matcher in tests). Allocated at the first adopt().
  explicit Matcher(std::size_t scan_cache_slots = kScanCacheSlots);
  ~Matcher();
  Matcher(const Matcher&) = delete;
  Matcher& operator=(const Matcher&) = delete;

  // Switches to `set` (null: no rules). Allocates the scratch and buffers:
  // call at start or between batches, never mid-packet. On failure keeps the
  // previous set and returns false.
  bool adopt(RuleSetPtr set);
  const RuleSet* ruleSet() const { return set_.get(); }

  // Starts the verdict for one name.
  void begin(const MatchContext& ctx);
  // Scans one value of `field` and folds its hits into the verdict. Rules
  // whose conditions do not hold for the context are ignored. No allocation.
  void scan(Field field, std::string_view value) { scan(prepare(field, value)); }
  // The same in two steps, so that the scan cache's memory access can
  // overlap other work: prepare() hashes the value and starts loading its
  // cache entry; scan(prepared) finishes. The value must stay unchanged in
  // between, and the rule set too (no adopt()).
  struct Prepared {
    Field field = Field::DnsQname;
    std::string_view value;
    uint64_t hash = 0;
    bool cacheable = false;  // false: no cache, or a value too long for it
  };
  Prepared prepare(Field field, std::string_view value) const;
  void scan(const Prepared& prepared);

  // Scans one value of `field` without the scan cache, and also collects
  // its pattern hits (before conditions) into `hits`, for a caller that
  // caches them per name across several fields (engine/name_context.h).
  // `hits` overflows (false, the hits are still accepted) past kMaxHits.
  struct PatternHits {
    static constexpr std::size_t kMaxHits = 6;
    uint8_t count = 0;
    bool overflow = false;
    uint32_t index[kMaxHits] = {};
  };
  void scanCollect(Field field, std::string_view value, PatternHits& hits);
  // Pattern hits a caller cached from scanCollect() since the last adopt():
  // folds them into the verdict, conditions applied afresh.
  void acceptHits(const uint32_t* index, std::size_t n);
  // Whether any rule is written on `field` (scanning it can match).
  bool scans(Field field) const { return set_ && set_->hasField(field); }
  // Increments at every adopt(): hits cached under an older generation name
  // another rule set's indices.
  uint32_t generation() const { return cache_generation_; }

  // The verdict since begin().
  const RuleVerdict& verdict() const { return verdict_; }
  const Rule* allowedBy() const { return verdict_.allowed_by; }
  std::size_t alertCount() const { return verdict_.keptAlerts(); }
  const Rule& alert(std::size_t i) const { return *verdict_.alerts[i]; }
  const RuleScore& score() const { return verdict_.score; }
  // Every rule hit since begin(), alert/score/allow alike (for observers).
  std::size_t hitCount() const { return hits_n_; }
  const Rule& hit(std::size_t i) const { return set_->rule(hits_[i]); }

  // Lifetime counters, indexed like ruleSet()->rules(); carried over by rule
  // id across adopt() so a reload does not reset them.
  const std::vector<uint64_t>& ruleHits() const { return rule_hits_; }
  uint64_t scanErrors() const { return scan_errors_; }
  // Values served from the scan cache, and values scanned by Hyperscan.
  uint64_t scanCacheHits() const { return cache_hits_; }
  uint64_t scanCacheMisses() const { return cache_misses_; }

  // The scan cache: which rules' patterns matched each recently scanned
  // value. DNS names repeat heavily (the reason resolvers cache), and a
  // repeated name then costs a hash and a compare instead of a Hyperscan
  // scan. Exact, never approximate: the entry keeps the value's bytes and is
  // used only when they are equal; it holds the pattern hits before the
  // rules' conditions (type, direction, port), which are applied to every
  // packet afresh. Two-way set-associative (a new value replaces the older
  // of its set's two entries) and fixed in size per worker: a flood of
  // unique names (tunnels) only misses, it cannot grow or slow the cache.
  // 65536 entries of 160 bytes (10.5 MB per worker, on huge pages); how the
  // size was chosen is in bench/RESULTS.md. Names never seen before always
  // miss.
  static constexpr std::size_t kScanCacheSlots = 65536;
  static constexpr std::size_t kScanCacheMaxValue = 120;  // longer values are always scanned
  static constexpr std::size_t kScanCacheMaxHits = 6;     // more hits: not cached

 private:
  struct ScanCacheEntry {
    uint64_t hash = 0;
    uint32_t generation = 0;  // 0: empty; adopt() starts a new generation
    uint8_t field = 0;
    uint8_t length = 0;
    uint8_t hit_count = 0;
    uint32_t hits[kScanCacheMaxHits] = {};
    char value[kScanCacheMaxValue] = {};
  };

  static int onHsMatch(unsigned int id, unsigned long long from, unsigned long long to,
                       unsigned int flags, void* ctx);
  // A pattern match of rule `index` ending at `end` of value_.
  void record(uint32_t index, std::size_t end);
  // Rule `index`'s pattern matched the current value: apply its conditions
  // and fold it into the verdict.
  void accept(uint32_t index);

  RuleSetPtr set_;
  hs_scratch* scratch_ = nullptr;
  MatchContext ctx_;
  std::string_view value_;  // being scanned, for literal anchors
  // Hit buffers sized to the rule count at adopt(): with SINGLEMATCH and the
  // per-name dedup below, no name can produce more hits than rules.
  std::vector<uint32_t> hits_;
  std::vector<uint32_t> seen_;  // per rule: epoch of the name it last hit
  std::size_t hits_n_ = 0;
  uint32_t epoch_ = 0;
  RuleVerdict verdict_;
  // Runs Hyperscan on value_ (set by the caller); false on a scan error.
  bool hsScan(const hs_database* db);
  PatternHits* collect_ = nullptr;  // scanCollect's output while it scans
  std::vector<uint64_t> rule_hits_;
  uint64_t scan_errors_ = 0;

  std::size_t scan_cache_slots_ = 0;      // a power of two >= 2 (one set), or 0: no cache
  HugeArray<ScanCacheEntry> scan_cache_;  // allocated at the first adopt
  uint32_t cache_generation_ = 0;
  uint64_t cache_seed_ = 0;  // random at the first adopt: no aiming at one slot
  uint64_t cache_hits_ = 0;
  uint64_t cache_misses_ = 0;
  // While a miss is scanned: the pattern hits, to be stored in the entry.
  bool capturing_ = false;
  bool capture_overflow_ = false;
  uint8_t captured_n_ = 0;
  uint32_t captured_[kScanCacheMaxHits] = {};
};

}  // namespace exfilwatch::rules
