// pipeline.h: the one way every command (run, replay, explain, rules, check)
// and bench builds what it runs: configuration file + `--set KEY=VALUE` +
// the command's own overrides -> control plane (configuration, compiled
// rules and allow list, n-gram model, public suffix list) -> Engine. Used
// at start and on every reload (SIGHUP): it throws ConfigError (or a rules
// error) with file:line, and a plane that did not build is never published.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/control_plane.h"

namespace exfilwatch {
class Engine;
class EveSink;
}  // namespace exfilwatch

namespace exfilwatch::rules {
struct BuildInfo;
}  // namespace exfilwatch::rules

namespace exfilwatch::engine {

// Where a command's configuration comes from, applied in this order.
struct ConfigSource {
  std::string path;               // --config FILE; "": the defaults
  std::vector<std::string> sets;  // --set KEY=VALUE, checked like the file
  // The command's own flags (--dns-log, a rules DIR, ...), applied last.
  std::function<void(Config&)> overrides;
};

class Pipeline {
 public:
  explicit Pipeline(ConfigSource source) : source_(std::move(source)) {}

  // The configuration, read from the file again on every call (a reload
  // sees the file's new content). Throws ConfigError.
  Config config() const;
  // The whole control plane. `info`, when given, receives the rule build's
  // figures. Throws on any error.
  ControlPlanePtr build(uint64_t generation, rules::BuildInfo* info = nullptr) const;
  // A worker's (or a replay's) Engine on `plane`, writing to `sink`.
  static std::unique_ptr<Engine> engine(ControlPlanePtr plane, EveSink& sink);

  // Builds generation current + 1 and publishes it. On any error nothing is
  // published, the old plane keeps running, reloadCounters().failed is
  // incremented and `error` holds the message. Control thread only.
  bool reload(ControlPlaneHolder& holder, std::string& error) const;

  const ConfigSource& source() const { return source_; }

 private:
  ConfigSource source_;
};

// The control plane from an already loaded configuration.
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

}  // namespace exfilwatch::engine
