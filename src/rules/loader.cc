// loader.cc: strict YAML rule files with file:line errors (yaml-cpp marks).
#include "rules/loader.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>

#include "common/yaml_reader.h"
#include "dns/message.h"

namespace exfilwatch::rules {

namespace {

std::string joinMessages(const std::vector<std::string>& messages) {
  std::string out;
  for (const auto& m : messages) {
    if (!out.empty()) out += '\n';
    out += m;
  }
  return out;
}

// The strict YAML reader; a problem names the rule once its id is known.
class FileParser : public yaml::Reader {
 public:
  explicit FileParser(std::string source) : yaml::Reader(std::move(source)) {}

  Rule rule(const YAML::Node& node);
  void setRuleId(uint32_t id) { rule_id_ = id; }
  // "file:line: rule N: message" (the rule part once the id is known).
  std::string message(const yaml::Error& e) const {
    return e.where() + (rule_id_ ? "rule " + std::to_string(rule_id_) + ": " : "") + e.message();
  }

 private:
  uint32_t rule_id_ = 0;
};

Rule FileParser::rule(const YAML::Node& node) {
  rule_id_ = 0;
  if (!node.IsMap()) fail(node, "a rule must be a mapping (id, name, field, pattern, ...)");
  Rule r;
  r.file = source();
  r.line = node.Mark().line + 1;

  // The id first, so every later message can name the rule.
  const YAML::Node id = node["id"];
  if (!id) fail(node, "missing required key 'id'");
  r.id = integer<uint32_t>(id, "id", 1, 4294967295U);
  if (r.id >= 9000000 && r.id <= 9099999) {
    fail(id, "id: 9000000-9099999 is reserved for exfilwatch's built-in detectors");
  }
  rule_id_ = r.id;

  bool has_action = false, has_weight = false, has_severity = false, has_category = false;
  bool has_anchor = false;
  YAML::Node weight_node;
  YAML::Node anchor_node;
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    if (key == "id") {
      continue;
    } else if (key == "name") {
      r.name = text(v, "name");
    } else if (key == "description") {
      r.description = string(v, "description");
    } else if (key == "field") {
      const auto f = fieldFromName(string(v, "field"));
      if (!f) {
        std::string known;
        for (std::size_t i = 0; i < kFieldCount; ++i) {
          known += (i ? ", " : "") + std::string(fieldName(static_cast<Field>(i)));
        }
        fail(v, "field: unknown field '" + v.Scalar() + "' (known: " + known + ")");
      }
      r.field = *f;
    } else if (key == "pattern") {
      r.pattern = text(v, "pattern");
      r.pattern_line = v.Mark().line + 1;
    } else if (key == "literal") {
      r.literal = text(v, "literal");
      r.pattern_line = v.Mark().line + 1;
      r.is_literal = true;
    } else if (key == "anchor") {
      const auto a = anchorFromName(string(v, "anchor"));
      if (!a) fail(v, "anchor: expected none, start, end, exact or domain");
      r.anchor = *a;
      has_anchor = true;
      anchor_node = v;
    } else if (key == "flags") {
      if (!v.IsSequence()) fail(v, "flags: expected a list (e.g. [caseless])");
      for (const auto& item : v) {
        const auto bit = flagFromName(string(item, "flags"));
        if (!bit)
          fail(item, "flags: unknown flag '" + item.Scalar() +
                         "' (known: caseless, dotall, multiline, utf8, ucp)");
        r.flags |= *bit;
      }
    } else if (key == "action") {
      const std::string a = string(v, "action");
      if (a == "alert") {
        r.action = Action::Alert;
      } else if (a == "score") {
        r.action = Action::Score;
      } else if (a == "allow") {
        r.action = Action::Allow;
      } else {
        fail(v, "action: expected alert, score or allow, got '" + a + "'");
      }
      has_action = true;
    } else if (key == "weight") {
      r.weight = real(v, "weight", -1000.0, 1000.0);
      has_weight = true;
      weight_node = v;
    } else if (key == "severity") {
      r.severity = integer<int>(v, "severity", 1, 3);
      has_severity = true;
    } else if (key == "category") {
      r.category = text(v, "category");
      has_category = true;
    } else if (key == "tags") {
      r.tags = strings(v, "tags");
    } else if (key == "mitre") {
      r.mitre = strings(v, "mitre");
      for (std::size_t i = 0; i < r.mitre.size(); ++i) {
        const std::string& t = r.mitre[i];
        const bool ok =
            t.size() >= 5 && t[0] == 'T' && std::all_of(t.begin() + 1, t.begin() + 5, ::isdigit) &&
            (t.size() == 5 ||
             (t.size() == 9 && t[5] == '.' && std::all_of(t.begin() + 6, t.end(), ::isdigit)));
        if (!ok)
          fail(v[i], "mitre: '" + t + "' is not an ATT&CK technique id (T1071 or T1071.004)");
      }
    } else if (key == "references") {
      r.references = strings(v, "references");
    } else if (key == "enabled") {
      r.enabled = boolean(v, "enabled");
    } else if (key == "qtype") {
      if (!v.IsSequence()) fail(v, "qtype: expected a list of DNS types (e.g. [TXT, NULL])");
      for (const auto& item : v) {
        uint16_t t = 0;
        // YAML reads a bare NULL as null; in a qtype list it can only mean
        // the NULL record type (iodine's favourite).
        if (item.IsNull()) {
          r.qtypes.push_back(dns::rrtype::NULL_);
          continue;
        }
        if (!parseQtype(string(item, "qtype"), t)) {
          fail(item, "qtype: unknown DNS type '" + item.Scalar() + "'");
        }
        r.qtypes.push_back(t);
      }
    } else if (key == "direction") {
      const std::string d = string(v, "direction");
      if (d == "any") {
        r.direction = Direction::Any;
      } else if (d == "query") {
        r.direction = Direction::Query;
      } else if (d == "response") {
        r.direction = Direction::Response;
      } else {
        fail(v, "direction: expected query, response or any, got '" + d + "'");
      }
    } else if (key == "port") {
      r.ports = ports(v, "port");
    } else if (key == "tests") {
      if (!v.IsMap()) fail(v, "tests: expected a mapping with match and no_match lists");
      for (const auto& t : v) {
        const std::string tk = t.first.Scalar();
        std::vector<std::string>* dest = nullptr;
        if (tk == "match") {
          dest = &r.test_match;
        } else if (tk == "no_match") {
          dest = &r.test_no_match;
        } else {
          fail(t.first, "unknown key 'tests." + tk + "' (known: match, no_match)");
        }
        if (!t.second.IsSequence()) fail(t.second, "tests." + tk + ": expected a list of strings");
        for (const auto& item : t.second) {
          std::string decoded;
          if (!decodeTestValue(string(item, "tests"), decoded)) {
            fail(item, "tests." + tk + ": bad escape in '" + item.Scalar() +
                           "' (only \\xNN and \\\\ are understood)");
          }
          dest->push_back(std::move(decoded));
        }
      }
    } else {
      fail(kv.first, "unknown key '" + key +
                         "' (known: id, name, description, field, pattern, literal, anchor, flags, "
                         "action, weight, severity, category, tags, mitre, enabled, qtype, "
                         "direction, port, references, tests)");
    }
  }

