// evidence.cc: per-worker evidence pcaps of alerted pairs.
#include "alert/evidence.h"

#include <pcap/pcap.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "common/hash.h"

namespace exfilwatch {

namespace {
constexpr uint32_t kRingPairsFactor = 64;  // ring slots = ring_packets * this

// Keeps file names to the portable set.
std::string safeName(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 80)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == '_';
    out += ok ? c : '_';
  }
  return out;
}
}  // namespace

uint64_t EvidenceRecorder::pairKey(const IpAddress& client, std::string_view what) {
  return hashing::fnv1a(what.data(), what.size(), client.hash()) | 1;  // 0 marks an empty ring slot
}

EvidenceRecorder::EvidenceRecorder(const EvidenceConfig& config, std::string tag)
    : config_(config), tag_(std::move(tag)), enabled_(!config.directory.empty()) {
  if (!enabled_) return;
  dead_ = pcap_open_dead(DLT_RAW, static_cast<int>(kSlotBytes) * 32);
  if (dead_ == nullptr) {
    enabled_ = false;
    return;
  }
  const std::size_t slots =
      std::size_t{std::max<uint32_t>(config.ring_packets, 1)} * kRingPairsFactor;
  ring_.resize(slots);
  bytes_.resize(slots * kSlotBytes);
  recording_.reserve(config.max_pairs);
}

EvidenceRecorder::~EvidenceRecorder() {
  for (auto& [pair, r] : recording_) close(r);
  if (dead_ != nullptr) pcap_close(dead_);
}

void EvidenceRecorder::write(Recording& r, Timestamp ts, const uint8_t* data, uint32_t caplen,
                             uint32_t wirelen) {
  if (r.dumper == nullptr || r.bytes + caplen + 16 > config_.file_bytes) return;
  struct pcap_pkthdr h {};
  h.ts.tv_sec = static_cast<time_t>(ts.sec);
  h.ts.tv_usec = ts.usec;
  h.caplen = caplen;
  h.len = std::max(wirelen, caplen);
  pcap_dump(reinterpret_cast<u_char*>(r.dumper), &h, data);
  r.bytes += caplen + 16;
  ++packets_written_;
}

void EvidenceRecorder::write(Recording& r, const Slot& s) {
  write(r, s.ts, bytes_.data() + s.offset, s.caplen, s.wirelen);
}

void EvidenceRecorder::close(Recording& r) {
  if (r.dumper != nullptr) {
    pcap_dump_close(r.dumper);
    r.dumper = nullptr;
  }
}

void EvidenceRecorder::observe(uint64_t pair, const PacketContext& pkt) {
  if (!enabled_ || pkt.ip_packet == nullptr || pkt.ip_packet_caplen == 0) return;
  const uint32_t caplen = std::min(pkt.ip_packet_caplen, kSlotBytes);
  Slot& slot = ring_[next_];
  slot.offset = static_cast<uint32_t>(next_ * kSlotBytes);
  next_ = (next_ + 1) % ring_.size();
  slot.pair = pair;
  slot.ts = pkt.ts;
  slot.caplen = caplen;
  slot.wirelen = std::max(pkt.ip_wire_len, caplen);
  std::memcpy(bytes_.data() + slot.offset, pkt.ip_packet, caplen);
  if (recording_.empty()) return;
  const auto it = recording_.find(pair);
  if (it != recording_.end() && pkt.ts.sec <= it->second.until_sec) write(it->second, slot);
}

const std::string& EvidenceRecorder::onAlert(uint64_t pair, const PacketContext& pkt,
                                             std::string_view label) {
  if (!enabled_) return none_;
  const auto found = recording_.find(pair);
  if (found != recording_.end()) {
    found->second.until_sec = pkt.ts.sec + config_.seconds;
    return found->second.path;
  }
  if (recording_.size() >= config_.max_pairs) {
    ++open_failures_;
    return none_;
  }
  Recording r;
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%lld", static_cast<long long>(pkt.ts.sec));
  r.path = config_.directory + "/evidence-" + tag_ + "-" + stamp + "-" +
           std::to_string(++sequence_) + "-" + safeName(label) + ".pcap";
  r.dumper = pcap_dump_open(dead_, r.path.c_str());
  if (r.dumper == nullptr) {
    ++open_failures_;
    return none_;
  }
  ++files_opened_;
  r.until_sec = pkt.ts.sec + config_.seconds;
  // The pair's packets still in the ring, oldest first, at most ring_packets.
  std::vector<std::size_t> mine;
  for (std::size_t i = 0; i < ring_.size(); ++i) {
    const std::size_t at = (next_ + i) % ring_.size();
    if (ring_[at].pair == pair) mine.push_back(at);
  }
  const std::size_t skip =
      mine.size() > config_.ring_packets ? mine.size() - config_.ring_packets : 0;
  for (std::size_t i = skip; i < mine.size(); ++i) write(r, ring_[mine[i]]);
  pcap_dump_flush(r.dumper);

  files_.push_back(r.path);
  while (config_.files > 0 && files_.size() > config_.files) {
    // Only files no longer being written are removed.
    bool open = false;
    for (const auto& [k, rec] : recording_) open = open || rec.path == files_.front();
    if (open) break;
    ::unlink(files_.front().c_str());
    files_.pop_front();
  }
  auto [it, inserted] = recording_.emplace(pair, std::move(r));
  return it->second.path;
}

void EvidenceRecorder::expire(Timestamp now) {
  for (auto it = recording_.begin(); it != recording_.end();) {
    if (now.sec > it->second.until_sec) {
      close(it->second);
      it = recording_.erase(it);
    } else {
      pcap_dump_flush(it->second.dumper);
      ++it;
    }
  }
}

}  // namespace exfilwatch
