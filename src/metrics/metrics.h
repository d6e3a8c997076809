// metrics.h: the Prometheus endpoint: civetweb serves /metrics, prometheus-
// cpp's metric families and text format fill it. Nothing here runs on the
// packet path: at scrape time the handler asks the sensor for a Sample
// (per-worker counters and snapshots, summed then) and turns it into metric
// families. Workers keep plain per-thread counters; no shared atomic is
// touched per packet for metrics. (Not prometheus-cpp's Exposer: it adds its
// own request-latency summary, whose quantiles are NaN whenever no scrape
// happened in its window, on the same page.)
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "alert/delivery.h"
#include "common/counters.h"
#include "decode/decoder.h"
#include "decode/weird.h"
#include "engine/engine.h"

class CivetServer;

namespace exfilwatch::metrics {

// The process_* metrics every Prometheus client library exports (the
// names, units and types of client_golang's process collector), read from
// /proc at scrape time; prometheus-cpp has no process collector.
struct ProcessStats {
  bool ok = false;                // /proc/self/stat was readable
  double cpu_seconds = 0;         // user + system
  double resident_bytes = 0;      // RSS
  double virtual_bytes = 0;       // VSZ
  double open_fds = 0;            // entries of /proc/self/fd
  double max_fds = 0;             // RLIMIT_NOFILE (soft)
  double start_time_seconds = 0;  // Unix time the process started
};
ProcessStats readProcessStats();

// Everything one scrape reports; filled by the sensor (run_cmd.cc).
struct Sample {
  struct Source {        // one worker's sockets
    std::string worker;  // "0", "1", ...: the `worker` label, as on every per-worker series
    uint64_t datagrams = 0, bytes = 0, kernel_drops = 0, handoff_drops = 0, processed = 0;
    uint64_t handoff = 0;  // copied to another worker (what kernel steering did not place)
  };
  std::vector<Source> sources;
  DecodeStats decode;
  EngineStats engine;
  WeirdCounters weird;
  uint64_t dns_pairs = 0, dns_evictions = 0, tls_pairs = 0;
  // The domain view: records in use and recycled (one table per sensor),
  // verdicts raised and suppressed (summed over workers).
  uint64_t dns_domains = 0, dns_domain_evictions = 0;
  uint64_t dns_domain_verdicts = 0, dns_domain_suppressed = 0;
  std::vector<std::pair<uint32_t, uint64_t>> rule_hits;  // (rule id, hits)
  uint64_t eve_lines = 0, eve_drops = 0, eve_failures = 0, eve_rotations = 0;
  uint64_t reloads_ok = 0, reloads_failed = 0;
  double last_reload_seconds = 0, last_reload_success_seconds = 0;
  bool healthy = false;
  DeliveryStats delivery;  // alert counts, top domains, Alertmanager
  // Queue depths, read at scrape time (never counted per packet): each
  // worker's EVE queue, and the hand-off rings towards each worker.
  struct Queue {
    std::string worker;  // "0", "1", ...
    uint64_t used_bytes = 0, capacity_bytes = 0;
    double max_fill = 0;  // hand-off: the fullest of the worker's inbound rings
  };
  std::vector<Queue> eve_queues, handoff_rings;
  uint64_t evidence_packets = 0, evidence_drops = 0, evidence_files = 0;
  struct Stage {
    std::string name;
    std::vector<const LatencyHistogram*> parts;  // summed (e.g. one per worker)
  };
  std::vector<Stage> latency;
  std::string version;
  ProcessStats process;  // filled at scrape time by the server itself
  // The fleet's shared state in Redis (docs/fleet.md); not exported when off.
  struct Fleet {
    bool enabled = false, up = false;
    std::vector<std::pair<std::string, uint64_t>> errors;  // by kind
    uint64_t flushes = 0, dropped = 0, flush_failed = 0;
    const LatencyHistogram* round_trip = nullptr;
  } fleet;
};

class Server {
 public:
  using Sampler = std::function<void(Sample&)>;
  // Listens on `address` ("HOST:PORT", ":PORT" = every address) and serves
  // /metrics. Throws std::runtime_error when it cannot bind.
  Server(const std::string& address, Sampler sampler);
  ~Server();
  uint16_t port() const;

 private:
  std::unique_ptr<CivetServer> server_;
  std::shared_ptr<void> handler_;
};

// The text a scrape returns, without HTTP (tests, `promtool check metrics`).
std::string render(const Sample& s);

}  // namespace exfilwatch::metrics
