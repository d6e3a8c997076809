// registered_domain.cc: eTLD+1 with libpsl, cached.
//
// Why the cache key is exact: the longest rule in the list has R labels (5
// today, counted at load), so the public suffix of any name is at most R
// labels long and its registered domain at most R+1. Rules match from the
// right, so a name and its last R+1 labels have the same matching rules and
// the same registered domain. Caching on those last labels lets random
// tunnel prefixes share one entry per registered domain.
#include "dns/registered_domain.h"

#include <libpsl.h>

#include <fstream>
#include <cstring>
#include <stdexcept>

#include "decode/flow_hash.h"

namespace exfilwatch::dns {

namespace {
int longestRuleLabels(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  int longest = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line.rfind("//", 0) == 0) continue;
    const auto end = line.find_first_of(" \t\r");
    if (end != std::string::npos) line.resize(end);
    if (line.empty()) continue;
    int labels = 1;
    for (char c : line) labels += c == '.';
    longest = std::max(longest, labels);
  }
  return longest;
}

// The suffix of `name` made of its last `labels` labels (memrchr: one
// vectorised search per label instead of a loop over every byte).
std::string_view lastLabels(std::string_view name, int labels) {
  std::size_t end = name.size();
  for (int seen = 0; seen < labels; ++seen) {
    const void* dot = end ? ::memrchr(name.data(), '.', end) : nullptr;
    if (dot == nullptr) return name;
    end = static_cast<std::size_t>(static_cast<const char*>(dot) - name.data());
  }
  return name.substr(end + 1);
}
}  // namespace

RegisteredDomain::RegisteredDomain(const std::string& psl_path, std::size_t cache_slots)
    : cache_(cache_slots ? cache_slots : 1), seed_(flowhash::randomSeed()) {
  psl_ = psl_load_file(psl_path.c_str());
  if (psl_ == nullptr) {
    throw std::runtime_error("cannot load the public suffix list " + psl_path +
                             " (Debian package: publicsuffix)");
  }
  const int longest = psl_path.size() > 4 && psl_path.substr(psl_path.size() - 4) == ".dat"
                          ? longestRuleLabels(psl_path)
                          : 0;
  // A compiled (DAFSA) list cannot be read here: fall back to a generous key.
  key_labels_ = longest > 0 ? longest + 1 : 8;
}

RegisteredDomain::~RegisteredDomain() { psl_free(psl_); }

std::string_view RegisteredDomain::lookup(std::string_view lower_name, int labels) {
  if (lower_name.empty() || lower_name.size() > 255) return {};
  // A name of at most key_labels_ labels is its own key; a label count from
  // the DNS parser may be lower than the dots (a raw '.' byte inside a
  // label), which only makes the key longer, never wrong.
  const std::string_view key =
      labels > 0 && labels <= key_labels_ ? lower_name : lastLabels(lower_name, key_labels_);
  Slot& slot = cache_[flowhash::hashBytes(key.data(), key.size(), seed_) % cache_.size()];
  if (slot.used && slot.key == key) {
    ++hits_;
  } else {
    ++misses_;
    slot.key.assign(key);
    slot.used = true;
    slot.result_len = -1;
    // libpsl wants a NUL-terminated string; a key with an embedded NUL (raw
    // bytes from a tunnel) has no registered domain we could name.
    const char* found = slot.key.find('\0') == std::string::npos
                            ? psl_registrable_domain(psl_, slot.key.c_str())
                            : nullptr;
    if (found != nullptr) {
      const std::size_t len = slot.key.size() - static_cast<std::size_t>(found - slot.key.c_str());
      if (len > 0 && len <= slot.key.size()) slot.result_len = static_cast<int16_t>(len);
    }
  }
  if (slot.result_len <= 0) return {};
  return lower_name.substr(lower_name.size() - static_cast<std::size_t>(slot.result_len));
}

}  // namespace exfilwatch::dns
