// workers.cc: the receive loop, the hand-off rings and shutdown draining.
#include "sensor/workers.h"

#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <stdexcept>

#include "capture/reuseport_steering.h"
#include "capture/udp_listener.h"
#include "decode/inner_peek.h"
#include "sensor/memory_feed.h"
#include "share/worker_link.h"

namespace exfilwatch {

namespace {
constexpr int kBatchesPerTurn = 256;  // then yield to the other sockets and timers
constexpr uint32_t kInboundPerTurn = 4096;
constexpr auto kSnapshotEvery = std::chrono::milliseconds(50);
constexpr auto kTick = std::chrono::milliseconds(100);
constexpr uint32_t kGeneveTag = 0x80000000U;  // ring tag: high bit = GENEVE, low bits = wire length
constexpr uint32_t kOuterTag = 0x40000000U;   // the record starts with the datagram's FrameOuter
}  // namespace

class Worker {
  // First member: everything bound to it (sockets, eventfd, timer) is
  // declared later and so destroyed before it.
  boost::asio::io_context io_{1};

 public:
  // Before start only: see WorkerPool's constructor.
  void shareSeenNamesWith(const Worker& first) { engine_.shareSeenNames(first.engine_); }
  void shareDomainTable(std::shared_ptr<score::DomainTable> table) {
    engine_.shareDomainTable(std::move(table));
  }
  const score::DomainTable& domainTable() const { return engine_.dnsScorer().domainTable(); }

  // `feed` (benchmarks): no sockets, datagrams from memory instead.
  Worker(std::size_t id, WorkerPool& pool, const ListenConfig& listen, EveSink& sink,
         std::vector<std::string>& warnings, MemoryFeed* feed = nullptr)
      : id_(id),
        pool_(pool),
        engine_(pool.holder_.load(), sink),
        wake_(io_),
        timer_(io_),
        feed_(feed) {
    const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) throw std::runtime_error("eventfd failed");
    wake_.assign(efd);
    seen_generation_ = pool.generation_.load(std::memory_order_acquire);
    counters_.generation.set(engine_.plane().generation);
    if (feed_ != nullptr) return;
    UdpListenerOptions o;
    o.address = listen.address;
    o.rcvbuf_bytes = listen.rcvbuf_bytes;
    o.batch_size = listen.batch_size;
    o.max_datagram_bytes = listen.max_datagram_bytes;
    o.port = listen.vxlan_port;
    o.kind = LinkType::VxlanPayload;
    o.sources = listen.sources;
    std::string warning;
    listeners_.push_back(std::make_unique<UdpListener>(io_, o, warning));
    if (!warning.empty() && id == 0) warnings.push_back(warning);
    if (listen.geneve_enabled) {
      o.port = listen.geneve_port;
      o.kind = LinkType::GenevePayload;
      warning.clear();
      listeners_.push_back(std::make_unique<UdpListener>(io_, o, warning));
      if (!warning.empty() && id == 0) warnings.push_back(warning);
    }
  }

  // The kernel-side dispatch (reuseport_steering.h), attached to the VXLAN
  // group through this worker's socket. False with the reason in `error`.
  bool attachSteering(std::size_t workers, std::string& error) {
    if (listeners_.empty()) return false;
    return attachReuseportProgram(listeners_.front()->nativeHandle(),
                                  vxlanSteeringProgram(static_cast<uint32_t>(workers)), error);
  }

  // Before start only (WorkerPool::setFleet).
  void attachFleet(share::FleetService& service) {
    link_ = std::make_unique<share::WorkerLink>(
        service, engine_.plane().config.score.dns,
        [this](std::function<void()> f) { boost::asio::post(io_, std::move(f)); });
    link_->sync().setDeferClaims(true);
    engine_.setSharedState(&link_->sync());
    fleet_changed_ = [this](const share::PairSync::Flush::Item& it) {
      engine_.reevaluateShared(it.key, it.domain, it.client, it.server, it.last_seen);
    };
    fleet_emit_ = [this](const std::string& line, const std::any& fields) {
      engine_.writeSharedAlert(line, fields);
    };
    engine_.setTlsSharedState(&link_->attachTls(
        engine_.plane().config.score.tls, engine_.mutableTlsTracker(),
        [this](const share::TlsSync::Flush::Item& it) {
          engine_.reevaluateSharedTls(it.key, it.client, it.server, it.port, it.last_seen);
        },
        fleet_emit_));
  }

