// lexical.cc: lexical features and the first tunnel-shape verdict.
#include "score/lexical.h"

#include <array>
#include <cmath>

namespace exfilwatch::score {

double shannonEntropy(std::string_view bytes) {
  if (bytes.empty()) return 0.0;
  std::array<uint32_t, 256> counts{};
  for (unsigned char c : bytes) ++counts[c];
  double h = 0.0;
  const double n = static_cast<double>(bytes.size());
  for (uint32_t c : counts) {
    if (c == 0) continue;
    const double p = c / n;
    h -= p * std::log2(p);
  }
  return h;
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
  std::array<uint32_t, 256> counts{};
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
    ++counts[c];
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
  if (chars) {
    double h = 0.0;
    const double n = chars;
    for (uint32_t c : counts) {
      if (c == 0) continue;
      const double p = c / n;
      h -= p * std::log2(p);
    }
    f.entropy = h;
  }
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
