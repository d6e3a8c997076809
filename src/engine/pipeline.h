// control_plane_builder.h: builds a complete control plane (configuration,
// and the compiled rules once they exist) off the packet path. Used at start
// and on every reload: it throws ConfigError (or a rules error) with
// file:line, and a plane that did not build is never published.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "config/control_plane.h"

namespace exfilwatch::rules {
struct BuildInfo;
}  // namespace exfilwatch::rules

namespace exfilwatch::engine {

ControlPlanePtr buildControlPlane(const std::string& config_path, uint64_t generation);
// The same from an already loaded configuration (replay applies command-line
// overrides first). `info`, when given, receives the rule build's figures.
ControlPlanePtr buildControlPlane(Config config, uint64_t generation,
                                  rules::BuildInfo* info = nullptr);

// Where rules come from when `rules.directory` is empty: the installed
// share/exfilwatch/rules, else the source tree's rules/ (running from a
// build directory). The cache: `rules.cache_directory`, else
// $XDG_CACHE_HOME/exfilwatch/rules or ~/.cache/exfilwatch/rules; "off": none.
std::string rulesDirectory(const RulesConfig& rules);
std::string rulesCacheDirectory(const RulesConfig& rules);

// Reload outcome counters, process-wide, for health and metrics.
struct ReloadCounters {
  std::atomic<uint64_t> succeeded{0};
  std::atomic<uint64_t> failed{0};  // the old plane kept running
};
ReloadCounters& reloadCounters();

// Builds a plane from `config_path` (generation = current + 1) and publishes
// it. On any error (configuration or rules) nothing is published, the old
// plane keeps running, reloadCounters().failed is incremented and `error`
// holds the message. Control thread only.
bool reloadControlPlane(ControlPlaneHolder& holder, const std::string& config_path,
                        std::string& error);

}  // namespace exfilwatch::engine
