// config_cmd.cc: `exfilwatch config`: the configuration as the sensor sees
// it. --defaults prints every key at its default (a file that loads back
// unchanged), --config/--set the effective values, --reference the key
// table that docs/configuration.md carries.
#include <cstdio>

#include "app/cli.h"
#include "app/commands.h"
#include "config/keys.h"

namespace exfilwatch::app {

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
    std::fputs(config::referenceMarkdown().c_str(), stdout);
    return 0;
  }
  if (defaults) {
    std::fputs(config::defaultsYaml().c_str(), stdout);
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
