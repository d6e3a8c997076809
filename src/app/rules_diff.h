// rules_diff.h: the what-if of a rule change (`exfilwatch rules diff`) and
// of the allow list (`rules test`), apart from their argument parsing.
#pragma once

#include <string>
#include <vector>

#include "app/analysis.h"

namespace exfilwatch::app {

struct RulesDiffOptions {
  std::string config_path;        // "" = defaults
  std::vector<std::string> sets;  // --set KEY=VALUE
  std::string old_dir, new_dir;
  std::vector<std::string> pcaps;
  bool json = false;
  bool no_cache = false;
};

// Runs the captures with the rules of old_dir, then of new_dir (everything
// else as configured), and prints the alerts added and removed and the pairs
// whose verdict changed. Exit status as diff(1): 0 the same alerts, 1
// differences, 2 an error (configuration, rules, unreadable capture).
int runRulesDiff(const RulesDiffOptions& options);

// The alerts `plane` would raise on the captures with its allow rules
// disabled: compared with a normal run, what the allow list suppresses.
// Throws on a rules build error.
std::vector<AlertRecord> alertsWithoutAllowRules(const ControlPlanePtr& plane,
                                                 const std::vector<std::string>& pcaps);

// a - b as multisets (both sorted).
std::vector<AlertRecord> alertsMinus(const std::vector<AlertRecord>& a,
                                     const std::vector<AlertRecord>& b);

}  // namespace exfilwatch::app
