// delivery.h: alert delivery beyond the EVE file, all on the EVE writer
// thread or their own threads, never on a worker: alert counts by category
// and severity (metrics), alert lines to stdout and syslog, and the
// Alertmanager API v2 client (batched POST /api/v2/alerts, retried with
// exponential backoff, through a bounded queue with a drop counter).
//
// Alerts come from the EVE writer with the fields the worker handed over
// beside each alert line (AlertFields), so every channel reports exactly what
// the EVE file holds, without parsing the JSON back.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "alert/alert.h"
#include "alert/alert_config.h"
#include "alert/async_sink.h"
#include "common/counters.h"
#include "common/top_k.h"

namespace exfilwatch {

class AlertmanagerClient {
 public:
  AlertmanagerClient(AlertmanagerConfig config, std::string sensor);
  ~AlertmanagerClient();
  void start();
  // Tries for up to `grace_ms` to deliver what is queued, then stops.
  void stop(uint32_t grace_ms);
  void enqueue(const AlertFields& a);  // drops (counted) when the queue is full

  uint64_t sent() const { return sent_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  uint64_t failedPosts() const { return failed_.load(std::memory_order_relaxed); }
  uint64_t queued() const;
  uint64_t capacity() const { return config_.queue_size; }
  const LatencyHistogram& postLatency() const { return post_latency_; }

 private:
  void run();
  bool post(const std::string& body);
  std::string body(std::size_t n) const;  // the first n queued alerts, JSON

  AlertmanagerConfig config_;
  std::string sensor_;
  std::string endpoint_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<AlertFields> queue_;
  bool stop_ = false;
  std::chrono::steady_clock::time_point give_up_{};
  std::thread thread_;
  std::atomic<uint64_t> sent_{0}, dropped_{0}, failed_{0};
  LatencyHistogram post_latency_;
};

// What delivery counted, copied out at scrape time (the sensor hands it to
// metrics).
struct DeliveryStats {
  struct AlertCount {
    std::string category;
    int severity = 0;
    uint64_t n = 0;
  };
  std::vector<AlertCount> alerts;  // written alert lines, by category and severity
  // Bounded top-K of alerted domains (Space-Saving estimates, at most
  // top_domains_max entries) and how many domains lost their place.
  std::vector<std::pair<std::string, uint64_t>> top_domains;
  uint64_t top_domains_max = 0, top_domain_evictions = 0;
  uint64_t am_sent = 0, am_dropped = 0, am_failed_posts = 0, am_queue = 0;
  uint64_t am_queue_capacity = 0;  // alertmanager.queue_size; 0: Alertmanager off
  const LatencyHistogram* am_post_latency = nullptr;  // null: Alertmanager off
};

class AlertDelivery final : public EveLineTap {
 public:
  // `top_domains`: domains the bounded per-domain count keeps (0: none).
  AlertDelivery(const OutputConfig& output, const AlertmanagerConfig& alertmanager,
                const std::string& sensor_name, uint32_t top_domains);
  ~AlertDelivery() override;
  void start();
  void stop();
  void onLine(std::string_view line, const AlertFields* alert) override;
  // Any thread (a metrics scrape): alert counts, Alertmanager figures.
  DeliveryStats stats() const;

 private:
  bool stdout_, syslog_;
  std::unique_ptr<AlertmanagerClient> am_;
  mutable std::mutex mu_;
  // (category, severity) -> alerts; bounded: past kMaxCategories, "other".
  static constexpr std::size_t kMaxCategories = 256;
  std::map<std::pair<std::string, int>, uint64_t> counts_;
  // Alerts per domain, bounded (metrics.top_domains): the Grafana "top
  // domains by alerts" panel without unbounded label cardinality.
  SpaceSaving top_domains_;
};

}  // namespace exfilwatch
