// run_cmd.cc: `exfilwatch run`: the always-on sensor behind the Network Load
// Balancer. Worker threads receive VXLAN (and GENEVE) datagrams and run them
// through the same Engine as `replay`; the main thread is the control
// plane: signals (SIGHUP reload, SIGTERM/SIGINT drain and exit 0), the
// health-check listener and the statistics.
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "alert/async_sink.h"
#include "alert/delivery.h"
#include "app/cli.h"
#include "app/commands.h"
#include "engine/fleet_config.h"
#include "engine/pipeline.h"
#include "fleet/redis_client.h"
#include "metrics/metrics.h"
#include "sensor/health.h"
#include "sensor/workers.h"
#include "share/worker_link.h"

namespace exfilwatch::app {

namespace {
void log(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void log(const char* fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "exfilwatch run: %s\n", line);
  std::fflush(stderr);
}

using ull = unsigned long long;

class Sensor {
 public:
  Sensor(engine::ConfigSource source, std::string eve_path)
      : pipeline_(std::move(source)), eve_path_(std::move(eve_path)) {}

  int run(uint32_t workers_override, std::FILE* eve, bool eve_owned, unsigned stats_interval) {
    ControlPlanePtr plane;
    try {
      plane = pipeline_.build(1);
    } catch (const std::exception& e) {
      // A sensor that cannot load its configuration must not pretend to run.
      log("cannot start: %s", e.what());
      if (eve_owned) std::fclose(eve);
      return 2;
    }
    const ListenConfig listen = plane->config.listen;
    std::size_t workers = workers_override ? workers_override : listen.workers;
    if (workers == 0) workers = std::max(1u, std::thread::hardware_concurrency());

    holder_ = std::make_unique<ControlPlaneHolder>(plane);
    // output.eve (or --eve) as a rotating file: rotation by size/age and
    // reopen on SIGHUP (logrotate) happen on the writer, between lines.
    const OutputConfig& output = plane->config.output;
    const std::string eve_path = !eve_path_.empty() ? eve_path_ : output.eve_path;
    if (!eve_path.empty() && eve_path != "-") {
      if (eve_owned) std::fclose(eve);
      try {
        sink_ = std::make_unique<AsyncEveSink>(
            std::make_unique<RotatingFile>(eve_path, output.rotate_bytes, output.rotate_seconds,
                                           output.rotate_keep),
            workers, listen.eve_queue_bytes);
      } catch (const std::exception& e) {
        log("cannot start: %s", e.what());
        return 1;
      }
    } else {
      sink_ = std::make_unique<AsyncEveSink>(eve, eve_owned, workers, listen.eve_queue_bytes);
    }
    delivery_ = std::make_unique<AlertDelivery>(plane->config.output, plane->config.alertmanager,
                                                plane->config.sensor_name,
                                                plane->config.metrics.top_domains);
    sink_->setTap(delivery_.get());
    std::vector<std::string> warnings;
    try {
      pool_ = std::make_unique<WorkerPool>(*holder_, generation_, *sink_, workers, warnings);
    } catch (const std::exception& e) {
      log("cannot start: %s", e.what());
      return 1;
    }
    for (const auto& w : warnings) log("warning: %s", w.c_str());
    // The fleet's shared state (docs/fleet.md): a wrong URL or password
    // stops the sensor here, naming the key.
    try {
      if (const auto fs = engine::fleetSettings(plane->config.fleet)) {
        fleet_ = std::make_unique<share::FleetService>(
            *fs, std::chrono::milliseconds(2 * fs->connect_timeout_ms + 1000));
        pool_->setFleet(fleet_.get());
        log("fleet: sharing detection state in %s (flush every %u ms)", fs->url.c_str(),
            fs->flush_ms);
      }
    } catch (const std::exception& e) {
      log("cannot start: %s", e.what());
      return 2;
    }

    boost::asio::io_context io;
    // Before anything runs: a SIGTERM during start-up must drain, not kill.
    boost::asio::signal_set signals(io, SIGHUP, SIGTERM, SIGINT);
    std::function<void(const boost::system::error_code&, int)> on_signal =
        [&](const boost::system::error_code& ec, int sig) {
          if (ec) return;
          if (sig == SIGHUP) {
            sink_->requestReopen();  // logrotate: the EVE file may have moved
            reload();
            signals.async_wait(on_signal);
            return;
          }
          log("%s: stopping: draining queued packets and alerts",
              sig == SIGTERM ? "SIGTERM" : "SIGINT");
          io.stop();
        };
    signals.async_wait(on_signal);

    if (listen.health_port != 0) {
      health_ = std::make_unique<HealthListener>(io, listen.health_address, listen.health_port);
    }
    delivery_->start();
    sink_->start();
    pool_->start();
    startMetrics(plane->config.metrics.address);
    try {
      evaluateHealth();
    } catch (const std::exception& e) {
      log("cannot start: %s", e.what());
      pool_->stop();
      sink_->stop();
      return 1;
    }
    // Workers exist now (threads inherit the creator's nice value): lower
    // this thread's priority so health-check floods and statistics yield
    // the CPU to packet processing.
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
    // Every thread exists and the handlers are installed: take the signals
    // (any that arrived during start-up are delivered now).
    sigset_t control_signals;
    sigemptyset(&control_signals);
    sigaddset(&control_signals, SIGHUP);
    sigaddset(&control_signals, SIGTERM);
    sigaddset(&control_signals, SIGINT);
    pthread_sigmask(SIG_UNBLOCK, &control_signals, nullptr);

    log("listening on %s:%u/udp (vxlan)%s, %zu worker(s)%s, health %s, generation %llu%s",
        listen.address.c_str(), pool_->vxlanPort(),
        listen.geneve_enabled
            ? (" and :" + std::to_string(listen.geneve_port) + "/udp (geneve)").c_str()
            : "",
        workers, pool_->kernelSteering() ? " (kernel steers vxlan to owners)" : "",
        listen.health_port
            ? (listen.health_address + ":" + std::to_string(listen.health_port) + "/tcp").c_str()
            : "off",
        static_cast<ull>(plane->generation), plane->config.source.empty() ? " (defaults)" : "");
    log("ready");

    boost::asio::steady_timer tick(io);
    unsigned seconds = 0;
    std::function<void(const boost::system::error_code&)> on_tick =
        [&](const boost::system::error_code& ec) {
          if (ec) return;
          ++seconds;
          try {
            evaluateHealth();
          } catch (const std::exception& e) {
            log("health: %s", e.what());
          }
          if (stats_interval && seconds % stats_interval == 0) printStats(false);
          tick.expires_after(std::chrono::seconds(1));
          tick.async_wait(on_tick);
        };
    tick.expires_after(std::chrono::seconds(1));
    tick.async_wait(on_tick);

    io.run();

    if (health_) health_->setHealthy(false);  // stop taking traffic first
    pool_->stop();
    if (fleet_) fleet_->stop();
    sink_->stop();
    delivery_->stop();
    printStats(true);
    metrics_.reset();
    const uint64_t failures = sink_->failures();
    if (failures) {
      log("%llu EVE write failures", static_cast<ull>(failures));
      return 1;
    }
    return 0;
  }