  void connect(std::size_t n) {
    n_ = n;
    out_.assign(n, nullptr);
    dirty_.assign(n, 0);
    for (std::size_t o = 0; o < n; ++o) {
      if (o != id_) {
        out_[o] = pool_.rings_[id_ * n + o].get();
        in_.push_back(pool_.rings_[o * n + id_].get());
      }
    }
  }

  void run() {
    char name[16];
    std::snprintf(name, sizeof name, "exfw-worker-%zu", id_);
    pthread_setname_np(pthread_self(), name);
    for (std::size_t k = 0; k < listeners_.size(); ++k) armSocket(k);
    if (feed_ != nullptr) {
      boost::asio::post(io_, [this] { onFeed(); });
    }
    armWake();
    armTimer();
    io_.run();
  }

  // Eventfd write: the consumer may be asleep in epoll.
  void wakeUp() {
    const uint64_t one = 1;
    [[maybe_unused]] const auto r = ::write(wake_.native_handle(), &one, sizeof one);
  }

  void requestFinish() {
    boost::asio::post(io_, [this] { finish(); });
  }

  WorkerCounters counters_;
  mutable std::mutex snap_mu_;
  WorkerSnapshot snap_;
  std::vector<std::unique_ptr<UdpListener>> listeners_;

 private:
  void armSocket(std::size_t k) {
    listeners_[k]->waitReadable([this, k](const boost::system::error_code& ec) {
      if (ec || finished_) return;
      onReadable(k);
    });
  }
  void armWake() {
    wake_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                     [this](const boost::system::error_code& ec) {
                       if (ec || finished_) return;
                       uint64_t v = 0;
                       [[maybe_unused]] const auto r = ::read(wake_.native_handle(), &v, sizeof v);
                       drainInbound();
                       housekeeping(false);
                       armWake();
                     });
  }
  void armTimer() {
    timer_.expires_after(kTick);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || finished_) return;
      housekeeping(true);
      timespec now{};
      ::clock_gettime(CLOCK_REALTIME, &now);
      // Idle workers still age out fragments and TCP streams.
      if (now.tv_sec != last_expire_sec_) {
        last_expire_sec_ = now.tv_sec;
        engine_.expire(Timestamp{now.tv_sec, static_cast<int32_t>(now.tv_nsec / 1000)});
      }
      armTimer();
    });
  }

  void onReadable(std::size_t k) {
    for (int b = 0; b < kBatchesPerTurn; ++b) {
      if (pool_.stopping_.load(std::memory_order_relaxed)) return;  // finish() takes over
      if (!receiveOne(*listeners_[k])) {
        armSocket(k);  // drained to EAGAIN: wait for readability again
        return;
      }
      drainInbound();
      housekeeping(false);
    }
    // Still data after a full turn: let the other sockets and timers run first.
    boost::asio::post(io_, [this, k] {
      if (!finished_) onReadable(k);
    });
  }

  // The feed's stand-in for onReadable: the same turn of kBatchesPerTurn
  // batches, each through receiveOne, then a repost (a loaded socket never
  // reaches EAGAIN either). Ends when the feed is exhausted. While a
  // hand-off ring is over half full it reads nothing new and only drains
  // its own inbound rings, so the owner catches up instead of dropping.
  void onFeed() {
    for (int b = 0; b < kBatchesPerTurn; ++b) {
      if (finished_ || pool_.stopping_.load(std::memory_order_relaxed)) return;
      if (outboundBacklogged()) {
        drainInbound();
        housekeeping(false);
        break;
      }
      if (!receiveOne(*feed_)) return;  // exhausted: idle, still woken for hand-offs
      drainInbound();
      housekeeping(false);
    }
    boost::asio::post(io_, [this] {
      if (!finished_) onFeed();
    });
  }

  bool outboundBacklogged() const {
    for (const SpscByteRing* ring : out_) {
      if (ring != nullptr && ring->usedBytes() > ring->capacity() / 2) return true;
    }
    return false;
  }

  // One receive batch (recvmmsg, or a MemoryFeed's) through dispatch and
  // the engine; false at EAGAIN (or an exhausted feed).
  template <typename Source>
  bool receiveOne(Source& l) {
    const uint32_t n = l.receiveBatch();
    counters_.socket_errors.set(socketErrors());
    if (n == 0) return false;
    const auto batch_start = std::chrono::steady_clock::now();
    const Timestamp ts = l.batchTime();
    const bool vxlan = l.kind() == LinkType::VxlanPayload;
    const bool filtering = l.filtering();
    uint64_t bytes = 0;
    uint64_t foreign = 0;
    uint64_t processed = 0;
    uint64_t handed = 0;
    uint64_t drops = 0;
    for (uint32_t i = 0; i < n; ++i) {
      const uint8_t* data = l.data(i);
      const uint32_t caplen = l.caplen(i);
      const uint32_t wirelen = l.wirelen(i);
      bytes += wirelen;
      // listen.sources: a forged sender's bytes never reach a decoder.
      if (filtering && l.foreign(i)) {
        ++foreign;
        continue;
      }
      FrameOuter outer;
      l.outer(i, outer);
      if (n_ > 1) {
        InnerFlow flow;
        // Unreadable datagrams stay here: the decoder counts them by name.
        if (peekInnerFlow(data, caplen, vxlan, flow)) {
          const std::size_t owner = clientHash(flow) % n_;
          if (owner != id_) {
            // The outer addresses travel with the datagram (EVE `tunnel`).
            const bool with_outer = outer.src.family != 0;
            const uint32_t head = with_outer ? sizeof(FrameOuter) : 0;
            const uint32_t tag =
                (wirelen & 0xFFFFU) | (vxlan ? 0 : kGeneveTag) | (with_outer ? kOuterTag : 0);
            uint8_t* slot = out_[owner]->reserve(head + caplen, tag, ts.micros());
            if (slot == nullptr) {
              ++drops;
            } else {
              if (with_outer) std::memcpy(slot, &outer, sizeof outer);
              std::memcpy(slot + head, data, caplen);
              dirty_[owner] = 1;
              ++handed;
            }
            continue;
          }
        }
      }
      process(data, caplen, wirelen, ts, l.kind(), outer);
      ++processed;
    }
    for (std::size_t o = 0; o < n_; ++o) {
      if (dirty_[o]) {
        dirty_[o] = 0;
        if (out_[o]->commit()) pool_.workers_[o]->wakeUp();
      }
    }
    counters_.datagrams.add(n);
    counters_.bytes.add(bytes);
    counters_.processed.add(processed);
    counters_.handoff_out.add(handed);
    if (drops) counters_.handoff_drops.add(drops);
    if (foreign) counters_.foreign_source.add(foreign);
    counters_.batches.add(1);
    counters_.batch_latency.observeNs(
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::steady_clock::now() - batch_start)
                                  .count()));
    uint64_t kdrops = 0;
    for (const auto& s : listeners_) kdrops += s->kernelDropsSeen();
    counters_.kernel_drops.set(kdrops);
    dirty_snapshot_ = true;
    return true;
  }

  void process(const uint8_t* data, uint32_t caplen, uint32_t wirelen, Timestamp ts, LinkType kind,
               const FrameOuter& outer) {
    Frame f;
    f.data = data;
    f.caplen = caplen;
    f.wirelen = wirelen;
    f.ts = ts;
    f.linktype = static_cast<int>(kind);
    f.outer = outer;
    engine_.process(f, 0);
  }

  // Runs what other receivers handed us. Bounded per turn; if records
  // remain, a continuation is posted (their producer will not wake us again
  // while we lag behind).
  void drainInbound() {
    if (in_.empty()) return;
    uint32_t budget = kInboundPerTurn;
    uint64_t processed = 0;
    for (;;) {
      bool any = false;
      for (SpscByteRing* ring : in_) {
        SpscByteRing::Record r;
        while (budget > 0 && ring->peek(r)) {
          Timestamp ts{r.aux / 1000000, static_cast<int32_t>(r.aux % 1000000)};
          const LinkType kind =
              (r.tag & kGeneveTag) ? LinkType::GenevePayload : LinkType::VxlanPayload;
          FrameOuter outer;
          uint32_t head = 0;
          if ((r.tag & kOuterTag) && r.len >= sizeof outer) {
            std::memcpy(&outer, r.data, sizeof outer);
            head = sizeof outer;
          }
          process(r.data + head, r.len - head, r.tag & 0xFFFFU, ts, kind, outer);
          ring->pop(r);
          ++processed;
          --budget;
          any = true;
        }
        ring->release();
      }
      if (budget == 0) {
        boost::asio::post(io_, [this] {
          if (!finished_) drainInbound();
        });
        break;
      }
      if (!any) {
        // release() then empty(), both seq_cst: pairs with commit() so a
        // producer either sees us caught up (and wakes us) or we see it.
        bool all_empty = true;
        for (SpscByteRing* ring : in_) all_empty = all_empty && ring->empty();
        if (all_empty) break;
      }
    }
    if (processed) {
      counters_.processed.add(processed);
      dirty_snapshot_ = true;
    }
  }

  void housekeeping(bool tick) {
    counters_.heartbeat.add(1);
    if (link_) {
      timespec now{};
      ::clock_gettime(CLOCK_REALTIME, &now);
      link_->tick(engine_.mutableDnsScorer(), static_cast<uint32_t>(now.tv_sec), fleet_changed_,
                  fleet_emit_);
    }
    const uint64_t gen = pool_.generation_.load(std::memory_order_acquire);
    if (gen != seen_generation_) {
      // Between batches, never mid-packet: adopt the newest control plane.
      engine_.adopt(pool_.holder_.load());
      seen_generation_ = gen;
      counters_.generation.set(engine_.plane().generation);
    }
    if (!dirty_snapshot_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!tick && now - last_snapshot_ < kSnapshotEvery) return;
    publishSnapshot(false);
    last_snapshot_ = now;
  }

  void publishSnapshot(bool must) {
    std::unique_lock<std::mutex> lock(snap_mu_, std::defer_lock);
    if (must) {
      lock.lock();
    } else if (!lock.try_lock()) {
      return;  // a reader holds it: try again next batch rather than wait
    }
    snap_.decode = engine_.decodeStats();
    snap_.engine = engine_.stats();
    snap_.weird = engine_.weird();
    // Counted before decoding, reported with the other socket anomalies.
    snap_.weird.add(Weird::SocketForeignSource, counters_.foreign_source.get());
    snap_.dns_pairs = engine_.dnsScorer().pairs();
    snap_.dns_evictions = engine_.dnsScorer().evictions();
    snap_.dns_domain_verdicts = engine_.dnsScorer().stats().domain_verdicts;
    snap_.dns_domain_suppressed = engine_.dnsScorer().stats().domain_suppressed;
    snap_.tls_pairs = engine_.tlsTracker().pairs();
    snap_.rule_hits.clear();
    if (const rules::RuleSet* set = engine_.ruleMatcher().ruleSet()) {
      const auto& hits = engine_.ruleMatcher().ruleHits();
      for (std::size_t i = 0; i < hits.size() && i < set->rules().size(); ++i) {
        if (hits[i]) snap_.rule_hits.emplace_back(set->rule(static_cast<uint32_t>(i)).id, hits[i]);
      }
    }
    dirty_snapshot_ = false;
  }

  uint64_t socketErrors() const {
    uint64_t e = 0;
    for (const auto& s : listeners_) e += s->errors();
    return e;
  }

  // Shutdown: stop waiting, read what the kernel already queued (bounded,
  // so a flood cannot hold shutdown forever), hand off, wait until every
  // worker did the same, then run everything left in our inbound rings.
  void finish() {
    finished_ = true;
    for (auto& l : listeners_) l->cancel();
    timer_.cancel();
    boost::system::error_code ec;
    wake_.cancel(ec);
    for (auto& l : listeners_) {
      // More than the buffer can hold (small datagrams cost >= 256 bytes of
      // it), so whatever was queued at the signal is read.
      const uint64_t cap = static_cast<uint64_t>(l->effectiveRcvbuf()) / 256 + 1024;
      const uint64_t start = counters_.datagrams.get();
      while (counters_.datagrams.get() - start < cap && receiveOne(*l)) {
      }
    }
    pool_.drained_->arrive_and_wait();
    for (;;) {
      drainInbound();
      bool all_empty = true;
      for (SpscByteRing* ring : in_) all_empty = all_empty && ring->empty();
      if (all_empty) break;
    }
    io_.stop();
    publishSnapshot(true);
    counters_.heartbeat.add(1);
  }

  std::size_t id_;
  WorkerPool& pool_;
  Engine engine_;
  // The fleet's shared state (docs/fleet.md), or null; its replies come
  // back through io_ and run here, like everything else of this engine.
  std::unique_ptr<share::WorkerLink> link_;
  std::function<void(const share::PairSync::Flush::Item&)> fleet_changed_;
  std::function<void(const std::string&, const std::any&)> fleet_emit_;
  boost::asio::posix::stream_descriptor wake_;
  boost::asio::steady_timer timer_;
  std::size_t n_ = 1;
  std::vector<SpscByteRing*> out_;
  std::vector<uint8_t> dirty_;
  std::vector<SpscByteRing*> in_;
  uint64_t seen_generation_ = 0;
  bool dirty_snapshot_ = true;
  bool finished_ = false;
  int64_t last_expire_sec_ = 0;
  std::chrono::steady_clock::time_point last_snapshot_{};
  MemoryFeed* feed_ = nullptr;
};

