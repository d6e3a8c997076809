// cli.h: the one argument parser every command uses (CLI11). `--opt=value`
// and `--opt value` both work; an unknown option or a missing value is an
// error followed by the command's usage (exit 2); numbers are base 10 and
// range-checked with a message that names the option and the range.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <limits>
#include <string>

#include "engine/pipeline.h"

namespace exfilwatch::app {

// A command's parser, "exfilwatch NAME".
class Command : public CLI::App {
 public:
  Command(const std::string& name, const std::string& description);
};

// Parses; returns -1 when the command should go on, else the exit status
// (0 after --help, 2 after an error, both already printed).
int parse(CLI::App& app, int argc, char** argv);

// Base-10 integer in [min, max]; throws CLI::ValidationError.
unsigned long long parseUnsigned(const std::string& option, const std::string& text,
                                 unsigned long long min, unsigned long long max);

// An integer option in [min, max].
template <class T>
CLI::Option* addNumber(CLI::App& app, const std::string& name, T& target, T min, T max,
                       const std::string& doc) {
  const std::string option = name.substr(0, name.find(','));
  return app
      .add_option_function<std::string>(
          name,
          [&target, option, min, max](const std::string& text) {
            target = static_cast<T>(parseUnsigned(option, text, min, max));
          },
          doc + " [" + std::to_string(min) + " .. " + std::to_string(max) + "]")
      ->type_name("N");
}

// A number greater than 0 and at most max.
CLI::Option* addPositive(CLI::App& app, const std::string& name, double& target, double max,
                         const std::string& doc);

// --config FILE and --set KEY=VALUE (repeatable), into `source`.
void addConfigOptions(CLI::App& app, engine::ConfigSource& source);

}  // namespace exfilwatch::app