 private:
  void reload() {
    last_reload_.store(static_cast<int64_t>(std::time(nullptr)), std::memory_order_relaxed);
    const ControlPlanePtr previous = holder_->load();
    std::string error;
    if (!pipeline_.reload(*holder_, error)) {
      log("reload refused: %s; keeping generation %llu", error.c_str(),
          static_cast<ull>(previous->generation));
      return;
    }
    const ControlPlanePtr next = holder_->load();
    if (!(next->config.listen == previous->config.listen)) {
      log("reload: listen.* changes take effect at the next restart; sockets and workers "
          "unchanged");
    }
    generation_.store(next->generation, std::memory_order_release);
    last_reload_ok_.store(static_cast<int64_t>(std::time(nullptr)), std::memory_order_relaxed);
    log("reload: generation %llu from %s", static_cast<ull>(next->generation),
        pipeline_.source().path.empty() ? "defaults" : pipeline_.source().path.c_str());
    evaluateHealth();
  }

  // Why the sensor cannot do its job now, or "" when it can.
  std::string unhealthyReason() {
    const ControlPlanePtr plane = holder_->load();
    if (plane->config.health.require_rules && !plane->rules) {
      return "no rule set loaded (health.require_rules is true)";
    }
    if (fleet_ && plane->config.fleet.health_requires_fleet && !fleet_->up()) {
      return "the fleet's Redis is down (fleet.health_requires_fleet is true)";
    }
    if (pool_->anyStalled(plane->config.health.stall_seconds)) {
      return "a worker made no progress for " + std::to_string(plane->config.health.stall_seconds) +
             " s";
    }
    return "";
  }

