// pcap_source.h: reads pcap and pcapng files with libpcap, for forensics on
// tcpdump captures and for tests. Hands each record to the decode path as a
// Frame; timestamps are normalised to microseconds. A broken or cut file
// ends the stream early with a message, never a crash.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "capture/frame.h"

struct pcap;

namespace exfilwatch {

class PcapSource {
 public:
  // nullptr and `error` set when the file cannot be opened as a capture.
  static std::unique_ptr<PcapSource> open(const std::string& path, std::string& error);
  ~PcapSource();
  PcapSource(const PcapSource&) = delete;
  PcapSource& operator=(const PcapSource&) = delete;

  // True with the next frame (valid until the next call); false at the end
  // of the file or when the rest of it is unreadable (see error()).
  bool next(Frame& frame);

  int linktype() const { return linktype_; }
  const std::string& path() const { return path_; }
  const std::string& error() const { return error_; }  // empty at a clean end
  uint64_t frames() const { return frames_; }

 private:
  PcapSource(pcap* handle, std::string path, std::unique_ptr<char[]> read_buffer);
  pcap* handle_;
  std::unique_ptr<char[]> read_buffer_;  // the stream's stdio buffer; outlives it
  std::string path_;
  std::string error_;
  int linktype_ = 0;
  uint64_t frames_ = 0;
};

}  // namespace exfilwatch
