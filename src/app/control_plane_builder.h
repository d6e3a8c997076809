// control_plane_builder.h: builds a complete control plane (configuration,
// and the compiled rules once they exist) off the packet path. Used at start
// and on every reload: it throws ConfigError (or a rules error) with
// file:line, and a plane that did not build is never published.
#pragma once

#include <cstdint>
#include <string>

#include "config/control_plane.h"

namespace exfilwatch::app {

ControlPlanePtr buildControlPlane(const std::string& config_path, uint64_t generation);

}  // namespace exfilwatch::app
