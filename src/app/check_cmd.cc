// check_cmd.cc: `exfilwatch check`, like `suricata -T`: loads everything a
// start (or a reload) would, through the same pipeline: configuration with
// --set, rules and their self-tests, the allow list, the n-gram model, the
// public suffix list and one Engine; the addresses and ports were checked
// by the configuration's key table. One line out; exit 0, or 2 on any
// error, so `ExecReload` refuses a broken file before the sensor sees it.
#include <cstdio>

#include "alert/eve.h"
#include "app/cli.h"
#include "app/commands.h"
#include "engine/engine.h"
#include "engine/fleet_config.h"
#include "rules/matcher.h"

namespace exfilwatch::app {

namespace {
class DiscardSink final : public EveSink {
 public:
  void write(std::string_view) override {}
  void flush() override {}
};
}  // namespace

int checkCommand(int argc, char** argv) {
  Command app("check",
              "Validate a configuration and everything it loads, as a start would (exit 0 or 2).");
  engine::ConfigSource source;
  addConfigOptions(app, source);
  if (const int status = parse(app, argc, argv); status >= 0) return status;
  const std::string name = source.path.empty() ? "defaults" : source.path;
  try {
    const engine::Pipeline pipeline(source);
    rules::BuildInfo info;
    const ControlPlanePtr plane = pipeline.build(1, &info);
    std::size_t tests = 0;
    if (plane->rules) {
      const auto problems = plane->rules->selfTest();
      for (const auto& p : problems) std::fprintf(stderr, "exfilwatch check: %s\n", p.c_str());
      if (!problems.empty()) {
        std::fprintf(stderr, "exfilwatch check: %s: %zu rule test(s) failed\n", name.c_str(),
                     problems.size());
        return 2;
      }
      for (const auto& r : plane->rules->rules()) {
        if (r.enabled) tests += r.test_match.size() + r.test_no_match.size();
      }
    }
    DiscardSink sink;
    // One Engine: the public suffix list parses, the model and the tables load.
    const auto engine = engine::Pipeline::engine(plane, sink);
    const Config& c = plane->config;
    // `fleet:` as `run` reads it (src/fleet's table, the password file);
    // Redis itself is not contacted.
    const auto fleet = engine::fleetSettings(c.fleet);
    const std::string model = c.score.dns.model_path.empty() ? "built-in" : c.score.dns.model_path;
    const std::string health =
        c.listen.health_port
            ? c.listen.health_address + ":" + std::to_string(c.listen.health_port) + "/tcp"
            : "off";
    std::printf(
        "exfilwatch check: %s: OK: %s; model %s; listen %s:%u/udp, health %s, metrics %s, fleet "
        "%s\n",
        name.c_str(),
        plane->rules ? (std::to_string(info.enabled) + " of " + std::to_string(info.rules) +
                        " rules enabled, " + std::to_string(tests) + " rule tests passed")
                           .c_str()
                     : "rules disabled",
        model.c_str(), c.listen.address.c_str(), c.listen.vxlan_port, health.c_str(),
        c.metrics.address.empty() ? "off" : c.metrics.address.c_str(),
        fleet ? fleet->url.c_str() : "off");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exfilwatch check: %s: %s\n", name.c_str(), e.what());
    return 2;
  }
  return 0;
}

}  // namespace exfilwatch::app