WorkerPool::WorkerPool(const ControlPlaneHolder& holder, const std::atomic<uint64_t>& generation,
                       AsyncEveSink& sink, std::size_t workers, std::vector<std::string>& warnings)
    : holder_(holder), generation_(generation) {
  const ListenConfig listen = holder.load()->config.listen;
  locks_.push_back(std::make_unique<PortLock>(listen.address, listen.vxlan_port));
  if (listen.geneve_enabled) {
    locks_.push_back(std::make_unique<PortLock>(listen.address, listen.geneve_port));
  }
  if (listen.sources.empty()) {
    warnings.push_back(
        "listen.sources is empty: any host that reaches the tunnel port can feed this sensor "
        "(forged VXLAN can inject alerts or flood state); list the mirror sources' CIDRs");
  }
  for (std::size_t i = 0; i < workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, *this, listen, sink.producer(i), warnings));
  }
  connectWorkers();
  // The workers bound their VXLAN sockets in order, so socket index i in the
  // reuseport group is worker i: the program's answer is the owner.
  if (workers > 1 && listen.kernel_steering) {
    std::string error;
    steering_ = workers_.front()->attachSteering(workers, error);
    if (!steering_) {
      warnings.push_back("listen.kernel_steering: " + error +
                         "; datagrams reach their owner by hand-off between workers instead");
    }
  }
}

