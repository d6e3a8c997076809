// replay.cc: `exfilwatch replay`: pcap files through the same engine the live
// sensor runs, EVE lines to stdout or a file, a summary on stderr. For the
// responder who replays a capture after an incident, and for tests.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "alert/eve.h"
#include "alert/rotating_file.h"
#include "app/cli.h"
#include "app/commands.h"
#include "capture/pcap_source.h"
#include "config/config.h"
#include "engine/engine.h"
#include "engine/fleet_config.h"
#include "engine/pipeline.h"
#include "fleet/redis_url.h"
#include "share/pair_sync.h"
#include "share/sync_link.h"

namespace exfilwatch::app {

namespace {
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
    // rule, names new under their domain, responses that found their pair;
    // the domain view's records and verdicts.
    const auto& st = ds.stats();
    const auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
    std::fprintf(stderr,
                 "dns_scorer: queries=%llu allowed=%llu new_names=%llu responses_matched=%llu "
                 "verdicts=%llu suppressed=%llu domains=%llu domain_evictions=%llu "
                 "domain_verdicts=%llu domain_suppressed=%llu\n",
                 u(st.queries), u(st.allowed), u(st.new_names), u(st.responses), u(st.verdicts),
                 u(st.suppressed), u(ds.domains()), u(ds.domainEvictions()), u(st.domain_verdicts),
                 u(st.domain_suppressed));
    const auto& rd = engine.registeredDomains();
    std::fprintf(stderr, "registered_domain: cache_hits=%llu suffix_walks=%llu list_lookups=%llu\n",
                 u(rd.hits()), u(rd.misses()), u(rd.listLookups()));
    // Names answered by the name cache (domain and rule hits), and TXT
    // values by the matcher's scan cache; the values Hyperscan scanned.
    const auto& m = engine.ruleMatcher();
    const auto& names = engine.names();
    std::fprintf(stderr,
                 "rules: name_cache_hits=%llu name_cache_misses=%llu scan_cache_hits=%llu "
                 "scans=%llu scan_errors=%llu\n",
                 u(names.hits()), u(names.misses()), u(m.scanCacheHits()), u(m.scanCacheMisses()),
                 u(m.scanErrors()));
  }
  const double pps = seconds > 0 ? static_cast<double>(d.frames) / seconds : 0.0;
  std::fprintf(stderr, "elapsed: %.3f s, %.0f packets/s\n", seconds, pps);
}

// The capture files of the command line, a directory's in name order.
bool expandInputs(const std::vector<std::string>& args, std::vector<std::string>& files) {
  namespace fs = std::filesystem;
  for (const auto& arg : args) {
    std::error_code ec;
    if (!fs::is_directory(arg, ec)) {
      files.push_back(arg);
      continue;
    }
    std::vector<std::string> inside;
    for (const auto& entry : fs::directory_iterator(arg, ec)) {
      const std::string name = entry.path().filename().string();
      const std::string ext = entry.path().extension().string();
      std::error_code entry_ec;
      if (name.empty() || name[0] == '.' || !entry.is_regular_file(entry_ec)) continue;
      if (ext == ".pcap" || ext == ".pcapng" || ext == ".cap")
        inside.push_back(entry.path().string());
    }
    if (ec) {
      std::fprintf(stderr, "exfilwatch replay: %s: %s\n", arg.c_str(), ec.message().c_str());
      return false;
    }
    if (inside.empty()) {
      std::fprintf(stderr, "exfilwatch replay: %s: no capture files (.pcap, .pcapng, .cap)\n",
                   arg.c_str());
      return false;
    }
    std::sort(inside.begin(), inside.end());
    files.insert(files.end(), inside.begin(), inside.end());
  }
  return true;
}

