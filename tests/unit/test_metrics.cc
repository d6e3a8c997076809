// test_metrics.cc: the bounded top-domains counter (Space-Saving) and its
// metric family, queue-depth gauges (SPSC ring accessor, exposition), the
// metrics.top_domains setting, EVE rotation by packet time (replay), the
// process_* metrics read from /proc, the worker label, no NaN.
#include <doctest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "alert/delivery.h"
#include "alert/rotating_file.h"
#include "common/spsc_ring.h"
#include "common/top_k.h"
#include "config/config.h"
#include "metrics/metrics.h"

using namespace exfilwatch;

namespace {

// What a worker hands delivery with an alert line.
AlertFields alertFields(const std::string& domain, const std::string& client = "10.0.0.1") {
  AlertFields a;
  a.timestamp = "2024-01-01T00:00:00.000000+0000";
  a.src_ip = client;
  a.dest_ip = "10.0.0.53";
  a.rrname = "x." + domain;
  a.domain = domain;
  a.signature_id = 9000001;
  a.signature = "EXFILWATCH DNS tunneling";
  a.category = "Potential DNS tunneling";
  a.severity = 1;
  return a;
}
void deliver(AlertDelivery& d, const AlertFields& a) { d.onLine("{}", &a); }

// The samples of one family in a rendered scrape: {labels: value}.
std::map<std::string, double> samples(const std::string& text, const std::string& name) {
  std::map<std::string, double> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t end = std::min(text.find('\n', pos), text.size());
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line[0] == '#') continue;
    const std::size_t sp = line.rfind(' ');
    const std::string key = line.substr(0, sp);
    const std::string base = key.substr(0, key.find('{'));
    if (base == name) out[key.substr(base.size())] = std::stod(line.substr(sp + 1));
  }
  return out;
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/exfilwatch-unit-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

std::vector<std::string> readLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

TEST_CASE("top-K: exact below capacity, no error, sorted by count") {
  SpaceSaving t(5);
  for (int i = 0; i < 3; ++i) t.add("a.com");
  t.add("b.com", 7);
  t.add("c.com");
  CHECK(t.size() == 3);
  CHECK(t.evictions() == 0);
  REQUIRE(t.find("a.com") != nullptr);
  CHECK(t.find("a.com")->count == 3);
  CHECK(t.find("a.com")->error == 0);
  CHECK(t.find("zzz") == nullptr);
  const auto s = t.sorted();
  REQUIRE(s.size() == 3);
  CHECK(s[0].key == "b.com");
  CHECK(s[1].key == "a.com");
  CHECK(s[2].key == "c.com");
  SpaceSaving off(0);
  off.add("a.com");
  CHECK(off.size() == 0);
}

TEST_CASE("top-K: bounded under a flood of distinct keys") {
  SpaceSaving t(20);
  for (int i = 0; i < 100000; ++i) t.add("random-" + std::to_string(i) + ".example");
  CHECK(t.size() == 20);
  CHECK(t.evictions() == 100000 - 20);
  // Every kept count obeys count - error <= true (1) <= count.
  for (const auto& e : t.sorted()) {
    CHECK(e.count - e.error <= 1);
    CHECK(e.count >= 1);
  }
  // A tunnel that starts after the flood still comes out on top, and its
  // lower bound is exact.
  for (int i = 0; i < 10000; ++i) t.add("tunnel.example");
  CHECK(t.size() == 20);
  const auto top = t.sorted();
  CHECK(top[0].key == "tunnel.example");
  CHECK(top[0].count - top[0].error == 10000);
}

