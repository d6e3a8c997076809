// tls_tracker.h: TLS on the configured ports (8443 by default): per-flow
// bytes and the ClientHello, per (client, destination) upload volume.
//
// In: every TCP segment to or from a configured port. Out, rarely: a verdict
// for a bulk upload (much sent, little received, in the middle window) or a
// drip (many upload-heavy flows over the longest window). A large download
// never alerts: both require up/down >= upload_ratio. Bytes come from the IP
// length fields (PacketContext::payload_wire_len), so they are right behind
// truncating mirror sessions. A ClientHello split across segments is
// reassembled in one of a fixed pool of buffers; the ServerHello (JA3S, the
// negotiated version) is read from the server's first payload segment only.
// Flows and pairs live in fixed-budget StateTables with LRU eviction. No
// allocation per packet. Anomalies are counted as weirds (weird()).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "decode/packet.h"
#include "decode/weird.h"
#include "score/alert_gate.h"
#include "score/score_config.h"
#include "score/state_table.h"
#include "score/tls_shared.h"
#include "score/window.h"
#include "tls/client_hello.h"
#include "tls/server_hello.h"

namespace exfilwatch::score {

struct TlsCounters {
  uint64_t up = 0;    // client -> server payload bytes (wire)
  uint64_t down = 0;  // server -> client
  uint32_t flows = 0;
  uint32_t upload_flows = 0;  // flows that sent >= drip_flow_min_bytes, up/down >= ratio
};

struct TlsFlowRecord {
  uint64_t key;
  uint32_t lru_prev, lru_next, chain;
  uint32_t hello_buf;  // pool index, kNil when none
  int64_t first_us, last_us;
  uint64_t up, down;
  uint64_t pair_key;
  uint32_t hello_next_seq;
  uint16_t hello_len;
  uint8_t hello_state;  // HelloState
  uint8_t counted_upload : 1;
  uint8_t server_hello_done : 1;  // the server's first payload was looked at
};

struct TlsPairRecord {
  uint64_t key;
  uint32_t lru_prev, lru_next, chain;
  uint32_t first_seen, last_seen;
  uint32_t flows_total;
  uint16_t alerts;
  uint16_t version;         // highest TLS version the ClientHello offered (0x0304: 1.3)
  uint16_t server_version;  // the ServerHello's negotiated version, 0 until one is seen
  uint8_t sni_len, alpn_len;
  SlidingWindow<TlsCounters> win[kWindows];
  char sni[48];
  char alpn[8];
  char ja3[33];
  char ja4[37];
  uint8_t ja3s[16];  // MD5; all zero until a ServerHello is seen (its text: ja3sText)
  // Changed since the fleet's last flush (TlsSharedHook::touched); last, in
  // the record's padding.
  uint8_t shared_dirty;
};

struct TlsFeatures {
  struct PerWindow {
    double up = 0, down = 0, flows = 0, upload_flows = 0;
  } w[kWindows];
  double bulk = 0, drip = 0, score = 0;
  bool ratio_ok_mid = false, ratio_ok_long = false;
};

struct TlsVerdict {
  bool update = false;
  bool drip = false;  // which pattern crossed first
  double score = 0;
  uint32_t alerts = 0;
  std::string_view reasons;
};

struct TlsStats {
  uint64_t segments = 0, flows = 0, hellos = 0, server_hellos = 0, hello_not_tls = 0,
           hello_truncated = 0, hello_gap = 0, hello_no_buffer = 0, hello_too_big = 0, verdicts = 0,
           suppressed = 0, expired = 0;
};

class TlsTracker {
 public:
  TlsTracker(const TlsScoreConfig& cfg, uint32_t suppress_seconds);
  void reconfigure(const TlsScoreConfig& cfg, uint32_t suppress_seconds);
  // The sensor's suppression (engine's AlertEmitter), shared with the
  // other detectors; until set, a gate of the tracker's own.
  void setAlertGate(AlertGate* gate) { gate_ = gate ? gate : &own_gate_; }
  // The fleet's shared state (src/share), or null: its counts join the
  // verdicts (local + other sensors').
  void setSharedState(TlsSharedHook* hook) { shared_ = hook; }

  bool isTlsPort(uint16_t port) const { return ports_[port]; }
  // One TCP segment with a configured port on either side.
  const TlsVerdict* onTcpSegment(const PacketContext& pkt);
  void expire(Timestamp now);

