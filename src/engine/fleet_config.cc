// fleet_config.cc: `fleet:` keys through fleet::SettingsBuilder.
#include "engine/fleet_config.h"

#include <stdexcept>

namespace exfilwatch::engine {

std::optional<fleet::ConnectionSettings> fleetSettings(const FleetConfig& config,
                                                       const std::string& url_override) {
  bool have_url = !url_override.empty();
  for (const auto& e : config.entries) have_url = have_url || e.key == "url";
  if (!have_url) {
    if (!config.entries.empty()) {
      throw std::runtime_error(config.entries.front().where +
                               "fleet.url: the fleet's other keys need a url");
    }
    return std::nullopt;
  }
  fleet::SettingsBuilder b;
  std::string last_where;
  for (const auto& e : config.entries) {
    if (e.key == "url" && !url_override.empty()) continue;
    last_where = e.where;
    try {
      b.set(e.key, e.value);
    } catch (const fleet::SettingsError& err) {
      throw std::runtime_error(e.where + err.what());
    }
  }
  if (!url_override.empty()) b.set("url", url_override);
  try {
    return b.finish();
  } catch (const fleet::SettingsError& err) {
    throw std::runtime_error(last_where + err.what());
  }
}

}  // namespace exfilwatch::engine
