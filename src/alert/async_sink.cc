// async_sink.cc: per-worker line rings, one writer thread.
#include "alert/async_sink.h"

#include <cstring>

namespace exfilwatch {

namespace {

// A ring record's tag: 0 for a plain line, else 1 + the line's length, the
// alert's fields packed after it (length-prefixed strings, then integers).
void packString(std::string& out, std::string_view s) {
  const auto n = static_cast<uint32_t>(s.size());
  out.append(reinterpret_cast<const char*>(&n), sizeof n);
  out.append(s);
}
template <class T>
void packInt(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
void pack(std::string& out, const AlertFields& f) {
  out.clear();
  for (const std::string* s : {&f.timestamp, &f.signature, &f.category, &f.src_ip, &f.dest_ip,
                               &f.domain, &f.rrname, &f.reasons, &f.sensor}) {
    packString(out, *s);
  }
  packInt(out, f.signature_id);
  packInt(out, f.flow_id);
  packInt(out, f.severity);
}

// The reader of what pack() wrote (same process, same layout).
class Unpacker {
 public:
  Unpacker(const uint8_t* p, std::size_t n) : p_(p), n_(n) {}
  bool string(std::string& out) {
    uint32_t len = 0;
    if (!get(&len, sizeof len) || len > n_ - at_) return false;
    out.assign(reinterpret_cast<const char*>(p_ + at_), len);
    at_ += len;
    return true;
  }
  template <class T>
  bool integer(T& v) {
    return get(&v, sizeof v);
  }

 private:
  bool get(void* v, std::size_t size) {
    if (size > n_ - at_) return false;
    std::memcpy(v, p_ + at_, size);
    at_ += size;
    return true;
  }
  const uint8_t* p_;
  std::size_t n_;
  std::size_t at_ = 0;
};

bool unpack(const uint8_t* p, std::size_t n, AlertFields& f) {
  Unpacker u(p, n);
  for (std::string* s : {&f.timestamp, &f.signature, &f.category, &f.src_ip, &f.dest_ip, &f.domain,
                         &f.rrname, &f.reasons, &f.sensor}) {
    if (!u.string(*s)) return false;
  }
  return u.integer(f.signature_id) && u.integer(f.flow_id) && u.integer(f.severity);
}

}  // namespace

void AsyncEveSink::Producer::push(std::string_view line, const AlertFields* fields) {
  const std::size_t extra = fields != nullptr ? packed_.size() : 0;
  const uint32_t tag = fields != nullptr ? static_cast<uint32_t>(line.size()) + 1 : 0;
  uint8_t* p = ring_.reserve(static_cast<uint32_t>(line.size() + extra), tag, 0);
  if (p == nullptr) {
    dropped_.store(dropped_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return;
  }
  std::memcpy(p, line.data(), line.size());
  if (extra) std::memcpy(p + line.size(), packed_.data(), extra);
  ring_.commit();
  // seq_cst load after the commit's seq_cst store: a writer that set
  // sleeping_ and re-checked the rings either saw this line or is woken.
  if (owner_.sleeping_.load(std::memory_order_seq_cst)) owner_.wake();
}

void AsyncEveSink::Producer::write(std::string_view line) { push(line, nullptr); }

void AsyncEveSink::Producer::writeAlert(std::string_view line, const AlertFields& fields) {
  pack(packed_, fields);
  push(line, &fields);
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
      // An alert record: the line, then its packed fields (tag = 1 + length).
      const bool alert = r.tag != 0 && r.tag - 1 <= r.len;
      const uint32_t line_len = alert ? r.tag - 1 : r.len;
      const bool ok = file_ ? file_->writeLine(reinterpret_cast<const char*>(r.data), line_len)
                            : (std::fwrite(r.data, 1, line_len, out_) == line_len &&
                               std::fputc('\n', out_) != EOF);
      if (ok) {
        ++written;
      } else {
        ++failed;
      }
      if (tap_) {
        const bool fields = alert && unpack(r.data + line_len, r.len - line_len, unpacked_);
        tap_->onLine(std::string_view(reinterpret_cast<const char*>(r.data), line_len),
                     fields ? &unpacked_ : nullptr);
      }
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
