// sync_link.cc: replay's synchronous flushes (see sync_link.h).
#include "share/sync_link.h"

#include <future>

namespace exfilwatch::share {

SyncLink::SyncLink(const fleet::ConnectionSettings& settings,
                   std::chrono::milliseconds check_timeout)
    : wait_(std::chrono::milliseconds(settings.connect_timeout_ms +
                                      2 * settings.command_timeout_ms)) {
  const fleet::CheckResult check = fleet::checkConnection(settings, check_timeout);
  if (!check.ok) throw fleet::SettingsError(check.key, check.message);
  client_ = std::make_unique<fleet::RedisClient>(settings, fleet::ClientOptions{});
  client_->start();
}

SyncLink::~SyncLink() {
  if (client_) client_->stop();
}

bool SyncLink::roundTrip(fleet::CommandBatch&& batch, fleet::BatchResult& out) {
  const std::size_t n = batch.size();
  auto fail = [&](fleet::Failure f) {
    out = fleet::BatchResult{};
    out.replies.resize(n);
    out.failures.assign(n, f);
    out.failed = n;
    return false;
  };
  auto promise = std::make_shared<std::promise<fleet::BatchResult>>();
  auto future = promise->get_future();
  if (!client_->submit(std::move(batch),
                       [promise](fleet::BatchResult&& r) { promise->set_value(std::move(r)); })) {
    return fail(fleet::Failure::Expired);
  }
  // The client fails a batch itself after its queue timeout; this wait is
  // longer only as a guard.
  if (future.wait_for(wait_ + std::chrono::seconds(15)) != std::future_status::ready) {
    return fail(fleet::Failure::Timeout);
  }
  out = future.get();
  return true;
}

void SyncLink::finish(PairSync& sync,
                      const std::function<void(const PairSync::Flush::Item&)>& changed) {
  if (!pending_) return;
  fleet::BatchResult result;
  const std::size_t n = pending_->batch.size();
  if (pending_result_.wait_for(wait_ + std::chrono::seconds(15)) == std::future_status::ready) {
    result = pending_result_.get();
  } else {
    result.replies.resize(n);
    result.failures.assign(n, fleet::Failure::Timeout);
    result.failed = n;
  }
  if (!result.ok()) ++stats_.failed;
  stats_.round_trip_ns += static_cast<uint64_t>(result.round_trip.count());
  const std::unique_ptr<PairSync::Flush> done = std::move(pending_);
  const std::unique_ptr<TlsSync::Flush> done_tls = std::move(pending_tls_);
  sync.apply(*done, result, changed);
  if (done_tls && tls_ != nullptr) tls_->apply(done->batch, *done_tls, result, tls_changed_);
}

void SyncLink::flush(PairSync& sync, score::DnsScorer& scorer, uint32_t now,
                     const std::function<void(const PairSync::Flush::Item&)>& changed) {
  // Replay reads faster than Redis answers: while the previous flush is in
  // flight, up to kMaxSkips flush times pass without waiting (its deltas
  // then go with the next one), and only then does replay wait for it.
  if (pending_ && skipped_ < kMaxSkips &&
      pending_result_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    ++skipped_;
    ++stats_.skipped;
    return;
  }
  skipped_ = 0;
  finish(sync, changed);
  auto f = std::make_unique<PairSync::Flush>();
  const bool dns = sync.collect(scorer, now, *f);
  std::unique_ptr<TlsSync::Flush> tf;
  if (tls_ != nullptr) {
    tf = std::make_unique<TlsSync::Flush>();
    if (!tls_->collect(*tracker_, now, f->batch, *tf)) tf.reset();
  }
  if (!dns && !tf) return;
  ++stats_.flushes;
  auto promise = std::make_shared<std::promise<fleet::BatchResult>>();
  pending_result_ = promise->get_future();
  fleet::CommandBatch batch = f->batch;  // apply() reads the slots of f->batch
  pending_ = std::move(f);
  pending_tls_ = std::move(tf);
  if (!client_->submit(std::move(batch),
                       [promise](fleet::BatchResult&& r) { promise->set_value(std::move(r)); })) {
    fleet::BatchResult failed;
    const std::size_t n = pending_->batch.size();
    failed.replies.resize(n);
    failed.failures.assign(n, fleet::Failure::Expired);
    failed.failed = n;
    promise->set_value(std::move(failed));
  }
}

}  // namespace exfilwatch::share
