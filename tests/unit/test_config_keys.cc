// The configuration key table (src/config/keys.h): it drives the parser,
// --set, `config --defaults` and the reference, so these hold them together.
#include <doctest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <string>

#include "config/config.h"
#include "config/keys.h"
#include "engine/engine.h"
#include "engine/fleet_config.h"
#include "engine/pipeline.h"
#include "fleet/redis_url.h"
#include "score/ngram_model.h"

using namespace exfilwatch;

TEST_CASE("config keys: every key is unique and described, numbers have a range") {
  std::set<std::string> names;
  for (const auto& k : config::keys()) {
    CAPTURE(k.name);
    CHECK(names.insert(k.name).second);
    CHECK(std::string(k.doc).size() > 5);
    CHECK(std::string(k.doc).find('|') == std::string::npos);  // a Markdown table cell
    const std::string type = config::typeName(k);
    if (type == "integer" || type == "number") CHECK(k.max > k.min);
    // A key is never also a section: `a.b` and `a.b.c` cannot both exist.
    for (const auto& other : config::keys()) {
      CHECK(std::string(other.name).rfind(std::string(k.name) + ".", 0) != 0);
    }
  }
  CHECK(names.size() > 80);
}

TEST_CASE("config keys: the defaults print as YAML that loads back to the defaults") {
  const std::string yaml = config::defaultsYaml();
  const Config loaded = parseConfig(yaml, "defaults.yaml");
  const Config defaults;
  for (const auto& k : config::keys()) {
    CAPTURE(k.name);
    CHECK(config::valueText(k, loaded) == config::valueText(k, defaults));
    CHECK(yaml.find(std::string(k.doc)) != std::string::npos);
  }
  CHECK(config::toYaml(loaded) == config::toYaml(defaults));
}

TEST_CASE("config keys: a changed configuration round-trips through toYaml") {
  const Config c = parseConfig(
      "sensor_name: \"a \\\"quoted\\\" name\"\nlisten:\n  workers: 0101\n"
      "score:\n  dns:\n    alert_score: 0.3\n    windows: [30, 300, 1800]\n"
      "  tls:\n    ports: [8443, 443]\n",
      "c.yaml");
  CHECK(c.listen.workers == 101);  // base 10, never octal
  const Config again = parseConfig(config::toYaml(c), "again.yaml");
  for (const auto& k : config::keys()) {
    CAPTURE(k.name);
    CHECK(config::valueText(k, again) == config::valueText(k, c));
  }
  CHECK(again.sensor_name == "a \"quoted\" name");
}