  // Cross-key rules of the schema.
  if (r.name.empty()) fail(node, "missing required key 'name'");
  if (!node["field"]) fail(node, "missing required key 'field'");
  if (r.is_literal == !r.pattern.empty()) {
    fail(node, r.is_literal ? "has both 'pattern' and 'literal': use one"
                            : "needs a 'pattern' or a 'literal'");
  }
  if (has_anchor && !r.is_literal) {
    fail(anchor_node, "anchor: only for 'literal' (a pattern anchors itself with ^ and $)");
  }
  if (!has_action) r.action = Action::Alert;
  if (r.action == Action::Score && !has_weight) fail(node, "action score needs a 'weight'");
  if (r.action != Action::Score && has_weight) {
    fail(weight_node, "weight: only meaningful with action: score");
  }
  if (r.action == Action::Allow && has_severity) {
    fail(node["severity"], "severity: an allow rule raises nothing, so it has no severity");
  }
  if (!has_category) {
    r.category = r.action == Action::Allow ? "Allowed" : "Potential DNS tunneling";
  }
  return r;
}

void readRules(FileParser& parser, const std::string& text, std::vector<Rule>& out,
               std::vector<std::string>& errors) {
  const std::string& source = parser.source();
  try {
    const YAML::Node root = parser.load(text);
    if (root.IsNull() || !root.IsDefined()) {
      errors.push_back(source + ":1: empty rule file (expected 'rules:' with at least one rule)");
      return;
    }
    if (!root.IsMap()) parser.fail(root, "expected a mapping with a 'rules' list at the top");
    for (const auto& kv : root) {
      if (kv.first.Scalar() != "rules") {
        parser.fail(kv.first, "unknown top-level key '" + kv.first.Scalar() + "' (known: rules)");
      }
    }
    const YAML::Node list = root["rules"];
    if (!list || list.IsNull()) parser.fail(root, "empty rule file: 'rules' has no rules");
    if (!list.IsSequence()) parser.fail(list, "rules: expected a list of rules");
    if (list.size() == 0) parser.fail(list, "empty rule file: 'rules' has no rules");
    for (const auto& item : list) {
      try {
        out.push_back(parser.rule(item));
      } catch (const yaml::Error& e) {
        errors.push_back(parser.message(e));
      }
      parser.setRuleId(0);
    }
  } catch (const yaml::Error& e) {
    errors.push_back(parser.message(e));
  }
}

}  // namespace

