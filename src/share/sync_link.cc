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

void SyncLink::flush(PairSync& sync, score::DnsScorer& scorer, uint32_t now,
                     const std::function<void(const PairSync::Flush::Item&)>& changed) {
  PairSync::Flush f;
  if (!sync.collect(scorer, now, f)) return;
  fleet::BatchResult result;
  fleet::CommandBatch batch = f.batch;  // apply() reads the slots of f.batch
  ++stats_.flushes;
  if (!roundTrip(std::move(batch), result) || !result.ok()) ++stats_.failed;
  stats_.round_trip_ns += static_cast<uint64_t>(result.round_trip.count());
  sync.apply(f, result, changed);
}

}  // namespace exfilwatch::share
