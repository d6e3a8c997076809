// control_plane_builder.cc: configuration (+ rules) -> immutable ControlPlane.
#include "app/control_plane_builder.h"

namespace exfilwatch::app {

ControlPlanePtr buildControlPlane(const std::string& config_path, uint64_t generation) {
  Config config = loadConfig(config_path);
  // Rules: compiled here too (src/rules), so that config and rules change
  // together or not at all.
  return makeControlPlane(std::move(config), generation);
}

}  // namespace exfilwatch::app