RuleError::RuleError(std::vector<std::string> messages)
    : std::runtime_error(joinMessages(messages)), messages_(std::move(messages)) {}

bool parseQtype(const std::string& text, uint16_t& out) {
  if (text.empty()) return false;
  if (std::all_of(text.begin(), text.end(), ::isdigit)) {
    if (text.size() > 5) return false;
    const unsigned long v = std::stoul(text);
    if (v > 65535) return false;
    out = static_cast<uint16_t>(v);
    return true;
  }
  std::string upper = text;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (upper.rfind("TYPE", 0) == 0 && upper.size() > 4) return parseQtype(upper.substr(4), out);
  // Mnemonic -> number, built once from the parser's own table so both agree.
  static const std::unordered_map<std::string, uint16_t> names = [] {
    std::unordered_map<std::string, uint16_t> m;
    for (uint32_t t = 0; t <= 65535; ++t) {
      const auto n = dns::rrtypeName(static_cast<uint16_t>(t));
      if (!n.empty()) m.emplace(std::string(n), static_cast<uint16_t>(t));
    }
    // iodine's fallback record type, by the name iodine's documentation uses.
    m.emplace("PRIVATE", 65399);
    return m;
  }();
  const auto it = names.find(upper);
  if (it == names.end()) return false;
  out = it->second;
  return true;
}

std::vector<Rule> parseRuleFile(const std::string& yaml_text, const std::string& source_name) {
  std::vector<Rule> out;
  std::vector<std::string> errors;
  FileParser parser(source_name.empty() ? "<rules>" : source_name);
  readRules(parser, yaml_text, out, errors);
  if (!errors.empty()) throw RuleError(std::move(errors));
  return out;
}

std::vector<Rule> parseRuleSources(const std::vector<RuleSource>& sources) {
  std::vector<Rule> out;
  std::vector<std::string> errors;
  for (const auto& src : sources) {
    FileParser parser(src.path);
    readRules(parser, src.content, out, errors);
  }
  std::map<uint32_t, const Rule*> seen;
  for (const auto& r : out) {
    const auto [it, inserted] = seen.emplace(r.id, &r);
    if (!inserted) {
      errors.push_back(r.where() + "duplicate id (first defined at " + it->second->file + ":" +
                       std::to_string(it->second->line) + ")");
    }
  }
  if (!errors.empty()) throw RuleError(std::move(errors));
  return out;
}

std::vector<RuleSource> readRuleDirectory(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw RuleError(dir + ": not a rules directory");
  std::vector<std::string> paths;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    const std::string ext = p.extension().string();
    if ((ext == ".yaml" || ext == ".yml") && it->is_regular_file(ec)) paths.push_back(p.string());
  }
  if (ec) throw RuleError(dir + ": cannot list: " + ec.message());
  if (paths.empty()) throw RuleError(dir + ": no rule files (*.yaml)");
  std::sort(paths.begin(), paths.end());
  std::vector<RuleSource> out;
  for (const auto& path : paths) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw RuleError(path + ": cannot open rule file");
    std::stringstream buffer;
    buffer << in.rdbuf();
    out.push_back({path, buffer.str()});
  }
  return out;
}

}  // namespace exfilwatch::rules