  void evaluateHealth() {
    const std::string reason = unhealthyReason();
    const bool healthy = reason.empty();
    if (health_) {
      const bool was = health_->healthy();
      health_->setHealthy(healthy);
      if (was != healthy || !health_logged_) {
        log("health: %s%s",
            healthy ? "healthy, accepting checks on " : "UNHEALTHY, refusing checks: ",
            healthy ? (std::to_string(health_->port()) + "/tcp").c_str() : reason.c_str());
      }
    } else if (healthy != last_healthy_ || !health_logged_) {
      log("health: %s%s", healthy ? "healthy" : "UNHEALTHY: ", reason.c_str());
    }
    last_healthy_ = healthy;
    healthy_metric_.store(healthy, std::memory_order_relaxed);
    health_logged_ = true;
  }

  // The stats line and its per-worker lines, from the same collection as a
  // scrape (collect()), so both always agree.
  void printStats(bool final) {
    metrics::Sample s;
    collect(s, final);
    uint64_t datagrams = 0, bytes = 0, processed = 0, handoff = 0, handoff_drops = 0;
    uint64_t kernel_drops = 0, socket_errors = 0;
    std::string per_worker;
    for (std::size_t i = 0; i < s.sources.size(); ++i) {
      const auto& w = s.sources[i];
      const WorkerCounters& c = pool_->counters(i);
      datagrams += w.datagrams;
      bytes += w.bytes;
      processed += w.processed;
      handoff += w.handoff;
      handoff_drops += w.handoff_drops;
      kernel_drops += w.kernel_drops;
      socket_errors += c.socket_errors.get();
      char line[256];
      std::snprintf(
          line, sizeof line,
          "stats worker=%zu datagrams=%llu processed=%llu handoff=%llu handoff_drops=%llu "
          "kernel_drops=%llu generation=%llu\n",
          i, static_cast<ull>(w.datagrams), static_cast<ull>(w.processed),
          static_cast<ull>(w.handoff), static_cast<ull>(w.handoff_drops),
          static_cast<ull>(w.kernel_drops), static_cast<ull>(c.generation.get()));
      per_worker += line;
    }
    std::string anomalies;
    for (std::size_t i = 0; i < kWeirdCount; ++i) {
      const auto id = static_cast<Weird>(i);
      if (s.weird.get(id) == 0) continue;
      anomalies += ' ';
      anomalies += weirdName(id);
      anomalies += '=';
      anomalies += std::to_string(s.weird.get(id));
    }
    std::fprintf(stderr, "%s", per_worker.c_str());
    std::fprintf(
        stderr,
        "stats:%s datagrams=%llu bytes=%llu processed=%llu handoff=%llu handoff_drops=%llu "
        "kernel_drops=%llu socket_errors=%llu frames=%llu malformed=%llu non_ip=%llu "
        "dns_messages=%llu alerts=%llu alerts_suppressed=%llu eve_lines=%llu eve_drops=%llu "
        "eve_failures=%llu reloads=%llu reload_failures=%llu generation=%llu healthy=%d "
        "health_accepted=%llu rss_kb=%ld%s\n",
        final ? " final" : "", static_cast<ull>(datagrams), static_cast<ull>(bytes),
        static_cast<ull>(processed), static_cast<ull>(handoff), static_cast<ull>(handoff_drops),
        static_cast<ull>(kernel_drops), static_cast<ull>(socket_errors),
        static_cast<ull>(s.decode.frames), static_cast<ull>(s.decode.malformed),
        static_cast<ull>(s.decode.non_ip), static_cast<ull>(s.engine.dns_messages),
        static_cast<ull>(s.engine.alerts), static_cast<ull>(s.engine.alerts_suppressed),
        static_cast<ull>(s.eve_lines), static_cast<ull>(s.eve_drops),
        static_cast<ull>(s.eve_failures), static_cast<ull>(s.reloads_ok),
        static_cast<ull>(s.reloads_failed), static_cast<ull>(generation_.load()),
        last_healthy_ ? 1 : 0, static_cast<ull>(health_ ? health_->accepted() : 0), rssKb(),
        anomalies.c_str());
    std::fflush(stderr);
  }

