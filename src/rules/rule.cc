// rule.cc: field/action names, conditions, expression building, printing.
#include "rules/rule.h"

#include <hs/hs.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>

#include "common/escape.h"
#include "dns/message.h"

namespace exfilwatch::rules {

namespace {
constexpr std::array<std::string_view, kFieldCount> kFieldNames = {
    "dns.qname", "dns.qname.raw", "dns.registered_domain", "dns.answer.txt", "tls.sni",
    "tls.ja3",   "tls.ja4",       "dns.subdomain",
};

// Indexed by the enum's value (rule.h).
constexpr std::array<std::string_view, 3> kActionNames = {"alert", "score", "allow"};
constexpr std::array<std::string_view, 3> kDirectionNames = {"any", "query", "response"};
constexpr std::array<std::string_view, 5> kAnchorNames = {"none", "start", "end", "exact",
                                                          "domain"};

template <std::size_t N, class E>
std::string_view nameOf(const std::array<std::string_view, N>& names, E e) {
  const auto i = static_cast<std::size_t>(e);
  return i < N ? names[i] : "?";
}

struct FlagName {
  std::string_view name;
  uint32_t bit;
};
constexpr std::array<FlagName, 5> kFlagNames = {{
    {"caseless", kFlagCaseless},
    {"dotall", kFlagDotall},
    {"multiline", kFlagMultiline},
    {"utf8", kFlagUtf8},
    {"ucp", kFlagUcp},
}};
}  // namespace

std::string_view fieldName(Field f) { return kFieldNames[static_cast<std::size_t>(f)]; }

std::string_view subdomainOf(std::string_view lower_name, std::string_view registered_domain) {
  if (registered_domain.empty()) return lower_name;
  if (registered_domain.size() >= lower_name.size()) return {};  // the registered domain itself
  const std::size_t cut = lower_name.size() - registered_domain.size();
  if (lower_name[cut - 1] != '.' || lower_name.substr(cut) != registered_domain) return lower_name;
  return lower_name.substr(0, cut - 1);
}

std::optional<Field> fieldFromName(std::string_view name) {
  for (std::size_t i = 0; i < kFieldNames.size(); ++i) {
    if (kFieldNames[i] == name) return static_cast<Field>(i);
  }
  return std::nullopt;
}

std::string_view actionName(Action a) { return nameOf(kActionNames, a); }
std::string_view directionName(Direction d) { return nameOf(kDirectionNames, d); }
std::string_view anchorName(Anchor a) { return nameOf(kAnchorNames, a); }

std::optional<Anchor> anchorFromName(std::string_view name) {
  for (Anchor a : {Anchor::None, Anchor::Start, Anchor::End, Anchor::Exact, Anchor::Domain}) {
    if (anchorName(a) == name) return a;
  }
  return std::nullopt;
}

std::optional<uint32_t> flagFromName(std::string_view name) {
  for (const auto& f : kFlagNames) {
    if (f.name == name) return f.bit;
  }
  return std::nullopt;
}

std::string flagNames(uint32_t flags) {
  std::string out;
  for (const auto& f : kFlagNames) {
    if (!(flags & f.bit)) continue;
    if (!out.empty()) out += ',';
    out += f.name;
  }
  return out;
}

bool Rule::appliesTo(const MatchContext& ctx) const {
  if (direction == Direction::Query && ctx.response) return false;
  if (direction == Direction::Response && !ctx.response) return false;
  if (!qtypes.empty() && std::find(qtypes.begin(), qtypes.end(), ctx.qtype) == qtypes.end()) {
    return false;
  }
  if (!ports.empty() && std::find(ports.begin(), ports.end(), ctx.server_port) == ports.end()) {
    return false;
  }
  return true;
}

std::string escapeLiteral(std::string_view text) {
  // \xNN for everything but alphanumerics: always valid in Hyperscan's PCRE
  // syntax, whatever the byte (NUL, '.', high bytes).
  return escape::escaped(text, escape::alphanumeric);
}

std::string Rule::expression() const {
  // Literals compile as plain escaped literals, whatever their anchor:
  // Hyperscan then takes its fast literal path (10,000 blocklist domains
  // compile in well under a second, against half a minute as anchored
  // regexes). The anchor is checked in the match callback (literalFits).
  return is_literal ? escapeLiteral(literal) : pattern;
}

bool Rule::literalFits(std::string_view value, std::size_t end) const {
  if (!is_literal || anchor == Anchor::None) return true;
  if (end < literal.size() || end > value.size()) return false;
  const std::size_t start = end - literal.size();
  switch (anchor) {
    case Anchor::None:
      return true;
    case Anchor::Start:
      return start == 0;
    case Anchor::End:
      return end == value.size();
    case Anchor::Exact:
      return start == 0 && end == value.size();
    case Anchor::Domain:
      return end == value.size() && (start == 0 || value[start - 1] == '.');
  }
  return false;
}

unsigned Rule::hsFlags() const {
  // SINGLEMATCH: we only need to know that a rule matched, once per value;
  // it also lets Hyperscan stop tracking a pattern after its first match.
  unsigned f = HS_FLAG_SINGLEMATCH;
  // An anchored literal needs every occurrence: the first one may sit in the
  // wrong place ("evil.com.x.evil.com" for domain "evil.com").
  if (is_literal && anchor != Anchor::None) f = 0;
  if (flags & kFlagCaseless) f |= HS_FLAG_CASELESS;
  if (flags & kFlagDotall) f |= HS_FLAG_DOTALL;
  if (flags & kFlagMultiline) f |= HS_FLAG_MULTILINE;
  if (flags & kFlagUtf8) f |= HS_FLAG_UTF8;
  if (flags & kFlagUcp) f |= HS_FLAG_UCP;
  return f;
}

bool Rule::isToolRule() const {
  if (action == Action::Allow) return false;
  std::string c = category;
  for (char& ch : c) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (std::string_view word : {"tunnel", "c2", "exfiltration", "tool"}) {
    if (c.find(word) != std::string::npos) return true;
  }
  return false;
}

std::string Rule::whereAt(int at) const {
  return file + ":" + std::to_string(at) + ": rule " + std::to_string(id) + ": ";
}

std::string Rule::where() const { return whereAt(line); }

std::string Rule::wherePattern() const { return whereAt(pattern_line > 0 ? pattern_line : line); }

std::string Rule::toString() const {
  char head[96];
  std::snprintf(head, sizeof head, "%-8u %-5s %-21s ", id, std::string(actionName(action)).c_str(),
                std::string(fieldName(field)).c_str());
  std::string out = head;
  if (action == Action::Score) {
    char w[32];
    std::snprintf(w, sizeof w, "weight=%g ", weight);
    out += w;
  } else if (action == Action::Alert) {
    out += "sev=" + std::to_string(severity) + " ";
  }
  out += name;
  std::string cond;
  if (!qtypes.empty()) {
    cond += " qtype=";
    for (std::size_t i = 0; i < qtypes.size(); ++i) {
      if (i) cond += ',';
      cond += dns::rrtypeText(qtypes[i]);
    }
  }
  if (direction != Direction::Any) cond += " direction=" + std::string(directionName(direction));
  if (!ports.empty()) {
    cond += " port=";
    for (std::size_t i = 0; i < ports.size(); ++i) {
      if (i) cond += ',';
      cond += std::to_string(ports[i]);
    }
  }
  if (!cond.empty()) out += " [" + cond.substr(1) + "]";
  if (!enabled) out += " (disabled)";
  out += "  " + file + ":" + std::to_string(line);
  return out;
}

bool decodeTestValue(std::string_view in, std::string& out) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\\') {
      out += in[i];
      continue;
    }
    if (i + 1 < in.size() && in[i + 1] == '\\') {
      out += '\\';
      ++i;
      continue;
    }
    // Only \xNN remains valid: exactly two hex digits.
    if (in.size() < 4 || i > in.size() - 4 || in[i + 1] != 'x') return false;
    const int hi = hex(in[i + 2]), lo = hex(in[i + 3]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 3;
  }
  return true;
}

}  // namespace exfilwatch::rules
