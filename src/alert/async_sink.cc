// async_sink.cc: per-worker line rings, one writer thread.
#include "alert/async_sink.h"

namespace exfilwatch {

void AsyncEveSink::Producer::write(std::string_view line) {
  uint8_t* p = ring_.reserve(static_cast<uint32_t>(line.size()), 0, 0);
  if (p == nullptr) {
    dropped_.store(dropped_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return;
  }
  std::memcpy(p, line.data(), line.size());
  ring_.commit();
  // seq_cst load after the commit's seq_cst store: a writer that set
  // sleeping_ and re-checked the rings either saw this line or is woken.
  if (owner_.sleeping_.load(std::memory_order_seq_cst)) owner_.wake();
}

AsyncEveSink::AsyncEveSink(std::FILE* out, bool owned, std::size_t producers,
                           std::size_t ring_bytes)
    : out_(out), owned_(owned) {
  for (std::size_t i = 0; i < producers; ++i) {
    producers_.push_back(std::make_unique<Producer>(*this, ring_bytes));
  }
}

AsyncEveSink::AsyncEveSink(std::unique_ptr<RotatingFile> file, std::size_t producers,
                           std::size_t ring_bytes)
    : out_(nullptr), owned_(false), file_(std::move(file)) {
  for (std::size_t i = 0; i < producers; ++i) {
    producers_.push_back(std::make_unique<Producer>(*this, ring_bytes));
  }
}

AsyncEveSink::~AsyncEveSink() { stop(); }

void AsyncEveSink::requestReopen() {
  if (!file_) return;
  file_->requestReopen();
  wake();  // an idle writer applies it now, not at the next alert
}

bool AsyncEveSink::flushOut() {
  if (file_) return file_->flush();
  return out_ == nullptr || std::fflush(out_) == 0;
}

void AsyncEveSink::start() {
  thread_ = std::thread([this] { run(); });
}

void AsyncEveSink::wake() {
  seq_.fetch_add(1, std::memory_order_seq_cst);
  seq_.notify_one();
}

void AsyncEveSink::stop() {
  if (thread_.joinable()) {
    stop_.store(true, std::memory_order_seq_cst);
    wake();
    thread_.join();
  }
  if (file_ && !file_->flush()) failures_.fetch_add(1, std::memory_order_relaxed);
  if (out_ != nullptr) {
    if (std::fflush(out_) != 0) failures_.fetch_add(1, std::memory_order_relaxed);
    if (owned_) std::fclose(out_);
    out_ = nullptr;
  }
}

uint64_t AsyncEveSink::dropped() const {
  uint64_t n = 0;
  for (const auto& p : producers_) n += p->dropped();
  return n;
}

bool AsyncEveSink::drainOnce() {
  bool any = false;
  uint64_t written = 0;
  uint64_t failed = 0;
  for (auto& p : producers_) {
    SpscByteRing::Record r;
    while (p->ring_.peek(r)) {
      const bool ok =
          file_ ? file_->writeLine(reinterpret_cast<const char*>(r.data), r.len)
                : (std::fwrite(r.data, 1, r.len, out_) == r.len && std::fputc('\n', out_) != EOF);
      if (ok) {
        ++written;
      } else {
        ++failed;
      }
      if (tap_) tap_->onLine(std::string_view(reinterpret_cast<const char*>(r.data), r.len));
      p->ring_.pop(r);
      any = true;
    }
    p->ring_.release();
  }
  // Hand the batch to the kernel before counting it: eve_lines (stats) counts
  // only lines a crash of this process (kill -9) cannot lose. No fsync: see
  // docs/internals.md ("Crash safety") for what a power loss can cost.
  if (written) {
    if (flushOut()) {
      lines_.fetch_add(written, std::memory_order_relaxed);
    } else {
      failed += written;
    }
  }
  if (failed) failures_.fetch_add(failed, std::memory_order_relaxed);
  return any;
}

void AsyncEveSink::run() {
  for (;;) {
    if (drainOnce()) continue;
    // Ran dry: flush so a tailing reader sees complete alerts promptly.
    if (!flushOut()) failures_.fetch_add(1, std::memory_order_relaxed);
    const uint32_t seen = seq_.load(std::memory_order_seq_cst);
    sleeping_.store(true, std::memory_order_seq_cst);
    bool pending = false;
    for (auto& p : producers_) pending = pending || !p->ring_.empty();
    if (!pending) {
      if (stop_.load(std::memory_order_seq_cst)) break;
      seq_.wait(seen, std::memory_order_seq_cst);
    }
    sleeping_.store(false, std::memory_order_seq_cst);
  }
  sleeping_.store(false);
}

}  // namespace exfilwatch
