// alert_gate.h: alert suppression, one table for every detector. A pair
// (client and what it talks to: a DNS aggregation domain, a TLS server and
// port) raises at most one alert per interval, whichever detector (rule,
// DNS score, TLS volume) sees it first. The engine's AlertEmitter owns the
// sensor's gate; the scorers ask it before they spend time on a verdict.
#pragma once

#include <cstdint>
#include <vector>

namespace exfilwatch::score {

enum class Admission : uint8_t {
  Initial,    // the pair's first alert (as far as the table remembers)
  Update,     // the pair alerted before, longer ago than the interval
  Suppressed  // within the interval of the pair's last alert
};

class AlertGate {
 public:
  // `slots`: the table's size; a pair whose slot another pair took since is
  // treated as new (an extra alert, never a lost one). `interval` 0: every
  // alert is admitted.
  explicit AlertGate(std::size_t slots = kDefaultSlots, uint32_t interval = 0)
      : slots_(slots ? slots : 1), interval_(interval) {}

  void setInterval(uint32_t seconds) { interval_ = seconds; }
  uint32_t interval() const { return interval_; }

  // `pair`: a 64-bit hash of the pair; `now`: packet time, seconds. An
  // admitted alert starts the pair's interval.
  Admission admit(uint64_t pair, int64_t now) {
    const uint64_t key = pair | 1;  // 0 marks an empty slot
    Slot& s = slots_[key % slots_.size()];
    if (s.key == key) {
      if (interval_ != 0 && now - s.last < interval_) {
        ++suppressed_;
        return Admission::Suppressed;
      }
      s.last = now;
      return Admission::Update;
    }
    s.key = key;
    s.last = now;
    return Admission::Initial;
  }
  // Whether admit() would suppress, without starting an interval.
  bool holds(uint64_t pair, int64_t now) const {
    const uint64_t key = pair | 1;
    const Slot& s = slots_[key % slots_.size()];
    return s.key == key && interval_ != 0 && now - s.last < interval_;
  }

  uint64_t suppressed() const { return suppressed_; }
  std::size_t slots() const { return slots_.size(); }

  static constexpr std::size_t kDefaultSlots = 65536;

 private:
  struct Slot {
    uint64_t key = 0;
    int64_t last = 0;
  };
  std::vector<Slot> slots_;
  uint32_t interval_;
  uint64_t suppressed_ = 0;
};

}  // namespace exfilwatch::score
