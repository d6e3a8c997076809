// rule.h: one analyst rule, as loaded from rules/*.yaml (schema in
// rules/schema.json and docs/rules.md). A Rule is a small immutable value:
// the loader fills it once, the RuleSet compiles its expression, and from then
// on it is only read (by every worker at once). Matching the pattern is the
// RuleSet's job (one Hyperscan database per field); the rule itself answers
// the cheap questions: do its conditions hold for this message (appliesTo),
// what is its Hyperscan expression, and how does it print (toString).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace exfilwatch::rules {

// What a rule's pattern is matched against. Names are the schema's `field`.
enum class Field : uint8_t {
  DnsQname,             // dns.qname: query name, ASCII lower-cased, no trailing dot
  DnsQnameRaw,          // dns.qname.raw: the same name with its wire bytes (case kept)
  DnsRegisteredDomain,  // dns.registered_domain: public suffix + 1 label, lower-cased
  DnsAnswerTxt,         // dns.answer.txt: each character-string of each TXT answer
  TlsSni,               // tls.sni: server name of a ClientHello, lower-cased
  TlsJa3,               // tls.ja3: JA3 hash (32 lower-case hex digits)
  TlsJa4,               // tls.ja4: JA4 fingerprint ("t13d1516h2_8daaf6152771_...")
  // dns.subdomain: dns.qname left of its registered domain (no trailing
  // dot); the whole name when it has no registered domain. Where a tunnel's
  // payload can be: its operator chooses neither the suffix nor who else
  // uses the registrable label.
  DnsSubdomain,
};
inline constexpr std::size_t kFieldCount = 8;

std::string_view fieldName(Field f);
// The dns.subdomain value of `lower_name` given its registered domain.
std::string_view subdomainOf(std::string_view lower_name, std::string_view registered_domain);
std::optional<Field> fieldFromName(std::string_view name);

enum class Action : uint8_t {
  Alert,  // emit an EVE alert with the rule's id, name, category, severity
  Score,  // add `weight` to the name's rule score (read by the scoring engine)
  Allow,  // suppress every detection (rules and detectors) for the name
};
std::string_view actionName(Action a);

enum class Direction : uint8_t { Any, Query, Response };
std::string_view directionName(Direction d);

// Where a `literal` must sit in the field value. Patterns anchor themselves.
enum class Anchor : uint8_t {
  None,    // anywhere (substring), like Suricata's content
  Start,   // value starts with it
  End,     // value ends with it
  Exact,   // value is exactly it
  Domain,  // value is it, or ends with "." + it (the domain and its subdomains)
};
std::string_view anchorName(Anchor a);
std::optional<Anchor> anchorFromName(std::string_view name);

// Pattern flags the schema accepts; each maps to an HS_FLAG_*.
enum RuleFlag : uint32_t {
  kFlagCaseless = 1u << 0,
  kFlagDotall = 1u << 1,
  kFlagMultiline = 1u << 2,
  kFlagUtf8 = 1u << 3,
  kFlagUcp = 1u << 4,
};
std::optional<uint32_t> flagFromName(std::string_view name);
std::string flagNames(uint32_t flags);  // "caseless,dotall"

// What the packet path knows about the value being matched, for conditions.
struct MatchContext {
  uint16_t qtype = 0;        // first question's type (DNS fields), 0 otherwise
  bool response = false;     // DNS QR bit
  uint16_t server_port = 0;  // destination port of a query, source port of a response
};

struct Rule {
  uint32_t id = 0;  // stable; becomes alert.signature_id
  std::string name;
  std::string description;
  Field field = Field::DnsQname;
  std::string pattern;  // Hyperscan regex, or empty when `literal` is used
  std::string literal;  // matched byte for byte, placed by `anchor`
  bool is_literal = false;
  Anchor anchor = Anchor::None;
  uint32_t flags = 0;  // RuleFlag bits
  Action action = Action::Alert;
  double weight = 0;  // Score only
  int severity = 2;   // 1 high .. 3 low
  std::string category;
  std::vector<std::string> tags;
  std::vector<std::string> mitre;
  std::vector<std::string> references;
  bool enabled = true;

  // Conditions; an empty list means "any".
  std::vector<uint16_t> qtypes;
  Direction direction = Direction::Any;
  std::vector<uint16_t> ports;

  // Self-tests: values of `field` that must / must not match the pattern.
  std::vector<std::string> test_match;
  std::vector<std::string> test_no_match;

  // Where the rule was written, for every message about it.
  std::string file;
  int line = 0;
  int pattern_line = 0;  // of `pattern` / `literal`, 0 when unknown

  // True when the rule's conditions hold (its pattern is checked elsewhere).
  bool appliesTo(const MatchContext& ctx) const;
  // The expression handed to Hyperscan: the pattern, or the escaped literal
  // (its anchor is checked on each match by literalFits).
  std::string expression() const;
  // For a literal match ending at `end` in `value`: does it sit where the
  // anchor says? Always true for patterns and unanchored literals.
  bool literalFits(std::string_view value, std::size_t end) const;
  // Hyperscan compile flags (HS_FLAG_*), SINGLEMATCH included.
  unsigned hsFlags() const;
  // One line: "1000001 alert  dns.qname  sev=1 iodine handshake ... [file:line]".
  std::string toString() const;
  // "file:line: rule N: " prefix for messages about this rule.
  std::string where() const;
  // The same, at the line of its pattern (messages about the expression).
  std::string wherePattern() const;
  std::string whereAt(int at) const;  // the prefix with another line number
  // A tool or channel signature, by its category (case-insensitive: it
  // names a tunnel, C2, exfiltration or a tool, as the shipped ones and the
  // default alert category do), raising an alert or a score.
  bool isToolRule() const;
};

// Escapes every byte of `text` so Hyperscan reads it literally.
std::string escapeLiteral(std::string_view text);
// Decodes the \xNN and \\ escapes of a test value (YAML cannot hold raw
// 8-bit bytes, tunnels put them in names). Returns false on a bad escape.
bool decodeTestValue(std::string_view in, std::string& out);

}  // namespace exfilwatch::rules
