// analysis.cc: see analysis.h.
#include "app/analysis.h"

#include <cstdio>
#include <ctime>
#include <tuple>

#include "capture/pcap_source.h"
#include "common/escape.h"
#include "config/config.h"
#include "engine/pipeline.h"
#include "rules/matcher.h"

namespace exfilwatch::app {

namespace {
auto identity(const AlertRecord& a) {
  return std::tie(a.file, a.frame, a.signature_id, a.client, a.domain, a.server, a.name);
}
}  // namespace

bool AlertRecord::operator<(const AlertRecord& o) const { return identity(*this) < identity(o); }
bool AlertRecord::operator==(const AlertRecord& o) const { return identity(*this) == identity(o); }

void AlertCollector::onAlert(const AlertEvent& e) {
  if (e.suppressed) return;  // a repeat replay does not write either
  AlertRecord r;
  r.file = file_;
  r.frame = e.frame;
  r.ts = e.pkt.ts;
  r.signature_id = e.alert.signature_id;
  r.signature = e.alert.signature;
  r.tls = e.domain.empty() && e.name.empty();
  r.client = e.client.toString();
  r.domain = printable(e.domain);
  r.server =
      r.tls ? e.server.toString() + ':' + std::to_string(e.server_port) : e.server.toString();
  r.name = printable(e.name);
  alerts.push_back(std::move(r));
}

void AlertCollector::onName(const Name& n) {
  if (n.allowed_by == nullptr) return;
  ++names_allowed;
  if (allowed_names.size() < kMaxAllowedNames) {
    allowed_names.emplace(printable(n.name), n.allowed_by->id);
  }
  if (!allow_samples.count(n.allowed_by->id)) {
    const std::string_view domain = n.registered_domain.empty() ? n.name : n.registered_domain;
    allow_samples[n.allowed_by->id] = {n.client.toString(), printable(domain), printable(n.name)};
  }
}

ControlPlanePtr analystPlane(const std::string& config_path, const std::vector<std::string>& sets,
                             const std::string& rules_dir, bool no_cache, rules::BuildInfo* info) {
  engine::ConfigSource source{config_path, sets, [rules_dir, no_cache](Config& config) {
                                if (!rules_dir.empty()) {
                                  config.rules.enabled = true;
                                  config.rules.directory = rules_dir;
                                }
                                if (no_cache) config.rules.cache_directory = "off";
                              }};
  return engine::Pipeline(std::move(source)).build(1, info);
}

bool runCaptures(Engine& engine, const std::vector<std::string>& pcaps, AlertCollector* collector,
                 const char* command) {
  bool ok = true;
  for (const auto& path : pcaps) {
    std::string error;
    auto source = PcapSource::open(path, error);
    if (!source) {
      std::fprintf(stderr, "exfilwatch %s: %s\n", command, error.c_str());
      ok = false;
      continue;
    }
    if (collector) collector->setFile(path);
    Frame frame;
    uint64_t n = 0;
    while (source->next(frame)) engine.process(frame, ++n);
    if (!source->error().empty()) {
      std::fprintf(stderr, "exfilwatch %s: %s: stopped after %llu packets: %s\n", command,
                   path.c_str(), static_cast<unsigned long long>(n), source->error().c_str());
    }
  }
  return ok;
}

std::string isoTime(const Timestamp& ts) {
  const std::time_t t = static_cast<std::time_t>(ts.sec);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.usec);
  return buf;
}

std::string printable(std::string_view v) { return escape::escaped(v, escape::printable); }

}  // namespace exfilwatch::app
