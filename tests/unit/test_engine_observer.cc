// The Engine's observer (explain, rules test, rules diff): it sees exactly
// the decisions the engine counts, and attaching it changes no output.
#include <doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "build_config.h"
#include "capture/pcap_source.h"
#include "engine/engine.h"
#include "engine/pipeline.h"

namespace exfilwatch {
namespace {

struct LinesSink final : EveSink {
  void write(std::string_view line) override { lines.emplace_back(line); }
  void flush() override {}
  std::vector<std::string> lines;
};

struct Counting final : EngineObserver {
  void onName(const Name& n) override {
    ++names;
    if (n.allowed_by) {
      ++allowed;
      CHECK(n.allowed_by->action == rules::Action::Allow);
    }
  }
  void onAlert(const AlertEvent& e) override {
    ++(e.suppressed ? held : written);
    CHECK(e.alert.signature_id != 0);
    // A DNS alert names its pair's domain and the question; TLS its server.
    CHECK((e.domain.empty() == e.name.empty()));
    if (e.domain.empty()) CHECK(e.server_port != 0);
  }
  uint64_t names = 0, allowed = 0, written = 0, held = 0;
};

ControlPlanePtr shippedPlane() {
  Config config;
  config.rules.enabled = true;
  config.rules.directory = std::string(EXFILWATCH_SOURCE_DIR) + "/rules";
  config.rules.cache_directory = "off";
  return engine::buildControlPlane(config, 1);
}

void replay(Engine& engine, const std::string& path) {
  std::string error;
  auto source = PcapSource::open(path, error);
  REQUIRE_MESSAGE(source, error);
  Frame frame;
  uint64_t n = 0;
  while (source->next(frame)) engine.process(frame, ++n);
}

}  // namespace

TEST_CASE("the engine observer sees what the engine counts and changes nothing") {
  const std::string pcap = std::string(EXFILWATCH_TEST_DATA) + "/demo-mixed.pcap";
  const ControlPlanePtr plane = shippedPlane();
  LinesSink plain_sink, observed_sink;
  Engine plain(plane, plain_sink), observed(plane, observed_sink);
  Counting counting;
  observed.setObserver(&counting);
  replay(plain, pcap);
  replay(observed, pcap);

  const EngineStats& s = observed.stats();
  REQUIRE(s.alerts > 0);
  REQUIRE(s.rule_allowed > 0);
  CHECK(counting.written == s.alerts);
  CHECK(counting.held == s.alerts_suppressed);
  CHECK(counting.allowed == s.rule_allowed);
  CHECK(counting.names >= s.dns_queries);
  CHECK(observed_sink.lines == plain_sink.lines);  // the observer is read-only
}

}  // namespace exfilwatch
