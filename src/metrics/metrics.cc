// metrics.cc: Sample -> Prometheus metric families, served by civetweb.
// Names follow the Prometheus conventions: exfilwatch_ prefix, base units
// (seconds, bytes), counters end in _total; `promtool check metrics` on a
// scrape is part of the tests (tests/integration/metrics_prometheus.py).
#include "metrics/metrics.h"

#include <CivetServer.h>
#include <dirent.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>

#include "build_config.h"

namespace exfilwatch::metrics {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

class Families {
 public:
  MetricFamily& family(const std::string& name, const std::string& help, MetricType type) {
    out_.push_back(MetricFamily{name, help, type, {}});
    return out_.back();
  }
  static void add(MetricFamily& f, std::vector<ClientMetric::Label> labels, double value) {
    ClientMetric m;
    m.label = std::move(labels);
    if (f.type == MetricType::Counter) {
      m.counter.value = value;
    } else {
      m.gauge.value = value;
    }
    f.metric.push_back(std::move(m));
  }
  void scalar(const std::string& name, const std::string& help, MetricType type, double value) {
    add(family(name, help, type), {}, value);
  }
  std::vector<MetricFamily> take() { return {out_.begin(), out_.end()}; }

 private:
  // A deque: family() hands out references that later families must not
  // invalidate.
  std::deque<MetricFamily> out_;
};

const char* rcodeName(std::size_t i) {
  static const char* const kNames[] = {
      "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",  "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
      "NXRRSET", "NOTAUTH", "NOTZONE",  "DSOTYPENI", "RCODE12", "RCODE13", "RCODE14",  "RCODE15",
      "BADVERS", "BADKEY",  "BADTIME",  "BADMODE",   "BADNAME", "BADALG",  "BADTRUNC", "OTHER"};
  return i < sizeof kNames / sizeof kNames[0] ? kNames[i] : "OTHER";
}

std::vector<MetricFamily> build(const Sample& s) {
  Families f;
  constexpr auto C = MetricType::Counter;
  constexpr auto G = MetricType::Gauge;

  auto& info = f.family("exfilwatch_build_info", "Build information; always 1.", G);
  Families::add(info, {{"version", s.version}}, 1);

  auto& pk =
      f.family("exfilwatch_received_packets_total", "Tunnel datagrams received, by worker.", C);
  auto& by = f.family("exfilwatch_received_bytes_total",
                      "Bytes of received tunnel datagrams, by worker.", C);
  auto& pr =
      f.family("exfilwatch_processed_packets_total", "Datagrams run through a worker's engine.", C);
  auto& kd = f.family("exfilwatch_kernel_drops_total",
                      "Datagrams the kernel dropped on the socket (SO_RXQ_OVFL).", C);
  auto& hd = f.family("exfilwatch_handoff_drops_total",
                      "Datagrams dropped because the owning worker's ring was full.", C);
  auto& ho =
      f.family("exfilwatch_handoff_total",
               "Datagrams a worker received for another worker's client and copied to it "
               "(kernel steering places IPv4/IPv6 VXLAN directly; see listen.kernel_steering).",
               C);
  for (const auto& src : s.sources) {
    Families::add(ho, {{"worker", src.worker}}, static_cast<double>(src.handoff));
    Families::add(pk, {{"worker", src.worker}}, static_cast<double>(src.datagrams));
    Families::add(by, {{"worker", src.worker}}, static_cast<double>(src.bytes));
    Families::add(pr, {{"worker", src.worker}}, static_cast<double>(src.processed));
    Families::add(kd, {{"worker", src.worker}}, static_cast<double>(src.kernel_drops));
    Families::add(hd, {{"worker", src.worker}}, static_cast<double>(src.handoff_drops));
  }

  f.scalar("exfilwatch_decoded_frames_total", "Frames entering the decoder.", C,
           static_cast<double>(s.decode.frames));
  f.scalar("exfilwatch_malformed_frames_total",
           "Frames an analyzer refused (see exfilwatch_anomalies_total).", C,
           static_cast<double>(s.decode.malformed));
  auto& an = f.family("exfilwatch_anomalies_total",
                      "Decapsulation and parse anomalies, by stable name.", C);
  for (std::size_t i = 0; i < kWeirdCount; ++i) {
    const auto id = static_cast<Weird>(i);
    Families::add(an, {{"name", std::string(weirdName(id))}}, static_cast<double>(s.weird.get(id)));
  }

  auto& dm = f.family("exfilwatch_dns_messages_total",
                      "DNS messages parsed, by type (query, response).", C);
  Families::add(dm, {{"type", "query"}}, static_cast<double>(s.engine.dns_queries));
  Families::add(dm, {{"type", "response"}}, static_cast<double>(s.engine.dns_responses));
  auto& rc = f.family("exfilwatch_dns_messages_by_rcode_total", "DNS messages, by rcode.", C);
  for (std::size_t i = 0; i < s.engine.rcodes.size(); ++i) {
    if (s.engine.rcodes[i] == 0 && i > 5) continue;  // keep the common ones always present
    Families::add(rc, {{"rcode", rcodeName(i)}}, static_cast<double>(s.engine.rcodes[i]));
  }
  f.scalar("exfilwatch_dns_unparsable_total", "DNS payloads without even a header.", C,
           static_cast<double>(s.engine.dns_unparsable));

  auto& rh = f.family("exfilwatch_rule_hits_total", "Analyst rule hits, by rule id.", C);
  for (const auto& [id, n] : s.rule_hits)
    Families::add(rh, {{"rule_id", std::to_string(id)}}, static_cast<double>(n));

  auto& al = f.family("exfilwatch_alerts_total",
                      "Alerts written, by category and severity (1 high .. 3 low).", C);
  for (const auto& a : s.delivery.alerts) {
    Families::add(al, {{"category", a.category}, {"severity", std::to_string(a.severity)}},
                  static_cast<double>(a.n));
  }
  f.scalar("exfilwatch_alerts_raised_total", "Alerts raised by the engines (before output queues).",
           C, static_cast<double>(s.engine.alerts));
  f.scalar("exfilwatch_alerts_suppressed_total", "Alerts suppressed by the per-pair interval.", C,
           static_cast<double>(s.engine.alerts_suppressed));

  f.scalar("exfilwatch_eve_records_total", "EVE lines written.", C,
           static_cast<double>(s.eve_lines));
  f.scalar("exfilwatch_eve_drops_total", "EVE lines dropped because a worker's queue was full.", C,
           static_cast<double>(s.eve_drops));
  f.scalar("exfilwatch_eve_write_failures_total", "EVE write errors.", C,
           static_cast<double>(s.eve_failures));
  f.scalar("exfilwatch_eve_rotations_total", "EVE file rotations and reopenings.", C,
           static_cast<double>(s.eve_rotations));

  f.scalar("exfilwatch_dns_tracked_pairs",
           "(client, registered domain) pairs the DNS scorer tracks.", G,
           static_cast<double>(s.dns_pairs));
  f.scalar("exfilwatch_dns_pair_evictions_total",
           "Tracked pairs recycled because the table was full.", C,
           static_cast<double>(s.dns_evictions));
  f.scalar("exfilwatch_dns_tracked_domains",
           "Registered domains the DNS scorer's domain view tracks (one table per sensor).", G,
           static_cast<double>(s.dns_domains));
  f.scalar("exfilwatch_dns_domain_evictions_total",
           "Domain view records recycled because the table was full.", C,
           static_cast<double>(s.dns_domain_evictions));
  f.scalar("exfilwatch_dns_domain_verdicts_total",
           "Domain view verdicts raised (several clients, one domain), before fleet suppression.",
           C, static_cast<double>(s.dns_domain_verdicts));
  f.scalar("exfilwatch_dns_domain_suppressed_total",
           "Domain view verdicts held back within the domain's suppression interval.", C,
           static_cast<double>(s.dns_domain_suppressed));
  f.scalar("exfilwatch_tls_tracked_pairs", "(client, destination) pairs the TLS scorer tracks.", G,
           static_cast<double>(s.tls_pairs));

  auto& rl = f.family("exfilwatch_rule_reloads_total", "Control plane reloads, by result.", C);
  Families::add(rl, {{"result", "success"}}, static_cast<double>(s.reloads_ok));
  Families::add(rl, {{"result", "failure"}}, static_cast<double>(s.reloads_failed));
  f.scalar("exfilwatch_rule_reload_last_timestamp_seconds",
           "Unix time of the last reload attempt; 0: none.", G, s.last_reload_seconds);
  f.scalar("exfilwatch_rule_reload_last_success_timestamp_seconds",
           "Unix time of the last successful reload; 0: none.", G, s.last_reload_success_seconds);
  f.scalar("exfilwatch_healthy", "1 while the health check accepts connections.", G,
           s.healthy ? 1 : 0);

  f.scalar("exfilwatch_alertmanager_alerts_sent_total", "Alerts Alertmanager accepted.", C,
           static_cast<double>(s.delivery.am_sent));
  f.scalar("exfilwatch_alertmanager_alerts_dropped_total",
           "Alerts dropped because the Alertmanager queue was full.", C,
           static_cast<double>(s.delivery.am_dropped));
  f.scalar("exfilwatch_alertmanager_post_failures_total", "Failed POSTs to Alertmanager (retried).",
           C, static_cast<double>(s.delivery.am_failed_posts));
  f.scalar("exfilwatch_alertmanager_queue_alerts", "Alerts waiting for Alertmanager.", G,
           static_cast<double>(s.delivery.am_queue));
  f.scalar("exfilwatch_alertmanager_queue_capacity_alerts",
           "Alerts the Alertmanager queue holds before dropping (alertmanager.queue_size); 0: "
           "Alertmanager off.",
           G, static_cast<double>(s.delivery.am_queue_capacity));

  // Queue depths, read from the rings' published indexes at scrape time.
  auto& eq = f.family("exfilwatch_eve_queue_bytes",
                      "Bytes queued from a worker to the EVE writer thread.", G);
  auto& ec = f.family(
      "exfilwatch_eve_queue_capacity_bytes",
      "Capacity of a worker's EVE queue (listen.eve_queue_bytes, rounded up to a power of two).",
      G);
  for (const auto& q : s.eve_queues) {
    Families::add(eq, {{"worker", q.worker}}, static_cast<double>(q.used_bytes));
    Families::add(ec, {{"worker", q.worker}}, static_cast<double>(q.capacity_bytes));
  }
  auto& hq = f.family(
      "exfilwatch_handoff_ring_bytes",
      "Bytes queued in the hand-off rings towards a worker (datagrams of clients it owns).", G);
  auto& hc = f.family(
      "exfilwatch_handoff_ring_capacity_bytes",
      "Total capacity of the hand-off rings towards a worker (one ring per other worker).", G);
  auto& hf = f.family(
      "exfilwatch_handoff_ring_max_fill_ratio",
      "Fill ratio (0..1) of the fullest hand-off ring towards a worker; at 1 it drops.", G);
  for (const auto& q : s.handoff_rings) {
    Families::add(hq, {{"worker", q.worker}}, static_cast<double>(q.used_bytes));
    Families::add(hc, {{"worker", q.worker}}, static_cast<double>(q.capacity_bytes));
    Families::add(hf, {{"worker", q.worker}}, q.max_fill);
  }

  // Bounded: at most metrics.top_domains series; a domain that loses its
  // place is simply absent from the next scrape (its series goes stale).
  auto& td = f.family(
      "exfilwatch_alerted_domain_alerts",
      "Alerts per domain (registered domain, or destination for TLS) since start, for the top "
      "metrics.top_domains domains; Space-Saving estimate, an upper bound.",
      G);
  for (const auto& [domain, n] : s.delivery.top_domains)
    Families::add(td, {{"domain", domain}}, static_cast<double>(n));
  f.scalar("exfilwatch_alerted_domains_limit",
           "Most domains exfilwatch_alerted_domain_alerts reports (metrics.top_domains).", G,
           static_cast<double>(s.delivery.top_domains_max));
  f.scalar(
      "exfilwatch_alerted_domain_evictions_total",
      "Domains that lost their top-domains place to a new one; 0: the per-domain counts are exact.",
      C, static_cast<double>(s.delivery.top_domain_evictions));

  f.scalar("exfilwatch_evidence_packets_total", "Packets written to evidence pcaps.", C,
           static_cast<double>(s.evidence_packets));
  f.scalar("exfilwatch_evidence_drops_total",
           "Evidence packets dropped (queue full or write error).", C,
           static_cast<double>(s.evidence_drops));
  f.scalar("exfilwatch_evidence_files_total", "Evidence pcap files opened.", C,
           static_cast<double>(s.evidence_files));

  auto histogram = [](const std::vector<const LatencyHistogram*>& parts) {
    ClientMetric m;
    auto bucket = [&](std::size_t i) {
      uint64_t n = 0;
      for (const auto* h : parts) n += h->buckets[i].load(std::memory_order_relaxed);
      return n;
    };
    uint64_t cumulative = 0;
    uint64_t sum_ns = 0;
    for (const auto* h : parts) sum_ns += h->sum_ns.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < LatencyHistogram::kBounds.size(); ++i) {
      cumulative += bucket(i);
      m.histogram.bucket.push_back({cumulative, LatencyHistogram::kBounds[i]});
    }
    cumulative += bucket(LatencyHistogram::kBounds.size());
    m.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
    m.histogram.sample_count = cumulative;
    m.histogram.sample_sum = static_cast<double>(sum_ns) / 1e9;
    return m;
  };
  if (s.fleet.enabled) {
    f.scalar("exfilwatch_fleet_up", "1 while the fleet's Redis is reachable and answering.", G,
             s.fleet.up ? 1.0 : 0.0);
    auto& fe = f.family("exfilwatch_fleet_errors_total", "Fleet Redis errors, by kind.", C);
    for (const auto& [kind, n] : s.fleet.errors)
      f.add(fe, {{"kind", kind}}, static_cast<double>(n));
    f.scalar("exfilwatch_fleet_flushes_total", "Flushes of shared-state deltas sent to Redis.", C,
             static_cast<double>(s.fleet.flushes));
    f.scalar("exfilwatch_fleet_flush_failures_total",
             "Flushes with at least one command unanswered (deltas resent or kept local).", C,
             static_cast<double>(s.fleet.flush_failed));
    f.scalar("exfilwatch_fleet_dropped_total",
             "Flushes dropped: the client's bounded queue was full (Redis slow or down).", C,
             static_cast<double>(s.fleet.dropped));
    if (s.fleet.round_trip != nullptr) {
      auto& rt = f.family("exfilwatch_fleet_round_trip_seconds",
                          "Round trip of one pipelined flush to Redis.", MetricType::Histogram);
      rt.metric.push_back(histogram({s.fleet.round_trip}));
    }
  }

