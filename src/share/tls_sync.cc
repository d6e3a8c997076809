// tls_sync.cc: TLS upload deltas out, fleet totals back (see tls_sync.h).
#include "share/tls_sync.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <unordered_set>

#include "fleet/cluster_slots.h"
#include "share/script_util.h"

namespace exfilwatch::share {

namespace {

// One call per (client, destination): add this sensor's deltas to the
// pair's window buckets and return the fleet's totals of each window's
// current and previous bucket. Every key written gets its expiry here.
// Keys: KEYS[1] .. ':p:<client>:<window>:<bucket>' (hash: u d f x).
constexpr const char* kTlsScript = R"lua(
local base = KEYS[1]
local client = ARGV[1]
local nwin = tonumber(ARGV[2])
local slack = tonumber(ARGV[3])
local F = {'u', 'd', 'f', 'x'}
local p = 4
local out = {}
for i = 1, nwin do
  local width = tonumber(ARGV[p])
  local b = tonumber(ARGV[p + 1])
  local ttl = 2 * width + slack
  local pk = base .. ':p:' .. client .. ':' .. i .. ':'
  for j = 0, 1 do
    local k = pk .. (b - j)
    for f = 1, 4 do
      local v = tonumber(ARGV[p + 1 + 4 * j + f])
      if v ~= 0 then redis.call('HINCRBY', k, F[f], v) end
    end
    redis.call('EXPIRE', k, ttl)
    out[#out + 1] = redis.call('HMGET', k, unpack(F))
  end
  p = p + 10
end
return out
)lua";

score::TlsSharedCounts countsOf(const score::TlsCounters& c) {
  constexpr uint64_t kMax = uint64_t{1} << 48;  // far from int64 overflow in the deltas
  return {static_cast<int64_t>(std::min(c.up, kMax)), static_cast<int64_t>(std::min(c.down, kMax)),
          c.flows, c.upload_flows};
}

}  // namespace

bool parseTlsReply(const fleet::RedisReply& r, TlsTotals& out) {
  if (r.type != fleet::RedisReply::Type::Array ||
      r.elements.size() != std::size_t{2} * score::kWindows)
    return false;
  for (int i = 0; i < score::kWindows; ++i) {
    const std::size_t at = std::size_t{2} * static_cast<std::size_t>(i);
    if (!replyCounts(r.elements[at], out.cur[i]) || !replyCounts(r.elements[at + 1], out.prev[i])) {
      return false;
    }
  }
  return true;
}

const std::string& tlsScript() {
  static const std::string s = kTlsScript;
  return s;
}
const std::string& tlsScriptSha() {
  static const std::string s = sha1Hex(tlsScript());
  return s;
}

TlsSync::TlsSync(const score::TlsScoreConfig& cfg, ShareOptions options)
    : windows_(cfg.windows), opt_(std::move(options)) {
  dirty_.reserve(std::min<std::size_t>(opt_.max_dirty, 4096));
}

std::string TlsSync::baseKey(const IpAddress& server, uint16_t port) const {
  std::string k = opt_.key_prefix;
  k += "{t:";
  k += server.toString();
  k += ':';
  k += std::to_string(port);
  k += '}';
  return k;
}

bool TlsSync::touched(uint64_t key, const IpAddress& client, const IpAddress& server,
                      uint16_t port) {
  if (dirty_.size() >= opt_.max_dirty) {
    ++stats_.dirty_dropped;
    return false;
  }
  dirty_.push_back({key, client, server, port});  // capacity grows to max_dirty at most
  return true;
}

void TlsSync::refreshAll() {
  for (const auto& [key, s] : pairs_) {
    if (dirty_.size() >= opt_.max_dirty) break;
    dirty_.push_back({key, s.client, s.server, s.port});
  }
}

const score::TlsSharedView* TlsSync::view(uint64_t key) const {
  if (pairs_.empty()) return nullptr;
  const auto it = pairs_.find(key);
  return it != pairs_.end() && it->second.has_view ? &it->second.view : nullptr;
}

std::size_t TlsSync::memoryBytes() const {
  return pairs_.size() * (sizeof(Shared) + sizeof(uint64_t) + 2 * sizeof(void*)) +
         dirty_.capacity() * sizeof(Dirty) + load_slots_.memoryBytes();
}

void TlsSync::expire(uint32_t now) {
  const uint32_t keep = 2 * windows_.back() + opt_.ttl_slack_seconds;
  for (auto it = pairs_.begin(); it != pairs_.end();) {
    if (now > it->second.last_flush + keep) {
      it = pairs_.erase(it);
      ++stats_.pairs_expired;
    } else {
      ++it;
    }
  }
}

bool TlsSync::collect(score::TlsTracker& tracker, uint32_t now, fleet::CommandBatch& batch,
                      Flush& out) {
  out = Flush{};
  if (now >= last_expire_ + 60 || now < last_expire_) {
    last_expire_ = now;
    expire(now);
  }
  const std::size_t first_command = batch.size();
  const std::size_t first_byte = batch.bytes();
  const score::TlsScoreConfig& cfg = tracker.config();
  const double floor = opt_.floor_score;
  std::vector<std::string> args;
  std::vector<std::string_view> views;
  std::vector<Dirty> carry;
  std::unordered_set<uint64_t> done;  // refreshAll() may list a changed pair twice
  for (const Dirty& d : dirty_) {
    if (!done.insert(d.key).second) continue;
    score::TlsPairRecord* r = tracker.takeDirty(d.key);
    if (r == nullptr) continue;
    auto it = pairs_.find(d.key);
    if (it == pairs_.end()) {
      // Ordinary pairs (API calls, small uploads) stay local.
      if (tracker.scoreOf(d.key, r->last_seen) < floor) {
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
      it->second.port = d.port;
    }
    Shared& s = it->second;
    s.last_flush = now;
    if (s.first_seen != r->first_seen) {
      // A new record (the old one was evicted): all its counts are new.
      s.first_seen = r->first_seen;
      for (int i = 0; i < score::kWindows; ++i) s.sent_cur[i] = s.sent_prev[i] = {};
    }
    Flush::Item item;
    item.key = d.key;
    item.client = d.client;
    item.server = d.server;
    item.port = d.port;
    item.last_seen = r->last_seen;
    args.clear();
    args.emplace_back("EVALSHA");
    args.emplace_back(tlsScriptSha());
    args.emplace_back("1");
    args.emplace_back(baseKey(d.server, d.port));
    args.emplace_back(d.client.toString());
    args.emplace_back(std::to_string(score::kWindows));
    args.emplace_back(std::to_string(opt_.ttl_slack_seconds));
    for (int i = 0; i < score::kWindows; ++i) {
      const auto& w = r->win[i];
      rollWindow(w.bucket, s.bucket[i], s.sent_cur[i], s.sent_prev[i], s.view.w[i]);
      item.bucket[i] = w.bucket;
      item.before_cur[i] = s.sent_cur[i];
      item.before_prev[i] = s.sent_prev[i];
      const score::TlsSharedCounts cur = countsOf(w.cur);
      const score::TlsSharedCounts prev = countsOf(w.prev);
      appendWindowDeltas(args, cfg.windows[i], w.bucket, cur, prev, s.sent_cur[i], s.sent_prev[i]);
      s.sent_cur[i] = cur;
      s.sent_prev[i] = prev;
      item.sent_cur[i] = cur;
      item.sent_prev[i] = prev;
    }
    views.assign(args.begin(), args.end());
    const std::string& base = args[3];
    const uint16_t slot = fleet::keySlot(base);
    if (load_slots_.take(slot)) {
      if (batch.add(base, {"SCRIPT", "LOAD", tlsScript()})) out.loads.push_back(batch.size() - 1);
    }
    if (!batch.add(base, views)) {
      // The batch is full: this pair's delta waits for the next flush.
      s.sent_cur = item.before_cur;
      s.sent_prev = item.before_prev;
      carry.push_back(d);
      continue;
    }
    item.command = batch.size() - 1;
    out.items.push_back(item);
  }
  for (auto& c : claims_) {
    if (addClaim(batch, c.alert.client, c.server, c.port, c.alert.now, c.alert.suppress_seconds)) {
      out.claims.emplace_back(batch.size() - 1, std::move(c));
    } else {
      ++stats_.claims_full;  // the batch is full: written as local at apply
      unsent_claims_.push_back(std::move(c));
    }
  }
  claims_.clear();
  dirty_.swap(carry);
  if (out.empty() && out.loads.empty()) return false;
  ++stats_.flushes;
  stats_.pairs_sent += out.items.size();
  stats_.commands += batch.size() - first_command;
  stats_.bytes += batch.bytes() - first_byte;
  return true;
}

void TlsSync::apply(const fleet::CommandBatch& batch, const Flush& flush,
                    const fleet::BatchResult& result,
                    const std::function<void(const Flush::Item&)>& changed,
                    const std::function<void(const std::string&, const std::any&)>& emit) {
  auto ok = [&](std::size_t i) {
    return i < result.replies.size() && i < result.failures.size() &&
           result.failures[i] == fleet::Failure::None;
  };
  for (const auto& [i, c] : flush.claims) {
    score::ClaimOutcome o = score::ClaimOutcome::Unknown;
    if (ok(i)) {
      o = claimOutcome(result.replies[i], stats_);
    } else {
      ++stats_.claims_unknown;
    }
    emitClaimed(o, c.alert, emit);
  }
  for (const auto& c : unsent_claims_) emitClaimed(score::ClaimOutcome::Unknown, c.alert, emit);
  unsent_claims_.clear();
  for (const Flush::Item& item : flush.items) {
    auto it = pairs_.find(item.key);
    const bool have = it != pairs_.end();
    auto restore = [&] {
      // Not applied: the delta goes again with the next flush.
      if (!have) return;
      for (int i = 0; i < score::kWindows; ++i) {
        if (it->second.bucket[i] != item.bucket[i]) continue;
        it->second.sent_cur[i] = item.before_cur[i];
        it->second.sent_prev[i] = item.before_prev[i];
      }
    };
    if (!ok(item.command)) {
      ++stats_.replies_lost;
      const fleet::Failure f = item.command < result.failures.size() ? result.failures[item.command]
                                                                     : fleet::Failure::Stopped;
      // Never sent: resend. Sent without a reply: it may have run; not resent.
      if (neverRan(f)) restore();
      if (item.command < batch.size())
        load_slots_.mark(batch.slot(item.command));  // a restarted node
      continue;
    }
    const fleet::RedisReply& r = result.replies[item.command];
    if (r.isError()) {
      ++stats_.replies_bad;
      if (r.str.rfind("NOSCRIPT", 0) == 0) {
        ++stats_.noscript;
        load_slots_.mark(batch.slot(item.command));
      }
      restore();
      continue;
    }
    TlsTotals totals;
    if (!parseTlsReply(r, totals)) {
      ++stats_.replies_bad;
      continue;
    }
    if (!have) continue;
    Shared& s = it->second;
    for (int i = 0; i < score::kWindows; ++i) {
      if (s.bucket[i] != item.bucket[i]) continue;
      overlayWindow(s.view.w[i], item.bucket[i], totals.cur[i], totals.prev[i], item.sent_cur[i],
                    item.sent_prev[i]);
    }
    s.has_view = true;
    if (changed) changed(item);
  }
  for (std::size_t i : flush.loads) {
    if (ok(i) && !result.replies[i].isError()) continue;
    if (i < batch.size()) load_slots_.mark(batch.slot(i));
  }
}

bool TlsSync::addClaim(fleet::CommandBatch& batch, const IpAddress& client, const IpAddress& server,
                       uint16_t port, int64_t now, uint32_t suppress_seconds) const {
  const std::string base = baseKey(server, port);
  const std::string who = client.toString();
  const std::string t = std::to_string(now);
  const std::string sup = std::to_string(suppress_seconds);
  const std::string ttl = std::to_string(
      std::max<uint64_t>(2ull * suppress_seconds, 2ull * windows_.back()) + opt_.ttl_slack_seconds);
  // The DNS pairs' claim script on the TLS pair, bulk and drip together
  // ("tls" for the signature): one alert per pair, as the local gate.
  return batch.add(base, {"EVAL", claimScript(), "1", base, who, "tls", t, sup, ttl});
}

score::ClaimOutcome TlsSync::claim(const IpAddress& client, const IpAddress& server, uint16_t port,
                                   uint32_t /*signature_id*/, int64_t now,
                                   uint32_t suppress_seconds) {
  fleet::CommandBatch batch;
  addClaim(batch, client, server, port, now, suppress_seconds);
  return claimNow(claim_rt_, std::move(batch), stats_);
}

bool TlsSync::deferClaim(DeferredAlert&& alert) {
  if (claims_.size() >= opt_.max_claims) {
    ++stats_.claims_full;
    return false;
  }
  ++stats_.claims;
  claims_.push_back(std::move(alert));
  return true;
}

}  // namespace exfilwatch::share
