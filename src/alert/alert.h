// alert.h: what detection hands to the output stage. An alert names its
// signature (rule id or detector), a category and a severity (1 high .. 3
// low, as in Suricata), and the reasons with their values, so an analyst
// sees why it fired without re-running anything.
#pragma once

#include <cstdint>
#include <string>

namespace exfilwatch {

struct Alert {
  uint32_t signature_id = 0;
  std::string signature;
  std::string category;
  int severity = 2;
  std::string reasons;  // "key=value key=value", stable keys
  std::string evidence;  // pcap file holding the pair's packets, "" when off
};

}  // namespace exfilwatch
