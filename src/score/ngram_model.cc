// ngram_model.cc: trigram counts, the model file, and label code lengths.
#include "score/ngram_model.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>

#include "build_config.h"

namespace exfilwatch::score {

namespace {
constexpr int K = NgramModel::kSymbols;
constexpr std::size_t kMaxLabel = 63;

inline std::size_t triIndex(int a, int b, int c) {
  return (static_cast<std::size_t>(a) * K + b) * K + c;
}
}  // namespace

namespace {
// symbol() for every byte, so that scoring a label is one load per byte
// instead of a chain of range tests (novel names are hundreds of bytes).
constexpr std::array<uint8_t, 256> makeSymbolTable() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    int u = c;
    if (u >= 'A' && u <= 'Z') u = u - 'A' + 'a';
    if (u >= 'a' && u <= 'z') {
      t[c] = static_cast<uint8_t>(1 + (u - 'a'));
    } else if (u >= '0' && u <= '9') {
      t[c] = static_cast<uint8_t>(27 + (u - '0'));
    } else if (u == '-') {
      t[c] = 37;
    } else if (u == '_') {
      t[c] = 38;
    } else {
      t[c] = 39;
    }
  }
  return t;
}
constexpr std::array<uint8_t, 256> kSymbolTable = makeSymbolTable();
}  // namespace

int NgramModel::symbol(unsigned char c) { return kSymbolTable[c]; }

void NgramModel::Counts::addName(std::string_view name) {
  ++names;
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t end = name.find('.', start);
    if (end == std::string_view::npos) end = name.size();
    const std::string_view label = name.substr(start, std::min(end - start, kMaxLabel));
    if (!label.empty()) {
      ++labels;
      int a = 0, b = 0;
      for (std::size_t i = 0; i <= label.size(); ++i) {
        const int c = i < label.size() ? symbol(static_cast<unsigned char>(label[i])) : 0;
        ++uni[c];
        ++bi[b * K + c];
        ++tri[triIndex(a, b, c)];
        a = b;
        b = c;
      }
    }
    start = end + 1;
  }
}

std::string NgramModel::serialize(const Counts& counts, const std::vector<std::string>& sources,
                                  const std::string& command) {
  std::ostringstream o;
  o << "# exfilwatch character trigram model of benign DNS labels. See models/README.md.\n";
  o << "# Regenerate (deterministic): " << command << "\n";
  o << "format exfilwatch-ngram " << kFormatVersion << "\n";
  o << "n 3\n";
  o << "symbols " << K << " boundary,a-z,0-9,-,_,other\n";
  o << "smoothing interpolated " << kLambda3 << ' ' << kLambda2 << ' ' << kLambda1
    << " add-one-unigram\n";
  for (const auto& s : sources) o << "source " << s << "\n";
  o << "names " << counts.names << "\n";
  o << "labels " << counts.labels << "\n";
  for (int c = 0; c < K; ++c) {
    if (counts.uni[c]) o << "u " << c << ' ' << counts.uni[c] << "\n";
  }
  for (int a = 0; a < K; ++a) {
    for (int b = 0; b < K; ++b) {
      if (counts.bi[a * K + b]) o << "b " << a << ' ' << b << ' ' << counts.bi[a * K + b] << "\n";
    }
  }
  for (int a = 0; a < K; ++a) {
    for (int b = 0; b < K; ++b) {
      for (int c = 0; c < K; ++c) {
        const uint64_t n = counts.tri[triIndex(a, b, c)];
        if (n) o << "t " << a << ' ' << b << ' ' << c << ' ' << n << "\n";
      }
    }
  }
  o << "end\n";
  return o.str();
}