  uint64_t pairKey(const IpAddress& client, const IpAddress& server, uint16_t port) const;
  bool features(uint64_t pair_key, uint32_t now, TlsFeatures& out) const;
  const TlsPairRecord* pair(uint64_t key) const { return pairs_.peek(key); }
  // The fleet's flush: the pair's record, its changed mark cleared; null
  // when it is gone.
  TlsPairRecord* takeDirty(uint64_t key);
  // The pair's score at `now` (with the fleet's counts when known); 0 if gone.
  double scoreOf(uint64_t key, uint32_t now) const;
  // After a flush's reply: the pair judged again at `now` with the fleet's
  // counts; a verdict when it crosses (local suppression applied), else null.
  const TlsVerdict* reevaluate(uint64_t key, const IpAddress& server, uint16_t port, uint32_t now);
  const TlsScoreConfig& config() const { return cfg_; }
  // The JA3 string behind a pair's JA3 hash, when still kept ("" if not).
  std::string_view ja3Text(const char* ja3_hash) const;
  // The JA3S string behind a pair's JA3S digest, when still kept ("" if not).
  std::string_view ja3sText(const uint8_t (&ja3s)[16]) const;
  // The ClientHello and ServerHello anomalies, by name (decode/weird.h).
  const WeirdCounters& weird() const { return *weird_; }
  // Counts them into `w` (the engine's, beside the decoder's and the DNS
  // parser's) instead of the tracker's own; null: its own again.
  void countWeirdsInto(WeirdCounters* w) { weird_ = w ? w : &own_weird_; }

  const TlsStats& stats() const { return stats_; }
  uint64_t flowEvictions() const { return flows_.evictions(); }
  uint64_t pairEvictions() const { return pairs_.evictions(); }
  std::size_t pairs() const { return pairs_.size(); }
  double bytesPerPair() const { return pairs_.bytesPerRecord(); }
  std::size_t memoryBytes() const {
    return flows_.memoryBytes() + pairs_.memoryBytes() + pool_.size();
  }

 private:
  enum HelloState : uint8_t { kWaiting = 0, kCollecting, kDone, kFailed };
  void hello(TlsFlowRecord& flow, TlsPairRecord& pair, const PacketContext& pkt);
  void serverHello(TlsPairRecord& pair, const PacketContext& pkt);
  void releaseBuffer(TlsFlowRecord& flow);
  void compute(const TlsPairRecord& r, uint32_t now, TlsFeatures& f) const;
  // The fleet's counts, when known (out of line: the path without a fleet
  // stays as it was).
  [[gnu::noinline]] void addShared(const TlsPairRecord& r, uint32_t now, TlsFeatures& f) const;
  // `flow`: the segment's, null when judged after a fleet reply.
  void formatReasons(const TlsPairRecord& r, const TlsFlowRecord* flow, const TlsFeatures& f,
                     const IpAddress& server, uint16_t port);
  const TlsVerdict* admit(TlsPairRecord& pair, const TlsFlowRecord* flow, const TlsFeatures& f,
                          const IpAddress& server, uint16_t port, uint32_t now);

  TlsScoreConfig cfg_;
  AlertGate own_gate_;  // until setAlertGate()
  AlertGate* gate_ = &own_gate_;
  TlsSharedHook* shared_ = nullptr;
  std::vector<bool> ports_;
  StateTable<TlsFlowRecord> flows_;
  StateTable<TlsPairRecord> pairs_;
  std::vector<uint8_t> pool_;        // hello_buffers x hello_max_bytes
  std::vector<uint32_t> free_bufs_;  // stack of free pool indexes (reserved once)
  uint32_t hello_max_;
  tls::ClientHello parsed_;
  tls::ServerHello parsed_server_;
  TlsStats stats_;
  WeirdCounters own_weird_;
  WeirdCounters* weird_ = &own_weird_;
  TlsVerdict verdict_;
  std::string reasons_;
  std::string win_names_[kWindows];
  // JA3 strings by hash for the alert's EVE `tls`: few distinct client
  // stacks, so a small direct-mapped table (a collision replaces) suffices.
  struct Ja3Text {
    char hash[33] = {};
    uint16_t len = 0;
    char text[1024];
  };
  static constexpr std::size_t kJa3Texts = 64;
  std::vector<Ja3Text> ja3_texts_;
  // The same for JA3S (few distinct server stacks): pairs keep the digest.
  struct Ja3sText {
    uint8_t md5[16] = {};
    uint16_t len = 0;
    char text[512];
  };
  std::vector<Ja3sText> ja3s_texts_;
};

}  // namespace exfilwatch::score