  auto& lat = f.family("exfilwatch_stage_latency_seconds", "Processing time per stage.",
                       MetricType::Histogram);
  for (const auto& st : s.latency) {
    ClientMetric m;
    m.label = {{"stage", st.name}};
    auto bucket = [&](std::size_t i) {
      uint64_t n = 0;
      for (const auto* h : st.parts) n += h->buckets[i].load(std::memory_order_relaxed);
      return n;
    };
    uint64_t cumulative = 0;
    uint64_t sum_ns = 0;
    for (const auto* h : st.parts) sum_ns += h->sum_ns.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < LatencyHistogram::kBounds.size(); ++i) {
      cumulative += bucket(i);
      m.histogram.bucket.push_back({cumulative, LatencyHistogram::kBounds[i]});
    }
    cumulative += bucket(LatencyHistogram::kBounds.size());
    m.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
    // count = the +Inf bucket, so the exposition is self-consistent even
    // when a writer raced this read.
    m.histogram.sample_count = cumulative;
    m.histogram.sample_sum = static_cast<double>(sum_ns) / 1e9;
    lat.metric.push_back(std::move(m));
  }

  if (s.process.ok) {
    const ProcessStats& p = s.process;
    f.scalar("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", C,
             p.cpu_seconds);
    f.scalar("process_resident_memory_bytes", "Resident memory size in bytes.", G,
             p.resident_bytes);
    f.scalar("process_virtual_memory_bytes", "Virtual memory size in bytes.", G, p.virtual_bytes);
    f.scalar("process_open_fds", "Number of open file descriptors.", G, p.open_fds);
    f.scalar("process_max_fds", "Maximum number of open file descriptors.", G, p.max_fds);
    f.scalar("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
             G, p.start_time_seconds);
  }
  return f.take();
}

