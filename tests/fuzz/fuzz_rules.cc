// fuzz_rules.cc: libFuzzer target for the rule loader: the input is one rule
// file's YAML text. Only rules::RuleError may escape (every problem is a
// message); any other exception, crash or sanitizer report is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "rules/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace exfilwatch::rules;
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    parseRuleSources({RuleSource{"fuzz.yaml", text}, RuleSource{"again.yaml", text}});
  } catch (const RuleError&) {
  }
  try {
    parseRuleFile(text, "fuzz.yaml");
  } catch (const RuleError&) {
  }
  return 0;
}
