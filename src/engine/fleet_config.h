// fleet_config.h: the `fleet:` section (kept as text by config, see
// FleetConfig) turned into the Redis client's connection settings; the
// fleet's own table (fleet/redis_url.h) checks every key.
#pragma once

#include <optional>
#include <string>

#include "config/config.h"
#include "fleet/redis_url.h"

namespace exfilwatch::engine {

// nullopt when no fleet is configured (no fleet.url and no override).
// `url_override` (replay --fleet URL) replaces fleet.url. Throws
// std::runtime_error "file:line: fleet.<key>: ..." on a mistake.
std::optional<fleet::ConnectionSettings> fleetSettings(const FleetConfig& config,
                                                       const std::string& url_override = {});

}  // namespace exfilwatch::engine
