// script_util.h: what PairSync and TlsSync share around their Lua scripts:
// the SHA-1 that EVALSHA names, reading counts out of replies, and the
// fleet-wide claim of an alert (its reply, its round trip, and writing a
// deferred alert once the fleet has answered).
#pragma once

#include <any>
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "fleet/cluster_slots.h"
#include "fleet/redis_client.h"
#include "fleet/redis_protocol.h"
#include "score/shared_state.h"

namespace exfilwatch::share {

std::string sha1Hex(const std::string& text);

// A count in a reply: nil (an absent field) is 0. Kept within +-2^48, far
// from overflow: a peer, or whatever answers in Redis's place, may send
// anything, and the overlay subtracts what was sent.
bool replyInt(const fleet::RedisReply& r, int64_t& out);

// An array reply of exactly N counts.
template <std::size_t N>
bool replyCounts(const fleet::RedisReply& r, std::array<int64_t, N>& out) {
  if (r.type != fleet::RedisReply::Type::Array || r.elements.size() != N) return false;
  for (std::size_t i = 0; i < N; ++i) {
    if (!replyInt(r.elements[i], out[i])) return false;
  }
  return true;
}

// The Redis Cluster slots whose node may lack a script: all at first, and
// again after a NOSCRIPT or a lost reply (a restarted node has none).
class ScriptSlots {
 public:
  ScriptSlots() : bits_(fleet::kSlots / 64, ~uint64_t{0}) {}
  // True (and cleared) when `slot` needs SCRIPT LOAD before its next call.
  bool take(uint16_t slot) {
    uint64_t& w = bits_[slot / 64];
    const uint64_t bit = uint64_t{1} << (slot % 64);
    const bool marked = (w & bit) != 0;
    w &= ~bit;
    return marked;
  }
  void mark(uint16_t slot) { bits_[slot / 64] |= uint64_t{1} << (slot % 64); }
  std::size_t memoryBytes() const { return bits_.size() * sizeof(uint64_t); }

 private:
  std::vector<uint64_t> bits_;
};

// One window of a shared pair (DNS or TLS), kept per pair: what this sensor
// has sent to the window's current and previous bucket, and the others'
// counts read back (fleet total - sent), in a view window with `bucket`,
// `cur` and `prev`.
// Follows the record to its bucket: what was current became previous.
template <class Counts, class ViewWindow>
void rollWindow(uint32_t record_bucket, uint32_t& bucket, Counts& sent_cur, Counts& sent_prev,
                ViewWindow& view) {
  if (record_bucket == bucket) return;
  if (record_bucket == bucket + 1) {
    sent_prev = sent_cur;
    view.prev = view.cur;
  } else {
    sent_prev = {};
    view.prev = {};
  }
  sent_cur = {};
  view.cur = {};
  bucket = record_bucket;
  view.bucket = record_bucket;
}

// The script's arguments of one window: width, bucket, the current and the
// previous bucket's deltas since the last send.
template <class Counts>
void appendWindowDeltas(std::vector<std::string>& args, uint32_t width, uint32_t bucket,
                        const Counts& cur, const Counts& prev, const Counts& sent_cur,
                        const Counts& sent_prev) {
  args.emplace_back(std::to_string(width));
  args.emplace_back(std::to_string(bucket));
  for (std::size_t k = 0; k < cur.size(); ++k)
    args.emplace_back(std::to_string(cur[k] - sent_cur[k]));
  for (std::size_t k = 0; k < prev.size(); ++k)
    args.emplace_back(std::to_string(prev[k] - sent_prev[k]));
}

// The others' counts of one window from the fleet's totals.
template <class Counts, class ViewWindow>
void overlayWindow(ViewWindow& view, uint32_t bucket, const Counts& total_cur,
                   const Counts& total_prev, const Counts& sent_cur, const Counts& sent_prev) {
  for (std::size_t k = 0; k < total_cur.size(); ++k) {
    view.cur[k] = total_cur[k] - sent_cur[k];
    view.prev[k] = total_prev[k] - sent_prev[k];
  }
  view.bucket = bucket;
}

// A command without a reply that never ran: its deltas go again. One that
// may have run (timeout, connection lost after sending) is not resent.
inline bool neverRan(fleet::Failure f) {
  return f == fleet::Failure::Expired || f == fleet::Failure::Stopped ||
         f == fleet::Failure::Redirects;
}

// The claim script's reply {granted 0/1, alerts so far}; false on anything else.
bool parseClaimReply(const fleet::RedisReply& r, bool& granted, int64_t& count);

// One synchronous round trip (replay's); live sensors defer claims instead.
using RoundTrip = std::function<bool(fleet::CommandBatch&&, fleet::BatchResult&)>;

// The claim script's reply as an outcome, counted in `st` (claims_denied,
// claims_unknown, replies_bad).
template <class Stats>
score::ClaimOutcome claimOutcome(const fleet::RedisReply& r, Stats& st) {
  bool granted = false;
  int64_t count = 0;
  if (!parseClaimReply(r, granted, count)) {
    ++st.claims_unknown;
    ++st.replies_bad;
    return score::ClaimOutcome::Unknown;
  }
  if (!granted) {
    ++st.claims_denied;
    return score::ClaimOutcome::Suppressed;
  }
  return count <= 1 ? score::ClaimOutcome::Initial : score::ClaimOutcome::Update;
}

// A claim (one command in `batch`) sent and answered at once; Unknown when
// there is no round trip or it fails (local suppression then decides).
template <class Stats>
score::ClaimOutcome claimNow(const RoundTrip& rt, fleet::CommandBatch&& batch, Stats& st) {
  ++st.claims;
  fleet::BatchResult result;
  if (!rt || !rt(std::move(batch), result) || !result.ok() || result.replies.size() != 1) {
    ++st.claims_unknown;
    return score::ClaimOutcome::Unknown;
  }
  return claimOutcome(result.replies[0], st);
}

// Writes a deferred alert as the fleet's answer says: the initial line, the
// update, nothing (suppressed), or what local suppression alone says when
// the fleet could not answer (fail open).
using Emit = std::function<void(const std::string&, const std::any&)>;
void emitClaimed(score::ClaimOutcome o, const score::SharedStateHook::DeferredAlert& a,
                 const Emit& emit);

}  // namespace exfilwatch::share
