// delivery.cc: alert counts, stdout/syslog, the Alertmanager client (libcurl
// on its own thread).
#include "alert/delivery.h"

#include <curl/curl.h>
#include <syslog.h>

#include <chrono>
#include <cstdio>
#include <ctime>

#include "alert/json.h"

namespace exfilwatch {

namespace {

std::string rfc3339(std::time_t t) {
  char buf[32];
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

const char* severityLabel(int s) { return s <= 1 ? "critical" : s == 2 ? "warning" : "info"; }

// " (update)" repeats belong to the same Alertmanager alert (same labels).
std::string alertName(std::string signature) {
  const std::string_view suffix = " (update)";
  if (signature.size() > suffix.size() &&
      signature.compare(signature.size() - suffix.size(), suffix.size(), suffix) == 0) {
    signature.resize(signature.size() - suffix.size());
  }
  return signature;
}

size_t discard(char*, size_t size, size_t n, void*) { return size * n; }

}  // namespace

// ---- Alertmanager -----------------------------------------------------------

AlertmanagerClient::AlertmanagerClient(AlertmanagerConfig config, std::string sensor)
    : config_(std::move(config)), sensor_(std::move(sensor)) {
  endpoint_ = config_.url;
  while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
  endpoint_ += "/api/v2/alerts";
}

AlertmanagerClient::~AlertmanagerClient() { stop(0); }

void AlertmanagerClient::start() {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  thread_ = std::thread([this] { run(); });
}

void AlertmanagerClient::stop(uint32_t grace_ms) {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    give_up_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  }
  cv_.notify_all();
  thread_.join();
}

uint64_t AlertmanagerClient::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void AlertmanagerClient::enqueue(const AlertFields& a) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= config_.queue_size) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queue_.push_back(a);
  }
  cv_.notify_one();
}

std::string AlertmanagerClient::body(std::size_t n) const {
  // Called with mu_ held.
  const std::time_t now = std::time(nullptr);
  const std::string starts = rfc3339(now);
  const std::string ends = rfc3339(now + static_cast<std::time_t>(config_.resolve_seconds));
  std::string out = "[";
  for (std::size_t i = 0; i < n; ++i) {
    const AlertFields& a = queue_[i];
    JsonWriter w;
    w.openObject();
    w.openObject("labels");
    w.string("alertname", alertName(a.signature));
    w.string("severity", severityLabel(a.severity));
    w.string("category", a.category);
    w.string("client", a.src_ip);
    w.string("domain", a.domain.empty() ? a.dest_ip : a.domain);
    w.string("sensor", a.sensor.empty() ? sensor_ : a.sensor);
    w.string("signature_id", std::to_string(a.signature_id));
    w.closeObject();
    w.openObject("annotations");
    w.string("summary",
             a.signature + ": " + a.src_ip + " -> " + (a.domain.empty() ? a.dest_ip : a.domain));
    w.string("reasons", a.reasons);
    w.string("sample_names", a.rrname);
    w.string("first_seen", a.timestamp);
    w.string("flow_id", std::to_string(a.flow_id));  // the pivot into the EVE file
    w.closeObject();
    w.string("startsAt", starts);
    w.string("endsAt", ends);
    w.closeObject();
    if (i) out += ',';
    out += w.text();
  }
  out += ']';
  return out;
}

bool AlertmanagerClient::post(const std::string& body) {
  CURL* c = curl_easy_init();
  if (!c) return false;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, endpoint_.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.timeout_ms));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for timeouts
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
  const auto t0 = std::chrono::steady_clock::now();
  const CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  post_latency_.observeNs(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
          .count()));
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  return rc == CURLE_OK && status >= 200 && status < 300;
}

void AlertmanagerClient::run() {
  uint32_t backoff_ms = 0;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) break;  // stopping and nothing left
    if (stop_ && std::chrono::steady_clock::now() >= give_up_) break;
    // A batch stays queued until Alertmanager accepted it: nothing is lost
    // while it is down, only delayed (or dropped at the queue bound).
    const std::size_t n = std::min<std::size_t>(queue_.size(), config_.batch_size);
    const std::string payload = body(n);
    lock.unlock();
    const bool ok = post(payload);
    lock.lock();
    if (ok) {
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
      sent_.fetch_add(n, std::memory_order_relaxed);
      backoff_ms = 0;
      continue;
    }
    failed_.fetch_add(1, std::memory_order_relaxed);
    backoff_ms = backoff_ms ? std::min<uint32_t>(backoff_ms * 2, config_.retry_max_ms)
                            : std::min<uint32_t>(100, config_.retry_max_ms);
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(backoff_ms);
    if (stop_) until = std::min(until, give_up_);
    cv_.wait_until(lock, until,
                   [&] { return stop_ && std::chrono::steady_clock::now() >= give_up_; });
  }
}

// ---- the tap ------------------------------------------------------------------

AlertDelivery::AlertDelivery(const OutputConfig& output, const AlertmanagerConfig& alertmanager,
                             const std::string& sensor_name, uint32_t top_domains)
    : stdout_(output.stdout_alerts), syslog_(output.syslog_alerts), top_domains_(top_domains) {
  if (!alertmanager.url.empty()) {
    am_ = std::make_unique<AlertmanagerClient>(alertmanager, sensor_name);
  }
  if (syslog_) openlog("exfilwatch", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

AlertDelivery::~AlertDelivery() { stop(); }

void AlertDelivery::start() {
  if (am_) am_->start();
}

void AlertDelivery::stop() {
  // Shutdown: a few seconds to hand over what is queued, never forever.
  if (am_) am_->stop(5000);
}

void AlertDelivery::onLine(std::string_view line, const AlertFields* alert) {
  if (alert == nullptr) return;
  const AlertFields& a = *alert;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto key = std::make_pair(a.category, a.severity);
    auto it = counts_.find(key);
    if (it == counts_.end() && counts_.size() >= kMaxCategories) key.first = "other";
    ++counts_[key];
    // The same domain Alertmanager's `domain` label carries.
    const std::string& domain = a.domain.empty() ? a.dest_ip : a.domain;
    if (!domain.empty()) top_domains_.add(domain);
  }
  if (stdout_) {
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  if (syslog_) ::syslog(LOG_WARNING, "%.*s", static_cast<int>(line.size()), line.data());
  if (am_) am_->enqueue(a);
}

DeliveryStats AlertDelivery::stats() const {
  DeliveryStats s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [k, n] : counts_) s.alerts.push_back({k.first, k.second, n});
    for (const auto& e : top_domains_.sorted()) s.top_domains.emplace_back(e.key, e.count);
    s.top_domains_max = top_domains_.capacity();
    s.top_domain_evictions = top_domains_.evictions();
  }
  if (am_) {
    s.am_sent = am_->sent();
    s.am_dropped = am_->dropped();
    s.am_failed_posts = am_->failedPosts();
    s.am_queue = am_->queued();
    s.am_queue_capacity = am_->capacity();
    s.am_post_latency = &am_->postLatency();
  }
  return s;
}

}  // namespace exfilwatch
