// pair_sync.cc: deltas out, fleet totals back (see pair_sync.h).
#include "share/pair_sync.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "fleet/cluster_slots.h"
#include "share/script_util.h"

namespace exfilwatch::share {

namespace {

// One call per (client, domain): add this sensor's deltas to the window
// buckets of the pair and of the domain, take back the information of names
// another sensor had already sent (the fleet-wide "seen" test: a set per
// domain and longest-window bucket), and return the pair's totals, its
// distinct names, and the domain's window totals (information, queries, new
// names) and clients that sent new names, and the pair's daily budget
// (bytes per UTC day, today and yesterday). Every key written gets its
// expiry here.
// Keys: KEYS[1] .. ':p:<client>:<window>:<bucket>' (hash), ':d:<window>:<bucket>'
// (hash), ':s:<bucket>' (set), ':h:<client>' and ':c' (HyperLogLog),
// ':y:<client>:<day>' (integer).
constexpr const char* kPairScript = R"lua(
local base = KEYS[1]
local client = ARGV[1]
local nwin = tonumber(ARGV[2])
local slack = tonumber(ARGV[3])
local day = tonumber(ARGV[4])
local F = {'i', 'a', 'q', 'u', 'n', 'r', 'l', 'w'}
local DF = {'i', 'q', 'u'}
local DOM = {1, nil, 2, 3}  -- F's index -> DF's index (the domain keeps i, q, u)
-- The script runs alone: each hash is read once, changed here and written
-- back once, instead of one command per field and name. A bucket's hash
-- gets its expiry when it is created: it is read no later than two widths
-- after its bucket began.
local cache = {}
local function hash(k, fields, ttl)
  local e = cache[k]
  if not e then
    local v = redis.call('HMGET', k, unpack(fields))
    e = {f = fields, v = {}, ttl = ttl, dirty = false, new = true}
    for j = 1, #fields do
      if v[j] then e.new = false end
      e.v[j] = tonumber(v[j]) or 0
    end
    cache[k] = e
  end
  return e
end
local function bump(w, b, f, v)
  if v == 0 then return end
  local e = hash(w.pk .. b, F, w.ttl)
  e.v[f] = e.v[f] + v
  e.dirty = true
  local d = DOM[f]
  if d then
    local de = hash(w.dk .. b, DF, w.ttl)
    de.v[d] = de.v[d] + v
    de.dirty = true
  end
end
local yk = base .. ':y:' .. client .. ':'
local ydelta = {[day] = tonumber(ARGV[5]), [day - 1] = tonumber(ARGV[6])}
local p = 7
local wins = {}
local fresh = false
for i = 1, nwin do
  local width = tonumber(ARGV[p])
  local b = tonumber(ARGV[p + 1])
  local w = {width = width, b = b, ttl = 2 * width + slack,
             pk = base .. ':p:' .. client .. ':' .. i .. ':', dk = base .. ':d:' .. i .. ':'}
  for f = 1, 8 do
    local v = tonumber(ARGV[p + 1 + f])
    bump(w, b, f, v)
    if f == 4 and v > 0 then fresh = true end
    bump(w, b - 1, f, tonumber(ARGV[p + 9 + f]))
  end
  p = p + 18
  wins[i] = w
end
local sw = tonumber(ARGV[p])
local nn = tonumber(ARGV[p + 1])
p = p + 2
local sttl = 2 * sw + slack
local hll = base .. ':h:' .. client
-- Names by seen-set bucket; unpack() in chunks (Lua's stack is bounded).
local groups, order = {}, {}
for n = 1, nn do
  local nm = {fp = ARGV[p], t = tonumber(ARGV[p + 1]), bits = tonumber(ARGV[p + 2]),
              lex = tonumber(ARGV[p + 3]), rule = tonumber(ARGV[p + 4])}
  p = p + 5
  local sb = math.floor(nm.t / sw)
  if not groups[sb] then
    groups[sb] = {}
    order[#order + 1] = sb
  end
  local g = groups[sb]
  g[#g + 1] = nm
end
local CHUNK = 500
local unseen = {}
for _, sb in ipairs(order) do
  local g = groups[sb]
  local sk, pk = base .. ':s:' .. sb, base .. ':s:' .. (sb - 1)
  local here = {}
  for c = 1, #g, CHUNK do
    local fps = {}
    for j = c, math.min(c + CHUNK - 1, #g) do fps[#fps + 1] = g[j].fp end
    local inprev = redis.call('SMISMEMBER', pk, unpack(fps))
    local incur = redis.call('SMISMEMBER', sk, unpack(fps))
    redis.call('SADD', sk, unpack(fps))
    for j = 1, #fps do
      local nm = g[c + j - 1]
      if inprev[j] == 1 or incur[j] == 1 or here[nm.fp] then
        for i = 1, nwin do
          local w = wins[i]
          local nb = math.floor(nm.t / w.width)
          bump(w, nb, 1, -nm.bits)
          bump(w, nb, 4, -1)
          bump(w, nb, 7, -nm.lex)
          bump(w, nb, 8, -nm.rule)
        end
        local d = math.floor(nm.t / 86400)
        ydelta[d] = (ydelta[d] or 0) - math.floor((nm.bits + 4) / 8)
      else
        unseen[#unseen + 1] = nm.fp
      end
      here[nm.fp] = true
    end
  end
  redis.call('EXPIRE', sk, sttl)
end
for c = 1, #unseen, CHUNK do
  redis.call('PFADD', hll, unpack(unseen, c, math.min(c + CHUNK - 1, #unseen)))
end
if #unseen > 0 then redis.call('EXPIRE', hll, sttl) end
local out = {}
for i = 1, nwin do
  local w = wins[i]
  out[#out + 1] = hash(w.pk .. w.b, F, w.ttl).v
  out[#out + 1] = hash(w.pk .. (w.b - 1), F, w.ttl).v
end
out[#out + 1] = redis.call('PFCOUNT', hll)
for i = 1, nwin do
  local w = wins[i]
  out[#out + 1] = hash(w.dk .. w.b, DF, w.ttl).v
  out[#out + 1] = hash(w.dk .. (w.b - 1), DF, w.ttl).v
end
for k, e in pairs(cache) do
  if e.dirty then
    local args = {}
    for j = 1, #e.f do
      args[#args + 1] = e.f[j]
      args[#args + 1] = e.v[j]
    end
    redis.call('HSET', k, unpack(args))
    if e.new then redis.call('EXPIRE', k, e.ttl) end
  end
end
local dc = base .. ':c'
if fresh or nn > 0 then
  redis.call('PFADD', dc, client)
  redis.call('EXPIRE', dc, sttl)
end
out[#out + 1] = redis.call('PFCOUNT', dc)
local yttl = 2 * 86400 + slack
local ytotal = {}
for d, v in pairs(ydelta) do
  if v ~= 0 then
    local t = redis.call('INCRBY', yk .. d, v)
    if t == v then redis.call('EXPIRE', yk .. d, yttl) end
    ytotal[d] = t
  end
end
out[#out + 1] = ytotal[day] or tonumber(redis.call('GET', yk .. day) or '0')
out[#out + 1] = ytotal[day - 1] or tonumber(redis.call('GET', yk .. (day - 1)) or '0')
return out
)lua";

// Fleet-wide suppression: the first sensor to claim a pair's alert in an
// interval raises it; the count tells an initial alert from an update.
// Times are packet times, so replays of shards agree as live sensors do.
constexpr const char* kClaimScript = R"lua(
local k = KEYS[1] .. ':a:' .. ARGV[1] .. ':' .. ARGV[2]
local now = tonumber(ARGV[3])
local sup = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local last = redis.call('GET', k)
if last and now < tonumber(last) + sup then
  return {0, tonumber(redis.call('GET', k .. ':n') or '0')}
end
redis.call('SET', k, now, 'EX', ttl)
local n = redis.call('INCR', k .. ':n')
redis.call('EXPIRE', k .. ':n', ttl)
return {1, n}
)lua";

score::SharedCounts countsOf(const score::DnsCounters& c) {
  return {c.info_bits, c.answer_bytes, c.queries,      c.new_names,
          c.nxdomain,  c.risky_types,  c.lexical_hits, c.rule_centi};
}

}  // namespace

bool parsePairReply(const fleet::RedisReply& r, PairTotals& out) {
  constexpr std::size_t kExpected = 4 * score::kWindows + 4;
  if (r.type != fleet::RedisReply::Type::Array || r.elements.size() != kExpected) return false;
  for (int i = 0; i < score::kWindows; ++i) {
    if (!replyCounts(r.elements[2 * i], out.cur[i]) ||
        !replyCounts(r.elements[2 * i + 1], out.prev[i])) {
      return false;
    }
  }
  if (!replyInt(r.elements[2 * score::kWindows], out.distinct)) return false;
  const std::size_t d = 2 * score::kWindows + 1;
  for (int i = 0; i < score::kWindows; ++i) {
    if (!replyCounts(r.elements[d + 2 * i], out.domain_cur[i]) ||
        !replyCounts(r.elements[d + 2 * i + 1], out.domain_prev[i])) {
      return false;
    }
  }
  if (!replyInt(r.elements[kExpected - 3], out.clients) ||
      !replyInt(r.elements[kExpected - 2], out.day_cur) ||
      !replyInt(r.elements[kExpected - 1], out.day_prev)) {
    return false;
  }
  return true;
}

const std::string& pairScript() {
  static const std::string s = kPairScript;
  return s;
}
const std::string& pairScriptSha() {
  static const std::string s = sha1Hex(pairScript());
  return s;
}
const std::string& claimScript() {
  static const std::string s = kClaimScript;
  return s;
}
const std::string& claimScriptSha() {
  static const std::string s = sha1Hex(claimScript());
  return s;
}

PairSync::PairSync(const score::DnsScoreConfig& cfg, ShareOptions options)
    : windows_(cfg.windows), alert_score_(cfg.alert_score), opt_(std::move(options)) {
  dirty_.reserve(std::min<std::size_t>(opt_.max_dirty, 4096));
  names_.reserve(std::min<std::size_t>(opt_.max_names, 4096));
}

std::string PairSync::baseKey(std::string_view domain) const {
  std::string k = opt_.key_prefix;
  k += "{d:";
  k += domain;
  k += '}';
  return k;
}

void PairSync::touched(uint64_t key, const IpAddress& client, const IpAddress& server,
                       std::string_view domain, uint32_t) {
  if (dirty_index_.count(key)) return;
  if (dirty_.size() >= opt_.max_dirty) {
    ++stats_.dirty_dropped;
    return;
  }
  dirty_.push_back({key, client, server, std::string(domain.substr(0, 255))});
  dirty_index_.emplace(key, static_cast<uint32_t>(dirty_.size() - 1));
}

void PairSync::refreshAll() {
  refresh_ = true;
  for (const auto& [key, s] : pairs_) {
    if (dirty_index_.count(key) || dirty_.size() >= opt_.max_dirty) continue;
    dirty_.push_back({key, s.client, s.server, s.domain});
    dirty_index_.emplace(key, static_cast<uint32_t>(dirty_.size() - 1));
  }
}

void PairSync::novelName(uint64_t key, uint64_t fingerprint, uint32_t now, uint32_t info_bits,
                         bool lexical, uint32_t rule_centi) {
  // Names of pairs not shared yet stay local: most never reach the floor,
  // and a pair's first flush carries its counts (its names count as new).
  if (pairs_.find(key) == pairs_.end()) return;
  if (names_.size() >= opt_.max_names) {
    ++stats_.names_dropped;  // counted as new fleet-wide: errs towards detection
    return;
  }
  names_.push_back({key, fingerprint, now, info_bits, rule_centi, lexical});
}

const score::SharedPairView* PairSync::view(uint64_t key) const {
  if (pairs_.empty()) return nullptr;
  const auto it = pairs_.find(key);
  return it != pairs_.end() && it->second.has_view ? &it->second.view : nullptr;
}

const score::SharedDomainView* PairSync::domainView(uint64_t domain_key) const {
  if (domains_.empty()) return nullptr;
  const auto it = domains_.find(domain_key);
  return it != domains_.end() ? &it->second.view : nullptr;
}

std::size_t PairSync::memoryBytes() const {
  return pairs_.size() * (sizeof(Shared) + sizeof(uint64_t) + 2 * sizeof(void*)) +
         domains_.size() * (sizeof(SharedDomain) + sizeof(uint64_t) + 2 * sizeof(void*)) +
         dirty_.capacity() * sizeof(Dirty) + names_.capacity() * sizeof(Name) +
         dirty_index_.size() * (sizeof(uint64_t) * 2 + 2 * sizeof(void*));
}

void PairSync::expire(uint32_t now) {
  const uint32_t keep = 2 * windows_.back() + opt_.ttl_slack_seconds;
  for (auto it = pairs_.begin(); it != pairs_.end();) {
    // A pair with daily-budget bytes sent stays until its day is over:
    // shared again from scratch, it would send them twice.
    const Shared& s = it->second;
    const bool day_open = s.sent_day_cur + s.sent_day_prev > 0 && now / 86400 <= s.day + 1u;
    if (now > s.last_flush + keep && !day_open) {
      it = pairs_.erase(it);
      ++stats_.pairs_expired;
    } else {
      ++it;
    }
  }
  for (auto it = domains_.begin(); it != domains_.end();) {
    it = now > it->second.last_reply + keep ? domains_.erase(it) : std::next(it);
  }
}

bool PairSync::collect(score::DnsScorer& scorer, uint32_t now, Flush& out) {
  out = Flush{};
  if (now >= last_expire_ + 60 || now < last_expire_) {
    last_expire_ = now;
    expire(now);
  }
  // Names grouped by pair: each pair's call carries its own.
  std::sort(names_.begin(), names_.end(), [](const Name& a, const Name& b) {
    return a.key != b.key ? a.key < b.key : a.now < b.now;
  });
  std::vector<std::string> args;
  std::vector<std::string_view> views;
  std::vector<Dirty> carry;
  const bool refresh = std::exchange(refresh_, false);
  for (const Dirty& d : dirty_) {
    score::DnsPairRecord* r = scorer.takeDirty(d.key);
    if (r == nullptr) continue;
    auto it = pairs_.find(d.key);
    if (it != pairs_.end() && !refresh && now < it->second.last_flush + opt_.quiet_seconds &&
        quietSince(*r, it->second)) {
      ++stats_.quiet;
      carry.push_back(d);
      continue;
    }
    if (it == pairs_.end()) {
      // A pair under the floor is still shared when its domain's view is
      // over it: the hosts of a spread leak are each far under their own.
      if (scorer.scoreOf(d.key, r->last_seen) < opt_.floor_score * alert_score_ &&
          scorer.domainScoreOf(d.domain, r->last_seen) < opt_.floor_score) {
        ++stats_.below_floor;
        continue;
      }
      if (pairs_.size() >= opt_.max_pairs) {
        ++stats_.pairs_full;
        continue;
      }
      it = pairs_.emplace(d.key, Shared{}).first;
      it->second.client = d.client;
      it->second.server = d.server;
      it->second.domain = d.domain;
    }
    Shared& s = it->second;
    score::DnsScorer::markShared(*r);
    s.last_flush = now;
    Flush::Item item;
    item.key = d.key;
    item.domain = d.domain;
    item.client = d.client;
    item.server = d.server;
    item.last_seen = r->last_seen;
    args.clear();
    args.emplace_back("EVALSHA");
    args.emplace_back(pairScriptSha());
    args.emplace_back("1");
    args.emplace_back(baseKey(item.domain));
    args.emplace_back(d.client.toString());
    args.emplace_back(std::to_string(score::kWindows));
    args.emplace_back(std::to_string(opt_.ttl_slack_seconds));
    // The daily budget follows the record's day as the windows their buckets.
    if (r->day != s.day) {
      if (r->day == s.day + 1) {
        s.sent_day_prev = s.sent_day_cur;
        s.view.day_prev = s.view.day_cur;
      } else {
        s.sent_day_prev = 0;
        s.view.day_prev = 0;
      }
      s.sent_day_cur = 0;
      s.view.day_cur = 0;
      s.day = r->day;
      s.view.day = r->day;
    }
    item.day = r->day;
    item.before_day_cur = s.sent_day_cur;
    item.before_day_prev = s.sent_day_prev;
    args.emplace_back(std::to_string(r->day));
    args.emplace_back(std::to_string(int64_t{r->day_info} - s.sent_day_cur));
    args.emplace_back(std::to_string(int64_t{r->prev_day_info} - s.sent_day_prev));
    s.sent_day_cur = item.sent_day_cur = r->day_info;
    s.sent_day_prev = item.sent_day_prev = r->prev_day_info;
    for (int i = 0; i < score::kWindows; ++i) {
      const auto& w = r->win[i];
      rollWindow(w.bucket, s.bucket[i], s.sent_cur[i], s.sent_prev[i], s.view.w[i]);
      item.bucket[i] = w.bucket;
      item.before_cur[i] = s.sent_cur[i];
      item.before_prev[i] = s.sent_prev[i];
      const score::SharedCounts cur = countsOf(w.cur), prev = countsOf(w.prev);
      appendWindowDeltas(args, windows_[i], w.bucket, cur, prev, s.sent_cur[i], s.sent_prev[i]);
      s.sent_cur[i] = cur;
      s.sent_prev[i] = prev;
      item.sent_cur[i] = cur;
      item.sent_prev[i] = prev;
    }
    args.emplace_back(std::to_string(windows_.back()));
    const auto first = std::lower_bound(names_.begin(), names_.end(), d.key,
                                        [](const Name& n, uint64_t k) { return n.key < k; });
    auto last = first;
    while (last != names_.end() && last->key == d.key) ++last;
    args.emplace_back(std::to_string(last - first));
    for (auto n = first; n != last; ++n) {
      args.emplace_back(std::to_string(static_cast<int64_t>(n->fingerprint)));
      args.emplace_back(std::to_string(n->now));
      args.emplace_back(std::to_string(n->info_bits));
      args.emplace_back(n->lexical ? "1" : "0");
      args.emplace_back(std::to_string(n->rule_centi));
    }
    views.assign(args.begin(), args.end());
    const std::string& base = args[3];
    const uint16_t slot = fleet::keySlot(base);
    if (load_slots_.take(slot)) {
      if (out.batch.add(base, {"SCRIPT", "LOAD", pairScript()})) {
        out.loads.push_back(out.batch.size() - 1);
      }
    }
    if (!out.batch.add(base, views)) {
      // The batch is full: this pair's delta waits for the next flush.
      s.sent_cur = item.before_cur;
      s.sent_prev = item.before_prev;
      s.sent_day_cur = item.before_day_cur;
      s.sent_day_prev = item.before_day_prev;
      carry.push_back(d);
      continue;
    }
    item.command = out.batch.size() - 1;
    stats_.names_sent += static_cast<uint64_t>(last - first);
    out.items.push_back(std::move(item));
  }
  for (auto& c : claims_) {
    if (addClaim(out.batch, c.client, c.domain, c.signature_id, c.now, c.suppress_seconds)) {
      out.claims.emplace_back(out.batch.size() - 1, std::move(c));
    } else {
      ++stats_.claims_full;  // the batch is full: written as local at apply
      unsent_claims_.push_back(std::move(c));
    }
  }
  claims_.clear();
  dirty_.swap(carry);
  dirty_index_.clear();
  for (std::size_t i = 0; i < dirty_.size(); ++i)
    dirty_index_.emplace(dirty_[i].key, static_cast<uint32_t>(i));
  names_.clear();
  if (out.empty()) return false;
  ++stats_.flushes;
  stats_.pairs_sent += out.items.size();
  stats_.commands += out.batch.size();
  stats_.bytes += out.batch.bytes();
  return true;
}

bool PairSync::quietSince(const score::DnsPairRecord& r, const Shared& s) {
  if (!s.has_view || r.day != s.day || r.day_info != s.sent_day_cur) return false;
  for (int i = 0; i < score::kWindows; ++i) {
    const auto& w = r.win[i];
    if (w.bucket != s.bucket[i]) return false;
    const score::SharedCounts cur = countsOf(w.cur), prev = countsOf(w.prev);
    for (int k : {score::kSharedInfoBits, score::kSharedNewNames, score::kSharedLexical,
                  score::kSharedRuleCenti}) {
      if (cur[k] != s.sent_cur[i][k] || prev[k] != s.sent_prev[i][k]) return false;
    }
  }
  return true;
}

void PairSync::apply(const Flush& flush, const fleet::BatchResult& result,
                     const std::function<void(const Flush::Item&)>& changed,
                     const std::function<void(const std::string&, const std::any&)>& emit) {
  for (const auto& [i, c] : flush.claims) {
    score::ClaimOutcome o = score::ClaimOutcome::Unknown;
    if (i < result.failures.size() && result.failures[i] == fleet::Failure::None &&
        i < result.replies.size()) {
      o = claimOutcome(result.replies[i], stats_);
    } else {
      ++stats_.claims_unknown;
    }
    emitClaimed(o, c, emit);
  }
  for (const auto& c : unsent_claims_) emitClaimed(score::ClaimOutcome::Unknown, c, emit);
  unsent_claims_.clear();
  auto markLoad = [&](std::string_view domain) {
    const uint16_t slot = fleet::keySlot(baseKey(domain));
    load_slots_.mark(slot);
  };
  for (const Flush::Item& item : flush.items) {
    auto it = pairs_.find(item.key);
    const bool have = it != pairs_.end();
    const bool replied = item.command < result.replies.size() &&
                         item.command < result.failures.size() &&
                         result.failures[item.command] == fleet::Failure::None;
    auto restore = [&] {
      // Not applied: the delta goes again with the next flush.
      if (!have) return;
      for (int i = 0; i < score::kWindows; ++i) {
        if (it->second.bucket[i] != item.bucket[i]) continue;
        it->second.sent_cur[i] = item.before_cur[i];
        it->second.sent_prev[i] = item.before_prev[i];
      }
      if (it->second.day == item.day) {
        it->second.sent_day_cur = item.before_day_cur;
        it->second.sent_day_prev = item.before_day_prev;
      }
    };
    if (!replied) {
      ++stats_.replies_lost;
      const fleet::Failure f = item.command < result.failures.size() ? result.failures[item.command]
                                                                     : fleet::Failure::Stopped;
      // Never sent: resend. Sent without a reply: it may have run; not resent.
      if (neverRan(f)) restore();
      markLoad(item.domain);  // a restarted node has lost its scripts
      continue;
    }
    const fleet::RedisReply& r = result.replies[item.command];
    if (r.isError()) {
      ++stats_.replies_bad;
      if (r.str.rfind("NOSCRIPT", 0) == 0) {
        ++stats_.noscript;
        markLoad(item.domain);
      }
      restore();
      continue;
    }
    PairTotals totals;
    if (!parsePairReply(r, totals)) {
      ++stats_.replies_bad;
      continue;
    }
    if (!have) continue;
    Shared& s = it->second;
    score::SharedPairView v = s.view;
    for (int i = 0; i < score::kWindows; ++i) {
      if (s.bucket[i] != item.bucket[i]) continue;
      overlayWindow(v.w[i], item.bucket[i], totals.cur[i], totals.prev[i], item.sent_cur[i],
                    item.sent_prev[i]);
    }
    if (s.day == item.day) {
      v.day = item.day;
      v.day_cur = totals.day_cur - item.sent_day_cur;
      v.day_prev = totals.day_prev - item.sent_day_prev;
    }
    const int64_t distinct = totals.distinct;
    v.distinct = static_cast<double>(distinct);
    s.view = v;
    s.has_view = true;
    const uint64_t dkey = score::domainKey(item.domain);
    auto dit = domains_.find(dkey);
    if (dit == domains_.end() && domains_.size() < opt_.max_pairs)
      dit = domains_.emplace(dkey, SharedDomain{}).first;
    if (dit != domains_.end()) {
      SharedDomain& sd = dit->second;
      for (int i = 0; i < score::kWindows; ++i) {
        // A later reply of a later bucket wins; an older one is stale.
        if (item.bucket[i] < sd.view.w[i].bucket) continue;
        sd.view.w[i].bucket = item.bucket[i];
        sd.view.w[i].cur = totals.domain_cur[i];
        sd.view.w[i].prev = totals.domain_prev[i];
      }
      sd.view.clients = static_cast<double>(totals.clients);
      sd.last_reply = item.last_seen;
    }
    if (changed) changed(item);
  }
  for (std::size_t i : flush.loads) {
    if (i < result.failures.size() && result.failures[i] == fleet::Failure::None &&
        i < result.replies.size() && !result.replies[i].isError()) {
      continue;
    }
    const uint16_t slot = flush.batch.slot(i);
    load_slots_.mark(slot);
  }
}

bool PairSync::addClaim(fleet::CommandBatch& batch, const IpAddress& client,
                        std::string_view domain, uint32_t signature_id, int64_t now,
                        uint32_t suppress_seconds) const {
  const std::string base = baseKey(domain);
  const std::string who = client.toString(), sig = std::to_string(signature_id),
                    t = std::to_string(now), sup = std::to_string(suppress_seconds),
                    ttl = std::to_string(
                        std::max<uint64_t>(2ull * suppress_seconds, 2ull * windows_.back()) +
                        opt_.ttl_slack_seconds);
  // EVAL, not EVALSHA: claims are one per alert, and need no loaded script.
  return batch.add(base, {"EVAL", claimScript(), "1", base, who, sig, t, sup, ttl});
}

score::ClaimOutcome PairSync::claim(const IpAddress& client, std::string_view domain,
                                    uint32_t signature_id, int64_t now, uint32_t suppress_seconds) {
  fleet::CommandBatch batch;
  addClaim(batch, client, domain, signature_id, now, suppress_seconds);
  return claimNow(claim_rt_, std::move(batch), stats_);
}

bool PairSync::deferClaim(DeferredAlert&& alert) {
  if (claims_.size() >= opt_.max_claims) {
    ++stats_.claims_full;
    return false;
  }
  ++stats_.claims;
  claims_.push_back(std::move(alert));
  return true;
}

}  // namespace exfilwatch::share