std::shared_ptr<const NgramModel> NgramModel::parse(const std::string& text, std::string& error) {
  Counts counts;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  bool have_format = false, have_end = false;
  std::string sources;
  auto fail = [&](const std::string& m) {
    error = "line " + std::to_string(lineno) + ": " + m;
    return nullptr;
  };
  auto sym = [](long v) { return v >= 0 && v < K; };
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream f(line);
    std::string kind;
    f >> kind;
    if (kind == "format") {
      std::string name;
      int version = 0;
      f >> name >> version;
      if (name != "exfilwatch-ngram") return fail("not an exfilwatch n-gram model");
      if (version != kFormatVersion) {
        return fail("format version " + std::to_string(version) + " (this build reads " +
                    std::to_string(kFormatVersion) + ")");
      }
      have_format = true;
    } else if (!have_format) {
      return fail("expected 'format exfilwatch-ngram 1' first");
    } else if (kind == "n") {
      int n = 0;
      f >> n;
      if (n != 3) return fail("only n=3 is supported");
    } else if (kind == "symbols") {
      int k = 0;
      f >> k;
      if (k != K)
        return fail("symbol count " + std::to_string(k) + ", expected " + std::to_string(K));
    } else if (kind == "smoothing" || kind == "labels") {
      // informational: the smoothing is fixed by the format version
    } else if (kind == "source") {
      sources += (sources.empty() ? "" : ", ") + line.substr(7);
    } else if (kind == "names") {
      f >> counts.names;
    } else if (kind == "u" || kind == "b" || kind == "t") {
      long a = 0, b = 0, c = 0;
      unsigned long long n = 0;
      if (kind == "u") f >> c >> n;
      if (kind == "b") f >> b >> c >> n;
      if (kind == "t") f >> a >> b >> c >> n;
      if (!f || !sym(a) || !sym(b) || !sym(c)) return fail("bad count line");
      if (kind == "u") counts.uni[c] = n;
      if (kind == "b") counts.bi[b * K + c] = n;
      if (kind == "t") counts.tri[triIndex(a, b, c)] = n;
    } else if (kind == "end") {
      have_end = true;
      break;
    } else {
      return fail("unknown line kind '" + kind + "'");
    }
  }
  if (!have_format) return fail("empty model");
  if (!have_end) return fail("truncated model (no 'end' line)");

  auto m = std::make_shared<NgramModel>();
  m->names_ = counts.names;
  m->description_ = "exfilwatch-ngram v1, " + std::to_string(counts.names) + " names from " +
                    (sources.empty() ? "unknown" : sources);
  // Precompute every cost so scoring is a lookup.
  uint64_t total = 0;
  for (uint64_t u : counts.uni) total += u;
  std::vector<uint64_t> bi_ctx(K, 0);  // C(b, .)
  for (int b = 0; b < K; ++b) {
    for (int c = 0; c < K; ++c) bi_ctx[b] += counts.bi[b * K + c];
  }
  m->cost_.assign(static_cast<std::size_t>(K) * K * K, 0.0f);
  for (int a = 0; a < K; ++a) {
    for (int b = 0; b < K; ++b) {
      uint64_t tri_ctx = 0;
      for (int c = 0; c < K; ++c) tri_ctx += counts.tri[triIndex(a, b, c)];
      for (int c = 0; c < K; ++c) {
        const double pu =
            (static_cast<double>(counts.uni[c]) + 1.0) / (static_cast<double>(total) + K);
        double l3 = kLambda3, l2 = kLambda2, l1 = kLambda1;
        double p3 = 0.0, p2 = 0.0;
        if (tri_ctx) {
          p3 = static_cast<double>(counts.tri[triIndex(a, b, c)]) / tri_ctx;
        } else {
          l2 += l3 * (l2 / (l2 + l1));
          l1 += l3 * (l1 / (kLambda2 + l1));
          l3 = 0.0;
        }
        if (bi_ctx[b]) {
          p2 = static_cast<double>(counts.bi[b * K + c]) / bi_ctx[b];
        } else {
          l1 += l2;
          l2 = 0.0;
        }
        const double p = l3 * p3 + l2 * p2 + l1 * pu;
        m->cost_[triIndex(a, b, c)] = static_cast<float>(-std::log2(p));
      }
    }
  }
  return m;
}

