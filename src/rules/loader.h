// loader.h: rules/*.yaml -> Rules. Strict, like the configuration loader: an
// unknown key, a wrong type, a duplicate id (across all files), an empty file
// or invalid YAML is an error, never a silently skipped rule, because a rule
// that quietly does not load is a detection that quietly does not happen.
// Every message reads "file:line: rule N: what" (the rule part when the id
// is known). The loader keeps going after a bad rule so that `rules check`
// reports every mistake at once, then throws them all in one RuleError.
// Load time only: never called on the packet path.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "rules/rule.h"

namespace exfilwatch::rules {

class RuleError : public std::runtime_error {
 public:
  explicit RuleError(const std::string& message) : std::runtime_error(message) {}
  explicit RuleError(std::vector<std::string> messages);
  // One entry per problem ("file:line: rule N: message").
  const std::vector<std::string>& messages() const { return messages_; }

 private:
  std::vector<std::string> messages_;
};

// One rule file's bytes, kept so the compiled-database cache can be keyed on
// exactly what was parsed.
struct RuleSource {
  std::string path;
  std::string content;
};

// Reads every *.yaml / *.yml file of `dir` (not recursive), sorted by name so
// the rule order (and the cache key) does not depend on the file system.
// Throws RuleError when the directory cannot be read or holds no rule file.
std::vector<RuleSource> readRuleDirectory(const std::string& dir);

// Parses one file. Throws RuleError.
std::vector<Rule> parseRuleFile(const std::string& yaml_text, const std::string& source_name);

// Parses all files and checks ids are unique across them. Throws RuleError
// listing every problem found.
std::vector<Rule> parseRuleSources(const std::vector<RuleSource>& sources);

// Parses a DNS type given as a mnemonic ("TXT", "NULL"), "TYPE65399" or a
// number. Returns false when unknown.
bool parseQtype(const std::string& text, uint16_t& out);

}  // namespace exfilwatch::rules
