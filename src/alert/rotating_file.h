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
#include <string>

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

 private:
  bool open();
  bool maybeRotate();
  bool rotate();

  std::string path_;
  uint64_t rotate_bytes_;
  uint32_t rotate_seconds_;
  uint32_t keep_;
  std::FILE* f_ = nullptr;
  uint64_t size_ = 0;
  uint32_t rotated_ = UINT32_MAX;  // FILE.1..FILE.n that exist; UINT32_MAX: not counted yet
  std::time_t opened_ = 0;
  std::atomic<bool> reopen_{false};
  std::atomic<uint64_t> rotations_{0};
};

}  // namespace exfilwatch
