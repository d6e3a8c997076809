// evidence.h: the packets behind an alert, as pcap files that tcpdump and
// Wireshark open. Each worker keeps a fixed ring of its recent DNS and TLS
// packets, tagged with their (client, registered domain) or (client,
// destination) pair. When a pair alerts, the pair's packets still in the ring
// go to a new pcap file, and so do its packets for `evidence.seconds` after;
// the alert names the file. Files hold the innermost IP packets (link type
// raw IP), so they read the same whether the source was VXLAN, GENEVE or a
// plain capture. Everything is bounded: ring slots and their size, pairs
// recorded at once, bytes per file, files kept.
//
// Writes happen on the worker, but only for alerted pairs (rare, and bounded
// by the per-pair alert suppression) into stdio-buffered files.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "alert/alert_config.h"
#include "decode/packet.h"

struct pcap;
struct pcap_dumper;

namespace exfilwatch {

class EvidenceRecorder {
 public:
  // `tag` names the worker in file names ("w0"); an empty directory in the
  // config turns the recorder off (every call is then a no-op).
  EvidenceRecorder(const EvidenceConfig& config, std::string tag);
  ~EvidenceRecorder();
  EvidenceRecorder(const EvidenceRecorder&) = delete;
  EvidenceRecorder& operator=(const EvidenceRecorder&) = delete;

  bool enabled() const { return enabled_; }

  // A DNS or TLS packet of `pair`: kept in the ring, and written when the
  // pair is being recorded.
  void observe(uint64_t pair, const PacketContext& pkt);

  // `pair` alerted: opens its file (or returns the one already open),
  // writes its packets from the ring, and records it from now on. Returns
  // the file's path, "" when off or when no file could be opened (counted).
  const std::string& onAlert(uint64_t pair, const PacketContext& pkt, std::string_view label);

  // Closes the files of pairs whose recording time is over.
  void expire(Timestamp now);

  uint64_t packetsWritten() const { return packets_written_; }
  uint64_t filesOpened() const { return files_opened_; }
  uint64_t openFailures() const { return open_failures_; }

  // A stable key for a (client, what) pair.
  static uint64_t pairKey(const IpAddress& client, std::string_view what);

 private:
  struct Slot {
    uint64_t pair = 0;
    Timestamp ts;
    uint32_t wirelen = 0;
    uint32_t caplen = 0;
    uint32_t offset = 0;  // into bytes_
  };
  struct Recording {
    pcap_dumper* dumper = nullptr;
    std::string path;
    int64_t until_sec = 0;
    uint64_t bytes = 0;
  };
  void write(Recording& r, const Slot& s);
  void write(Recording& r, Timestamp ts, const uint8_t* data, uint32_t caplen, uint32_t wirelen);
  void close(Recording& r);

  EvidenceConfig config_;
  std::string tag_;
  bool enabled_ = false;
  pcap* dead_ = nullptr;                        // libpcap handle describing raw-IP files
  static constexpr uint32_t kSlotBytes = 2048;  // longer packets are cut
  std::vector<Slot> ring_;
  std::vector<uint8_t> bytes_;
  std::size_t next_ = 0;
  std::unordered_map<uint64_t, Recording> recording_;
  std::deque<std::string> files_;  // oldest first, for `evidence.files`
  std::string none_;
  uint64_t sequence_ = 0;
  uint64_t packets_written_ = 0;
  uint64_t files_opened_ = 0;
  uint64_t open_failures_ = 0;
};

}  // namespace exfilwatch