WorkerPool::WorkerPool(const ControlPlaneHolder& holder, const std::atomic<uint64_t>& generation,
                       AsyncEveSink& sink, const std::vector<MemoryFeed*>& feeds)
    : holder_(holder), generation_(generation) {
  const ListenConfig listen = holder.load()->config.listen;
  std::vector<std::string> warnings;
  for (std::size_t i = 0; i < feeds.size(); ++i) {
    workers_.push_back(
        std::make_unique<Worker>(i, *this, listen, sink.producer(i), warnings, feeds[i]));
  }
  connectWorkers();
}

void WorkerPool::connectWorkers() {
  const std::size_t workers = workers_.size();
  const ListenConfig listen = holder_.load()->config.listen;
  rings_.resize(workers * workers);
  for (std::size_t p = 0; p < workers; ++p) {
    for (std::size_t c = 0; c < workers; ++c) {
      if (p != c)
        rings_[p * workers + c] = std::make_unique<SpscByteRing>(listen.handoff_ring_bytes);
    }
  }
  for (auto& w : workers_) w->connect(workers);
  // One set of "names already seen" for the whole sensor: the hand-off puts
  // each client on one worker, but novelty is a property of the name, not of
  // the client (AV and CDN names are shared by many clients).
  for (std::size_t i = 1; i < workers_.size(); ++i) workers_[i]->shareSeenNamesWith(*workers_[0]);
  // One domain view for the whole sensor too: a leak spread over hosts is
  // spread over workers, and each worker alone would see only its part.
  // `score.dns.domain.memory_bytes` is the sensor's budget; one worker keeps
  // its engine's own table (no locks).
  if (workers > 1) {
    auto table = std::make_shared<score::DomainTable>(
        holder_.load()->config.score.dns.domain_memory_bytes, true);
    for (auto& w : workers_) w->shareDomainTable(table);
  }
  drained_ = std::make_unique<std::barrier<>>(static_cast<std::ptrdiff_t>(workers));
  last_heartbeat_.assign(workers, 0);
  last_progress_.assign(workers, std::chrono::steady_clock::now());
}

