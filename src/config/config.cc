// config.cc: YAML configuration with strict validation and file:line errors.
#include "config/config.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/yaml_reader.h"
#include "config/keys.h"

namespace exfilwatch {

namespace {

// Walks one mapping of the file: a key of the table is set, a section
// (a prefix of table keys) is walked, anything else is an error that lists
// what the section knows.
void walk(const yaml::Reader& r, const YAML::Node& node, const std::string& prefix, Config& c) {
  if (node.IsNull()) return;
  if (!node.IsMap())
    r.fail(node, (prefix.empty() ? "configuration" : prefix) + ": expected a mapping");
  const std::string dotted = prefix.empty() ? "" : prefix + ".";
  for (const auto& kv : node) {
    const std::string name = dotted + kv.first.Scalar();
    if (const config::Key* key = config::findKey(name)) {
      config::setKey(c, *key, kv.second, r.source());
      continue;
    }
    bool section = false;
    std::set<std::string> known;
    for (const config::Key& k : config::keys()) {
      const std::string_view full = k.name;
      if (full.rfind(name + ".", 0) == 0) section = true;
      if (full.rfind(dotted, 0) == 0) {
        const std::string_view rest = full.substr(dotted.size());
        known.insert(std::string(rest.substr(0, rest.find('.'))));
      }
    }
    if (section) {
      walk(r, kv.second, name, c);
      continue;
    }
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    r.fail(kv.first, "unknown key '" + name + "' (known: " + list + ")");
  }
}

Config readConfig(const std::string& yaml_text, const std::string& source_name) {
  Config c;
  c.source = source_name;
  const yaml::Reader r(source_name.empty() ? "<config>" : source_name);
  walk(r, r.load(yaml_text), "", c);
  config::checkCombinations(c);
  return c;
}
}  // namespace

Config parseConfig(const std::string& yaml_text, const std::string& source_name) {
  try {
    return readConfig(yaml_text, source_name);
  } catch (const yaml::Error& e) {
    throw ConfigError(e.what());
  }
}

Config loadConfig(const std::string& path) {
  if (path.empty()) return Config{};
  // Starting on defaults (all interfaces, metrics open) because --config
  // named the wrong thing would be worse than not starting.
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw ConfigError(path + ": is a directory, not a configuration file");
  }
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open configuration file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw ConfigError(path + ": cannot read configuration file");
  Config c = parseConfig(buffer.str(), path);
  if (buffer.str().find_first_not_of(" \t\r\n") == std::string::npos) {
    throw ConfigError(path + ": empty configuration file (run without --config for the defaults)");
  }
  return c;
}

Config loadConfig(const std::string& path, const std::vector<std::string>& sets) {
  Config c = loadConfig(path);
  for (const auto& s : sets) config::applySet(c, s);
  return c;
}

}  // namespace exfilwatch
