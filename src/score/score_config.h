// score_config.h: the scoring engine's settings (config keys `score.dns.*`
// and `score.tls.*`, parsed strictly in config.cc) and the per-query input
// it takes from the rules engine. Defaults were chosen from measured benign
// and tunnel distributions; docs/scoring.md ("Thresholds, and how they were
// chosen") gives the numbers and margins. Budgets are fixed at start; thresholds follow reloads.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace exfilwatch::score {

// What the rules engine concluded for one query (src/rules fills it):
// `score_weight` sums the weights of `score` rules that matched (1.0 alone
// reaches the alert score), `allowed` is set by an `allow` rule and
// silences scoring for the query.
struct RuleHits {
  double score_weight = 0.0;
  bool allowed = false;
};

inline constexpr int kWindows = 3;

struct DnsScoreConfig {
  bool enabled = true;
  uint64_t memory_bytes = 64ull << 20;                    // (client, domain) records, per worker
  uint64_t seen_names_bytes = 16ull << 20;                // fingerprints of names already seen
  std::array<uint32_t, kWindows> windows{60, 600, 3600};  // seconds, ascending
  // Information sent (bytes after compression) per window; 0 disables one.
  std::array<uint32_t, kWindows> info_bytes{1200, 2000, 2500};
  // Information sent over a sliding 24 hours (the daily budget that catches
  // slow leaks: 0.5 B/s in under an hour, 0.1 B/s in under 5); 0 disables it.
  uint32_t daily_info_bytes = 1600;
  // The rest are measured over the middle window (10 minutes by default).
  uint32_t unique_subdomains = 400;       // names never seen before under the domain
  uint32_t answer_bytes = 60000;          // downstream channel (answer RDATA bytes)
  uint32_t lexical_hits = 1;              // tunnel-shaped queries
  double model_bits_per_char = 5.0;       // a query this unlike benign names ...
  uint32_t model_min_label = 40;          // ... with a label at least this long is tunnel-shaped
  uint32_t risky_types_min_queries = 20;  // type-mix component needs this many queries
  double alert_score = 1.0;
  // A tunnel is a channel: a verdict needs at least this many names never
  // seen before under the pair's domain in one window (alert rules are the
  // single-query verdicts), so one random-ID cloud name (function URL, object host,
  // tracker id) cannot alert on its own however odd it looks.
  uint32_t min_new_names = 3;
  double weight_info = 1.0;
  double weight_unique = 0.5;
  double weight_answer = 0.5;
  double weight_lexical = 1.0;
  double weight_types = 0.25;
  double weight_rules = 0.5;  // x min(1, sum of score-rule weights of new names in the window)
  std::string model_path;     // empty: the built-in models/dns-trigram-v1.txt
  // The domain view: one registered domain's information over all its
  // clients (several hosts each under the pair thresholds). Its own verdict;
  // it needs min_clients clients that sent new names, min_new_names new
  // names in one window, and information over a threshold (0 disables one).
  bool domain_enabled = true;
  uint64_t domain_memory_bytes = 8ull << 20;  // per-domain records, per sensor process
  std::array<uint32_t, kWindows> domain_info_bytes{3000, 3000, 3000};
  uint32_t domain_daily_info_bytes = 0;
  uint32_t domain_min_clients = 3;
};

struct TlsScoreConfig {
  bool enabled = true;
  std::vector<uint16_t> ports{8443};
  uint64_t memory_bytes = 16ull << 20;  // (client, destination) records
  uint32_t max_flows = 65536;           // tracked TCP flows
  uint32_t hello_buffers = 256;         // ClientHellos being reassembled at once
  uint32_t hello_max_bytes = 16384;     // per ClientHello
  uint32_t flow_idle_seconds = 600;
  std::array<uint32_t, kWindows> windows{60, 600, 3600};
  // Bulk: upload in the middle window at least this large, with up/down >= ratio.
  uint64_t bulk_upload_bytes = 1000000;
  // Drip: over the longest window, this many upload-heavy flows and this much
  // uploaded in total.
  uint32_t drip_flows = 20;
  uint64_t drip_upload_bytes = 200000;
  uint32_t drip_flow_min_bytes = 4096;  // a flow counts as an upload when up >= this
  double upload_ratio = 3.0;            // up/down for both, never on downloads
};

struct ScoreConfig {
  DnsScoreConfig dns;
  TlsScoreConfig tls;
};

}  // namespace exfilwatch::score
