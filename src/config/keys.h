// keys.h: every configuration key, described once. The table drives the
// YAML parser, `--set key=value`, `exfilwatch config --defaults` and the
// reference in docs/configuration.md (a unit test keeps that page equal to
// referenceMarkdown()). Adding a key is adding one row.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "config/config.h"

namespace YAML {
class Node;
}  // namespace YAML

namespace exfilwatch::config {

// Where a key's value lives in Config. Captureless lambdas, one per row.
using Field =
    std::variant<bool& (*)(Config&), uint16_t& (*)(Config&), uint32_t& (*)(Config&),
                 uint64_t& (*)(Config&), double& (*)(Config&), std::string& (*)(Config&),
                 std::vector<uint16_t>& (*)(Config&),
                 std::array<uint32_t, score::kWindows>& (*)(Config&),
                 std::vector<std::string>& (*)(Config&), std::vector<IpPrefix>& (*)(Config&)>;

// What a value must be beyond its type and range.
enum class Check : uint8_t {
  None,
  Address,    // a numeric IPv4/IPv6 address (no names: start must not need DNS)
  HostPort,   // HOST:PORT, [V6]:PORT or :PORT, port 1-65535; "": off
  HttpUrl,    // http:// or https://; "": off
  Readable,   // a file that opens now, not when the workers start
  Model,      // an n-gram model file that loads; "": the built-in one
  Ascending,  // windows: strictly ascending
  CidrList,   // a list of addresses or CIDR prefixes, at most `max` of them
  Fleet,      // the fleet's Redis client: src/fleet checks the value at start
              // (engine/fleet_config.h); where it was set is kept for that
};

struct Key {
  const char* name;  // dotted YAML path, e.g. "listen.vxlan_port"
  Field field;
  double min = 0, max = 0;  // numbers (and each item of a list of numbers)
  Check check = Check::None;
  bool restart = false;  // read once at start; a reload does not apply it
  const char* doc = "";  // one line
};

std::span<const Key> keys();
const Key* findKey(const std::string& name);

// "bool", "integer", "number", "string", "ports", "windows", "strings", "prefixes".
const char* typeName(const Key& key);
// The value of `key` in `config` as YAML flow text: 4789, "0.0.0.0", [53].
std::string valueText(const Key& key, const Config& config);
// The range as text ("1 .. 65535"), "" when there is none.
std::string rangeText(const Key& key);

// `exfilwatch config --defaults`: the whole default configuration, every
// key with its doc line, as YAML that loads back to Config{}.
std::string defaultsYaml();
// The current values of `config` in the same layout.
std::string toYaml(const Config& config);
// The key table of docs/configuration.md (Markdown).
std::string referenceMarkdown();

// Sets one key from a YAML value; throws yaml::Error with `where`.
void setKey(Config& config, const Key& key, const YAML::Node& value, const std::string& source);

// `--set key=value`: the value is YAML ("8", "[53, 5353]", "''"), checked
// like the file's. Throws ConfigError ("--set listen.workers: ...").
void applySet(Config& config, const std::string& assignment);

// Checks that involve several keys; throws ConfigError.
void checkCombinations(const Config& config);

}  // namespace exfilwatch::config
