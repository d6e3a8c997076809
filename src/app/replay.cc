// replay.cc: `exfilwatch replay`: pcap files through the same engine the live
// sensor runs, EVE lines to stdout or a file, a summary on stderr. For the
// responder who replays a capture after an incident, and for tests.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "alert/eve.h"
#include "alert/rotating_file.h"
#include "app/commands.h"
#include "capture/pcap_source.h"
#include "config/config.h"
#include "engine/control_plane_builder.h"
#include "engine/engine.h"
#include "engine/fleet_config.h"
#include "fleet/redis_url.h"
#include "share/pair_sync.h"
#include "share/sync_link.h"

namespace exfilwatch::app {

namespace {
void usage() {
  std::fprintf(stderr,
               "usage: exfilwatch replay [--config FILE] [--eve FILE] [--dns-log] PCAP...\n"
               "  --config FILE  configuration (YAML); defaults otherwise\n"
               "  --eve FILE     write EVE JSON lines to FILE instead of stdout;\n"
               "                 output.rotate_* apply, by age in packet time\n"
               "  --dns-log      one event_type \"dns\" record per DNS message\n"
               "  --quiet        no summary on stderr\n"
               "  --no-score     skip the scoring engine (bench: its cost next to decode)\n"
               "  --fleet URL    share detection state in Redis (redis://, rediss://), so\n"
               "                 shards of one capture replayed at once detect as one;\n"
               "                 replaces fleet.url of the configuration\n");
}

void printSummary(const Engine& engine, std::size_t files, double seconds) {
  const DecodeStats& d = engine.decodeStats();
  const EngineStats& s = engine.stats();
  std::fprintf(
      stderr,
      "exfilwatch replay: %zu file(s), %llu packets, %llu bytes; %llu DNS messages "
      "(%llu queries, %llu responses, %llu incomplete, %llu unparsable); %llu alerts "
      "(%llu suppressed)\n",
      files, static_cast<unsigned long long>(d.frames), static_cast<unsigned long long>(d.bytes),
      static_cast<unsigned long long>(s.dns_messages),
      static_cast<unsigned long long>(s.dns_queries),
      static_cast<unsigned long long>(s.dns_responses),
      static_cast<unsigned long long>(s.dns_incomplete),
      static_cast<unsigned long long>(s.dns_unparsable), static_cast<unsigned long long>(s.alerts),
      static_cast<unsigned long long>(s.alerts_suppressed));
  std::fprintf(stderr,
               "decode: udp=%llu tcp=%llu tunneled=%llu non_ip=%llu other_transport=%llu "
               "malformed=%llu fragments_held=%llu reassembled=%llu\n",
               static_cast<unsigned long long>(d.udp), static_cast<unsigned long long>(d.tcp),
               static_cast<unsigned long long>(d.tunneled),
               static_cast<unsigned long long>(d.non_ip),
               static_cast<unsigned long long>(d.other_transport),
               static_cast<unsigned long long>(d.malformed),
               static_cast<unsigned long long>(d.fragments_held),
               static_cast<unsigned long long>(d.reassembled));
  std::string anomalies;
  const WeirdCounters& w = engine.weird();
  for (std::size_t i = 0; i < kWeirdCount; ++i) {
    const auto id = static_cast<Weird>(i);
    if (w.get(id) == 0) continue;
    anomalies += ' ';
    anomalies += weirdName(id);
    anomalies += '=';
    anomalies += std::to_string(w.get(id));
  }
  std::fprintf(stderr, "anomalies:%s\n", anomalies.empty() ? " none" : anomalies.c_str());
  {  // scoring state (src/score, src/tls): bounded tables and what they evicted
    const auto& ds = engine.dnsScorer();
    const auto& tt = engine.tlsTracker();
    std::fprintf(stderr,
                 "score: dns_pairs=%zu/%zu dns_evictions=%llu dns_bytes_per_pair=%.1f "
                 "dns_memory=%zu tls_pairs=%zu tls_evictions=%llu tls_bytes_per_pair=%.1f "
                 "tls_memory=%zu tls_hellos=%llu\n",
                 ds.pairs(), ds.capacity(), static_cast<unsigned long long>(ds.evictions()),
                 ds.bytesPerPair(), ds.memoryBytes(), tt.pairs(),
                 static_cast<unsigned long long>(tt.pairEvictions()), tt.bytesPerPair(),
                 tt.memoryBytes(), static_cast<unsigned long long>(tt.stats().hellos));
    // What the DNS scorer saw: queries scored or let through by an allow
    // rule, names new under their domain, responses that found their pair.
    const auto& st = ds.stats();
    const auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
    std::fprintf(stderr,
                 "dns_scorer: queries=%llu allowed=%llu new_names=%llu responses_matched=%llu "
                 "verdicts=%llu suppressed=%llu\n",
                 u(st.queries), u(st.allowed), u(st.new_names), u(st.responses), u(st.verdicts),
                 u(st.suppressed));
    const auto& rd = engine.registeredDomains();
    std::fprintf(stderr, "registered_domain: cache_hits=%llu suffix_walks=%llu list_lookups=%llu\n",
                 u(rd.hits()), u(rd.misses()), u(rd.listLookups()));
    // Rule values answered by the matcher's scan cache, and those Hyperscan scanned.
    const auto& m = engine.ruleMatcher();
    std::fprintf(stderr, "rules: scan_cache_hits=%llu scans=%llu scan_errors=%llu\n",
                 u(m.scanCacheHits()), u(m.scanCacheMisses()), u(m.scanErrors()));
  }
  const double pps = seconds > 0 ? static_cast<double>(d.frames) / seconds : 0.0;
  std::fprintf(stderr, "elapsed: %.3f s, %.0f packets/s\n", seconds, pps);
}
}  // namespace

int replayCommand(int argc, char** argv) {
  std::string config_path;
  std::string eve_path;
  bool dns_log = false;
  bool quiet = false;
  bool no_score = false;
  std::string fleet_url;
  std::vector<std::string> pcaps;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "exfilwatch replay: %s needs a value\n", name);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--config") {
      config_path = value("--config");
    } else if (arg == "--eve") {
      eve_path = value("--eve");
    } else if (arg == "--dns-log") {
      dns_log = true;
    } else if (arg == "--quiet" || arg == "-q") {
      quiet = true;
    } else if (arg == "--no-score") {
      no_score = true;
    } else if (arg == "--fleet") {
      fleet_url = value("--fleet");
    } else if (arg == "--help" || arg == "-h") {
      usage();
      return 0;
    } else if (!arg.empty() && arg[0] == '-' && arg != "-") {
      std::fprintf(stderr, "exfilwatch replay: unknown option %s\n", arg.c_str());
      usage();
      return 2;
    } else {
      pcaps.push_back(arg);
    }
  }
  if (pcaps.empty()) {
    usage();
    return 2;
  }

  Config config;
  try {
    config = loadConfig(config_path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exfilwatch: %s\n", e.what());
    return 2;
  }
  if (dns_log) config.dns_log = true;

  // EVE to a file (--eve) is the live sensor's rotating
  // file: rotate_bytes, rotate_seconds and rotate_keep apply, rotation falls
  // between whole records. Age is measured in packet time (docs/eve.md,
  // "Rotation"): each file then covers what the live sensor's
  // file would have covered, and a replay is reproducible.
  // Never output.eve: a responder replaying with the production
  // configuration must not write into the live sensor's file.
  std::unique_ptr<EveSink> sink;
  RotatingEveSink* rotating = nullptr;
  FileEveSink* plain = nullptr;
  if (!eve_path.empty() && eve_path != "-") {
    try {
      auto file =
          std::make_unique<RotatingFile>(eve_path, config.output.rotate_bytes,
                                         config.output.rotate_seconds, config.output.rotate_keep);
      file->useExternalClock();
      auto s = std::make_unique<RotatingEveSink>(std::move(file));
      rotating = s.get();
      sink = std::move(s);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "exfilwatch replay: %s\n", e.what());
      return 1;
    }
  } else {
    // A large stdio buffer: records are written in bursts, flushed at the end.
    static char buffer[1 << 20];
    std::setvbuf(stdout, buffer, _IOFBF, sizeof buffer);
    auto s = std::make_unique<FileEveSink>(stdout, false);
    plain = s.get();
    sink = std::move(s);
  }

  std::unique_ptr<Engine> engine;
  try {
    // The same plane the sensor builds: configuration plus compiled rules.
    engine = std::make_unique<Engine>(engine::buildControlPlane(config, 1), *sink);
    engine->setScoringEnabled(!no_score);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exfilwatch: %s\n", e.what());
    return 2;
  }

  // --fleet: shared state in Redis, flushed every flush_ms of packet time;
  // each flush's reply is taken before the next is sent (docs/fleet.md).
  std::unique_ptr<share::SyncLink> link;
  std::unique_ptr<share::PairSync> sync;
  uint32_t flush_ms = 0;
  std::optional<fleet::ConnectionSettings> fleet_settings;
  try {
    fleet_settings = engine::fleetSettings(config.fleet, fleet_url);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exfilwatch replay: %s\n", e.what());
    return 2;
  }
  if (fleet_settings) {
    fleet_url = fleet_settings->url;
    try {
      const fleet::ConnectionSettings& settings = *fleet_settings;
      link = std::make_unique<share::SyncLink>(settings, std::chrono::seconds(5));
      share::ShareOptions so;
      so.key_prefix = settings.key_prefix;
      sync = std::make_unique<share::PairSync>(config.score.dns, so);
      sync->setClaimRoundTrip(
          [l = link.get()](fleet::CommandBatch&& batch, fleet::BatchResult& out) {
            return l->roundTrip(std::move(batch), out) && out.ok();
          });
      engine->setSharedState(sync.get());
      flush_ms = std::max<uint32_t>(settings.flush_ms, 1);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "exfilwatch replay: --fleet %s: %s\n", fleet_url.c_str(), e.what());
      return 2;
    }
  }
  int64_t next_flush_ms = 0;
  uint32_t last_sec = 0;
  const std::function<void(const share::PairSync::Flush::Item&)> reevaluate =
      [&](const share::PairSync::Flush::Item& it) {
        engine->reevaluateShared(it.key, it.domain, it.client, it.server, it.last_seen);
      };
  auto flushFleet = [&](uint32_t now) {
    link->flush(*sync, engine->mutableDnsScorer(), now, reevaluate);
  };

  int status = 0;
  const auto start = std::chrono::steady_clock::now();
  for (const auto& path : pcaps) {
    std::string error;
    auto source = PcapSource::open(path, error);
    if (!source) {
      std::fprintf(stderr, "exfilwatch replay: %s\n", error.c_str());
      status = 1;
      continue;
    }
    engine->setSourceName(path);
    Frame frame;
    uint64_t n = 0;
    if (sync) {
      while (source->next(frame)) {
        if (rotating != nullptr) rotating->file().setTime(static_cast<std::time_t>(frame.ts.sec));
        engine->process(frame, ++n);
        const int64_t ms = frame.ts.sec * 1000 + frame.ts.usec / 1000;
        last_sec = static_cast<uint32_t>(frame.ts.sec);
        if (ms >= next_flush_ms) {
          if (next_flush_ms != 0) flushFleet(last_sec);
          next_flush_ms = ms + flush_ms;
        }
      }
    } else if (rotating != nullptr) {
      while (source->next(frame)) {
        rotating->file().setTime(static_cast<std::time_t>(frame.ts.sec));
        engine->process(frame, ++n);
      }
    } else {
      while (source->next(frame)) engine->process(frame, ++n);
    }
    if (!source->error().empty()) {
      std::fprintf(stderr, "exfilwatch replay: %s: stopped after %llu packets: %s\n", path.c_str(),
                   static_cast<unsigned long long>(n), source->error().c_str());
    }
  }
  if (sync) {
    // The last flush, then every shared pair judged once more on the fleet's
    // final totals: a shard that finishes last sees what all the others sent.
    flushFleet(last_sec);
    link->finish(*sync, reevaluate);
    sync->refreshAll();
    flushFleet(last_sec);
    link->finish(*sync, reevaluate);
  }
  sink->flush();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const uint64_t records = rotating ? rotating->lines() : plain->lines();
  const uint64_t failures = rotating ? rotating->failures() : plain->failures();
  if (!quiet) {
    printSummary(*engine, pcaps.size(), seconds);
    if (sync) {
      const auto& st = sync->stats();
      const auto& ls = link->stats();
      const auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
      std::fprintf(
          stderr,
          "fleet: flushes=%llu skipped=%llu failed=%llu commands=%llu bytes=%llu pairs_sent=%llu "
          "names_sent=%llu below_floor=%llu shared_pairs=%zu replies_bad=%llu "
          "replies_lost=%llu claims=%llu claims_denied=%llu claims_unknown=%llu\n",
          u(ls.flushes), u(ls.skipped), u(ls.failed), u(st.commands), u(st.bytes), u(st.pairs_sent),
          u(st.names_sent), u(st.below_floor), sync->pairs(), u(st.replies_bad), u(st.replies_lost),
          u(st.claims), u(st.claims_denied), u(st.claims_unknown));
    }
    if (rotating) {
      std::fprintf(stderr, "eve: %llu records written to %s, %llu rotations\n",
                   static_cast<unsigned long long>(records), eve_path.c_str(),
                   static_cast<unsigned long long>(rotating->file().rotations()));
    } else {
      std::fprintf(stderr, "eve: %llu records written to stdout\n",
                   static_cast<unsigned long long>(records));
    }
  }
  if (failures) {
    std::fprintf(stderr, "exfilwatch replay: %llu EVE write failures\n",
                 static_cast<unsigned long long>(failures));
    status = 1;
  }
  return status;
}

}  // namespace exfilwatch::app
