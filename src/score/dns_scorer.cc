// dns_scorer.cc: per-pair DNS features, the score, and the verdict text.
#include "score/dns_scorer.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "common/hash.h"
#include "score/reasons.h"

namespace exfilwatch::score {

namespace {
constexpr uint32_t kDaySeconds = 86400;

// The information of a daily budget in the 24 hours ending `now`, sliding
// like the windows: the previous day weighs what is left of it.
double dayBytesOf(uint32_t rec_day, double day_info, double prev_day_info, uint32_t now) {
  const uint32_t day = now / kDaySeconds;
  const double left = 1.0 - static_cast<double>(now % kDaySeconds) / kDaySeconds;
  if (day <= rec_day) return day_info + (day == rec_day ? prev_day_info * left : prev_day_info);
  if (day == rec_day + 1u) return day_info * left;
  return 0;
}
template <class Record>
double dayBytes(const Record& r, uint32_t now) {
  return dayBytesOf(r.day, r.day_info, r.prev_day_info, now);
}
constexpr uint64_t kKeySeed = 0x6a09e667f3bcc909ULL;  // fixed: replays are reproducible

uint8_t entropyBin(double e) {
  static constexpr double kEdges[7] = {1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5};
  uint8_t b = 0;
  while (b < 7 && e >= kEdges[b]) ++b;
  return b;
}
constexpr double kEntropyUpper[8] = {1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 8.0};

// Saturating histogram bump: when a bin is full every bin halves, keeping
// the shape (the profile is about proportions, not totals).
template <std::size_t N>
void bump(uint8_t (&hist)[N], std::size_t i) {
  if (hist[i] == 255) {
    for (auto& h : hist) h = static_cast<uint8_t>(h >> 1);
  }
  ++hist[i];
}

}  // namespace

bool isRiskyType(uint16_t t) {
  namespace rt = dns::rrtype;
  return t == rt::NULL_ || t == rt::TXT || t == rt::KEY || t == rt::CNAME || t == rt::MX ||
         t == rt::SRV || t == rt::ANY || (t >= 65280 && t <= 65534);
}

DnsScorer::DnsScorer(const DnsScoreConfig& cfg, std::shared_ptr<const NgramModel> model,
                     uint32_t suppress_seconds, const LexicalThresholds& lexical)
    : domains_(std::make_shared<DomainTable>(cfg.domain_memory_bytes, false)),
      cfg_(cfg),
      model_(std::move(model)),
      lexical_(lexical),
      table_(StateTable<DnsPairRecord>::capacityFor(cfg.memory_bytes)),
      seen_(cfg.seen_names_bytes) {
  reasons_.reserve(1024);
  domain_reasons_.reserve(512);
  reconfigure(cfg, model_, suppress_seconds, lexical);
}

void DnsScorer::reconfigure(const DnsScoreConfig& cfg, std::shared_ptr<const NgramModel> model,
                            uint32_t suppress_seconds, const LexicalThresholds& lexical) {
  const uint64_t mem = cfg_.memory_bytes, seen = cfg_.seen_names_bytes,
                 domain_mem = cfg_.domain_memory_bytes;
  cfg_ = cfg;
  cfg_.memory_bytes = mem;  // budgets hold until restart
  cfg_.seen_names_bytes = seen;
  cfg_.domain_memory_bytes = domain_mem;
  for (auto& w : cfg_.windows) w = std::max<uint32_t>(w, 1);
  model_ = std::move(model);
  own_gate_.setInterval(suppress_seconds);
  domain_suppress_seconds_ = suppress_seconds;
  lexical_ = lexical;
  for (int i = 0; i < kWindows; ++i) win_names_[i] = windowName(cfg_.windows[i]);
  clock_ = Clock{};
}

uint64_t DnsScorer::pairKey(const IpAddress& client, std::string_view domain) const {
  // XXH3 over the domain (a byte-at-a-time hash is a dependent multiply per
  // byte of a tunnel's long names), seeded by the client. Fixed seeds:
  // replays stay reproducible.
  const uint64_t h =
      hashing::hashBytes(domain.data(), domain.size(), hashing::mixAddress(kKeySeed, client));
  return h ? h : 1;
}

uint64_t domainKey(std::string_view domain) {
  // The seed of the names' fingerprints (planQuery): one hash for both.
  const uint64_t h = hashing::hashBytes(domain.data(), domain.size(), kKeySeed);
  return h ? h : 1;
}

// A label that can be a top-level domain: letters only (2-24), or punycode.
bool plausibleTld(std::string_view name) {
  // Runs on every message (the aggregation key): one backward pass over the
  // last label, no library calls.
  const std::size_t n = name.size();
  std::size_t i = n;
  bool letters = true;
  while (i > 0 && name[i - 1] != '.') {
    --i;
    letters &= static_cast<unsigned char>(name[i] - 'a') < 26;
  }
  const std::size_t len = n - i;
  if (len > 4 && name[i] == 'x' && name[i + 1] == 'n' && name[i + 2] == '-' && name[i + 3] == '-') {
    return true;
  }
  return letters && len >= 2 && len <= 24;
}

namespace {
// The domain a query is aggregated under, and the prefix left of it.
void splitName(std::string_view raw, std::string_view lower, std::string_view registered,
               std::string_view& domain, std::string_view& prefix) {
  if (isServerDomain(registered)) {
    domain = registered;  // the engine's "@server": the whole name is payload
    prefix = raw;
  } else if (!registered.empty() && registered.size() < lower.size() &&
             lower[lower.size() - registered.size() - 1] == '.') {
    domain = registered;
    prefix = raw.substr(0, raw.size() - registered.size() - 1);
  } else {
    // The registered domain itself, or no registered domain (single label,
    // public suffix): the whole name is the domain, nothing is sent in it.
    domain = lower.substr(0, std::min<std::size_t>(lower.size(), 255));
    prefix = {};
  }
}
}  // namespace

DnsScorer::QueryPlan DnsScorer::planQuery(const PacketContext& pkt, const dns::DnsMessage& msg,
                                          std::string_view registered,
                                          const dns::Question* question) {
  QueryPlan plan;
  if (!cfg_.enabled || (question == nullptr && msg.questions.empty())) return plan;
  const dns::Question& q = question ? *question : msg.questions.front();
  const std::string_view raw = msg.raw(q.name);
  const std::string_view lower = msg.lower(q.name);
  // A name without a real TLD (dnscat2's "dnscat.<hex>..." straight to its
  // server) comes as "@server" (the engine's aggregation key): the whole
  // name is payload then.
  splitName(raw, lower, registered, plan.domain, plan.prefix);
  plan.key = pairKey(pkt.src, plan.domain);
  table_.prefetch(plan.key);
  // The name's fingerprint under its domain, from the raw prefix: case
  // carries bits.
  uint64_t fp = hashing::hashBytes(plan.domain.data(), plan.domain.size(), kKeySeed);
  plan.domain_key = fp ? fp : 1;
  plan.fingerprint = hashing::hashBytes(plan.prefix.data(), plan.prefix.size(), fp ^ 0x2e);
  if (!plan.prefix.empty()) seen_.prefetch(plan.fingerprint);
  return plan;
}

const DnsVerdict* DnsScorer::observeQuery(const PacketContext& pkt, const dns::DnsMessage& msg,
                                          std::string_view registered, const RuleHits& hits,
                                          const QueryPlan* given, const dns::Question* question) {
  if (!cfg_.enabled || (question == nullptr && msg.questions.empty())) return nullptr;
  const dns::Question& q = question ? *question : msg.questions.front();
  if (!q.name.valid && q.name.length == 0) return nullptr;
  ++stats_.queries;
  if (hits.allowed) {
    ++stats_.allowed;
    return nullptr;  // an allow rule: no state, no verdict
  }
  const std::string_view raw = msg.raw(q.name);
  const std::string_view lower = msg.lower(q.name);
  const QueryPlan plan = given ? *given : planQuery(pkt, msg, registered, &q);
  const std::string_view domain = plan.domain, prefix = plan.prefix;
  const uint32_t now = static_cast<uint32_t>(pkt.ts.sec);

  // The pair's record is a cache miss (a table of tens of megabytes). Its
  // load starts first; the name's own work below, which needs no record
  // (is it new, its lexical features and model bits), overlaps it.
  table_.prefetchFirst(plan.key);

  // A name is new information only the first time it is seen under its
  // domain, from any client: antivirus and blocklist look-ups repeat the
  // same random-looking names across hosts, a tunnel never does.
  const std::string_view lprefix =
      prefix.empty() ? std::string_view{} : lower.substr(0, prefix.size());
  const bool novel = !prefix.empty() && !seen_.testAndSet(plan.fingerprint);
  LexicalFeatures lf{};
  PrefixBits bits{};
  uint32_t longest = 0;  // longest label of the prefix
  if (novel) {
    lf = lexicalFeatures(raw, domain);
    bits = prefixBits(model_.get(), prefix);
    uint32_t cur = 0;
    for (char c : prefix) {
      cur = (c == '.') ? 0 : cur + 1;
      longest = std::max(longest, cur);
    }
  }

  bool inserted = false;
  DnsPairRecord& r = table_.findOrInsert(plan.key, inserted);
  if (inserted) {
    r.first_seen = now;
    const std::size_t n = std::min(raw.size(), sizeof r.first_name);
    std::copy_n(raw.data(), n, r.first_name);
    r.first_len = static_cast<uint8_t>(n);
    if (raw.size() > n) r.flags |= 1;
  }
  r.last_seen = now;
  satAdd(r.queries_total, 1);

  uint32_t info_bits = 0;
  bool lexical_hit = false;
  if (novel) {
    ++stats_.new_names;
    r.hll.add(hashing::hashBytes(lprefix.data(), lprefix.size(), 0x9e3779b97f4a7c15ULL));
    info_bits = static_cast<uint32_t>(std::lround(bits.info_bits));
    satAdd(r.info_total_bits, info_bits);
    const auto day = static_cast<uint16_t>(now / kDaySeconds);
    if (day > r.day) {  // time going back counts in the current day
      r.prev_day_info = day == r.day + 1 ? r.day_info : 0;
      r.day_info = 0;
      r.day = day;
    }
    satAdd(r.day_info, (info_bits + 4) / 8);
    // Tunnel-shaped: the entropy/binary rule of lexical.h, or a long label
    // (longer than any benign family we measured) the benign model finds
    // improbable. Hex payload (entropy <= 4) needs the second.
    if (judgeLexical(lf, lexical_) != LexicalVerdict::Benign) {
      lexical_hit = true;
    } else if (longest >= cfg_.model_min_label &&
               bits.model_bits_per_char >= cfg_.model_bits_per_char) {
      lexical_hit = true;
    }
    bump(r.entropy_hist, entropyBin(lf.entropy));
    const auto eq = static_cast<uint8_t>(std::min(lf.entropy * 30.0, 255.0));
    r.entropy_max_q = std::max(r.entropy_max_q, eq);
    r.max_label =
        static_cast<uint8_t>(std::min<uint32_t>(std::max<uint32_t>(r.max_label, longest), 255));
    bump(r.label_hist, std::min<uint32_t>(longest / 16, 3));
  }
  const bool risky = isRiskyType(q.type);
  const auto rule_centi = static_cast<uint64_t>(std::clamp(hits.score_weight, 0.0, 600.0) * 100.0);
  const Clock& clk = clockAt(now);
  for (int i = 0; i < kWindows; ++i) {
    auto& w = r.win[i];
    w.advanceTo(clk.bucket[i]);
    satAdd(w.cur.queries, 1);
    if (novel) satAdd(w.cur.new_names, 1);
    satAdd(w.cur.info_bits, info_bits);
    if (risky) satAdd(w.cur.risky_types, 1);
    if (lexical_hit) satAdd(w.cur.lexical_hits, 1);
    // Rule weight, like information, counts once per distinct name: a
    // score rule on a name asked again and again is not new evidence.
    if (novel) satAdd(w.cur.rule_centi, rule_centi);
  }

  // The domain view hears of a client's new names once the client uses the
  // domain repeatedly (min_new_names in the longest window), as its verdict
  // requires per client: single-use names and floods of random names,
  // spread over pairs, never reach its table.
  domain_pending_ = false;
  const auto& lw = r.win[kWindows - 1];
  const bool to_domain = novel && cfg_.domain_enabled &&
                         uint32_t{lw.cur.new_names} + lw.prev.new_names >= cfg_.min_new_names;
  if (to_domain) {
    domain_pending_ = observeDomain(plan.domain_key, pkt.src, clk, info_bits, true, raw, domain);
  }
  const DnsVerdict* verdict = judge(r, plan.key, clk, raw, domain);
  if (shared_ != nullptr) {
    // Noted for the flush: shared pairs, pairs at the floor (judge() left
    // the score in scratch_), and new names the domain view took (its
    // floor is checked at the flush). The rest never costs the flush.
    if (!(r.flags & kDirty) &&
        ((r.flags & kShared) || to_domain || scratch_.score >= shared_->shareFloor())) {
      r.flags |= kDirty;
      shared_->touched(plan.key, pkt.src, pkt.dst, domain, now);
    }
    if (novel) {
      shared_->novelName(plan.key, plan.fingerprint, now, info_bits, lexical_hit,
                         static_cast<uint32_t>(rule_centi));
    }
  }
  return verdict;
}

const DnsVerdict* DnsScorer::judge(DnsPairRecord& r, uint64_t key, const Clock& clk,
                                   std::string_view last_name, std::string_view domain) {
  const uint32_t now = clk.now;
  // A member reused for every query, not a local: compute() writes every
  // field, so zeroing a fresh one per query would be wasted work.
  DnsFeatures& f = scratch_;
  compute(r, clk, f, false);
  if (f.score < cfg_.alert_score) return nullptr;
  if (!repeatedUse(f)) {
    ++stats_.single_use;
    return nullptr;
  }
  // One alert per pair per interval, whichever detector raised it.
  const Admission admission = gate_->admit(key, now);
  if (admission == Admission::Suppressed) {
    ++stats_.suppressed;
    return nullptr;
  }
  satAdd(r.alerts, 1);
  ++stats_.verdicts;
  compute(r, clk, f, true);
  formatReasons(r, f, last_name, now);
  verdict_.update = admission == Admission::Update;
  verdict_.score = f.score;
  verdict_.alerts = r.alerts;
  verdict_.reasons = reasons_;
  verdict_.domain = domain;
  return &verdict_;
}

const DnsVerdict* DnsScorer::reevaluate(uint64_t key, std::string_view domain) {
  DnsPairRecord* r = table_.find(key);
  if (r == nullptr) return nullptr;
  // At the pair's own last time: what a single sensor judged when it last
  // saw the pair, now with the other sensors' counts added.
  Clock clk;
  clk.set(r->last_seen, cfg_.windows);
  return judge(*r, key, clk, {}, domain);
}

DnsPairRecord* DnsScorer::takeDirty(uint64_t key) {
  DnsPairRecord* r = table_.find(key);
  if (r != nullptr) r->flags &= static_cast<uint8_t>(~kDirty);
  return r;
}

namespace {
uint32_t downstreamBits(SeenSet& seen, const NgramModel* model, const dns::DnsMessage& msg,
                        std::string_view domain) {
  // What the answers carry that was never seen under the domain: TXT data,
  // and the part left of the domain of CNAME/MX/NS/PTR/SRV targets under
  // it (dnscat2 answers with hex names under its own domain). A few
  // answers per message at most: a tunnel's answers are few and large.
  constexpr int kMaxPieces = 4;
  const uint64_t seed = hashing::hashBytes(domain.data(), domain.size(), kKeySeed) ^ 0xd0;
  double bits = 0;
  int pieces = 0;
  auto count = [&](std::string_view piece) {
    if (piece.empty() || pieces == kMaxPieces) return;
    ++pieces;
    if (seen.testAndSet(hashing::hashBytes(piece.data(), piece.size(), seed))) return;
    bits += prefixBits(model, piece).info_bits;
  };
  const auto& segments = msg.txtSegments();
  for (const auto& rr : msg.answers) {
    if (pieces == kMaxPieces) break;
    if (rr.kind == dns::RdataKind::Txt) {
      for (uint32_t i = 0; i < rr.txt_count && rr.txt_first + i < segments.size(); ++i) {
        count(msg.txt(segments[rr.txt_first + i]));
      }
    } else if (rr.target.valid && !isServerDomain(domain)) {
      const std::string_view t = msg.lower(rr.target);
      if (t.size() > domain.size() && t[t.size() - domain.size() - 1] == '.' &&
          t.substr(t.size() - domain.size()) == domain) {
        count(msg.raw(rr.target).substr(0, t.size() - domain.size() - 1));
      }
    } else if (rr.target.valid) {
      count(msg.raw(rr.target));  // "@server": the whole target is payload
    }
  }
  return static_cast<uint32_t>(std::lround(bits));
}
}  // namespace

std::string_view ServerDomain::set(const IpAddress& server) {
  text[0] = '@';
  text[1] = '\0';
  if (server.family) {
    inet_ntop(server.family == 6 ? AF_INET6 : AF_INET, server.bytes, text + 1, sizeof text - 1);
  }
  return {text, std::strlen(text)};
}

void DnsScorer::observeResponse(const PacketContext& pkt, const dns::DnsMessage& msg,
                                std::string_view registered) {
  if (!cfg_.enabled || msg.questions.empty()) return;
  const dns::Question& q = msg.questions.front();
  std::string_view domain, prefix;
  splitName(msg.raw(q.name), msg.lower(q.name), registered, domain, prefix);
  DnsPairRecord* r = table_.find(pairKey(pkt.dst, domain));
  if (r == nullptr) return;
  ++stats_.responses;
  uint64_t answer = 0;
  for (const auto& rr : msg.answers) answer += rr.rdlength;
  const uint32_t down_bits = downstreamBits(seen_, model_.get(), msg, domain);
  if (down_bits) {
    satAdd(r->info_total_bits, down_bits);
    const auto day = static_cast<uint16_t>(pkt.ts.sec / kDaySeconds);
    if (day > r->day) {
      r->prev_day_info = day == r->day + 1 ? r->day_info : 0;
      r->day_info = 0;
      r->day = day;
    }
    satAdd(r->day_info, (down_bits + 4) / 8);
  }
  const Clock& clk = clockAt(static_cast<uint32_t>(pkt.ts.sec));
  for (int i = 0; i < kWindows; ++i) {
    auto& w = r->win[i];
    w.advanceTo(clk.bucket[i]);
    satAdd(w.cur.answer_bytes, answer);
    satAdd(w.cur.info_bits, down_bits);
    if ((msg.rcode & 0xf) == dns::rcode::NXDOMAIN) satAdd(w.cur.nxdomain, 1);
  }
  if (down_bits && cfg_.domain_enabled)
    observeDomain(domainKey(domain), pkt.dst, clk, down_bits, false, {}, domain);
  // Answers of a pair not shared wait for its next query's score.
  if (shared_ != nullptr && (r->flags & kShared) && !(r->flags & kDirty)) {
    r->flags |= kDirty;
    shared_->touched(r->key, pkt.dst, pkt.src, domain, clk.now);
  }
}

// Writes every field of `f` (observeQuery reuses one DnsFeatures).
void DnsScorer::compute(const DnsPairRecord& r, const Clock& clk, DnsFeatures& f, bool full) const {
  // The score reads information in every window and the other counters in
  // the middle one (w[1]) only; the rest is for reasons and explain.
  constexpr int kScoreWindow = 1;
  for (int i = 0; i < kWindows; ++i) {
    const bool all = full || i == kScoreWindow;
    const auto& w = r.win[i];
    // A window whose current bucket is older than one width holds nothing.
    const uint32_t b = clk.bucket[i];
    double pw = 0.0, cw = 0.0;
    if (b <= w.bucket) {
      pw = w.prevWeightAt(b, clk.elapsed[i]);
      cw = 1.0;
    } else if (b == w.bucket + 1) {
      // cur has become the previous bucket
      pw = 1.0 - clk.elapsed[i];
      cw = 0.0;
      auto& o = f.w[i];
      const auto& c = w.cur;
      o.info_bytes = c.info_bits / 8.0 * pw;
      if (!all) {
        o = {o.info_bytes};
        o.unique = c.new_names * pw;
        continue;
      }
      o.answer_bytes = c.answer_bytes * pw;
      o.queries = c.queries * pw;
      o.unique = c.new_names * pw;
      o.nxdomain = c.nxdomain * pw;
      o.risky = c.risky_types * pw;
      o.lexical = c.lexical_hits * pw;
      o.rule_weight = c.rule_centi / 100.0 * pw;
      continue;
    }
    auto& o = f.w[i];
    const auto& c = w.cur;
    const auto& p = w.prev;
    o.info_bytes = (c.info_bits * cw + p.info_bits * pw) / 8.0;
    if (!all) {
      o = {o.info_bytes};
      o.unique = c.new_names * cw + p.new_names * pw;
      continue;
    }
    o.answer_bytes = c.answer_bytes * cw + p.answer_bytes * pw;
    o.queries = c.queries * cw + p.queries * pw;
    o.unique = c.new_names * cw + p.new_names * pw;
    o.nxdomain = c.nxdomain * cw + p.nxdomain * pw;
    o.risky = c.risky_types * cw + p.risky_types * pw;
    o.lexical = c.lexical_hits * cw + p.lexical_hits * pw;
    o.rule_weight = (c.rule_centi * cw + p.rule_centi * pw) / 100.0;
  }
  f.info_day_bytes = dayBytes(r, clk.now);
  if (shared_ != nullptr && (r.flags & kShared)) {
    if (const SharedPairView* v = shared_->view(r.key)) {
      addShared(*v, clk, f);
      // Others' part of the budget may be negative (names taken back).
      f.info_day_bytes =
          std::max(0.0, f.info_day_bytes + dayBytesOf(v->day, static_cast<double>(v->day_cur),
                                                      static_cast<double>(v->day_prev), clk.now));
    }
  }
  // Profiles only for reasons and explain: the score does not use them, and
  // the histograms and HLL sit in the record's last cache line, which a
  // repeated query does not otherwise touch.
  f.distinct = full ? r.hll.estimate() : 0.0;
  if (full && shared_ != nullptr && (r.flags & kShared)) {
    if (const SharedPairView* v = shared_->view(r.key))
      f.distinct = std::max(f.distinct, v->distinct);
  }
  f.max_label = r.max_label;
  f.queries_total = r.queries_total;
  f.info_total_bytes = r.info_total_bits / 8.0;
  f.entropy_max = r.entropy_max_q / 30.0;
  f.entropy_p90 = 0.0;
  uint32_t total = 0;
  if (full) {
    for (uint8_t h : r.entropy_hist) total += h;
  }
  if (total) {
    uint32_t acc = 0;
    for (int i = 0; i < 8; ++i) {
      acc += r.entropy_hist[i];
      if (acc * 10 >= total * 9) {
        f.entropy_p90 = std::min(kEntropyUpper[i], f.entropy_max);
        break;
      }
    }
  }
  // The score: weighted ratios of each feature to its threshold, each capped
  // at 2 so that one runaway feature reads as "twice the threshold".
  auto ratio = [](double v, double t) { return t > 0 ? std::min(v / t, 2.0) : 0.0; };
  double info = 0.0;
  for (int i = 0; i < kWindows; ++i)
    info = std::max(info, ratio(f.w[i].info_bytes, cfg_.info_bytes[i]));
  info = std::max(info, ratio(f.info_day_bytes, cfg_.daily_info_bytes));
  const auto& m = f.w[kScoreWindow];
  f.c_info = cfg_.weight_info * info;
  f.c_unique = cfg_.weight_unique * ratio(m.unique, cfg_.unique_subdomains);
  f.c_answer = cfg_.weight_answer * ratio(m.answer_bytes, cfg_.answer_bytes);
  f.c_lexical = cfg_.weight_lexical * ratio(m.lexical, cfg_.lexical_hits);
  f.c_types = m.queries >= cfg_.risky_types_min_queries && m.queries > 0
                  ? cfg_.weight_types * (m.risky / m.queries)
                  : 0.0;
  // Score rules are evidence, not verdicts (alert rules alert on their own):
  // their weight over the window counts up to 1, times weight_rules.
  f.c_rules = cfg_.weight_rules * std::min(m.rule_weight, 1.0);
  f.score = f.c_info + f.c_unique + f.c_answer + f.c_lexical + f.c_types + f.c_rules;
}

// Adds the other sensors' counts (SharedStateHook) to the local window
// values, weighted as the local buckets are.
void DnsScorer::addShared(const SharedPairView& v, const Clock& clk, DnsFeatures& f) const {
  for (int i = 0; i < kWindows; ++i) {
    const auto add = weighWindow(v.w[i], clk.bucket[i], clk.elapsed[i]);
    auto& o = f.w[i];
    auto sum = [](double& x, double d) { x = std::max(0.0, x + d); };
    sum(o.info_bytes, add[kSharedInfoBits] / 8.0);
    sum(o.answer_bytes, add[kSharedAnswerBytes]);
    sum(o.queries, add[kSharedQueries]);
    sum(o.unique, add[kSharedNewNames]);
    sum(o.nxdomain, add[kSharedNxdomain]);
    sum(o.risky, add[kSharedRisky]);
    sum(o.lexical, add[kSharedLexical]);
    sum(o.rule_weight, add[kSharedRuleCenti] / 100.0);
  }
}

double DnsScorer::scoreOf(uint64_t key, uint32_t now) const {
  const DnsPairRecord* r = table_.peek(key);
  if (r == nullptr) return 0.0;
  DnsFeatures f;
  Clock clk;
  clk.set(now, cfg_.windows);
  compute(*r, clk, f, false);
  return f.score;
}

bool DnsScorer::repeatedUse(const DnsFeatures& f) const {
  double most = 0;
  for (const auto& w : f.w) most = std::max(most, w.unique);
  // Sliding windows weigh the previous bucket: round so that 2.6 counts 3.
  return std::lround(most) >= static_cast<long>(cfg_.min_new_names);
}

bool DnsScorer::features(uint64_t key, uint32_t now, DnsFeatures& out) const {
  const DnsPairRecord* r = table_.peek(key);
  if (r == nullptr) return false;
  out = DnsFeatures{};
  Clock clk;
  clk.set(now, cfg_.windows);
  compute(*r, clk, out, true);
  return true;
}

void DnsScorer::formatReasons(const DnsPairRecord& r, const DnsFeatures& f,
                              std::string_view last_name, uint32_t now) {
  std::string& o = reasons_;
  o.clear();
  appendKv(o, "score", "", f.score, 2);
  for (int i = 0; i < kWindows; ++i)
    appendKv(o, "info_bytes_", win_names_[i], f.w[i].info_bytes, 0);
  appendKv(o, "info_bytes_24h", "", f.info_day_bytes, 0);
  appendKv(o, "unique_subdomains_", win_names_[1], f.w[1].unique, 0);
  appendKv(o, "distinct_subdomains", "", f.distinct, 0);
  appendKv(o, "queries_", win_names_[0], f.w[0].queries, 0);
  appendKv(o, "queries_", win_names_[1], f.w[1].queries, 0);
  appendKv(o, "queries_total", "", f.queries_total, 0);
  appendKv(o, "nxdomain_ratio_", win_names_[1],
           f.w[1].queries > 0 ? std::min(1.0, f.w[1].nxdomain / f.w[1].queries) : 0.0, 2);
  appendKv(o, "answer_bytes_", win_names_[1], f.w[1].answer_bytes, 0);
  appendKv(o, "risky_types_", win_names_[1], f.w[1].risky, 0);
  appendKv(o, "lexical_hits_", win_names_[1], f.w[1].lexical, 0);
  if (f.c_rules > 0) appendKv(o, "rule_weight_", win_names_[1], f.c_rules, 2);
  appendKv(o, "entropy_p90", "", f.entropy_p90, 1);
  appendKv(o, "max_label", "", f.max_label, 0);
  appendKv(o, "duration_s", "", now >= r.first_seen ? now - r.first_seen : 0, 0);
  appendKv(o, "alerts", "", r.alerts, 0);
  o += "first_name=";
  appendSafeName(o, {r.first_name, r.first_len}, sizeof r.first_name);
  if (r.flags & 1) o += "...";
  o += " last_name=";
  appendSafeName(o, last_name);
}

// ---- the domain view ----

bool DnsScorer::observeDomain(uint64_t domain_key, const IpAddress& client, const Clock& clk,
                              uint32_t info_bits, bool novel, std::string_view last_name,
                              std::string_view domain) {
  const DomainTable::Locked t = domains_->lock(domain_key);
  DnsDomainRecord& d = addToDomain(*t, domain_key, client, clk, info_bits, novel);
  return novel && judgeDomain(d, clk, last_name, domain) != nullptr;
}

DnsDomainRecord& DnsScorer::addToDomain(StateTable<DnsDomainRecord>& table, uint64_t domain_key,
                                        const IpAddress& client, const Clock& clk,
                                        uint32_t info_bits, bool novel) {
  bool inserted = false;
  DnsDomainRecord& d = table.findOrInsert(domain_key, inserted);
  const uint32_t now = clk.now;
  if (inserted) d.first_seen = now;
  d.last_seen = now;
  for (int i = 0; i < kWindows; ++i) {
    auto& w = d.win[i];
    w.advanceTo(clk.bucket[i]);
    satAdd(w.cur.info_bits, info_bits);
    if (novel) satAdd(w.cur.new_names, 1);
  }
  const auto day = static_cast<uint16_t>(now / kDaySeconds);
  if (day > d.day) {
    d.prev_day_info = day == d.day + 1 ? d.day_info : 0;
    d.day_info = 0;
    d.day = day;
  }
  satAdd(d.day_info, (info_bits + 4) / 8);
  // Clients per longest-window bucket, kept as the windows keep counts.
  const uint32_t cb = clk.bucket[kWindows - 1];
  if (cb > d.clients_bucket) {
    d.clients[1] = cb == d.clients_bucket + 1 ? d.clients[0] : Hll64{};
    d.clients[0] = Hll64{};
    d.clients_bucket = cb;
  }
  if (novel) d.clients[0].add(hashing::mixAddress(0x3c6ef372fe94f82bULL, client));
  return d;
}

void DnsScorer::computeDomain(const DnsDomainRecord& r, const Clock& clk, DomainFeatures& f,
                              bool all) const {
  f = DomainFeatures{};
  const SharedDomainView* v = shared_ != nullptr ? shared_->domainView(r.key) : nullptr;
  for (int i = 0; i < kWindows; ++i) {
    const auto& w = r.win[i];
    const uint32_t b = clk.bucket[i];
    double cw = 0, pw = 0;
    if (b <= w.bucket) {
      cw = 1.0;
      pw = w.prevWeightAt(b, clk.elapsed[i]);
      f.info_bytes[i] = (w.cur.info_bits * cw + w.prev.info_bits * pw) / 8.0;
      f.new_names[i] = w.cur.new_names * cw + w.prev.new_names * pw;
    } else if (b == w.bucket + 1) {
      pw = 1.0 - clk.elapsed[i];
      f.info_bytes[i] = w.cur.info_bits / 8.0 * pw;
      f.new_names[i] = w.cur.new_names * pw;
    }
    if (v != nullptr) {
      // The fleet's totals hold this sensor's part: the larger one counts.
      const auto fleet = weighWindow(v->w[i], b, clk.elapsed[i]);
      f.info_bytes[i] = std::max(f.info_bytes[i], fleet[kDomainInfoBits] / 8.0);
      f.new_names[i] = std::max(f.new_names[i], fleet[kDomainNewNames]);
    }
  }
  f.info_day_bytes = dayBytes(r, clk.now);
  auto ratio = [](double x, double t) { return t > 0 ? x / t : 0.0; };
  for (int i = 0; i < kWindows; ++i)
    f.score = std::max(f.score, ratio(f.info_bytes[i], cfg_.domain_info_bytes[i]));
  f.score = std::max(f.score, ratio(f.info_day_bytes, cfg_.domain_daily_info_bytes));
  // The clients' estimate (64 registers merged and summed) only for a
  // domain over its threshold: every new name is judged, few are that.
  if (f.score < 1.0 && !all) return;
  const uint32_t cb = clk.bucket[kWindows - 1];
  if (cb <= r.clients_bucket + 1) {
    Hll64 u = cb == r.clients_bucket ? r.clients[0] : Hll64{};
    const Hll64& prev = cb == r.clients_bucket ? r.clients[1] : r.clients[0];
    for (unsigned i = 0; i < 64; ++i) u.set(i, std::max(u.get(i), prev.get(i)));
    f.clients = std::round(u.estimate());
  }
  if (v != nullptr) f.clients = std::max(f.clients, std::round(v->clients));
}

const DnsVerdict* DnsScorer::judgeDomain(DnsDomainRecord& r, const Clock& clk,
                                         std::string_view last_name, std::string_view domain) {
  DomainFeatures f;
  computeDomain(r, clk, f, false);
  if (f.score < 1.0 || f.clients < cfg_.domain_min_clients) return nullptr;
  // Repeated use, as a pair's: min_new_names new names in a window, and as
  // many per client over the longest (many hosts each asking one random-ID
  // cloud name are not a channel; five hosts each sending 150 are).
  double most = 0;
  for (double n : f.new_names) most = std::max(most, n);
  if (std::lround(most) < static_cast<long>(cfg_.min_new_names) ||
      f.new_names[kWindows - 1] + 0.5 < f.clients * cfg_.min_new_names) {
    return nullptr;
  }
  const uint32_t now = clk.now;
  // One domain-view alert per domain per interval, decided on the record
  // under its stripe's lock: workers sharing the table raise it once
  // between them (a recycled record may alert again, never lose one).
  if (r.last_alert != 0 && domain_suppress_seconds_ != 0 &&
      int64_t{now} - int64_t{r.last_alert} < domain_suppress_seconds_) {
    ++stats_.domain_suppressed;
    return nullptr;
  }
  const bool first = r.last_alert == 0;
  r.last_alert = now ? now : 1;
  satAdd(r.alerts, 1);
  ++stats_.domain_verdicts;
  std::string& o = domain_reasons_;
  o.clear();
  appendKv(o, "domain_score", "", f.score, 2);
  appendKv(o, "clients", "", f.clients, 0);
  for (int i = 0; i < kWindows; ++i)
    appendKv(o, "domain_info_bytes_", win_names_[i], f.info_bytes[i], 0);
  appendKv(o, "domain_info_bytes_24h", "", f.info_day_bytes, 0);
  for (int i = 0; i < kWindows; ++i)
    appendKv(o, "domain_unique_subdomains_", win_names_[i], f.new_names[i], 0);
  appendKv(o, "duration_s", "", now >= r.first_seen ? now - r.first_seen : 0, 0);
  appendKv(o, "alerts", "", r.alerts, 0);
  o += "last_name=";
  appendSafeName(o, last_name);
  domain_verdict_.update = !first;
  domain_verdict_.score = f.score;
  domain_verdict_.alerts = r.alerts;
  domain_verdict_.reasons = domain_reasons_;
  domain_verdict_.domain = domain;
  return &domain_verdict_;
}

double DnsScorer::domainScoreOf(std::string_view domain, uint32_t now) const {
  if (!cfg_.domain_enabled) return 0.0;
  const uint64_t key = domainKey(domain);
  const DomainTable::Locked t = domains_->lock(key);
  const DnsDomainRecord* r = t->peek(key);
  if (r == nullptr) return 0.0;
  Clock clk;
  clk.set(now, cfg_.windows);
  DomainFeatures f;
  computeDomain(*r, clk, f, true);
  // Many hosts each with a few names (internal zones: cluster.local,
  // ec2.internal) are no channel: not worth sharing every pair of them.
  if (f.new_names[kWindows - 1] + 0.5 < f.clients * cfg_.min_new_names) return 0.0;
  return f.score;
}

const DnsVerdict* DnsScorer::reevaluateDomain(std::string_view domain) {
  if (!cfg_.enabled || !cfg_.domain_enabled) return nullptr;
  const uint64_t key = domainKey(domain);
  const DomainTable::Locked t = domains_->lock(key);
  DnsDomainRecord* r = t->find(key);
  if (r == nullptr) return nullptr;
  Clock clk;
  clk.set(r->last_seen, cfg_.windows);
  return judgeDomain(*r, clk, {}, domain);
}

}  // namespace exfilwatch::score
