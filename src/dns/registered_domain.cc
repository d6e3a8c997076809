// registered_domain.cc: eTLD+1 with libpsl, cached.
//
// Why the name cache's key is exact: the longest rule in the list has R
// labels (5 today, counted at load), so the public suffix of any name is at
// most R labels long and its registered domain at most R+1. Rules match from
// the right, so a name and its last R+1 labels have the same matching rules
// and the same registered domain. Caching on those last labels lets random
// tunnel prefixes longer than that share one entry.
//
// Why the deciding suffix is exact: put every rule and every parent of a
// rule in a tree of suffixes ("uk", "co.uk", ...). Walk a name from the
// right until its last d labels are not a node (and not under a wildcard
// rule of the node above): every rule that matches the name lies within its
// last d-1 labels, so its public suffix has at most d-1 labels (at least 1:
// an unlisted top-level label is a public suffix by the implicit "*" rule)
// and its registered domain at most d (2 when d is 1). The last d labels (2
// when d is 1) then have the same matching rules and the same registered
// domain as the name: "x.y.example.com" is decided by "example.com". Labels
// the tree cannot judge end the walk with the whole key: Unicode rules are
// not in it (libpsl also matches their punycode form), so a label with a
// byte >= 0x80 or an "xn--" label goes to libpsl as it is.
#include "dns/registered_domain.h"

#include <libpsl.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "common/hash.h"

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
    // Rounded up to a power of two, so a slot is a mask of the hash rather
    // than a 64-bit division on every look-up.
    : cache_(std::bit_ceil(std::max<std::size_t>(cache_slots, 1))),
      suffix_cache_(std::bit_ceil(std::max<std::size_t>(cache_slots, 1))),
      seed_(hashing::randomSeed()) {
  psl_ = psl_load_file(psl_path.c_str());
  if (psl_ == nullptr) {
    throw std::runtime_error("cannot load the public suffix list " + psl_path +
                             " (Debian package: publicsuffix)");
  }
  const bool text_list = psl_path.size() > 4 && psl_path.substr(psl_path.size() - 4) == ".dat";
  const int longest = text_list ? longestRuleLabels(psl_path) : 0;
  // A compiled (DAFSA) list cannot be read here: fall back to a generous key
  // and no rule tree (every name cache miss goes to libpsl).
  key_labels_ = longest > 0 ? longest + 1 : 8;
  if (longest > 0) loadRuleTree(psl_path);
}

void RegisteredDomain::loadRuleTree(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::pair<std::string, bool>> nodes;  // suffix, wildcard below
  std::string line;
  auto ascii = [](std::string_view s) {
    for (unsigned char ch : s) {
      if (ch >= 0x80) return false;
    }
    return true;
  };
  while (std::getline(in, line)) {
    if (line.empty() || line.rfind("//", 0) == 0) continue;
    const auto end = line.find_first_of(" \t\r");
    if (end != std::string::npos) line.resize(end);
    if (line.empty()) continue;
    std::string_view rule = line;
    bool wildcard = false;
    if (rule.front() == '!') rule.remove_prefix(1);  // the exception's own name is a node
    if (rule.rfind("*.", 0) == 0) {
      rule.remove_prefix(2);
      wildcard = true;
    }
    // The rule and each of its parents, as far as they are ASCII.
    for (std::string_view suffix = rule;;) {
      if (ascii(suffix)) {
        nodes.emplace_back(std::string(suffix), wildcard);
        for (char& ch : nodes.back().first) {
          ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        }
      }
      wildcard = false;
      const auto dot = suffix.find('.');
      if (dot == std::string_view::npos) break;
      suffix.remove_prefix(dot + 1);
    }
  }
  std::size_t bytes = 0;
  for (const auto& n : nodes) bytes += n.first.size();
  rule_text_.reserve(bytes);  // never reallocated: the map's views point into it
  rule_nodes_.reserve(nodes.size());
  for (const auto& [suffix, wildcard] : nodes) {
    const std::size_t at = rule_text_.size();
    rule_text_ += suffix;
    const std::string_view key(rule_text_.data() + at, suffix.size());
    auto [it, inserted] = rule_nodes_.emplace(key, wildcard);
    if (!inserted && wildcard) it->second = true;
  }
  have_rule_tree_ = !rule_nodes_.empty();
}

RegisteredDomain::~RegisteredDomain() { psl_free(psl_); }

