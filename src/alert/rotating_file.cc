// rotating_file.cc: rename-based rotation between whole lines.
#include "alert/rotating_file.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include <unistd.h>

namespace exfilwatch {

namespace {
// A large stdio buffer: the writer flushes when it runs dry, not per line.
constexpr std::size_t kBuffer = 1 << 20;

// After a crash (kill -9, power loss) the file may end in part of a line: the
// stdio buffer is written in kBuffer pieces, not whole lines. That part was
// never counted as written (AsyncEveSink counts after the flush), so it is cut
// off before appending: a restart never glues a new line onto a torn one.
void dropTornTail(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return;
  long end = (std::fseek(f, 0, SEEK_END) == 0) ? std::ftell(f) : -1;
  long keep = end;
  char buf[4096];
  if (end > 0 && std::fseek(f, end - 1, SEEK_SET) == 0 && std::fgetc(f) != '\n') {
    keep = 0;
    for (long pos = end; pos > 0 && keep == 0;) {
      const long n = pos >= static_cast<long>(sizeof buf) ? static_cast<long>(sizeof buf) : pos;
      pos -= n;
      if (std::fseek(f, pos, SEEK_SET) != 0 || std::fread(buf, 1, n, f) != static_cast<std::size_t>(n)) break;
      for (long i = n - 1; i >= 0; --i) {
        if (buf[i] == '\n') {
          keep = pos + i + 1;
          break;
        }
      }
    }
  }
  std::fclose(f);
  if (keep >= 0 && keep < end && ::truncate(path.c_str(), keep) != 0) {
    // Leave it: the line count check of the reader will show it.
  }
}
}  // namespace

RotatingFile::RotatingFile(std::string path, uint64_t rotate_bytes, uint32_t rotate_seconds,
                           uint32_t keep)
    : path_(std::move(path)), rotate_bytes_(rotate_bytes), rotate_seconds_(rotate_seconds),
      keep_(keep ? keep : 1) {
  if (!open()) throw std::runtime_error("cannot open " + path_ + ": " + std::strerror(errno));
}

RotatingFile::~RotatingFile() {
  if (f_) std::fclose(f_);
}

bool RotatingFile::open() {
  dropTornTail(path_);
  f_ = std::fopen(path_.c_str(), "a");
  if (!f_) return false;
  std::setvbuf(f_, nullptr, _IOFBF, kBuffer);
  std::fseek(f_, 0, SEEK_END);
  const long at = std::ftell(f_);
  size_ = at > 0 ? static_cast<uint64_t>(at) : 0;
  opened_ = now();
  return true;
}

std::time_t RotatingFile::now() const { return external_clock_ ? now_ : std::time(nullptr); }

bool RotatingFile::rotate() {
  bool ok = std::fclose(f_) == 0;
  f_ = nullptr;
  // FILE.(keep-1) -> FILE.keep ... FILE -> FILE.1; the oldest is overwritten.
  // Only the files that exist are shifted (a large keep must not cost a
  // rename per slot per rotation): count them once, then track.
  if (rotated_ == UINT32_MAX) {
    rotated_ = 0;
    struct stat st{};
    while (rotated_ < keep_ && ::stat((path_ + "." + std::to_string(rotated_ + 1)).c_str(), &st) == 0) ++rotated_;
  }
  const uint32_t top = std::min(keep_, rotated_ + 1);
  for (uint32_t i = top; i > 1; --i) {
    const std::string from = path_ + "." + std::to_string(i - 1);
    const std::string to = path_ + "." + std::to_string(i);
    std::rename(from.c_str(), to.c_str());  // a missing FILE.n is normal
  }
  if (std::rename(path_.c_str(), (path_ + ".1").c_str()) != 0 && errno != ENOENT) ok = false;
  rotated_ = top;
  if (!open()) return false;
  rotations_.fetch_add(1, std::memory_order_relaxed);
  return ok;
}

bool RotatingFile::maybeRotate(bool writing) {
  if (!f_ && !open()) return false;  // an earlier reopen failed: try again
  // A plain load first: the locked exchange only when a reopen was asked.
  if (reopen_.load(std::memory_order_relaxed) && reopen_.exchange(false, std::memory_order_acq_rel)) {
    // logrotate moved the file away: close (flushing into the moved file)
    // and open a fresh one at the configured path.
    const bool ok = std::fclose(f_) == 0;
    f_ = nullptr;
    if (!open()) return false;
    rotations_.fetch_add(1, std::memory_order_relaxed);
    return ok;
  }
  if (external_clock_) {
    // Replay: rotate only before a record, by the time of that record; the
    // file's age counts from its first record.
    if (!writing) return true;
    if (opened_ == kUnset) opened_ = now_;
  }
  if (size_ == 0) return true;  // never rotate an empty file
  if (rotate_bytes_ && size_ >= rotate_bytes_) return rotate();
  if (rotate_seconds_ && now() - opened_ >= static_cast<std::time_t>(rotate_seconds_)) {
    return rotate();
  }
  return true;
}

bool RotatingFile::writeLine(const char* data, std::size_t len) {
  bool ok = maybeRotate(true);
  if (!f_) return false;
  if (std::fwrite(data, 1, len, f_) != len || std::fputc('\n', f_) == EOF) ok = false;
  size_ += len + 1;
  return ok;
}

bool RotatingFile::flush() {
  bool ok = maybeRotate(false);
  if (!f_) return false;
  return std::fflush(f_) == 0 && ok;
}

}  // namespace exfilwatch