// A progress line on a terminal: files, packets, rate and time left, the
// last from the bytes of the captures read so far.
class Progress {
 public:
  explicit Progress(const std::vector<std::string>& files) : files_(files.size()) {
    for (const auto& f : files) {
      std::error_code ec;
      const auto size = std::filesystem::file_size(f, ec);
      if (!ec) total_bytes_ += size;
    }
  }
  void startFile(std::size_t index) { file_ = index + 1; }
  // Called every few thousand packets.
  void update(uint64_t packets, uint64_t bytes_read) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(250)) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(packets) / elapsed : 0;
    std::string eta = "?";
    if (bytes_read > 0 && total_bytes_ > bytes_read && elapsed > 0) {
      const double left = elapsed * static_cast<double>(total_bytes_ - bytes_read) /
                          static_cast<double>(bytes_read);
      eta = std::to_string(static_cast<long long>(left + 0.5)) + " s";
    } else if (total_bytes_ <= bytes_read) {
      eta = "0 s";
    }
    std::fprintf(stderr, "\r\033[Kfile %zu/%zu, %llu packets, %.0f packets/s, ETA %s", file_,
                 files_, static_cast<unsigned long long>(packets), rate, eta.c_str());
    std::fflush(stderr);
    shown_ = true;
  }
  void clear() {
    if (shown_) std::fputs("\r\033[K", stderr);
    shown_ = false;
  }

 private:
  std::size_t files_, file_ = 0;
  uint64_t total_bytes_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_{};
  bool shown_ = false;
};
}  // namespace

