// lexical.cc: lexical features and the first tunnel-shape verdict.
#include "score/lexical.h"

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
    if (counts_[c]++ == 0) distinct_[ndistinct_++] = c;
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
  std::array<uint32_t, 256> counts_{};
  std::array<unsigned char, 256> distinct_{};
  uint32_t ndistinct_ = 0;
};
}  // namespace

double shannonEntropy(std::string_view bytes) {
  ByteHistogram h;
  for (unsigned char c : bytes) h.add(c);
  return h.entropy(static_cast<uint32_t>(bytes.size()));
}

LexicalFeatures lexicalFeatures(std::string_view raw, std::string_view registered_domain) {
  LexicalFeatures f;
  f.name_length = static_cast<uint32_t>(raw.size());
  // The prefix: everything left of "." + registered domain.
  std::string_view prefix = raw;
  if (!registered_domain.empty() && registered_domain.size() <= raw.size()) {
    prefix = registered_domain.size() == raw.size()
                 ? std::string_view{}
                 : raw.substr(0, raw.size() - registered_domain.size() - 1);
  }
  ByteHistogram histogram;
  uint32_t label_len = 0;
  uint32_t chars = 0;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const auto c = static_cast<unsigned char>(raw[i]);
    if (c == '.') {
      ++f.label_count;
      if (i < prefix.size()) ++f.prefix_labels;
      label_len = 0;
      continue;
    }
    ++label_len;
    if (label_len > f.max_label_length) f.max_label_length = label_len;
    if (i >= prefix.size()) continue;
    ++chars;
    histogram.add(c);
    if (c >= '0' && c <= '9') {
      ++f.digits;
    } else if (c >= 'A' && c <= 'Z') {
      ++f.uppercase;
    } else if (!(c >= 'a' && c <= 'z') && c != '-' && c != '_') {
      ++f.non_ldh;
      if (c >= 0x80 || c < 0x20) ++f.high_bytes;
    }
  }
  if (!raw.empty()) ++f.label_count;
  if (!prefix.empty()) ++f.prefix_labels;
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
