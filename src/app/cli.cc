// cli.cc: the shared command-line helpers (cli.h).
#include "app/cli.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace exfilwatch::app {

Command::Command(const std::string& name, const std::string& description)
    : CLI::App(description, "exfilwatch " + name) {
  set_help_flag("-h,--help", "print this help and exit");
  get_formatter()->column_width(30);
}

int parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: %s\n\n%s", app.get_name().c_str(), e.what(), app.help().c_str());
    return 2;
  }
  return -1;
}

unsigned long long parseUnsigned(const std::string& option, const std::string& text,
                                 unsigned long long min, unsigned long long max) {
  unsigned long long value = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), value, 10);
  if (text.empty() || r.ec == std::errc::invalid_argument || r.ptr != text.data() + text.size()) {
    throw CLI::ValidationError(option, "expected a base-10 integer, got '" + text + "'");
  }
  if (r.ec == std::errc::result_out_of_range || value < min || value > max) {
    throw CLI::ValidationError(option, text + " is out of range [" + std::to_string(min) + ", " +
                                           std::to_string(max) + "]");
  }
  return value;
}

CLI::Option* addPositive(CLI::App& app, const std::string& name, double& target, double max,
                         const std::string& doc) {
  const std::string option = name.substr(0, name.find(','));
  return app
      .add_option_function<std::string>(
          name,
          [&target, option, max](const std::string& text) {
            double value = 0;
            const auto r = std::from_chars(text.data(), text.data() + text.size(), value);
            if (text.empty() || r.ec != std::errc{} || r.ptr != text.data() + text.size() ||
                !std::isfinite(value)) {
              throw CLI::ValidationError(option, "expected a number, got '" + text + "'");
            }
            if (!(value > 0 && value <= max)) {
              throw CLI::ValidationError(option, text + " must be > 0 and <= " +
                                                     std::to_string(static_cast<long long>(max)));
            }
            target = value;
          },
          doc)
      ->type_name("X");
}

void addConfigOptions(CLI::App& app, engine::ConfigSource& source) {
  app.add_option("--config", source.path, "configuration file (YAML); default: the defaults")
      ->type_name("FILE");
  app.add_option("--set", source.sets,
                 "override one configuration key, checked like the file (repeatable)")
      ->type_name("KEY=VALUE")
      ->expected(1)
      ->allow_extra_args(false)  // --set K=V PCAP: the capture is not a second value
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

}  // namespace exfilwatch::app
