// lexical.cc: lexical features and the first tunnel-shape verdict.
#include "score/lexical.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace exfilwatch::score {

namespace {
// c * log2(c) for the counts a name can have (<= 255 bytes): entropy becomes
// log2(n) - sum(c log2 c) / n, one table read per distinct byte.
struct CLogC {
  std::array<double, 256> v{};
  CLogC() {
    for (std::size_t c = 1; c < v.size(); ++c) v[c] = static_cast<double>(c) * std::log2(c);
  }
};
const CLogC kCLogC;

// Counts bytes with a list of the distinct ones, so the sum and the reset
// touch only what was seen, not all 256 slots.
class ByteHistogram {
 public:
  void add(unsigned char c) {
    if (counts_[c] == 0) distinct_[ndistinct_++] = c;
    if (counts_[c] < 255) ++counts_[c];
  }
  double entropy(uint32_t n) const {
    if (n == 0) return 0.0;
    double sum = 0.0;
    for (uint32_t i = 0; i < ndistinct_; ++i) {
      const uint32_t c = counts_[distinct_[i]];
      sum += c < kCLogC.v.size() ? kCLogC.v[c] : c * std::log2(static_cast<double>(c));
    }
    return std::log2(static_cast<double>(n)) - sum / n;
  }

 private:
  // Names are at most 255 bytes, so a byte count fits in 8 bits; the list
  // of distinct bytes is written before it is read, so it needs no zeroing.
  std::array<uint8_t, 256> counts_{};
  std::array<unsigned char, 256> distinct_;
  uint32_t ndistinct_ = 0;
};
}  // namespace

double shannonEntropy(std::string_view bytes) {
  ByteHistogram h;
  for (unsigned char c : bytes) h.add(c);
  return h.entropy(static_cast<uint32_t>(bytes.size()));
}

namespace {
enum CharClass : uint8_t { kLower, kDigit, kUpper, kLdhOther, kNonLdh, kHigh, kClasses };

// One table read per byte instead of a chain of comparisons.
struct ClassTable {
  std::array<uint8_t, 256> v{};
  ClassTable() {
    for (int c = 0; c < 256; ++c) {
      if (c >= 'a' && c <= 'z') {
        v[c] = kLower;
      } else if (c >= '0' && c <= '9') {
        v[c] = kDigit;
      } else if (c >= 'A' && c <= 'Z') {
        v[c] = kUpper;
      } else if (c == '-' || c == '_') {
        v[c] = kLdhOther;
      } else if (c >= 0x80 || c < 0x20) {
        v[c] = kHigh;
      } else {
        v[c] = kNonLdh;
      }
    }
  }
};
const ClassTable kClassOf;
}  // namespace

LexicalFeatures lexicalFeatures(std::string_view raw, std::string_view registered_domain) {
  LexicalFeatures f;
  f.name_length = static_cast<uint32_t>(raw.size());
  // The prefix: everything left of "." + registered domain.
  std::string_view prefix = raw;
  // "@server" (a name without a plausible TLD): the whole name is payload.
  if (!registered_domain.empty() && registered_domain.front() != '@' &&
      registered_domain.size() <= raw.size()) {
    prefix = registered_domain.size() == raw.size()
                 ? std::string_view{}
                 : raw.substr(0, raw.size() - registered_domain.size() - 1);
  }
  // Labels of the whole name.
  std::size_t label_start = 0;
  for (;;) {
    const std::size_t dot = raw.find('.', label_start);
    const std::size_t end = dot == std::string_view::npos ? raw.size() : dot;
    f.max_label_length =
        std::max<uint32_t>(f.max_label_length, static_cast<uint32_t>(end - label_start));
    if (!raw.empty()) ++f.label_count;
    if (end < prefix.size() || (end == prefix.size() && !prefix.empty())) ++f.prefix_labels;
    if (dot == std::string_view::npos) break;
    label_start = dot + 1;
  }
  // Character classes and the byte histogram of the prefix, dots excluded.
  ByteHistogram histogram;
  std::array<uint32_t, kClasses> classes{};
  uint32_t chars = 0;
  for (unsigned char c : prefix) {
    if (c == '.') continue;
    ++chars;
    histogram.add(c);
    ++classes[kClassOf.v[c]];
  }
  f.digits = classes[kDigit];
  f.uppercase = classes[kUpper];
  f.high_bytes = classes[kHigh];
  f.non_ldh = classes[kNonLdh] + classes[kHigh];
  f.prefix_length = chars;
  f.entropy = histogram.entropy(chars);
  return f;
}

LexicalVerdict judgeLexical(const LexicalFeatures& f, const LexicalThresholds& t) {
  if (f.high_bytes >= t.min_high_bytes && f.prefix_length >= t.min_prefix_length_binary) {
    return LexicalVerdict::BinaryLabels;
  }
  if (f.prefix_length >= t.min_prefix_length && f.entropy >= t.min_entropy) {
    return LexicalVerdict::HighEntropy;
  }
  return LexicalVerdict::Benign;
}

}  // namespace exfilwatch::score