TEST_CASE("top-K: heavy hitters of a skewed stream, with Space-Saving's bounds") {
  // Zipf(1.5) over 5000 domains (a few tunnels, a long tail of one-off
  // alerts), 200 000 alerts, interleaved at random.
  constexpr int kDomains = 5000;
  constexpr std::size_t kCapacity = 20;
  std::vector<double> weight(kDomains);
  for (int i = 0; i < kDomains; ++i) weight[i] = 1.0 / std::pow(i + 1, 1.5);
  std::mt19937_64 rng(42);
  std::discrete_distribution<int> pick(weight.begin(), weight.end());
  std::vector<uint64_t> truth(kDomains, 0);
  SpaceSaving t(kCapacity);
  constexpr uint64_t kStream = 200000;
  for (uint64_t n = 0; n < kStream; ++n) {
    const int d = pick(rng);
    ++truth[d];
    t.add("d" + std::to_string(d) + ".example");
  }
  CHECK(t.size() == kCapacity);
  // Bounds hold for every kept key.
  for (const auto& e : t.sorted()) {
    const int d = std::stoi(e.key.substr(1));
    CHECK(e.count >= truth[d]);
    CHECK(e.count - e.error <= truth[d]);
  }
  // Every key above m/k is kept.
  int guaranteed = 0;
  for (int d = 0; d < kDomains; ++d) {
    if (truth[d] > kStream / kCapacity) {
      ++guaranteed;
      CHECK_MESSAGE(t.find("d" + std::to_string(d) + ".example") != nullptr, "d", d, " count ",
                    truth[d]);
    }
  }
  CHECK(guaranteed >= 3);
  // The five heaviest come out first, in their true order.
  std::vector<int> order(kDomains);
  for (int i = 0; i < kDomains; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](int a, int b) { return truth[a] > truth[b]; });
  const auto top = t.sorted();
  for (int i = 0; i < 5; ++i) CHECK(top[i].key == "d" + std::to_string(order[i]) + ".example");
}

TEST_CASE("top domains metric: at most N series, evicted domains disappear") {
  Config config;
  config.metrics.top_domains = 3;
  AlertDelivery delivery(config.output, config.alertmanager, config.sensor_name,
                         config.metrics.top_domains);
  for (int i = 0; i < 10; ++i) deliver(delivery, alertFields("tunnel.example"));
  for (int i = 0; i < 5; ++i) deliver(delivery, alertFields("second.example"));
  deliver(delivery, alertFields("once.example"));
  delivery.onLine(R"({"event_type":"dns"})", nullptr);  // not an alert: not counted
  metrics::Sample s;
  s.delivery = delivery.stats();
  std::string text = metrics::render(s);
  auto series = samples(text, "exfilwatch_alerted_domain_alerts");
  CHECK(series.size() == 3);
  CHECK(series[R"({domain="tunnel.example"})"] == 10);
  CHECK(series[R"({domain="second.example"})"] == 5);
  CHECK(series[R"({domain="once.example"})"] == 1);
  CHECK(samples(text, "exfilwatch_alerted_domains_limit")[""] == 3);
  CHECK(samples(text, "exfilwatch_alerted_domain_evictions_total")[""] == 0);

  // A new domain takes the smallest one's place: once.example's series is gone.
  deliver(delivery, alertFields("newcomer.example"));
  metrics::Sample s2;
  s2.delivery = delivery.stats();
  text = metrics::render(s2);
  series = samples(text, "exfilwatch_alerted_domain_alerts");
  CHECK(series.size() == 3);
  CHECK(series.count(R"({domain="once.example"})") == 0);
  CHECK(text.find("once.example") == std::string::npos);
  CHECK(series[R"({domain="newcomer.example"})"] == 2);  // 1 inherited + 1
  CHECK(series[R"({domain="tunnel.example"})"] == 10);
  CHECK(samples(text, "exfilwatch_alerted_domain_evictions_total")[""] == 1);

  // A flood of distinct domains never grows the family past N.
  for (int i = 0; i < 2000; ++i)
    deliver(delivery, alertFields("r" + std::to_string(i) + ".example"));
  metrics::Sample s3;
  s3.delivery = delivery.stats();
  CHECK(samples(metrics::render(s3), "exfilwatch_alerted_domain_alerts").size() == 3);

  // metrics.top_domains: 0 turns the family off.
  config.metrics.top_domains = 0;
  AlertDelivery off(config.output, config.alertmanager, config.sensor_name,
                    config.metrics.top_domains);
  deliver(off, alertFields("tunnel.example"));
  metrics::Sample s4;
  s4.delivery = off.stats();
  CHECK(samples(metrics::render(s4), "exfilwatch_alerted_domain_alerts").empty());
}

