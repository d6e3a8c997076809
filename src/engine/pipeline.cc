// pipeline.cc: configuration -> immutable ControlPlane -> Engine.
#include "engine/pipeline.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "build_config.h"
#include "engine/engine.h"
#include "rules/matcher.h"

namespace exfilwatch::engine {

std::string rulesDirectory(const RulesConfig& rules) {
  if (!rules.directory.empty()) return rules.directory;
  std::error_code ec;
  const std::string installed = std::string(EXFILWATCH_DATADIR) + "/rules";
  if (std::filesystem::is_directory(installed, ec)) return installed;
  return std::string(EXFILWATCH_SOURCE_DIR) + "/rules";
}

std::string rulesCacheDirectory(const RulesConfig& rules) {
  if (rules.cache_directory == "off") return {};
  if (!rules.cache_directory.empty()) return rules.cache_directory;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
    return std::string(xdg) + "/exfilwatch/rules";
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return std::string(home) + "/.cache/exfilwatch/rules";
  }
  return {};
}

ControlPlanePtr buildControlPlane(Config config, uint64_t generation, rules::BuildInfo* info) {
  // Rules are compiled here, with the configuration, so that config and
  // rules change together or not at all: a RuleError propagates and the
  // caller keeps its old plane.
  // The default list is not named in the file: check it here, so a missing
  // package is a configuration error (exit 2), not a failure of the workers.
  if (!std::ifstream(config.public_suffix_list)) {
    throw ConfigError("public suffix list " + config.public_suffix_list +
                      ": cannot open (Debian package: publicsuffix)");
  }
  rules::RuleSetPtr rule_set;
  if (config.rules.enabled) {
    rules::BuildOptions options;
    options.cache_dir = rulesCacheDirectory(config.rules);
    rule_set = rules::RuleSet::loadDirectory(rulesDirectory(config.rules), options, info);
  }
  auto plane = std::make_shared<ControlPlane>();
  plane->config = std::move(config);
  plane->rules = std::move(rule_set);
  plane->generation = generation;
  return plane;
}

Config Pipeline::config() const {
  Config config = loadConfig(source_.path, source_.sets);
  if (source_.overrides) source_.overrides(config);
  return config;
}

ControlPlanePtr Pipeline::build(uint64_t generation, rules::BuildInfo* info) const {
  return buildControlPlane(config(), generation, info);
}

std::unique_ptr<Engine> Pipeline::engine(ControlPlanePtr plane, EveSink& sink) {
  return std::make_unique<Engine>(std::move(plane), sink);
}

ReloadCounters& reloadCounters() {
  static ReloadCounters counters;
  return counters;
}

bool Pipeline::reload(ControlPlaneHolder& holder, std::string& error) const {
  const ControlPlanePtr current = holder.load();
  try {
    holder.publish(build(current ? current->generation + 1 : 1));
  } catch (const std::exception& e) {
    error = e.what();
    reloadCounters().failed.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  reloadCounters().succeeded.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace exfilwatch::engine
