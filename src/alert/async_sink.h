// async_sink.h: EVE output that never blocks a worker. Each worker writes
// through its own Producer (an EveSink) into a bounded single-producer ring;
// one writer thread drains every ring to the file. A full ring drops the
// line and counts it (a slow disk must cost alerts, visibly, not packets).
// stop() drains everything still queued and flushes: on shutdown no
// accepted line is lost.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "alert/eve.h"
#include "alert/rotating_file.h"
#include "common/spsc_ring.h"

namespace exfilwatch {

// Sees every line the writer wrote (writer thread only): alert delivery
// (Alertmanager, syslog, stdout, metrics) hangs off here, never off a worker.
// `alert`: the alert's fields as the worker handed them over, null for
// other records.
class EveLineTap {
 public:
  virtual ~EveLineTap() = default;
  virtual void onLine(std::string_view line, const AlertFields* alert) = 0;
};

class AsyncEveSink {
 public:
  class Producer final : public EveSink {
   public:
    Producer(AsyncEveSink& owner, std::size_t ring_bytes) : owner_(owner), ring_(ring_bytes) {}
    void write(std::string_view line) override;
    // The line and, behind it in the same ring record, the fields packed.
    void writeAlert(std::string_view line, const AlertFields& fields) override;
    void flush() override {}  // the writer flushes whenever it runs dry
    uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

   private:
    friend class AsyncEveSink;
    AsyncEveSink& owner_;
    void push(std::string_view line, const AlertFields* fields);
    SpscByteRing ring_;
    std::string packed_;                // reused
    std::atomic<uint64_t> dropped_{0};  // written by the producer thread only
  };

  // `out` is written by the writer thread only; closed at stop() when owned.
  AsyncEveSink(std::FILE* out, bool owned, std::size_t producers, std::size_t ring_bytes);
  // The same to a rotating file (output.rotate_*); SIGHUP -> requestReopen().
  AsyncEveSink(std::unique_ptr<RotatingFile> file, std::size_t producers, std::size_t ring_bytes);
  ~AsyncEveSink();

  // Before start(): `tap` must outlive stop().
  void setTap(EveLineTap* tap) { tap_ = tap; }
  // Any thread: reopen the rotating file (logrotate) before the next line.
  void requestReopen();
  uint64_t rotations() const { return file_ ? file_->rotations() : 0; }

  Producer& producer(std::size_t i) { return *producers_[i]; }
  void start();
  void stop();  // drains, flushes, joins; idempotent

  // Any thread (metrics scrape): worker i's queue towards the writer, in
  // bytes used (as last committed) and capacity.
  std::size_t producers() const { return producers_.size(); }
  std::size_t queuedBytes(std::size_t i) const { return producers_[i]->ring_.usedBytes(); }
  std::size_t queueCapacity(std::size_t i) const { return producers_[i]->ring_.capacity(); }

  uint64_t lines() const { return lines_.load(std::memory_order_relaxed); }
  uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }
  uint64_t dropped() const;

 private:
  void run();
  bool drainOnce();
  bool flushOut();
  AlertFields unpacked_;  // writer thread, reused
  void wake();

  std::FILE* out_;
  bool owned_;
  std::unique_ptr<RotatingFile> file_;  // instead of out_ when set
  EveLineTap* tap_ = nullptr;
  std::vector<std::unique_ptr<Producer>> producers_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> sleeping_{false};
  std::atomic<uint32_t> seq_{0};
  std::atomic<uint64_t> lines_{0};
  std::atomic<uint64_t> failures_{0};
};

}  // namespace exfilwatch