int replayCommand(int argc, char** argv) {
  Command app("replay",
              "Run captures through the sensor's detection path; EVE JSON out, a "
              "summary on stderr.");
  engine::ConfigSource source;
  std::string eve_path;
  bool dns_log = false, quiet = false, no_score = false, append = false;
  std::string fleet_url;
  std::vector<std::string> args;
  addConfigOptions(app, source);
  app.add_option("--eve", eve_path,
                 "EVE JSON lines to FILE instead of stdout (truncated first; output.rotate_* "
                 "apply, by age in packet time)")
      ->type_name("FILE");
  app.add_flag("--append", append, "append to the --eve file instead of truncating it");
  app.add_flag("--dns-log", dns_log, "one event_type \"dns\" record per DNS message");
  app.add_flag("-q,--quiet", quiet, "no summary on stderr");
  app.add_flag("--no-score", no_score, "skip the scoring engine (bench: its cost next to decode)");
  app.add_option("--fleet", fleet_url,
                 "share detection state in Redis (redis://, rediss://), so shards of one "
                 "capture replayed at once detect as one; replaces fleet.url")
      ->type_name("URL");
  app.add_option("PCAP", args, "capture files; a directory: the capture files inside, by name")
      ->required();
  if (const int status = parse(app, argc, argv); status >= 0) return status;
  if (append && eve_path.empty()) {
    std::fprintf(stderr, "exfilwatch replay: --append needs --eve FILE\n");
    return 2;
  }
  std::vector<std::string> pcaps;
  if (!expandInputs(args, pcaps)) return 2;

  source.overrides = [&](Config& c) {
    if (dns_log) c.dns_log = true;
  };
  const engine::Pipeline pipeline(source);
  Config config;
  try {
    config = pipeline.config();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exfilwatch: %s\n", e.what());
    return 2;
  }

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
      // A second replay into the same file must not mix two runs' records.
      if (!append) {
        std::FILE* f = std::fopen(eve_path.c_str(), "w");
        if (f == nullptr) throw std::runtime_error(eve_path + ": " + std::strerror(errno));
        std::fclose(f);
      }
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
    engine = engine::Pipeline::engine(engine::buildControlPlane(config, 1), *sink);
    engine->setScoringEnabled(!no_score);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exfilwatch: %s\n", e.what());
    return 2;
  }

  // --fleet: shared state in Redis, flushed every flush_ms of packet time;
  // each flush's reply is taken before the next is sent (docs/fleet.md).
  std::unique_ptr<share::SyncLink> link;
  std::unique_ptr<share::PairSync> sync;
  std::unique_ptr<share::TlsSync> tls_sync;
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
      tls_sync = std::make_unique<share::TlsSync>(config.score.tls, so);
      tls_sync->setClaimRoundTrip(
          [l = link.get()](fleet::CommandBatch&& batch, fleet::BatchResult& out) {
            return l->roundTrip(std::move(batch), out) && out.ok();
          });
      engine->setTlsSharedState(tls_sync.get());
      link->attachTls(tls_sync.get(), &engine->mutableTlsTracker(),
                      [e = engine.get()](const share::TlsSync::Flush::Item& it) {
                        e->reevaluateSharedTls(it.key, it.client, it.server, it.port, it.last_seen);
                      });
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

  // Progress only for a person watching: never into a log or a pipe.
  std::unique_ptr<Progress> progress;
  if (!quiet && ::isatty(STDERR_FILENO)) progress = std::make_unique<Progress>(pcaps);
  int status = 0;
  uint64_t total = 0, bytes_read = 0;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t f = 0; f < pcaps.size(); ++f) {
    const std::string& path = pcaps[f];
    std::string error;
    auto source = PcapSource::open(path, error);
    if (!source) {
      std::fprintf(stderr, "exfilwatch replay: %s\n", error.c_str());
      status = 1;
      continue;
    }
    engine->setSourceName(path);
    if (progress) progress->startFile(f);
    const auto file_start = std::chrono::steady_clock::now();
    const uint64_t messages_before = engine->stats().dns_messages;
    const uint64_t alerts_before = engine->stats().alerts;
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
        bytes_read += frame.caplen + 16;
        if (progress && (n & 4095) == 0) progress->update(total + n, bytes_read);
      }
    } else if (progress) {
      while (source->next(frame)) {
        if (rotating != nullptr) rotating->file().setTime(static_cast<std::time_t>(frame.ts.sec));
        engine->process(frame, ++n);
        bytes_read += frame.caplen + 16;  // record header + data: close enough for an ETA
        if ((n & 4095) == 0) progress->update(total + n, bytes_read);
      }
    } else if (rotating != nullptr) {
      while (source->next(frame)) {
        rotating->file().setTime(static_cast<std::time_t>(frame.ts.sec));
        engine->process(frame, ++n);
      }
    } else {
      while (source->next(frame)) engine->process(frame, ++n);
    }
    total += n;
    if (progress) progress->clear();
    if (!source->error().empty()) {
      std::fprintf(stderr, "exfilwatch replay: %s: stopped after %llu packets: %s\n", path.c_str(),
                   static_cast<unsigned long long>(n), source->error().c_str());
    }
    if (!quiet) {
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - file_start).count();
      std::fprintf(stderr,
                   "exfilwatch replay: %s: packets=%llu dns_messages=%llu alerts=%llu "
                   "seconds=%.3f\n",
                   path.c_str(), static_cast<unsigned long long>(n),
                   static_cast<unsigned long long>(engine->stats().dns_messages - messages_before),
                   static_cast<unsigned long long>(engine->stats().alerts - alerts_before), s);
    }
  }
  if (sync) {
    // The last flush, then every shared pair judged once more on the fleet's
    // final totals: a shard that finishes last sees what all the others sent.
    flushFleet(last_sec);
    link->finish(*sync, reevaluate);
    sync->refreshAll();
    tls_sync->refreshAll();
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
          "names_sent=%llu below_floor=%llu quiet=%llu shared_pairs=%zu replies_bad=%llu "
          "replies_lost=%llu claims=%llu claims_denied=%llu claims_unknown=%llu\n",
          u(ls.flushes), u(ls.skipped), u(ls.failed), u(st.commands), u(st.bytes), u(st.pairs_sent),
          u(st.names_sent), u(st.below_floor), u(st.quiet), sync->pairs(), u(st.replies_bad),
          u(st.replies_lost), u(st.claims), u(st.claims_denied), u(st.claims_unknown));
      const auto& ts = tls_sync->stats();
      std::fprintf(
          stderr,
          "fleet tls: commands=%llu bytes=%llu pairs_sent=%llu below_floor=%llu shared_pairs=%zu "
          "replies_bad=%llu replies_lost=%llu claims=%llu claims_denied=%llu "
          "claims_unknown=%llu\n",
          u(ts.commands), u(ts.bytes), u(ts.pairs_sent), u(ts.below_floor), tls_sync->pairs(),
          u(ts.replies_bad), u(ts.replies_lost), u(ts.claims), u(ts.claims_denied),
          u(ts.claims_unknown));
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
