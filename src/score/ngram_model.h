// ngram_model.h: a character trigram model of benign DNS labels, and the
// "information after compression" estimate built on it.
//
// In: labels (bytes between dots). Out: their code length in bits, i.e. what
// an arithmetic coder driven by this model would spend on them. Benign labels
// ("www", "mail", "googleapis") are cheap (about 2-3 bits per character);
// encoded payload is expensive. Trained by `exfilwatch model train` on
// benign names only, stored as counts in a versioned text file under models/
// (format in models/README.md), so training is deterministic and the file
// diffs. Loading is configuration-time work (control plane); scoring is a
// table walk with no allocation.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace exfilwatch::score {

class NgramModel {
 public:
  // Symbols: 0 = label boundary, 1..26 = a..z (case folded), 27..36 =
  // 0..9, 37 '-', 38 '_', 39 = any other byte.
  static constexpr int kSymbols = 40;
  static constexpr int kFormatVersion = 1;
  static int symbol(unsigned char c);

  // Training counts. Every label of every distinct name is counted with the
  // context reset at the label start, matching how labels are scored.
  struct Counts {
    std::vector<uint64_t> uni = std::vector<uint64_t>(kSymbols);
    std::vector<uint64_t> bi = std::vector<uint64_t>(kSymbols * kSymbols);
    std::vector<uint64_t> tri = std::vector<uint64_t>(kSymbols * kSymbols * kSymbols);
    uint64_t names = 0;
    uint64_t labels = 0;
    void addName(std::string_view lower_name);
  };

  // Serialises counts and provenance (sources, command) as the model file.
  static std::string serialize(const Counts& counts, const std::vector<std::string>& sources,
                               const std::string& command);
  // Parses a model file; null and `error` ("line N: ...") on any mistake.
  static std::shared_ptr<const NgramModel> parse(const std::string& text, std::string& error);
  static std::shared_ptr<const NgramModel> load(const std::string& path, std::string& error);
  // The model shipped in models/ (installed data dir, then the source tree);
  // loaded once. Null when neither exists.
  static std::shared_ptr<const NgramModel> builtin();
  static const char* builtinFileName() { return "dns-trigram-v1.txt"; }

  // Code length of one label, in bits, including its end. Bytes beyond 63
  // (never valid in a label) cost nothing extra: bounded work.
  double labelBits(std::string_view label) const;

  const std::string& description() const { return description_; }
  uint64_t trainingNames() const { return names_; }

  // Smoothing: linear interpolation of trigram, bigram and add-one unigram
  // estimates; a context never seen gives its weight to the lower orders.
  static constexpr double kLambda3 = 0.6, kLambda2 = 0.3, kLambda1 = 0.1;

 private:
  std::vector<float> cost_;  // -log2 P(c | a, b), index (a * K + b) * K + c
  std::string description_;
  uint64_t names_ = 0;
};

// Information estimate for a name's prefix (the labels left of the
// registered domain), in bits: per label, the cheaper of two codes, the
// benign model's code length and a uniform code over the smallest standard
// alphabet that covers the label (digits 3.32, hex 4, base32 5, LDH 5.25,
// base64 6, printable 6.57, bytes 8 bits per character), plus one byte per
// label for its length. This is what a compressor choosing the best of the
// two coders per label would emit, without a cross-name dictionary (see
// docs/scoring.md for why not zlib).
double prefixInfoBits(const NgramModel* model, std::string_view raw_prefix);

// Model bits per character of the prefix (0 when empty or no model): the
// per-query "how unlike benign names" score.
double prefixModelBitsPerChar(const NgramModel* model, std::string_view raw_prefix);

// Both of the above from one pass over the labels (the scorer needs both for
// every new name; a label's model cost is the expensive part).
struct PrefixBits {
  double info_bits = 0.0;            // prefixInfoBits
  double model_bits_per_char = 0.0;  // prefixModelBitsPerChar
};
PrefixBits prefixBits(const NgramModel* model, std::string_view raw_prefix);

}  // namespace exfilwatch::score
