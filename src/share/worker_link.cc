// worker_link.cc: the live sensor's asynchronous flushes (see worker_link.h).
#include "share/worker_link.h"

#include <cstdio>

namespace exfilwatch::share {

FleetService::FleetService(const fleet::ConnectionSettings& settings,
                           std::chrono::milliseconds check_timeout)
    : settings_(settings) {
  const fleet::CheckResult check = fleet::checkConnection(settings, check_timeout);
  if (!check.ok) throw fleet::SettingsError(check.key, check.message);
  fleet::ClientOptions o;
  const std::string url = settings.url;
  o.on_state = [url](bool up, const std::string& reason) {
    // Once per change (the client calls it so): the operator's log line.
    if (up) {
      std::fprintf(stderr, "exfilwatch: fleet: Redis %s up; sharing detection state\n",
                   url.c_str());
    } else {
      std::fprintf(stderr,
                   "exfilwatch: fleet: Redis %s down (%s); detecting on local state, "
                   "reconnecting with backoff\n",
                   url.c_str(), reason.c_str());
    }
  };
  o.on_round_trip = [this](uint64_t ns) { counters_.round_trip.observeNs(ns); };
  client_ = std::make_unique<fleet::RedisClient>(settings, std::move(o));
  client_->start();
}

FleetService::~FleetService() { stop(); }

void FleetService::stop() {
  if (client_) client_->stop();
}

WorkerLink::WorkerLink(FleetService& service, const score::DnsScoreConfig& cfg, Post post)
    : service_(service),
      sync_(cfg,
            [&] {
              ShareOptions o;
              o.key_prefix = service.settings().key_prefix;
              return o;
            }()),
      post_(std::move(post)),
      alive_(std::make_shared<Alive>()),
      every_(std::max<uint32_t>(service.settings().flush_ms, 1)) {}

WorkerLink::~WorkerLink() {
  std::lock_guard lock(alive_->mu);
  alive_->alive = false;
}

TlsSync& WorkerLink::attachTls(const score::TlsScoreConfig& cfg, score::TlsTracker& tracker,
                               std::function<void(const TlsSync::Flush::Item&)> changed,
                               std::function<void(const std::string&, const std::any&)> emit) {
  ShareOptions o;
  o.key_prefix = service_.settings().key_prefix;
  tls_ = std::make_unique<TlsSync>(cfg, o);
  tls_->setDeferClaims(true);
  tracker_ = &tracker;
  tls_changed_ = std::move(changed);
  tls_emit_ = std::move(emit);
  return *tls_;
}

void WorkerLink::tick(score::DnsScorer& scorer, uint32_t now_sec,
                      const std::function<void(const PairSync::Flush::Item&)>& changed,
                      const std::function<void(const std::string&, const std::any&)>& emit) {
  if (in_flight_) return;  // one flush at a time: the next one's deltas build on its reply
  const auto now = std::chrono::steady_clock::now();
  if (now - last_flush_ < every_) return;
  last_flush_ = now;
  auto flush = std::make_shared<PairSync::Flush>();
  const bool dns = sync_.collect(scorer, now_sec, *flush);
  std::shared_ptr<TlsSync::Flush> tls;
  if (tls_) {
    tls = std::make_shared<TlsSync::Flush>();
    if (!tls_->collect(*tracker_, now_sec, flush->batch, *tls)) tls.reset();
  }
  if (!dns && !tls) return;
  FleetCounters& c = service_.counters();
  c.flushes.fetch_add(1, std::memory_order_relaxed);
  in_flight_ = flush;
  auto done = [this, flush, tls, changed, emit](fleet::BatchResult&& result) {
    if (!result.ok()) service_.counters().flush_failed.fetch_add(1, std::memory_order_relaxed);
    sync_.apply(*flush, result, changed, emit);
    if (tls) tls_->apply(flush->batch, *tls, result, tls_changed_, tls_emit_);
    in_flight_.reset();
  };
  fleet::CommandBatch batch = flush->batch;  // apply() reads the slots of flush->batch
  auto alive = alive_;
  const bool queued = service_.client().submit(
      std::move(batch), [alive, post = post_, done](fleet::BatchResult&& result) mutable {
        std::lock_guard lock(alive->mu);
        if (!alive->alive) return;
        post([done, r = std::move(result)]() mutable { done(std::move(r)); });
      });
  if (!queued) {
    // Over the client's bound (Redis slow or down for long): dropped and
    // counted; the deltas go again with the next flush.
    c.dropped.fetch_add(1, std::memory_order_relaxed);
    fleet::BatchResult failed;
    failed.replies.resize(flush->batch.size());
    failed.failures.assign(flush->batch.size(), fleet::Failure::Expired);
    failed.failed = flush->batch.size();
    done(std::move(failed));
  }
}

}  // namespace exfilwatch::share