// Dashboards and rules divide and compare these values: a NaN (a 0/0
// ratio) would poison every expression over it. A sample without a value is
// left out rather than reported as a made-up number.
void dropNaN(std::vector<MetricFamily>& families) {
  for (auto& fam : families) {
    std::erase_if(fam.metric, [](const ClientMetric& m) {
      return std::isnan(m.counter.value) || std::isnan(m.gauge.value) ||
             std::isnan(m.untyped.value) || std::isnan(m.histogram.sample_sum) ||
             std::isnan(m.summary.sample_sum);
    });
  }
}

// GET /metrics: one Sample, rendered in the text format (version 0.0.4).
class MetricsHandler final : public CivetHandler {
 public:
  explicit MetricsHandler(Server::Sampler sampler) : sampler_(std::move(sampler)) {}
  bool handleGet(CivetServer*, mg_connection* conn) override {
    Sample s;
    s.version = EXFILWATCH_VERSION;
    sampler_(s);
    s.process = readProcessStats();
    auto families = build(s);
    dropNaN(families);
    const std::string body = prometheus::TextSerializer().Serialize(families);
    mg_send_http_ok(conn, "text/plain; version=0.0.4; charset=utf-8",
                    static_cast<long long>(body.size()));
    mg_write(conn, body.data(), body.size());
    return true;
  }

