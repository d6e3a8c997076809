// config_cmd.cc: `exfilwatch config`: the configuration as the sensor sees
// it. --defaults prints every key at its default (a file that loads back
// unchanged), --config/--set the effective values, --reference the key
// table that docs/configuration.md carries.
#include <cstdio>

#include "app/cli.h"
#include "app/commands.h"
#include "config/keys.h"
#include "fleet/redis_url.h"

namespace exfilwatch::app {

namespace {
// A fleet default as YAML: plain when it can be, else double-quoted.
std::string yamlValue(std::string_view v) {
  if (!v.empty() && v.find_first_of(":#{}[],&*?|<>=!%@`'\" ") == std::string_view::npos) {
    return std::string(v);
  }
  return "\"" + std::string(v) + "\"";
}

// The Redis client's `fleet:` keys live in its own table (src/fleet,
// docs/fleet-client.md); the sensor reads them at start when fleet.url is
// set. Commented out under the table's `fleet:` section (printed last):
// any of them without a url is an error.
std::string fleetDefaults() {
  std::string out =
      "  # The fleet's Redis client (docs/fleet.md, docs/fleet-client.md): read at start\n"
      "  # when url is set; any of these without a url is an error.\n";
  for (const auto& k : fleet::settingKeys()) {
    out += "  # " + std::string(k.help) + "\n  # " + std::string(k.name) + ": " +
           yamlValue(k.default_value) + "\n";
  }
  return out;
}

std::string fleetReference() {
  std::string out =
      "\n`fleet:` (the Redis client, [fleet-client.md](fleet-client.md); read at start when "
      "`fleet.url` is set, `replay --fleet URL` overrides the url):\n\n| Key | Default | "
      "Description |\n|-----|---------|-------------|\n";
  for (const auto& k : fleet::settingKeys()) {
    out += "| `fleet." + std::string(k.name) + "` | `" + yamlValue(k.default_value) + "` | " +
           std::string(k.help) + " |\n";
  }
  return out;
}
}  // namespace

int configCommand(int argc, char** argv) {
  Command app("config", "Print the configuration: every key, its value and what it does.");
  engine::ConfigSource source;
  bool defaults = false, reference = false;
  auto* d = app.add_flag("--defaults", defaults, "the full default configuration (YAML)");
  auto* r = app.add_flag("--reference", reference,
                         "the key reference of docs/configuration.md (Markdown)");
  d->excludes(r);
  addConfigOptions(app, source);
  app.get_option("--config")->excludes(d)->excludes(r);
  app.get_option("--set")->excludes(d)->excludes(r);
  if (const int status = parse(app, argc, argv); status >= 0) return status;
  if (reference) {
    std::fputs((config::referenceMarkdown() + fleetReference()).c_str(), stdout);
    return 0;
  }
  if (defaults) {
    std::fputs((config::defaultsYaml() + fleetDefaults()).c_str(), stdout);
    return 0;
  }
  try {
    const Config c = engine::Pipeline(source).config();
    std::printf("# exfilwatch: effective configuration from %s\n",
                source.path.empty() ? "the defaults" : source.path.c_str());
    std::fputs(config::toYaml(c).c_str(), stdout);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exfilwatch config: %s\n", e.what());
    return 2;
  }
  return 0;
}

}  // namespace exfilwatch::app
