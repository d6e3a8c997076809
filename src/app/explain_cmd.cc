// explain_cmd.cc: `exfilwatch explain PCAP... --client IP --domain NAME`
// (or `--dest IP:PORT` for TLS): replays the captures through the same
// Engine as `replay`, and after every packet of the chosen pair prints the
// pair's feature values per window, the score components against their
// thresholds, and whether a verdict fired (or was suppressed). An analyst
// sees why a pair did or did not alert, and what a threshold change would do.
// Output is one line per step (per query, or per minute of TLS uploads),
// plus the thresholds in force at the top.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "app/cli.h"
#include "app/commands.h"
#include "capture/pcap_source.h"
#include "config/config.h"
#include "engine/engine.h"
#include "score/reasons.h"

namespace exfilwatch::app {

namespace {
// Counts alerts the engine writes, keeps the text of the last one.
class CountingSink final : public EveSink {
 public:
  void write(std::string_view line) override {
    ++lines;
    last.assign(line);
  }
  void flush() override {}
  uint64_t lines = 0;
  std::string last;
};

void usage() {
  std::fprintf(stderr,
               "usage: exfilwatch explain [--config FILE] [--all] PCAP... --client IP\n"
               "                          (--domain NAME | --dest IP:PORT)\n"
               "  one line per query of the pair (TLS: per upload segment that moves a\n"
               "  window by 1%% or more; --all: every packet), then the verdicts\n");
}

std::string field(const std::string& json, const char* key) {
  const std::string k = std::string("\"") + key + "\":\"";
  const auto p = json.find(k);
  if (p == std::string::npos) return {};
  const auto e = json.find('"', p + k.size());
  return json.substr(p + k.size(), e - p - k.size());
}
}  // namespace

int explainCommand(int argc, char** argv) {
  std::string client_text, domain, dest_text;
  bool all = false;
  std::vector<std::string> pcaps;
  Command app("explain",
              "Feature timeline and verdicts for one (client, domain) or "
              "(client, destination) pair.");
  engine::ConfigSource source;
  addConfigOptions(app, source);
  app.add_option("--client", client_text, "the client's IP address")->type_name("IP")->required();
  auto* by_domain =
      app.add_option("--domain", domain, "the registered domain (DNS)")->type_name("NAME");
  auto* by_dest = app.add_option("--dest", dest_text, "the destination (TLS)")
                      ->type_name("IP:PORT")
                      ->excludes(by_domain);
  app.add_flag("--all", all, "TLS: a line for every packet, not only those that move a window");
  app.add_option("PCAP", pcaps, "capture files")->required();
  if (const int status = parse(app, argc, argv); status >= 0) return status;
  if (by_domain->count() + by_dest->count() != 1) {
    std::fprintf(stderr, "exfilwatch explain: give --domain NAME or --dest IP:PORT\n");
    return 2;
  }
  const std::string& config_path = source.path;
  IpAddress client, dest;
  uint16_t dest_port = 0;
  if (pcaps.empty() || !IpAddress::parse(client_text, client) ||
      (domain.empty() == dest_text.empty())) {
    usage();
    return 2;
  }
  if (!dest_text.empty()) {
    const auto colon = dest_text.rfind(':');
    if (colon == std::string::npos || !IpAddress::parse(dest_text.substr(0, colon), dest)) {
      usage();
      return 2;
    }
    try {
      dest_port =
          static_cast<uint16_t>(parseUnsigned("--dest", dest_text.substr(colon + 1), 1, 65535));
    } catch (const CLI::ValidationError& e) {
      std::fprintf(stderr, "exfilwatch explain: %s\n", e.what());
      return 2;
    }
  }
  for (auto& c : domain) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  while (!domain.empty() && domain.back() == '.') domain.pop_back();

  Config config;
  try {
    config = loadConfig(config_path, source.sets);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exfilwatch: %s\n", e.what());
    return 2;
  }
  CountingSink sink;
  std::unique_ptr<Engine> engine;
  try {
    engine = std::make_unique<Engine>(makeControlPlane(config), sink);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exfilwatch: %s\n", e.what());
    return 2;
  }
  const auto& ds = engine->dnsScorer();
  const auto& dc = ds.config();
  const auto& tt = engine->tlsTracker();
  const auto& tc = tt.config();
  std::string wn[score::kWindows];
  for (int i = 0; i < score::kWindows; ++i) wn[i] = score::windowName(dc.windows[i]);
  const bool tls_mode = !dest_text.empty();
  uint64_t key = 0;
  if (tls_mode) {
    key = tt.pairKey(client, dest, dest_port);
    std::printf("# pair client=%s destination=%s\n", client_text.c_str(), dest_text.c_str());
    std::printf(
        "# thresholds: bulk: upload_%s >= %llu with up/down >= %.1f; drip: upload_flows_%s >= %u"
        " (flow up >= %u B) and upload_%s >= %llu with up/down >= %.1f; alert at score >= 1\n",
        wn[1].c_str(), static_cast<unsigned long long>(tc.bulk_upload_bytes), tc.upload_ratio,
        wn[2].c_str(), tc.drip_flows, tc.drip_flow_min_bytes, wn[2].c_str(),
        static_cast<unsigned long long>(tc.drip_upload_bytes), tc.upload_ratio);
    std::printf(
        "time\tpkt\tup_%s\tdown_%s\tup_%s\tdown_%s\tflows_%s\tupload_flows_%"
        "s\tbulk\tdrip\tscore\tverdict\n",
        wn[1].c_str(), wn[1].c_str(), wn[2].c_str(), wn[2].c_str(), wn[2].c_str(), wn[2].c_str());
  } else {
    key = ds.pairKey(client, domain);
    std::printf("# pair client=%s domain=%s\n", client_text.c_str(), domain.c_str());
    std::printf(
        "# thresholds: info_bytes %u/%u/%u (%s/%s/%s) x%.2f, unique_subdomains_%s %u x%.2f,"
        " answer_bytes_%s %u x%.2f, lexical_hits_%s %u x%.2f (model >= %.2f bits/char, label >= "
        "%u),"
        " types x%.2f (>= %u queries), rules x%.2f; alert at score >= %.2f; suppress %u s\n",
        dc.info_bytes[0], dc.info_bytes[1], dc.info_bytes[2], wn[0].c_str(), wn[1].c_str(),
        wn[2].c_str(), dc.weight_info, wn[1].c_str(), dc.unique_subdomains, dc.weight_unique,
        wn[1].c_str(), dc.answer_bytes, dc.weight_answer, wn[1].c_str(), dc.lexical_hits,
        dc.weight_lexical, dc.model_bits_per_char, dc.model_min_label, dc.weight_types,
        dc.risky_types_min_queries, dc.weight_rules, dc.alert_score, config.alert_suppress_seconds);
    std::printf(
        "time\tpkt\tqueries\tinfo_%s\tinfo_%s\tinfo_%s\tunique_%s\tdistinct\tqueries_%s\tnxdomain_%"
        "s"
        "\tanswer_%s\trisky_%s\tlexical_%s\tentropy_p90\tc_info\tc_unique\tc_answer\tc_lexical\tc_"
        "types"
        "\tc_rules\tscore\tverdict\tname\n",
        wn[0].c_str(), wn[1].c_str(), wn[2].c_str(), wn[1].c_str(), wn[1].c_str(), wn[1].c_str(),
        wn[1].c_str(), wn[1].c_str(), wn[1].c_str());
  }

  uint64_t verdicts = 0, last_queries = 0;
  double last_up = -1;
  for (const auto& path : pcaps) {
    std::string error;
    auto source = PcapSource::open(path, error);
    if (!source) {
      std::fprintf(stderr, "exfilwatch explain: %s\n", error.c_str());
      return 1;
    }
    Frame frame;
    uint64_t n = 0;
    while (source->next(frame)) {
      const uint64_t before = sink.lines;
      engine->process(frame, ++n);
      const bool alerted = sink.lines != before;
      const uint32_t now = static_cast<uint32_t>(frame.ts.sec);
      char ts[32];
      std::snprintf(ts, sizeof ts, "%lld.%06d", static_cast<long long>(frame.ts.sec),
                    frame.ts.usec);
      std::string verdict = "-";
      if (alerted) {
        const std::string sig = field(sink.last, "signature");
        const std::string src = field(sink.last, "src_ip");
        if (sig.find("EXFILWATCH") != std::string::npos) {
          verdict = sig;
          ++verdicts;
        }
        (void)src;
      }
      if (tls_mode) {
        score::TlsFeatures f;
        if (!tt.features(key, now, f)) continue;
        const double up = f.w[1].up;
        if (!all && !alerted && last_up >= 0 && up < last_up * 1.01 + 1 && up >= last_up) continue;
        last_up = up;
        std::printf("%s\t%llu\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t%.1f\t%.2f\t%.2f\t%.2f\t%s\n", ts,
                    static_cast<unsigned long long>(n), f.w[1].up, f.w[1].down, f.w[2].up,
                    f.w[2].down, f.w[2].flows, f.w[2].upload_flows, f.bulk, f.drip, f.score,
                    verdict.c_str());
        if (alerted) std::printf("#   reasons: %s\n", field(sink.last, "reasons").c_str());
      } else {
        const score::DnsPairRecord* r = ds.record(key);
        if (r == nullptr) continue;
        if (!all && r->queries_total == last_queries && !alerted)
          continue;  // not this pair's query
        last_queries = r->queries_total;
        score::DnsFeatures f;
        ds.features(key, now, f);
        std::printf(
            "%s\t%llu\t%u\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f"
            "\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%s\n",
            ts, static_cast<unsigned long long>(n), f.queries_total, f.w[0].info_bytes,
            f.w[1].info_bytes, f.w[2].info_bytes, f.w[1].unique, f.distinct, f.w[1].queries,
            f.w[1].nxdomain, f.w[1].answer_bytes, f.w[1].risky, f.w[1].lexical, f.entropy_p90,
            f.c_info, f.c_unique, f.c_answer, f.c_lexical, f.c_types, f.c_rules, f.score,
            verdict.c_str(), alerted ? field(sink.last, "rrname").c_str() : "");
        if (alerted) std::printf("#   reasons: %s\n", field(sink.last, "reasons").c_str());
      }
    }
  }
  std::printf("# %llu verdict(s) for this pair; scorer: %zu pairs tracked, %llu evicted\n",
              static_cast<unsigned long long>(verdicts), tls_mode ? tt.pairs() : ds.pairs(),
              static_cast<unsigned long long>(tls_mode ? tt.pairEvictions() : ds.evictions()));
  return 0;
}

}  // namespace exfilwatch::app
