// workers.h: the live sensor's threads. N workers, each with its own Asio
// io_context, its own SO_REUSEPORT tunnel socket(s) and its own Engine.
//
// Dispatch: by default the kernel spreads *outer* flows over the sockets,
// and AWS varies the outer source port per inner flow, so one client's
// queries would arrive at every worker. A reuseport BPF program
// (reuseport_steering.h, listen.kernel_steering) makes the kernel deliver
// each VXLAN datagram to the socket of its owner (clientHash % N) instead.
// Whatever still arrives elsewhere (GENEVE, frames the program cannot read,
// steering off or refused) is handed on: each receiver peeks the inner
// client address (inner_peek.h) and copies datagrams it does not own into a
// bounded SPSC ring to the owning worker, which runs them through its Engine. Per-client state
// (suppression now, volume scoring later) thus lives in exactly one Engine, without locks. A full
// ring drops the datagram and counts it (handoff_drops). Per-domain state (the DNS domain view)
// spans clients, so it is one table for the sensor, striped and locked (score/striped_table.h).
//
// Counters are written by their worker only and read by the control thread:
// plain relaxed loads/stores of per-worker atomics (no shared read-modify-
// write per packet). Engine statistics are copied into a snapshot at batch
// ends (at most every 50 ms) under a per-worker mutex the worker only
// try-locks, so a reader can never stall a worker.
#pragma once

#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "alert/async_sink.h"
#include "capture/port_lock.h"
#include "common/counters.h"
#include "common/spsc_ring.h"
#include "config/control_plane.h"
#include "engine/engine.h"

namespace exfilwatch {
namespace share {
class FleetService;
}  // namespace share

struct alignas(64) WorkerCounters {
  RelaxedCounter datagrams;       // received from this worker's sockets
  RelaxedCounter bytes;           // their wire bytes
  RelaxedCounter processed;       // run through this worker's Engine (own + handed in)
  RelaxedCounter handoff_out;     // copied to another worker's ring
  RelaxedCounter handoff_drops;   // refused by a full ring
  RelaxedCounter foreign_source;  // from a sender outside listen.sources, dropped undecoded
  RelaxedCounter kernel_drops;    // SO_RXQ_OVFL, cumulative, this worker's sockets
  RelaxedCounter socket_errors;
  RelaxedCounter batches;
  RelaxedCounter heartbeat;   // moves at every batch and every 100 ms tick
  RelaxedCounter generation;  // control plane generation in use
  // Wall time of one received batch through dispatch and the engine (the
  // per-stage latency metric); written by the worker only.
  LatencyHistogram batch_latency;
};

struct WorkerSnapshot {
  DecodeStats decode;
  EngineStats engine;
  WeirdCounters weird;
  uint64_t dns_pairs = 0, dns_evictions = 0, tls_pairs = 0;
  uint64_t dns_domain_verdicts = 0, dns_domain_suppressed = 0;  // this worker's
  // (rule id, lifetime hits); reuses its capacity between snapshots.
  std::vector<std::pair<uint32_t, uint64_t>> rule_hits;
};

class Worker;
class MemoryFeed;

class WorkerPool {
 public:
  // Takes the port locks (capture/port_lock.h) and opens every socket
  // (throws std::runtime_error on failure, another exfilwatch on the port
  // included); `warnings` collects non-fatal start-up notes (receive
  // buffer capped, any sender accepted...).
  WorkerPool(const ControlPlaneHolder& holder, const std::atomic<uint64_t>& generation,
             AsyncEveSink& sink, std::size_t workers, std::vector<std::string>& warnings);
  // Benchmarks (bench/worker_scaling): no sockets; worker i reads feeds[i]
  // (datagrams in memory, sensor/memory_feed.h) flat out through the same
  // dispatch, hand-off rings and Engine as the socket path, and goes idle
  // (still draining its inbound rings) once the feed is exhausted. A worker
  // whose hand-off ring to some owner is over half full waits for that owner
  // instead of reading more, so the figure is the no-loss throughput, not
  // a count of ring drops. The feeds must outlive the pool.
  WorkerPool(const ControlPlaneHolder& holder, const std::atomic<uint64_t>& generation,
             AsyncEveSink& sink, const std::vector<MemoryFeed*>& feeds);
  ~WorkerPool();

  // The fleet's shared state in Redis (docs/fleet.md): each worker gets its
  // own link to `service`, which must outlive the pool. Before start only.
  void setFleet(share::FleetService* service);

  void start();
  // Stops receiving, reads what the sockets already queued, finishes every
  // ring, joins. Idempotent.
  void stop();

  std::size_t size() const { return workers_.size(); }
  const WorkerCounters& counters(std::size_t i) const;
  WorkerSnapshot snapshot(std::size_t i) const;
  // The DNS domain view's records: the sensor's, shared by every worker
  // (or the one worker's own). Its counts are readable from any thread.
  const score::DomainTable& domainTable() const;
  uint64_t kernelDropsNow(std::size_t i) const;  // SO_MEMINFO, also tail drops
  uint16_t vxlanPort() const;                    // 0 on feeds
  // True when the kernel steers VXLAN datagrams to their owner's socket
  // (listen.kernel_steering, reuseport_steering.h).
  bool kernelSteering() const { return steering_; }

  // Any thread (metrics scrape): the hand-off rings towards worker i (one
  // per other worker): bytes queued in all of them, their total capacity,
  // and the fill ratio (0..1) of the fullest, which is what drops first.
  struct RingDepth {
    uint64_t used_bytes = 0, capacity_bytes = 0;
    double max_fill = 0;
  };
  RingDepth inboundRings(std::size_t i) const;

  // Called about once a second by the control thread: true when some worker
  // showed no progress for `stall_seconds` (stuck in a handler).
  bool anyStalled(uint32_t stall_seconds);

 private:
  friend class Worker;
  void connectWorkers();  // rings, shared seen-names set, barrier
  const ControlPlaneHolder& holder_;
  const std::atomic<uint64_t>& generation_;
  std::vector<std::unique_ptr<PortLock>> locks_;  // before the sockets, released after them
  std::vector<std::unique_ptr<Worker>> workers_;
  // rings_[producer * N + consumer]; null on the diagonal.
  std::vector<std::unique_ptr<SpscByteRing>> rings_;
  std::atomic<bool> stopping_{false};
  std::unique_ptr<std::barrier<>> drained_;
  std::vector<std::thread> threads_;
  std::vector<uint64_t> last_heartbeat_;
  std::vector<std::chrono::steady_clock::time_point> last_progress_;
  bool started_ = false;
  bool steering_ = false;
};

}  // namespace exfilwatch