WorkerPool::~WorkerPool() { stop(); }

void WorkerPool::setFleet(share::FleetService* service) {
  if (service == nullptr || started_) return;
  for (auto& w : workers_) w->attachFleet(*service);
}

void WorkerPool::start() {
  started_ = true;
  for (auto& w : workers_) threads_.emplace_back([p = w.get()] { p->run(); });
}

void WorkerPool::stop() {
  if (!started_) return;
  started_ = false;
  stopping_.store(true, std::memory_order_relaxed);
  for (auto& w : workers_) w->requestFinish();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

const WorkerCounters& WorkerPool::counters(std::size_t i) const { return workers_[i]->counters_; }

const score::DomainTable& WorkerPool::domainTable() const { return workers_[0]->domainTable(); }

WorkerSnapshot WorkerPool::snapshot(std::size_t i) const {
  std::lock_guard<std::mutex> lock(workers_[i]->snap_mu_);
  return workers_[i]->snap_;
}

uint64_t WorkerPool::kernelDropsNow(std::size_t i) const {
  uint64_t n = 0;
  for (const auto& l : workers_[i]->listeners_) n += l->kernelDropsNow();
  return n;
}

WorkerPool::RingDepth WorkerPool::inboundRings(std::size_t i) const {
  RingDepth d;
  const std::size_t n = workers_.size();
  for (std::size_t p = 0; p < n; ++p) {
    const SpscByteRing* ring = p == i ? nullptr : rings_[p * n + i].get();
    if (ring == nullptr) continue;
    const std::size_t used = ring->usedBytes();
    d.used_bytes += used;
    d.capacity_bytes += ring->capacity();
    d.max_fill =
        std::max(d.max_fill, static_cast<double>(used) / static_cast<double>(ring->capacity()));
  }
  return d;
}

uint16_t WorkerPool::vxlanPort() const {
  const auto& listeners = workers_.front()->listeners_;
  return listeners.empty() ? 0 : listeners.front()->localPort();
}

bool WorkerPool::anyStalled(uint32_t stall_seconds) {
  const auto now = std::chrono::steady_clock::now();
  bool stalled = false;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    const uint64_t hb = workers_[i]->counters_.heartbeat.get();
    if (hb != last_heartbeat_[i]) {
      last_heartbeat_[i] = hb;
      last_progress_[i] = now;
    } else if (now - last_progress_[i] >= std::chrono::seconds(stall_seconds)) {
      stalled = true;
    }
  }
  return stalled;
}

}  // namespace exfilwatch