  // /metrics (metrics.address). A port taken by another process costs the
  // endpoint, not the sensor: detection keeps running and the log says so.
  void startMetrics(const std::string& address) {
    if (address.empty()) return;
    try {
      metrics_ =
          std::make_unique<metrics::Server>(address, [this](metrics::Sample& s) { sample(s); });
      log("metrics on %s/metrics (port %u)", address.c_str(), metrics_->port());
    } catch (const std::exception& e) {
      log("warning: metrics: cannot listen on %s: %s; metrics off", address.c_str(), e.what());
    }
  }

  // Scrape time (the exposer's thread): per-worker counters and snapshots
  // summed here, so the packet path never touches a shared counter.
  void sample(metrics::Sample& s) { collect(s, false); }

  // The one place worker counters and snapshots are summed. `final`: the
  // kernel's drop counters read now (at exit) rather than as last polled.
  void collect(metrics::Sample& s, bool final) {
    for (std::size_t i = 0; i < pool_->size(); ++i) {
      const WorkerCounters& c = pool_->counters(i);
      s.sources.push_back({std::to_string(i), c.datagrams.get(), c.bytes.get(),
                           final ? pool_->kernelDropsNow(i) : c.kernel_drops.get(),
                           c.handoff_drops.get(), c.processed.get(), c.handoff_out.get()});
      const WorkerSnapshot w = pool_->snapshot(i);
      s.decode.mergeFrom(w.decode);
      s.engine.mergeFrom(w.engine);
      s.weird.mergeFrom(w.weird);
      s.dns_pairs += w.dns_pairs;
      s.dns_evictions += w.dns_evictions;
      s.dns_domain_verdicts += w.dns_domain_verdicts;
      s.dns_domain_suppressed += w.dns_domain_suppressed;
      s.tls_pairs += w.tls_pairs;
      for (const auto& [id, n] : w.rule_hits) {
        bool found = false;
        for (auto& h : s.rule_hits) {
          if (h.first == id) {
            h.second += n;
            found = true;
          }
        }
        if (!found) s.rule_hits.emplace_back(id, n);
      }
      if (i == 0) s.latency.push_back({"worker_batch", {}});
      s.latency.front().parts.push_back(&c.batch_latency);
      // Queue depths: the rings' published indexes, read now (two loads
      // each), so no worker counts anything per packet for them.
      const WorkerPool::RingDepth h = pool_->inboundRings(i);
      s.handoff_rings.push_back({std::to_string(i), h.used_bytes, h.capacity_bytes, h.max_fill});
    }
    // The domain view's table is the sensor's: read once, not per worker.
    s.dns_domains = pool_->domainTable().size();
    s.dns_domain_evictions = pool_->domainTable().evictions();
    for (std::size_t i = 0; i < sink_->producers(); ++i) {
      s.eve_queues.push_back(
          {std::to_string(i), sink_->queuedBytes(i), sink_->queueCapacity(i), 0});
    }
    s.eve_lines = sink_->lines();
    s.eve_drops = sink_->dropped();
    s.eve_failures = sink_->failures();
    s.eve_rotations = sink_->rotations();
    s.reloads_ok = engine::reloadCounters().succeeded.load();
    s.reloads_failed = engine::reloadCounters().failed.load();
    s.last_reload_seconds = static_cast<double>(last_reload_.load(std::memory_order_relaxed));
    s.last_reload_success_seconds =
        static_cast<double>(last_reload_ok_.load(std::memory_order_relaxed));
    s.healthy = healthy_metric_.load(std::memory_order_relaxed);
    s.delivery = delivery_->stats();
    if (fleet_) {
      const fleet::ClientStats cs = fleet_->client().stats();
      const share::FleetCounters& fc = fleet_->counters();
      s.fleet.enabled = true;
      s.fleet.up = cs.up != 0;
      for (std::size_t k = 0; k < cs.errors.size(); ++k) {
        s.fleet.errors.emplace_back(fleet::errorKindName(static_cast<fleet::ErrorKind>(k)),
                                    cs.errors[k]);
      }
      s.fleet.flushes = fc.flushes.load(std::memory_order_relaxed);
      s.fleet.flush_failed = fc.flush_failed.load(std::memory_order_relaxed);
      s.fleet.dropped = fc.dropped.load(std::memory_order_relaxed);
      s.fleet.round_trip = &fc.round_trip;
    }
    if (s.delivery.am_post_latency) {
      s.latency.push_back({"alertmanager_post", {s.delivery.am_post_latency}});
    }
  }

