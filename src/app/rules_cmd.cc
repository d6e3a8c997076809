// rules_cmd.cc: `exfilwatch rules check|test|diff|list`, the analyst's
// loop: write a rule, `check` it (schema, Hyperscan compile, the rule's own
// tests), `test` it on captures (every alert with its signature id, hits per
// rule with sample names, and what each allow rule suppresses), `diff` the
// change against the rules in force (rules_diff.cc), then reload the sensor.
// `test` runs the very Engine the sensor runs, with observers attached, so
// what it shows is what the sensor would do.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "alert/json.h"
#include "app/analysis.h"
#include "app/cli.h"
#include "app/commands.h"
#include "app/rules_diff.h"
#include "capture/pcap_source.h"
#include "common/escape.h"
#include "config/config.h"
#include "engine/engine.h"
#include "engine/pipeline.h"
#include "rules/matcher.h"

namespace exfilwatch::app {

namespace {

void usage() {
  std::fprintf(stderr,
               "usage: exfilwatch rules check [--config FILE] [--no-cache] [DIR]\n"
               "       exfilwatch rules test  [--config FILE] [--json] [DIR] PCAP...\n"
               "       exfilwatch rules diff  [--config FILE] [--json] [--no-cache]\n"
               "                              OLD_DIR NEW_DIR PCAP...\n"
               "       exfilwatch rules list  [--config FILE] [DIR]\n"
               "  check  validate and compile the rules, run each rule's tests; exit 1 on error\n"
               "  test   run captures through the sensor's path: every alert by signature id\n"
               "         (rules and scorer; the count replay gives), hits per rule with\n"
               "         sample names, and what each allow rule suppresses\n"
               "  diff   the same captures with OLD_DIR's rules, then NEW_DIR's: alerts\n"
               "         added and removed, pairs whose verdict changed; exit 0 same, 1 differ\n"
               "  list   the loaded rules, one line each\n"
               "  DIR    rules directory; default: rules.directory of the configuration,\n"
               "         else the installed default rules\n");
}

struct Args {
  std::string config_path;
  std::vector<std::string> sets;  // --set KEY=VALUE
  std::string dir;
  std::vector<std::string> pcaps;
  bool json = false;
  bool no_cache = false;
};

bool parseArgs(int argc, char** argv, bool takes_pcaps, Args& a, int& status) {
  Command app("rules " + std::string(argv[1]),
              "The analyst rules; DIR: the rules directory (default: rules.directory "
              "of the configuration, else the installed default rules).");
  engine::ConfigSource source;
  std::vector<std::string> positional;
  addConfigOptions(app, source);
  app.add_flag("--no-cache", a.no_cache, "compile the rules, ignoring the compiled-rule cache");
  if (takes_pcaps) app.add_flag("--json", a.json, "the report as one JSON object");
  app.add_option(takes_pcaps ? "PCAP" : "DIR", positional,
                 takes_pcaps ? "[DIR] PCAP...: the rules directory (optional), then captures"
                             : "the rules directory");
  status = parse(app, argc - 1, argv + 1);
  if (status >= 0) return false;
  a.config_path = source.path;
  a.sets = source.sets;
  // DIR is optional and comes first: recognise it by being a directory.
  std::error_code ec;
  if (!positional.empty() && std::filesystem::is_directory(positional.front(), ec)) {
    a.dir = positional.front();
    positional.erase(positional.begin());
  }
  if (takes_pcaps) {
    a.pcaps = positional;
    if (a.pcaps.empty()) {
      usage();
      status = 2;
      return false;
    }
  } else if (!positional.empty()) {
    std::fprintf(stderr, "exfilwatch rules: %s is not a rules directory\n",
                 positional.front().c_str());
    status = 2;
    return false;
  }
  return true;
}

// The configuration with the command line's DIR applied; rules forced on.
bool loadConfigFor(const Args& a, Config& config) {
  try {
    config = loadConfig(a.config_path, a.sets);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exfilwatch: %s\n", e.what());
    return false;
  }
  config.rules.enabled = true;
  if (!a.dir.empty()) config.rules.directory = a.dir;
  if (a.no_cache) config.rules.cache_directory = "off";
  return true;
}

void printErrors(const std::exception& e) {
  if (const auto* re = dynamic_cast<const rules::RuleError*>(&e); re && !re->messages().empty()) {
    for (const auto& m : re->messages()) std::fprintf(stderr, "error: %s\n", m.c_str());
    std::fprintf(stderr, "%zu error(s)\n", re->messages().size());
  } else {
    std::fprintf(stderr, "error: %s\n", e.what());
  }
}

rules::RuleSetPtr loadRules(const Config& config, rules::BuildInfo& info) {
  rules::BuildOptions options;
  options.cache_dir = engine::rulesCacheDirectory(config.rules);
  return rules::RuleSet::loadDirectory(engine::rulesDirectory(config.rules), options, &info);
}

int checkCommand(const Args& a) {
  Config config;
  if (!loadConfigFor(a, config)) return 2;
  const std::string dir = engine::rulesDirectory(config.rules);
  rules::BuildInfo info;
  rules::RuleSetPtr set;
  try {
    set = loadRules(config, info);
  } catch (const std::exception& e) {
    printErrors(e);
    return 1;
  }
  const auto problems = set->selfTest();
  for (const auto& p : problems) std::fprintf(stderr, "error: %s\n", p.c_str());
  std::vector<std::string> warnings;
  try {
    dns::RegisteredDomain psl(config.public_suffix_list);
    warnings = set->lint(psl);
  } catch (const std::exception& e) {
    warnings.push_back(std::string("cannot load the public suffix list, rules not linted: ") +
                       e.what());
  }
  for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  std::size_t tests = 0;
  for (const auto& r : set->rules()) {
    if (r.enabled) tests += r.test_match.size() + r.test_no_match.size();
  }
  char hit[48] = "";
  if (info.cache == "hit") std::snprintf(hit, sizeof hit, " (%.1f ms)", info.cache_load_ms);
  std::printf(
      "%s: %zu rules (%zu enabled), %zu rule tests, %zu failed, %zu warning(s); load %.1f ms, "
      "compile %.1f ms, cache %s%s\n",
      dir.c_str(), info.rules, info.enabled, tests, problems.size(), warnings.size(), info.load_ms,
      info.compile_ms, info.cache.c_str(), hit);
  return problems.empty() ? 0 : 1;
}

int listCommand(const Args& a) {
  Config config;
  if (!loadConfigFor(a, config)) return 2;
  rules::BuildInfo info;
  rules::RuleSetPtr set;
  try {
    set = loadRules(config, info);
  } catch (const std::exception& e) {
    printErrors(e);
    return 1;
  }
  for (const auto& r : set->rules()) std::printf("%s\n", r.toString().c_str());
  return 0;
}

class NullSink final : public EveSink {
 public:
  void write(std::string_view) override { ++lines; }
  void flush() override {}
  uint64_t lines = 0;
};

// Collects hits and suppressions per rule, with a few distinct sample names.
class TestObserver final : public rules::Observer {
 public:
  static constexpr std::size_t kSamples = 3;
  struct PerRule {
    uint64_t hits = 0;
    std::set<std::string> names;  // distinct, capped
    uint64_t distinct = 0;
    std::map<std::string, uint64_t> suppressed;  // what -> count
    std::set<std::string> suppressed_names;
  };
  void onMatch(const rules::Rule& rule, std::string_view name) override {
    PerRule& p = by_id[rule.id];
    ++p.hits;
    if (p.names.size() < kSamples) p.names.insert(printable(name));
  }
  void onSuppressed(const rules::Rule& allow, std::string_view name,
                    std::string_view what) override {
    PerRule& p = by_id[allow.id];
    ++p.suppressed[std::string(what)];
    if (p.suppressed_names.size() < kSamples) p.suppressed_names.insert(printable(name));
  }
  std::map<uint32_t, PerRule> by_id;
};

// Alerts grouped by signature id, with their pairs and a sample each.
struct BySignature {
  std::string signature;
  uint64_t alerts = 0;
  std::set<std::string> pairs;
  std::string sample;  // "pair  name"
};

std::map<uint32_t, BySignature> groupBySignature(const std::vector<AlertRecord>& alerts) {
  std::map<uint32_t, BySignature> out;
  for (const auto& r : alerts) {
    BySignature& g = out[r.signature_id];
    g.signature = r.signature;
    ++g.alerts;
    if (g.pairs.size() < 100000) g.pairs.insert(r.pair());
    if (g.sample.empty()) g.sample = r.pair() + (r.name.empty() ? "" : "  " + r.name);
  }
  return out;
}

// What the allow list suppresses: alerts of a run without allow rules that
// the real run has not, by the allow rule that took their name (0: none
// took it; the alert comes from state the allowed names changed).
struct Hidden {
  uint64_t alerts = 0;
  std::string sample;
};
std::map<std::pair<uint32_t, uint32_t>, Hidden> hiddenByAllowRule(
    const std::vector<AlertRecord>& hidden, const AlertCollector& collector) {
  std::map<std::pair<uint32_t, uint32_t>, Hidden> out;  // (allow rule, signature)
  for (const auto& r : hidden) {
    const auto it = collector.allowed_names.find(r.name);
    const uint32_t allow = it == collector.allowed_names.end() ? 0 : it->second;
    Hidden& h = out[{allow, r.signature_id}];
    ++h.alerts;
    if (h.sample.empty()) h.sample = r.pair() + (r.name.empty() ? "" : "  " + r.name);
  }
  return out;
}

int testCommand(const Args& a) {
  Config config;
  if (!loadConfigFor(a, config)) return 2;
  ControlPlanePtr plane;
  rules::BuildInfo info;
  try {
    plane = engine::buildControlPlane(config, 1, &info);
  } catch (const std::exception& e) {
    printErrors(e);
    return 1;
  }
  NullSink sink;
  TestObserver observer;
  AlertCollector collector;
  std::unique_ptr<Engine> engine;
  try {
    engine = std::make_unique<Engine>(plane, sink);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exfilwatch: %s\n", e.what());
    return 2;
  }
  engine->setRuleObserver(&observer);
  engine->setObserver(&collector);
  const int status = runCaptures(*engine, a.pcaps, &collector, "rules test") ? 0 : 1;
  const EngineStats& s = engine->stats();
  const auto& rule_list = plane->rules->rules();
  std::vector<AlertRecord> alerts = collector.alerts;
  std::sort(alerts.begin(), alerts.end());
  const auto by_signature = groupBySignature(alerts);
  std::map<std::pair<uint32_t, uint32_t>, Hidden> hidden;
  if (collector.names_allowed > 0) {
    try {
      auto without = alertsWithoutAllowRules(plane, a.pcaps);
      std::sort(without.begin(), without.end());
      hidden = hiddenByAllowRule(alertsMinus(without, alerts), collector);
    } catch (const std::exception& e) {
      printErrors(e);
      return 1;
    }
  }
  auto ruleName = [&](uint32_t id) -> std::string {
    for (const auto& r : rule_list) {
      if (r.id == id) return r.name;
    }
    return {};
  };

  if (a.json) {
    JsonWriter w;
    w.openObject();
    w.uint("dns_messages", s.dns_messages);
    w.uint("alerts", s.alerts);
    w.uint("rule_alerts", s.rule_alerts);
    w.uint("names_allowed", s.rule_allowed);
    w.openArray("alerts_by_signature");
    for (const auto& [id, g] : by_signature) {
      w.openObject();
      w.uint("signature_id", id);
      w.string("signature", g.signature);
      w.uint("alerts", g.alerts);
      w.uint("pairs", g.pairs.size());
      w.string("sample", g.sample);
      w.closeObject();
    }
    w.closeArray();
    w.openArray("alert_list");
    for (const auto& r : alerts) {
      w.openObject();
      w.string("file", r.file);
      w.uint("pcap_cnt", r.frame);
      w.string("time", isoTime(r.ts));
      w.uint("signature_id", r.signature_id);
      w.string("client", r.client);
      if (r.tls) {
        w.string("server", r.server);
      } else {
        w.string("domain", r.domain);
        w.string("name", r.name);
      }
      w.closeObject();
    }
    w.closeArray();
    w.openArray("suppressed_by_allow");
    for (const auto& [key, h] : hidden) {
      w.openObject();
      w.uint("allow_rule_id", key.first);
      w.uint("signature_id", key.second);
      w.uint("alerts", h.alerts);
      w.string("sample", h.sample);
      w.closeObject();
    }
    w.closeArray();
    w.openArray("allow_samples");  // a pair each allow rule took a name of
    for (const auto& [id, sample] : collector.allow_samples) {
      w.openObject();
      w.uint("allow_rule_id", id);
      w.string("client", sample.client);
      w.string("domain", sample.domain);
      w.string("name", sample.name);
      w.closeObject();
    }
    w.closeArray();
    w.openArray("rules");
    for (const auto& r : rule_list) {
      const auto it = observer.by_id.find(r.id);
      if (it == observer.by_id.end()) continue;
      const auto& p = it->second;
      w.openObject();
      w.uint("id", r.id);
      w.string("name", r.name);
      w.string("action", rules::actionName(r.action));
      w.string("field", rules::fieldName(r.field));
      w.uint("hits", p.hits);
      w.openArray("samples");
      for (const auto& n : p.names) w.string("", n);
      w.closeArray();
      if (r.action == rules::Action::Allow) {
        w.openObject("suppressed");
        for (const auto& [what, count] : p.suppressed) w.uint(what, count);
        w.closeObject();
        w.openArray("suppressed_samples");
        for (const auto& n : p.suppressed_names) w.string("", n);
        w.closeArray();
      }
      w.closeObject();
    }
    w.closeArray();
    w.closeObject();
    std::printf("%s\n", w.text().c_str());
    return status;
  }

  std::printf(
      "%zu capture(s): %llu DNS messages, %llu alerts (%llu from rules), %llu names "
      "allowed\n",
      a.pcaps.size(), static_cast<unsigned long long>(s.dns_messages),
      static_cast<unsigned long long>(s.alerts), static_cast<unsigned long long>(s.rule_alerts),
      static_cast<unsigned long long>(s.rule_allowed));
  std::printf("alerts by signature (what replay writes):%s\n", by_signature.empty() ? " none" : "");
  for (const auto& [id, g] : by_signature) {
    std::printf("  %-8u %6llu alerts %5zu pairs  %s\n", id,
                static_cast<unsigned long long>(g.alerts), g.pairs.size(), g.signature.c_str());
    std::printf("           e.g. %s\n", g.sample.c_str());
  }
  if (collector.names_allowed > 0) {
    std::printf("suppressed by the allow list (alerts a run without allow rules adds):%s\n",
                hidden.empty() ? " none" : "");
    for (const auto& [key, h] : hidden) {
      const std::string allow =
          key.first ? "allow rule " + std::to_string(key.first) + " (" + ruleName(key.first) + ")"
                    : "the allow list (state of allowed names)";
      std::printf("  %-8u %6llu alerts  suppressed by %s\n", key.second,
                  static_cast<unsigned long long>(h.alerts), allow.c_str());
      std::printf("           e.g. %s\n", h.sample.c_str());
    }
  }
  std::printf("rule hits:\n");
  std::size_t silent = 0;
  for (const auto& r : rule_list) {
    const auto it = observer.by_id.find(r.id);
    if (it == observer.by_id.end()) {
      ++silent;
      continue;
    }
    const auto& p = it->second;
    std::printf("%-8u %-5s %6llu hits  %s\n", r.id,
                std::string(rules::actionName(r.action)).c_str(),
                static_cast<unsigned long long>(p.hits), r.name.c_str());
    for (const auto& n : p.names) std::printf("           e.g. %s\n", n.c_str());
    if (r.action == rules::Action::Allow) {
      if (p.suppressed.empty()) {
        std::printf("           suppressed: no rule or lexical hit on these names\n");
      }
      for (const auto& [what, count] : p.suppressed) {
        std::printf("           suppressed %llu x %s\n", static_cast<unsigned long long>(count),
                    what.c_str());
      }
      for (const auto& n : p.suppressed_names) std::printf("           hid %s\n", n.c_str());
    }
  }
  std::printf("%zu rule(s) without hits\n", silent);
  return status;
}

int diffCommand(int argc, char** argv) {
  RulesDiffOptions o;
  std::vector<std::string> positional;
  Command app("rules diff",
              "The same captures with OLD_DIR's rules, then NEW_DIR's: alerts added and "
              "removed, pairs whose verdict changed; exit 0 same, 1 differ.");
  engine::ConfigSource source;
  addConfigOptions(app, source);
  app.add_flag("--no-cache", o.no_cache, "compile the rules, ignoring the compiled-rule cache");
  app.add_flag("--json", o.json, "the report as one JSON object");
  app.add_option("ARGS", positional,
                 "OLD_DIR NEW_DIR PCAP...: the rules in force, the changed rules, captures");
  if (const int status = parse(app, argc - 1, argv + 1); status >= 0) return status;
  o.config_path = source.path;
  o.sets = source.sets;
  if (positional.size() < 3) {
    usage();
    return 2;
  }
  for (int k = 0; k < 2; ++k) {
    std::error_code ec;
    if (!std::filesystem::is_directory(positional[k], ec)) {
      std::fprintf(stderr, "exfilwatch rules diff: %s is not a rules directory\n",
                   positional[k].c_str());
      return 2;
    }
  }
  o.old_dir = positional[0];
  o.new_dir = positional[1];
  o.pcaps.assign(positional.begin() + 2, positional.end());
  return runRulesDiff(o);
}

}  // namespace

int rulesCommand(int argc, char** argv) {
  if (argc < 2) {
    usage();
    return 2;
  }
  const std::string sub = argv[1];
  Args a;
  int status = 0;
  if (sub == "check") {
    if (!parseArgs(argc, argv, false, a, status)) return status;
    return checkCommand(a);
  }
  if (sub == "list") {
    if (!parseArgs(argc, argv, false, a, status)) return status;
    return listCommand(a);
  }
  if (sub == "diff") return diffCommand(argc, argv);
  if (sub == "test") {
    if (!parseArgs(argc, argv, true, a, status)) return status;
    return testCommand(a);
  }
  if (sub == "--help" || sub == "-h" || sub == "help") {
    usage();
    return 0;
  }
  std::fprintf(stderr, "exfilwatch rules: unknown subcommand '%s'\n", sub.c_str());
  usage();
  return 2;
}

}  // namespace exfilwatch::app
