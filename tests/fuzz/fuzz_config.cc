// fuzz_config.cc: libFuzzer target for the configuration loader: the input is
// one YAML configuration. Only ConfigError may escape; any other exception,
// crash or sanitizer report is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    exfilwatch::parseConfig(text, "fuzz.yaml");
  } catch (const exfilwatch::ConfigError&) {
  }
  return 0;
}
