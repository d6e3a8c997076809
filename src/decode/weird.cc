// weird.cc: names and per-thread counters of packet-path anomalies.
#include "decode/weird.h"

namespace exfilwatch {

namespace {
constexpr std::array<std::string_view, kWeirdCount> kNames = {
#define EXFILWATCH_WEIRD_NAME(id, name) name,
    EXFILWATCH_WEIRDS(EXFILWATCH_WEIRD_NAME)
#undef EXFILWATCH_WEIRD_NAME
};
}  // namespace

std::string_view weirdName(Weird w) {
  const auto i = static_cast<std::size_t>(w);
  return i < kNames.size() ? kNames[i] : std::string_view("unknown");
}

uint64_t WeirdCounters::total() const {
  uint64_t sum = 0;
  for (uint64_t c : counts_) sum += c;
  return sum;
}

void WeirdCounters::mergeFrom(const WeirdCounters& other) {
  for (std::size_t i = 0; i < kWeirdCount; ++i) counts_[i] += other.counts_[i];
}

}  // namespace exfilwatch