TEST_CASE("config keys: --set is checked like the file") {
  Config c;
  config::applySet(c, "listen.workers=4");
  CHECK(c.listen.workers == 4);
  config::applySet(c, "dns.ports=[53, 5353]");
  CHECK(c.dns_ports == std::vector<uint16_t>{53, 5353});
  config::applySet(c, "metrics.address=");
  CHECK(c.metrics.address.empty());
  config::applySet(c, "score.dns.alert_score=2.5");
  CHECK(c.score.dns.alert_score == 2.5);
  config::applySet(c, "listen.workers=0010");
  CHECK(c.listen.workers == 10);
  CHECK_THROWS_WITH_AS(config::applySet(c, "listen.workers=300"),
                       "--set listen.workers: 300 is out of range [0, 256]", ConfigError);
  CHECK_THROWS_WITH_AS(config::applySet(c, "listen.workers=0x10"),
                       "--set listen.workers: expected an integer, got '0x10'", ConfigError);
  CHECK_THROWS_WITH_AS(config::applySet(c, "listen.vxlan_port=0"),
                       "--set listen.vxlan_port: 0 is out of range [1, 65535]", ConfigError);
  CHECK_THROWS_WITH_AS(config::applySet(c, "listen.address=sensor.local"),
                       doctest::Contains("is not an IP address"), ConfigError);
  CHECK_THROWS_WITH_AS(config::applySet(c, "metrics.address=0.0.0.0:70000"),
                       doctest::Contains("metrics.address: expected HOST:PORT"), ConfigError);
  CHECK_THROWS_WITH_AS(config::applySet(c, "listen.nope=1"),
                       doctest::Contains("--set listen.nope: unknown key"), ConfigError);
  CHECK_THROWS_WITH_AS(config::applySet(c, "listen"), doctest::Contains("expected KEY=VALUE"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(config::applySet(c, "score.dns.windows=[60, 60, 600]"),
                       doctest::Contains("strictly ascending"), ConfigError);
  config::applySet(c, "listen.geneve_enabled=true");
  CHECK_THROWS_WITH_AS(config::applySet(c, "listen.geneve_port=4789"),
                       doctest::Contains("must differ"), ConfigError);
}

TEST_CASE("config keys: the file's errors name file:line and the section's keys") {
  CHECK_THROWS_WITH_AS(parseConfig("score:\n  dns:\n    weight_nope: 1\n", "c.yaml"),
                       doctest::Contains("c.yaml:3: unknown key 'score.dns.weight_nope' (known: "),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parseConfig("score: 5\n", "c.yaml"),
                       doctest::Contains("c.yaml:1: score: expected a mapping"), ConfigError);
  CHECK_THROWS_WITH_AS(parseConfig("metrics:\n  address: '[::1]9108'\n", "c.yaml"),
                       doctest::Contains("c.yaml:2: metrics.address"), ConfigError);
  CHECK(parseConfig("metrics:\n  address: '[::1]:9108'\n", "c.yaml").metrics.address ==
        "[::1]:9108");
  CHECK(parseConfig("metrics:\n  address: ':9108'\n", "c.yaml").metrics.address == ":9108");
  CHECK_THROWS_WITH_AS(parseConfig("score:\n  dns:\n    model: /nonexistent/model.txt\n", "c.yaml"),
                       doctest::Contains("c.yaml:3: score.dns.model: /nonexistent/model.txt"),
                       ConfigError);
  CHECK_FALSE(parseConfig("score:\n  dns:\n    model: ''\n", "c.yaml").score_model);
}

TEST_CASE("config keys: --config must name a readable, non-empty file") {
  CHECK_THROWS_WITH_AS(loadConfig("/"), doctest::Contains("is a directory"), ConfigError);
  CHECK_THROWS_WITH_AS(loadConfig("/nonexistent/exfilwatch.yaml"), doctest::Contains("cannot open"),
                       ConfigError);
  const std::string empty = "/tmp/exfilwatch-unit-empty-" + std::to_string(::getpid()) + ".yaml";
  std::ofstream(empty) << "\n  \n";
  CHECK_THROWS_WITH_AS(loadConfig(empty), doctest::Contains("empty configuration file"),
                       ConfigError);
  std::ofstream(empty) << "# comments only: the defaults, on purpose\n";
  CHECK(loadConfig(empty).listen.workers == Config{}.listen.workers);
  std::remove(empty.c_str());
  CHECK(loadConfig("", {"listen.workers=7"}).listen.workers == 7);
}

namespace {
class DiscardSink final : public EveSink {
 public:
  void write(std::string_view) override {}
  void flush() override {}
};
}  // namespace

TEST_CASE(
    "pipeline: the file, then --set, then the command's overrides; a bad plane is not published") {
  const std::string path = "/tmp/exfilwatch-unit-pipeline-" + std::to_string(::getpid()) + ".yaml";
  std::ofstream(path) << "listen:\n  workers: 3\nsensor_name: file\ndns:\n  log: false\n";
  const engine::Pipeline pipeline({path, {"listen.workers=5", "sensor_name=set"}, [](Config& c) {
                                     c.dns_log = true;
                                     c.sensor_name += "+flag";
                                   }});
  const Config c = pipeline.config();
  CHECK(c.listen.workers == 5);
  CHECK(c.sensor_name == "set+flag");
  CHECK(c.dns_log);
  CHECK(c.source == path);
  std::remove(path.c_str());

  const engine::Pipeline no_rules({"", {"rules.enabled=false"}, {}});
  const ControlPlanePtr plane = no_rules.build(7);
  CHECK(plane->generation == 7);
  CHECK_FALSE(plane->rules);
  DiscardSink sink;
  CHECK(engine::Pipeline::engine(plane, sink) != nullptr);

  ControlPlaneHolder holder(plane);
  const uint64_t failed = engine::reloadCounters().failed.load();
  std::string error;
  CHECK_FALSE(engine::Pipeline({"", {"listen.workers=999"}, {}}).reload(holder, error));
  CHECK(error.find("--set listen.workers: 999 is out of range") != std::string::npos);
  CHECK(engine::reloadCounters().failed.load() == failed + 1);
  CHECK(holder.load() == plane);
  CHECK(no_rules.reload(holder, error));
  CHECK(holder.load()->generation == 8);
}

TEST_CASE("config keys: listen.sources and fleet: from the table") {
  Config c = loadConfig("", {"listen.sources=[10.0.0.0/8, '2001:db8::/32']"});
  REQUIRE(c.listen.sources.size() == 2);
  CHECK(c.listen.sources[1].toString() == "2001:db8::/32");
  const config::Key* k = config::findKey("listen.sources");
  REQUIRE(k != nullptr);
  CHECK(config::valueText(*k, c) == "[\"10.0.0.0/8\", \"2001:db8::/32\"]");
  CHECK_THROWS_AS(config::applySet(c, "listen.sources=[10.0.0.0/33]"), ConfigError);

  const Config f = parseConfig(
      "fleet:\n  url: redis://127.0.0.1:6379\n  seeds: [a:1, b:2]\n"
      "  health_requires_fleet: true\n",
      "f.yaml");
  CHECK(f.fleet.health_requires_fleet);
  CHECK(f.fleet.url == "redis://127.0.0.1:6379");
  CHECK(f.fleet.where.at("url") == "f.yaml:2: ");
  CHECK(f.fleet.seeds == std::vector<std::string>{"a:1", "b:2"});
  CHECK(loadConfig("", {"fleet.health_requires_fleet=true"}).fleet.health_requires_fleet);
  CHECK_THROWS_WITH_AS(parseConfig("fleet:\n  flush: 5\n", "f.yaml"),
                       doctest::Contains("unknown key 'fleet.flush'"), ConfigError);
}

TEST_CASE("config keys: every fleet client key is a row, its default and bounds src/fleet's") {
  const Config defaults;
  for (const fleet::SettingKey& k : fleet::settingKeys()) {
    const std::string name = "fleet." + std::string(k.name);
    CAPTURE(name);
    const config::Key* key = config::findKey(name);
    REQUIRE(key != nullptr);
    CHECK(key->restart);
    // The table's default is the client's, as YAML ("" for none).
    std::string text = config::valueText(*key, defaults);
    if (text.size() >= 2 && text.front() == '"') text = text.substr(1, text.size() - 2);
    if (text == "[]") text.clear();
    CHECK(text == k.default_value);
    // A number's range is the one the client enforces.
    if (config::rangeText(*key).empty()) continue;
    const auto at = [&](double v) {
      fleet::SettingsBuilder b;
      b.set(k.name, std::to_string(static_cast<uint64_t>(v)));
    };
    CHECK_NOTHROW(at(key->min));
    CHECK_NOTHROW(at(key->max));
    CHECK_THROWS_AS(at(key->min - 1), fleet::SettingsError);
    CHECK_THROWS_AS(at(key->max + 1), fleet::SettingsError);
  }
}

TEST_CASE("config keys: --set fleet.* with ranges, and where each was set for src/fleet") {
  Config c = loadConfig("", {"fleet.url=rediss://10.0.0.7:6380", "fleet.flush_ms=500",
                             "fleet.seeds=[10.0.0.8:6380]", "fleet.tls_verify=false"});
  CHECK(c.fleet.flush_ms == 500);
  CHECK(c.fleet.where.at("flush_ms") == "--set:1: ");
  const auto s = engine::fleetSettings(c.fleet);
  REQUIRE(s.has_value());
  CHECK(s->endpoint.host == "10.0.0.7");
  CHECK(s->endpoint.port == 6380);
  CHECK(s->flush_ms == 500);
  CHECK(s->cluster);  // seeds imply it
  CHECK(s->tls.enabled);
  CHECK_FALSE(s->tls.verify);
  CHECK_THROWS_WITH_AS(config::applySet(c, "fleet.flush_ms=5"),
                       doctest::Contains("--set fleet.flush_ms: 5 is out of range"), ConfigError);
  CHECK_THROWS_WITH_AS(config::applySet(c, "fleet.command_timeout_ms=abc"),
                       doctest::Contains("fleet.command_timeout_ms"), ConfigError);
  // The client's own checks run at start, naming where the value came from.
  Config bad = loadConfig("", {"fleet.url=redis://10.0.0.7", "fleet.key_prefix=a b"});
  CHECK_THROWS_WITH_AS(engine::fleetSettings(bad.fleet),
                       doctest::Contains("--set:1: fleet.key_prefix: expected printable"),
                       std::runtime_error);
  // A client key without a url is refused; defaults written out are not keys given.
  CHECK_THROWS_WITH_AS(engine::fleetSettings(loadConfig("", {"fleet.flush_ms=500"}).fleet),
                       doctest::Contains("fleet.flush_ms: the fleet's other keys need fleet.url"),
                       std::runtime_error);
  CHECK_FALSE(engine::fleetSettings(parseConfig(config::defaultsYaml(), "d.yaml").fleet));
}
