// control_plane.h: everything a worker reads but never writes: the
// configuration, and later the compiled rules and models. It is built whole
// off the packet path, then published with an atomic pointer swap; workers
// pick up the newest one between batches, and the old one is freed when the
// last worker lets go of it (shared_ptr). A bad new one is never published.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "config/config.h"

namespace exfilwatch {

namespace rules {
class RuleSet;  // src/rules: compiled analyst rules
}  // namespace rules

struct ControlPlane {
  Config config;
  std::shared_ptr<const rules::RuleSet> rules;  // null: no rule engine loaded
  uint64_t generation = 0;                      // 1 for the first, +1 per reload
};

using ControlPlanePtr = std::shared_ptr<const ControlPlane>;

// The published control plane. load() between batches; publish() from the
// control thread after the new plane validated.
class ControlPlaneHolder {
 public:
  explicit ControlPlaneHolder(ControlPlanePtr initial) : current_(std::move(initial)) {}
  ControlPlanePtr load() const { return current_.load(std::memory_order_acquire); }
  void publish(ControlPlanePtr next) { current_.store(std::move(next), std::memory_order_release); }

 private:
  std::atomic<ControlPlanePtr> current_;
};

inline ControlPlanePtr makeControlPlane(Config config, uint64_t generation = 1) {
  auto plane = std::make_shared<ControlPlane>();
  plane->config = std::move(config);
  plane->generation = generation;
  return plane;
}

}  // namespace exfilwatch
