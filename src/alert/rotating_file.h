// rotating_file.h: the EVE file, rotated by size or age and reopened on
// request (SIGHUP, for logrotate). Used by the single EVE writer thread
// only; rotation happens between whole lines, so no record is torn or lost:
// FILE is renamed to FILE.1 (older ones shift up to FILE.keep) and a new
// FILE is opened before the next line is written.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>

#include "alert/eve.h"

namespace exfilwatch {

class RotatingFile {
 public:
  // Opens `path` for appending; throws std::runtime_error when it cannot.
  RotatingFile(std::string path, uint64_t rotate_bytes, uint32_t rotate_seconds, uint32_t keep);
  ~RotatingFile();
  RotatingFile(const RotatingFile&) = delete;
  RotatingFile& operator=(const RotatingFile&) = delete;

  // One record plus '\n'; rotates first when due. False on a write error.
  bool writeLine(const char* data, std::size_t len);
  // Flushes; also applies a pending reopen or an age-based rotation while idle.
  bool flush();
  // Any thread (the SIGHUP handler's thread): reopen at the next line or flush.
  void requestReopen() { reopen_.store(true, std::memory_order_release); }
  uint64_t rotations() const { return rotations_.load(std::memory_order_relaxed); }

  // Age rotation by a clock the caller moves (`replay`: packet time) instead
  // of the wall clock. A file's age then counts from the time of its first
  // record, and rotation by age happens only before a record is written
  // (never in flush(): an idle replay does not rotate). Call before writing.
  void useExternalClock() { external_clock_ = true; opened_ = kUnset; }
  void setTime(std::time_t now) { now_ = now; }

 private:
  static constexpr std::time_t kUnset = INT64_MIN;
  bool open();
  bool maybeRotate(bool writing);
  bool rotate();
  std::time_t now() const;

  std::string path_;
  uint64_t rotate_bytes_;
  uint32_t rotate_seconds_;
  uint32_t keep_;
  std::FILE* f_ = nullptr;
  uint64_t size_ = 0;
  uint32_t rotated_ = UINT32_MAX;  // FILE.1..FILE.n that exist; UINT32_MAX: not counted yet
  std::time_t opened_ = 0;
  bool external_clock_ = false;
  std::time_t now_ = 0;  // external clock
  std::atomic<bool> reopen_{false};
  std::atomic<uint64_t> rotations_{0};
};

// An EveSink onto a RotatingFile, for single-threaded writers (`replay`):
// the live sensor's writer thread uses AsyncEveSink instead.
class RotatingEveSink final : public EveSink {
 public:
  explicit RotatingEveSink(std::unique_ptr<RotatingFile> file) : file_(std::move(file)) {}
  ~RotatingEveSink() override { flush(); }
  void write(std::string_view line) override {
    if (file_->writeLine(line.data(), line.size())) {
      ++lines_;
    } else {
      ++failures_;
    }
  }
  void flush() override {
    if (!file_->flush()) ++failures_;
  }
  RotatingFile& file() { return *file_; }
  uint64_t lines() const { return lines_; }
  uint64_t failures() const { return failures_; }

 private:
  std::unique_ptr<RotatingFile> file_;
  uint64_t lines_ = 0;
  uint64_t failures_ = 0;
};

}  // namespace exfilwatch