TEST_CASE("queue depth: SPSC ring used bytes as published, and the gauges") {
  SpscByteRing ring(1);
  CHECK(ring.usedBytes() == 0);
  REQUIRE(ring.reserve(100, 0, 0) != nullptr);
  CHECK(ring.usedBytes() == 0);  // not committed yet
  ring.commit();
  CHECK(ring.usedBytes() == 16 + 112);  // header + payload rounded to 16
  REQUIRE(ring.reserve(16, 0, 0) != nullptr);
  ring.commit();
  CHECK(ring.usedBytes() == 128 + 32);
  SpscByteRing::Record r;
  REQUIRE(ring.peek(r));
  ring.pop(r);
  CHECK(ring.usedBytes() == 160);  // not released yet
  ring.release();
  CHECK(ring.usedBytes() == 32);
  REQUIRE(ring.peek(r));
  ring.pop(r);
  ring.release();
  CHECK(ring.usedBytes() == 0);

  metrics::Sample s;
  s.eve_queues.push_back({"0", 4096, 8u << 20, 0});
  s.handoff_rings.push_back({"1", 1000, 4u << 20, 0.25});
  s.delivery.am_queue = 7;
  s.delivery.am_queue_capacity = 10000;
  const std::string text = metrics::render(s);
  CHECK(samples(text, "exfilwatch_eve_queue_bytes")[R"({worker="0"})"] == 4096);
  CHECK(samples(text, "exfilwatch_eve_queue_capacity_bytes")[R"({worker="0"})"] == 8 << 20);
  CHECK(samples(text, "exfilwatch_handoff_ring_bytes")[R"({worker="1"})"] == 1000);
  CHECK(samples(text, "exfilwatch_handoff_ring_capacity_bytes")[R"({worker="1"})"] == 4 << 20);
  CHECK(samples(text, "exfilwatch_handoff_ring_max_fill_ratio")[R"({worker="1"})"] == 0.25);
  CHECK(samples(text, "exfilwatch_alertmanager_queue_alerts")[""] == 7);
  CHECK(samples(text, "exfilwatch_alertmanager_queue_capacity_alerts")[""] == 10000);
  CHECK(text.find("# TYPE exfilwatch_eve_queue_bytes gauge") != std::string::npos);
}

TEST_CASE("config: metrics.top_domains, bounded, file:line errors") {
  CHECK(Config{}.metrics.top_domains == 20);
  CHECK(parseConfig("metrics:\n  top_domains: 100\n", "t.yaml").metrics.top_domains == 100);
  CHECK(parseConfig("metrics:\n  top_domains: 0\n", "t.yaml").metrics.top_domains == 0);
  CHECK_THROWS_WITH_AS(
      parseConfig("metrics:\n  address: ''\n  top_domains: 1001\n", "t.yaml"),
      doctest::Contains("t.yaml:3: metrics.top_domains: 1001 is out of range [0, 1000]"),
      ConfigError);
  CHECK_THROWS_WITH_AS(parseConfig("metrics:\n  top_domains: many\n", "t.yaml"),
                       doctest::Contains("t.yaml:2: metrics.top_domains"), ConfigError);
}

