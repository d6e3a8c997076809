// lexical.h: per-query lexical features of a DNS name (length, labels,
// Shannon entropy, character classes) and the first, deliberately
// conservative detection: a query whose subdomain part is long, dense and
// high-entropy, or carries raw 8-bit bytes, is tunnel-shaped. The scoring
// engine (windows, volume, n-gram model) builds on these features.
#pragma once

#include <cstdint>
#include <string_view>

namespace exfilwatch::score {

struct LexicalFeatures {
  uint32_t name_length = 0;    // whole name, dotted
  uint32_t prefix_length = 0;  // left of the registered domain, dots excluded
  uint32_t label_count = 0;    // whole name
  uint32_t prefix_labels = 0;
  uint32_t max_label_length = 0;
  double entropy = 0.0;     // Shannon entropy of the prefix bytes, bits/char
  uint32_t digits = 0;      // in the prefix
  uint32_t uppercase = 0;   // ASCII A-Z in the prefix (from the raw name)
  uint32_t non_ldh = 0;     // bytes other than letters, digits, '-', '_'
  uint32_t high_bytes = 0;  // bytes >= 0x80 or < 0x20
};

// `raw`: the name as sent; `registered_domain`: its eTLD+1 (a suffix of the
// lower-cased name) or empty. Never allocates.
LexicalFeatures lexicalFeatures(std::string_view raw, std::string_view registered_domain);

double shannonEntropy(std::string_view bytes);

struct LexicalThresholds {
  uint32_t min_prefix_length = 48;  // base32/64 payload labels of tunnel tools
  double min_entropy = 4.2;         // above hex (max 4.0): base32/base64/base128
  uint32_t min_prefix_length_binary = 24;
  uint32_t min_high_bytes = 4;  // raw 8-bit bytes: iodine's base128/raw codecs
};

enum class LexicalVerdict : uint8_t { Benign, HighEntropy, BinaryLabels };

LexicalVerdict judgeLexical(const LexicalFeatures& f, const LexicalThresholds& t);

}  // namespace exfilwatch::score