std::string_view RegisteredDomain::decidingSuffix(std::string_view key) const {
  // An empty label anywhere makes libpsl refuse the whole name: let it see it.
  if (!have_rule_tree_ || key.front() == '.' || key.back() == '.' ||
      key.find("..") != std::string_view::npos) {
    return key;
  }
  bool parent_wildcard = false;
  std::size_t label_end = key.size();  // exclusive end of the next label to the left
  for (int depth = 1;; ++depth) {
    const void* dot = label_end ? ::memrchr(key.data(), '.', label_end) : nullptr;
    const std::size_t label_start =
        dot ? static_cast<std::size_t>(static_cast<const char*>(dot) - key.data()) + 1 : 0;
    const std::string_view label = key.substr(label_start, label_end - label_start);
    if (label.empty() || label.rfind("xn--", 0) == 0) return key;
    for (unsigned char ch : label) {
      if (ch >= 0x80) return key;
    }
    const auto node = rule_nodes_.find(key.substr(label_start));
    if (node == rule_nodes_.end() && !parent_wildcard) {
      if (depth >= 2) return key.substr(label_start);
      // An unlisted top-level label: the public suffix is that label, the
      // registered domain the last two.
      return lastLabels(key, 2);
    }
    if (dot == nullptr) return key;  // the whole key lies inside the tree
    parent_wildcard = node != rule_nodes_.end() && node->second;
    label_end = label_start - 1;
  }
}

RegisteredDomain::Table::Table(std::size_t size) : slots(size), tails(size), mask(size - 1) {}

bool RegisteredDomain::Table::holds(const Slot& slot, uint64_t hash, std::string_view key) const {
  if (!slot.used || slot.hash != hash || slot.key_len != key.size()) return false;
  if (std::memcmp(slot.head, key.data(), std::min(key.size(), kHead)) != 0) return false;
  return key.size() <= kHead ||
         tails[static_cast<std::size_t>(&slot - slots.data())] == key.substr(kHead);
}

void RegisteredDomain::Table::store(Slot& slot, uint64_t hash, std::string_view key,
                                    int16_t result_len) {
  slot.hash = hash;
  slot.key_len = static_cast<uint16_t>(key.size());
  slot.result_len = result_len;
  slot.used = true;
  std::memcpy(slot.head, key.data(), std::min(key.size(), kHead));
  if (key.size() > kHead)
    tails[static_cast<std::size_t>(&slot - slots.data())].assign(key.substr(kHead));
}

uint64_t RegisteredDomain::hashOf(std::string_view key) const {
  return hashing::hashBytes(key.data(), key.size(), seed_);
}

int16_t RegisteredDomain::suffixResult(std::string_view key) {
  const uint64_t hash = hashOf(key);
  Table::Slot& slot = suffix_cache_.slotOf(hash);
  if (suffix_cache_.holds(slot, hash, key)) return slot.result_len;
  ++list_lookups_;
  // libpsl wants a NUL-terminated string; a key with an embedded NUL (raw
  // bytes from a tunnel) has no registered domain we could name.
  char text[256];
  int16_t result = -1;
  if (key.size() < sizeof text && std::memchr(key.data(), '\0', key.size()) == nullptr) {
    std::memcpy(text, key.data(), key.size());
    text[key.size()] = '\0';
    if (const char* found = psl_registrable_domain(psl_, text)) {
      const std::size_t len = key.size() - static_cast<std::size_t>(found - text);
      if (len > 0 && len <= key.size()) result = static_cast<int16_t>(len);
    }
  }
  suffix_cache_.store(slot, hash, key, result);
  return result;
}

RegisteredDomain::Prepared RegisteredDomain::prepare(std::string_view lower_name,
                                                     int labels) const {
  Prepared p{lower_name, {}, 0};
  if (lower_name.empty() || lower_name.size() > 255) return p;
  // A name of at most key_labels_ labels is its own key; a label count from
  // the DNS parser may be lower than the dots (a raw '.' byte inside a
  // label), which only makes the key longer, never wrong.
  p.key = labels > 0 && labels <= key_labels_ ? lower_name : lastLabels(lower_name, key_labels_);
  p.hash = hashOf(p.key);
  __builtin_prefetch(&cache_.slotOf(p.hash));
  return p;
}

std::string_view RegisteredDomain::lookup(const Prepared& prepared) {
  const std::string_view lower_name = prepared.name;
  const std::string_view key = prepared.key;
  if (key.empty()) return {};
  const uint64_t hash = prepared.hash;
  Table::Slot& slot = cache_.slotOf(hash);
  int16_t result;
  if (cache_.holds(slot, hash, key)) {
    ++hits_;
    result = slot.result_len;
  } else {
    ++misses_;
    // Both answers are lengths from the end, the same in the key, the
    // deciding suffix and the name.
    result = suffixResult(decidingSuffix(key));
    cache_.store(slot, hash, key, result);
  }
  if (result <= 0) return {};
  return lower_name.substr(lower_name.size() - static_cast<std::size_t>(result));
}

}  // namespace exfilwatch::dns