TEST_CASE("rotating file: external (packet) clock rotates by record time, whole lines") {
  TempDir dir;
  const std::string path = dir.path + "/eve.json";
  {
    auto file = std::make_unique<RotatingFile>(path, 0, 60, 100);
    file->useExternalClock();
    RotatingEveSink sink(std::move(file));
    // Packet times 1000 .. 1299 s, one record a second: 60 s files.
    for (int t = 1000; t < 1300; ++t) {
      sink.file().setTime(t);
      sink.write("{\"t\":" + std::to_string(t) + "}");
    }
    sink.flush();
    CHECK(sink.lines() == 300);
    CHECK(sink.failures() == 0);
    CHECK(sink.file().rotations() == 4);
    // Under the packet clock a flush never rotates by age (an idle replay).
    sink.file().setTime(5000);
    sink.flush();
    CHECK(sink.file().rotations() == 4);
  }
  // FILE.4 (oldest) .. FILE.1, FILE: 60 records each, consecutive times.
  int expect = 1000;
  for (const std::string suffix : {".4", ".3", ".2", ".1", ""}) {
    const auto lines = readLines(path + suffix);
    CHECK(lines.size() == 60);
    for (const auto& l : lines) CHECK(l == "{\"t\":" + std::to_string(expect++) + "}");
  }
  CHECK_FALSE(exists(path + ".5"));

  // Size rotation under the packet clock too; keep bounds the files.
  const std::string p2 = dir.path + "/size.json";
  {
    auto file = std::make_unique<RotatingFile>(p2, 100, 0, 3);
    file->useExternalClock();
    RotatingEveSink sink(std::move(file));
    for (int i = 0; i < 50; ++i) sink.write(std::string(30, 'x'));
    CHECK(sink.lines() == 50);
  }
  CHECK(exists(p2 + ".3"));
  CHECK_FALSE(exists(p2 + ".4"));
  CHECK(readLines(p2 + ".1").size() == 4);  // 4 x 31 bytes >= 100
}

TEST_CASE("process metrics: read from /proc, plausible, exported under the standard names") {
  const metrics::ProcessStats p = metrics::readProcessStats();
  REQUIRE(p.ok);
  CHECK(p.resident_bytes > 1 << 20);
  CHECK(p.virtual_bytes >= p.resident_bytes);
  CHECK(p.open_fds >= 3);
  CHECK(p.max_fds >= p.open_fds);
  CHECK(p.cpu_seconds >= 0);
  const double now = static_cast<double>(std::time(nullptr));
  CHECK(p.start_time_seconds <= now + 1);
  CHECK(p.start_time_seconds > now - 24 * 3600);  // this test process started today
  // A descriptor opened now shows up in the next read.
  const int fd = ::dup(0);
  CHECK(metrics::readProcessStats().open_fds == p.open_fds + 1);
  ::close(fd);

  metrics::Sample s;
  s.process = p;
  s.sources.push_back({"0", 10, 1000, 0, 0, 10, 0});
  s.sources.push_back({"1", 5, 500, 1, 0, 4, 1});
  const std::string text = metrics::render(s);
  for (const char* line :
       {"# TYPE process_cpu_seconds_total counter", "# TYPE process_resident_memory_bytes gauge",
        "# TYPE process_virtual_memory_bytes gauge", "# TYPE process_open_fds gauge",
        "# TYPE process_max_fds gauge", "# TYPE process_start_time_seconds gauge",
        "exfilwatch_received_packets_total{worker=\"1\"} 5",
        "exfilwatch_kernel_drops_total{worker=\"1\"} 1"}) {
    CHECK_MESSAGE(text.find(line) != std::string::npos, line);
  }
  CHECK(text.find("source=") == std::string::npos);  // one label name for the worker
  // No process stats (a sample built by hand): no process_* families.
  CHECK(metrics::render(metrics::Sample{}).find("process_") == std::string::npos);
}

TEST_CASE("exposition: no NaN, even from a 0/0 ratio") {
  metrics::Sample s;
  s.handoff_rings.push_back({"0", 0, 0, std::numeric_limits<double>::quiet_NaN()});
  s.handoff_rings.push_back({"1", 0, 4096, 0.5});
  const std::string text = metrics::render(s);
  std::string lower = text;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  CHECK(lower.find(" nan") == std::string::npos);
  CHECK(text.find("exfilwatch_handoff_ring_max_fill_ratio{worker=\"1\"} 0.5") != std::string::npos);
  CHECK(text.find("exfilwatch_handoff_ring_max_fill_ratio{worker=\"0\"}") == std::string::npos);
}