 private:
  Server::Sampler sampler_;
};

}  // namespace

ProcessStats readProcessStats() {
  ProcessStats p;
  std::ifstream stat("/proc/self/stat");
  std::string line;
  if (!std::getline(stat, line)) return p;
  // The command name (field 2) is in parentheses and may hold spaces: the
  // fields that matter are counted from the last ')'.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return p;
  std::istringstream in(line.substr(close + 2));
  std::string field;
  // Fields 3.. of proc(5): utime is 14, stime 15, starttime 22, vsize 23, rss 24.
  unsigned long long utime = 0, stime = 0, starttime = 0, vsize = 0, rss = 0;
  for (int i = 3; i <= 24 && in >> field; ++i) {
    const unsigned long long v = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 14) utime = v;
    if (i == 15) stime = v;
    if (i == 22) starttime = v;
    if (i == 23) vsize = v;
    if (i == 24) rss = v;
  }
  if (!in) return p;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  p.cpu_seconds = static_cast<double>(utime + stime) / ticks;
  p.virtual_bytes = static_cast<double>(vsize);
  p.resident_bytes = static_cast<double>(rss) * page;
  // starttime counts clock ticks since boot; btime is the boot's Unix time.
  std::ifstream sys("/proc/stat");
  while (std::getline(sys, line)) {
    if (line.rfind("btime ", 0) == 0) {
      p.start_time_seconds = static_cast<double>(std::strtoull(line.c_str() + 6, nullptr, 10)) +
                             static_cast<double>(starttime) / ticks;
      break;
    }
  }
  if (DIR* d = ::opendir("/proc/self/fd")) {
    uint64_t n = 0;
    while (const dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    ::closedir(d);
    p.open_fds = static_cast<double>(n);
  }
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    p.max_fds = static_cast<double>(lim.rlim_cur);  // unlimited: RLIM_INFINITY, as client_golang
  }
  p.ok = true;
  return p;
}

Server::Server(const std::string& address, Sampler sampler) {
  // civetweb wants "PORT" or "HOST:PORT"; ":PORT" means every address.
  std::string bind = address;
  if (!bind.empty() && bind[0] == ':') bind = "0.0.0.0" + bind;
  // Two threads: a slow scraper cannot block the next one.
  server_ = std::make_unique<CivetServer>(
      std::vector<std::string>{"listening_ports", bind, "num_threads", "2"});
  auto h = std::make_shared<MetricsHandler>(std::move(sampler));
  server_->addHandler("/metrics", h.get());
  handler_ = h;
}

Server::~Server() {
  server_->close();  // no handler runs once the handler is gone
}

uint16_t Server::port() const {
  const auto ports = server_->getListeningPorts();
  return ports.empty() ? 0 : static_cast<uint16_t>(ports.front());
}

std::string render(const Sample& s) {
  Sample copy = s;
  if (copy.version.empty()) copy.version = EXFILWATCH_VERSION;
  auto families = build(copy);
  dropNaN(families);
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace exfilwatch::metrics