  static long rssKb() {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (!f) return 0;
    long pages = 0, resident = 0;
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
    return resident * (::sysconf(_SC_PAGESIZE) / 1024);
  }

  engine::Pipeline pipeline_;
  std::string eve_path_;
  std::unique_ptr<AlertDelivery> delivery_;
  std::unique_ptr<metrics::Server> metrics_;
  std::atomic<int64_t> last_reload_{0}, last_reload_ok_{0};
  std::atomic<bool> healthy_metric_{false};
  std::atomic<uint64_t> generation_{1};
  std::unique_ptr<ControlPlaneHolder> holder_;
  std::unique_ptr<AsyncEveSink> sink_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<share::FleetService> fleet_;  // after pool_: stopped and destroyed first
  std::unique_ptr<HealthListener> health_;
  bool last_healthy_ = false;
  bool health_logged_ = false;
};
}  // namespace

int runCommand(int argc, char** argv) {
  Command app("run",
              "The live sensor: VXLAN/GENEVE over UDP, NLB health checks, EVE out.\n"
              "SIGHUP reloads the configuration and rules (refused if invalid); "
              "SIGTERM/SIGINT drain and exit 0.");
  engine::ConfigSource source;
  std::string eve_path;
  bool dns_log = false;
  unsigned stats_interval = 0;
  uint32_t workers = 0;
  addConfigOptions(app, source);
  app.add_option("--eve", eve_path, "EVE JSON lines to FILE (default: output.eve, else stdout)")
      ->type_name("FILE");
  app.add_flag("--dns-log", dns_log, "one event_type \"dns\" record per DNS message");
  addNumber<uint32_t>(app, "--workers", workers, 1, 256,
                      "worker threads (overrides listen.workers)");
  addNumber<unsigned>(app, "--stats-interval", stats_interval, 1, 86400,
                      "print statistics to stderr every N seconds");
  if (const int status = parse(app, argc, argv); status >= 0) return status;
  source.overrides = [dns_log](Config& c) {
    if (dns_log) c.dns_log = true;
  };
  std::FILE* out = stdout;
  bool owned = false;
  if (!eve_path.empty() && eve_path != "-") {
    out = std::fopen(eve_path.c_str(), "a");
    if (out == nullptr) {
      std::fprintf(stderr, "exfilwatch run: cannot open %s: %s\n", eve_path.c_str(),
                   std::strerror(errno));
      return 1;
    }
    owned = true;
  }
  static char buffer[1 << 20];
  std::setvbuf(out, buffer, _IOFBF, sizeof buffer);
  std::signal(SIGPIPE, SIG_IGN);
  // Hold SIGHUP/SIGTERM/SIGINT pending until the control thread's handlers
  // exist (loading rules can take a while: a SIGTERM then must still drain,
  // not kill). Threads created meanwhile inherit the mask, so only the
  // control thread ever receives them.
  sigset_t control_signals;
  sigemptyset(&control_signals);
  sigaddset(&control_signals, SIGHUP);
  sigaddset(&control_signals, SIGTERM);
  sigaddset(&control_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &control_signals, nullptr);
  Sensor sensor(std::move(source), eve_path);
  return sensor.run(workers, out, owned, stats_interval);
}

}  // namespace exfilwatch::app