std::shared_ptr<const NgramModel> NgramModel::load(const std::string& path, std::string& error) {
  std::ifstream in(path);
  if (!in) {
    error = "cannot open";
    return nullptr;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse(buffer.str(), error);
}

std::shared_ptr<const NgramModel> NgramModel::builtin() {
  static std::once_flag once;
  static std::shared_ptr<const NgramModel> model;
  std::call_once(once, [] {
    std::string error;
    for (const std::string& dir : {std::string(EXFILWATCH_DATADIR) + "/models",
                                   std::string(EXFILWATCH_SOURCE_DIR) + "/models"}) {
      model = load(dir + "/" + builtinFileName(), error);
      if (model) return;
    }
  });
  return model;
}

double NgramModel::labelBits(std::string_view label) const {
  if (label.size() > kMaxLabel) label = label.substr(0, kMaxLabel);
  double bits = 0.0;
  int a = 0, b = 0;
  const float* const cost = cost_.data();
  for (const char ch : label) {
    const int c = kSymbolTable[static_cast<unsigned char>(ch)];
    bits += cost[triIndex(a, b, c)];
    a = b;
    b = c;
  }
  return bits + cost[triIndex(a, b, 0)];  // the label's end
}

namespace {
// What one byte says about the alphabet of the label it is in: a class bit
// and the alphabets it rules out. A table rather than a chain of tests:
// tunnel labels are random characters, on which a chain of branches
// mispredicts.
enum AlphabetBit : uint16_t {
  kLower = 1 << 0,
  kUpper = 1 << 1,
  kDigit = 1 << 2,
  kDigitOutsideBase32 = 1 << 3,  // 0, 1, 8, 9
  kNotHexLower = 1 << 4,
  kNotHexUpper = 1 << 5,
  kNotBase32 = 1 << 6,
  kBase64Extra = 1 << 7,  // + / =
  kPrintable = 1 << 8,    // other printable ASCII
  kBinary = 1 << 9,
};

constexpr std::array<uint16_t, 256> makeAlphabetTable() {
  std::array<uint16_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    uint16_t m = 0;
    if (c >= 'a' && c <= 'z') {
      m = kLower | kNotHexUpper | (c > 'f' ? kNotHexLower : 0);
    } else if (c >= 'A' && c <= 'Z') {
      m = kUpper | kNotHexLower | (c > 'F' ? kNotHexUpper : 0);
    } else if (c >= '0' && c <= '9') {
      m = kDigit | (c < '2' || c > '7' ? kDigitOutsideBase32 : 0);
    } else if (c == '-' || c == '_') {
      m = kNotHexLower | kNotHexUpper | kNotBase32;
    } else if (c == '+' || c == '/' || c == '=') {
      m = kBase64Extra | kNotHexLower | kNotHexUpper | kNotBase32;
    } else if (c >= 0x20 && c < 0x7f) {
      m = kPrintable;
    } else {
      m = kBinary;
    }
    t[static_cast<std::size_t>(c)] = m;
  }
  return t;
}
constexpr std::array<uint16_t, 256> kAlphabetTable = makeAlphabetTable();

// Bits per character of the smallest standard alphabet covering `label`.
double alphabetBits(std::string_view label) {
  unsigned m = 0;
  for (unsigned char c : label) m |= kAlphabetTable[c];
  if (m & kBinary) return 8.0;
  if (m & kPrintable) return 6.57;  // log2(95)
  const bool lower = (m & kLower) != 0;
  const bool upper = (m & kUpper) != 0;
  if (lower && upper) return 6.0;
  if (m & kBase64Extra) return 6.0;
  if (!lower && !upper) return (m & kDigit) ? 3.32 : 5.25;
  if (!(m & kNotHexLower) || !(m & kNotHexUpper)) return 4.0;
  if (!(m & kNotBase32) && !(m & kDigitOutsideBase32)) return 5.0;
  return 5.25;  // log2(38): letters of one case, digits, '-', '_'
}

template <class F>
void forEachLabel(std::string_view prefix, F&& f) {
  std::size_t start = 0;
  while (start < prefix.size()) {
    std::size_t end = prefix.find('.', start);
    if (end == std::string_view::npos) end = prefix.size();
    if (end > start) f(prefix.substr(start, end - start));
    start = end + 1;
  }
}
}  // namespace

PrefixBits prefixBits(const NgramModel* model, std::string_view raw_prefix) {
  PrefixBits out;
  double model_bits = 0.0;
  std::size_t chars = 0;
  // One pass: each label's model cost serves both figures.
  forEachLabel(raw_prefix, [&](std::string_view label) {
    const double uniform = static_cast<double>(label.size()) * alphabetBits(label) + 6.0;
    if (model) {
      const double bits = model->labelBits(label);
      out.info_bits += std::min(uniform, bits);
      model_bits += bits;
      chars += label.size();
    } else {
      out.info_bits += uniform;
    }
  });
  out.model_bits_per_char = chars ? model_bits / static_cast<double>(chars) : 0.0;
  return out;
}

double prefixInfoBits(const NgramModel* model, std::string_view raw_prefix) {
  return prefixBits(model, raw_prefix).info_bits;
}

double prefixModelBitsPerChar(const NgramModel* model, std::string_view raw_prefix) {
  return prefixBits(model, raw_prefix).model_bits_per_char;
}

}  // namespace exfilwatch::score
