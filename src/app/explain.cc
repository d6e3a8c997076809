// explain.cc: `exfilwatch explain PCAP... --client IP --domain NAME` (or
// `--dest IP:PORT` for TLS). The captures run through the pipeline replay
// builds (configuration, rules, allow list, model), and after every packet of
// the chosen pair it prints the pair's feature values per window, the score
// components against their thresholds, and the verdicts: alerts as the sensor
// writes them, repeats it holds back, and names an allow rule took (with the
// rule). The engine reports its decisions through an EngineObserver, so what
// is shown is what the sensor decided, for this pair only.
#include "app/explain.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "alert/json.h"
#include "app/analysis.h"
#include "capture/pcap_source.h"
#include "dns/registered_domain.h"
#include "engine/engine.h"
#include "rules/rule.h"
#include "score/reasons.h"

namespace exfilwatch::app {

namespace {

struct Verdict {
  std::string file;
  uint64_t frame = 0;
  Timestamp ts;
  uint32_t signature_id = 0;
  std::string signature;
  std::string name;
  std::string reasons;
  bool held_back = false;  // a repeat within alert_suppress_seconds: not written
};

struct AllowedBy {
  std::string rule;
  uint64_t names = 0;
  std::string sample;
};

// Keeps the asked pair's names and verdicts of the packet being processed.
class PairObserver final : public EngineObserver {
 public:
  PairObserver(const IpAddress& client, std::string domain, const IpAddress& server, uint16_t port,
               bool tls)
      : client_(client), domain_(std::move(domain)), server_(server), port_(port), tls_(tls) {}

  void onName(const Name& n) override {
    if (tls_ || !(n.client == client_)) return;
    const std::string_view pair = n.registered_domain.empty() ? n.name : n.registered_domain;
    if (!domain_.empty() && domain_[0] == '@') {
      // A pair named after its server: names with no registered domain sent to it.
      const IpAddress& server = n.response ? n.pkt.src : n.pkt.dst;
      if (!n.registered_domain.empty() || domain_.compare(1, std::string::npos, server.toString()))
        return;
    } else if (pair != domain_) {
      if (n.response) return;
      std::string other = printable(pair);
      if (other_domains.size() < kMaxOtherDomains || other_domains.count(other))
        ++other_domains[std::move(other)];
      return;
    }
    seen = true;
    names.push_back({printable(n.name), n.response, n.allowed_by ? n.allowed_by->id : 0u});
    if (n.allowed_by && !n.response) {
      AllowedBy& a = allowed[n.allowed_by->id];
      a.rule = n.allowed_by->name;
      ++a.names;
      if (a.sample.empty()) a.sample = printable(n.name);
    }
  }

  void onAlert(const AlertEvent& e) override {
    if (!(e.client == client_)) return;
    if (tls_) {
      if (!e.domain.empty() || !e.name.empty() || !(e.server == server_) || e.server_port != port_)
        return;
    } else if (e.domain != domain_) {
      return;
    }
    seen = true;
    pending.push_back({file, e.frame, e.pkt.ts, e.alert.signature_id, e.alert.signature,
                       printable(e.name), e.alert.reasons, e.suppressed});
  }

  struct NameSeen {
    std::string name;
    bool response;
    uint32_t allowed_by;
  };
  static constexpr std::size_t kMaxOtherDomains = 4096;
  std::string file;
  bool seen = false;
  std::vector<NameSeen> names;   // this packet's
  std::vector<Verdict> pending;  // this packet's
  std::map<uint32_t, AllowedBy> allowed;
  std::map<std::string, uint64_t> other_domains;  // the client's other pairs (for the hint)

 private:
  IpAddress client_;
  std::string domain_;
  IpAddress server_;
  uint16_t port_;
  bool tls_;
};

std::string verdictText(const std::vector<Verdict>& pending, std::size_t first) {
  std::string out;
  for (std::size_t i = first; i < pending.size(); ++i) {
    const Verdict& v = pending[i];
    if (!out.empty()) out += "; ";
    out += v.held_back ? "repeat held back: " : "ALERT ";
    out += std::to_string(v.signature_id) + ' ' + v.signature;
  }
  return out.empty() ? "-" : out;
}

void printJson(const ExplainOptions& o, const std::string& domain, const PairObserver& obs,
               const std::vector<Verdict>& verdicts, uint64_t queries) {
  JsonWriter w;
  w.openObject();
  w.openObject("pair");
  w.string("client", o.client);
  if (o.dest.empty())
    w.string("domain", domain);
  else
    w.string("destination", o.dest);
  w.closeObject();
  w.boolean("found", obs.seen);
  w.uint("queries", queries);
  w.openArray("allowed");
  for (const auto& [id, a] : obs.allowed) {
    w.openObject();
    w.uint("rule_id", id);
    w.string("rule", a.rule);
    w.uint("names", a.names);
    w.string("sample", a.sample);
    w.closeObject();
  }
  w.closeArray();
  w.openArray("verdicts");
  for (const auto& v : verdicts) {
    w.openObject();
    w.string("file", v.file);
    w.uint("pcap_cnt", v.frame);
    w.string("time", isoTime(v.ts));
    w.uint("signature_id", v.signature_id);
    w.string("signature", v.signature);
    w.boolean("held_back", v.held_back);
    if (!v.name.empty()) w.string("name", v.name);
    w.string("reasons", v.reasons);
    w.closeObject();
  }
  w.closeArray();
  w.closeObject();
  std::printf("%s\n", w.text().c_str());
}

}  // namespace

int runExplain(ExplainOptions o) {
  IpAddress client, dest;
  uint16_t dest_port = 0;
  const bool tls = !o.dest.empty();
  if (!IpAddress::parse(o.client, client)) {
    std::fprintf(stderr, "exfilwatch explain: --client %s is not an IP address\n",
                 o.client.c_str());
    return 2;
  }
  if (tls) {
    const auto colon = o.dest.rfind(':');
    const std::string port = colon == std::string::npos ? "" : o.dest.substr(colon + 1);
    const bool digits = !port.empty() && port.size() <= 5 &&
                        port.find_first_not_of("0123456789") == std::string::npos;
    const unsigned long p = digits ? std::strtoul(port.c_str(), nullptr, 10) : 0;
    if (colon == std::string::npos || !IpAddress::parse(o.dest.substr(0, colon), dest) || p == 0 ||
        p > 65535) {
      std::fprintf(stderr, "exfilwatch explain: --dest %s is not IP:PORT (port 1-65535)\n",
                   o.dest.c_str());
      return 2;
    }
    dest_port = static_cast<uint16_t>(p);
  }

  ControlPlanePtr plane;
  std::unique_ptr<Engine> engine;
  struct NullSink final : EveSink {
    void write(std::string_view) override {}
    void flush() override {}
  } sink;
  std::string domain = o.domain;
  try {
    plane = analystPlane(o.config_path, o.sets, "", false);
    engine = std::make_unique<Engine>(plane, sink);
    if (!tls) {
      for (auto& c : domain) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      while (!domain.empty() && domain.back() == '.') domain.pop_back();
      if (!domain.empty() && domain[0] != '@') {
        // A name under the domain is explained as the pair it counts in.
        dns::RegisteredDomain registered(plane->config.public_suffix_list);
        const std::string r(registered.lookup(domain));
        if (!r.empty() && r != domain) {
          if (!o.json)
            std::printf("# %s counts under its registered domain %s\n", domain.c_str(), r.c_str());
          domain = r;
        }
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exfilwatch: %s\n", e.what());
    return 2;
  }
  if (!tls && domain.empty()) {
    std::fprintf(stderr, "exfilwatch explain: --domain is empty\n");
    return 2;
  }

  PairObserver obs(client, domain, dest, dest_port, tls);
  engine->setObserver(&obs);
  const auto& ds = engine->dnsScorer();
  const auto& dc = ds.config();
  const auto& tt = engine->tlsTracker();
  const auto& tc = tt.config();
  std::string wn[score::kWindows];
  for (int i = 0; i < score::kWindows; ++i) wn[i] = score::windowName(dc.windows[i]);
  const uint64_t key = tls ? tt.pairKey(client, dest, dest_port) : ds.pairKey(client, domain);
  const bool text = !o.json;
  // The header goes out with the first row: a pair not in the captures
  // gets a message, not an empty table.
  bool header_printed = false;
  auto header = [&]() {
    if (header_printed || !text) return;
    header_printed = true;
    if (tls) {
      std::printf("# pair client=%s destination=%s\n", o.client.c_str(), o.dest.c_str());
      std::printf(
          "# thresholds: bulk: upload_%s >= %llu with up/down >= %.1f; drip: upload_flows_%s >= %u"
          " (flow up >= %u B) and upload_%s >= %llu with up/down >= %.1f; alert at score >= 1\n",
          wn[1].c_str(), static_cast<unsigned long long>(tc.bulk_upload_bytes), tc.upload_ratio,
          wn[2].c_str(), tc.drip_flows, tc.drip_flow_min_bytes, wn[2].c_str(),
          static_cast<unsigned long long>(tc.drip_upload_bytes), tc.upload_ratio);
      std::printf(
          "time\tpkt\tup_%s\tdown_%s\tup_%s\tdown_%s\tflows_%s\tupload_flows_%s\tbulk\tdrip\tscore"
          "\tverdict\n",
          wn[1].c_str(), wn[1].c_str(), wn[2].c_str(), wn[2].c_str(), wn[2].c_str(), wn[2].c_str());
    } else {
      std::printf("# pair client=%s domain=%s; rules: %zu loaded (%s)\n", o.client.c_str(),
                  domain.c_str(), plane->rules ? plane->rules->size() : 0,
                  plane->rules ? "allow list and signatures in force" : "rules off");
      std::printf(
          "# thresholds: info_bytes %u/%u/%u (%s/%s/%s) x%.2f, unique_subdomains_%s %u x%.2f,"
          " answer_bytes_%s %u x%.2f, lexical_hits_%s %u x%.2f (model >= %.2f bits/char, label >= "
          "%u), types x%.2f (>= %u queries), rules x%.2f; alert at score >= %.2f; suppress %u s\n",
          dc.info_bytes[0], dc.info_bytes[1], dc.info_bytes[2], wn[0].c_str(), wn[1].c_str(),
          wn[2].c_str(), dc.weight_info, wn[1].c_str(), dc.unique_subdomains, dc.weight_unique,
          wn[1].c_str(), dc.answer_bytes, dc.weight_answer, wn[1].c_str(), dc.lexical_hits,
          dc.weight_lexical, dc.model_bits_per_char, dc.model_min_label, dc.weight_types,
          dc.risky_types_min_queries, dc.weight_rules, dc.alert_score,
          plane->config.alert_suppress_seconds);
      std::printf(
          "time\tpkt\tqueries\tinfo_%s\tinfo_%s\tinfo_%s\tunique_%s\tdistinct"
          "\tqueries_%s\tnxdomain_%s\tanswer_%s\trisky_%s\tlexical_%s\tentropy_p90\tc_info\tc_"
          "unique\tc_answer\tc_lexical"
          "\tc_types\tc_rules\tscore\tverdict\tname\n",
          wn[0].c_str(), wn[1].c_str(), wn[2].c_str(), wn[1].c_str(), wn[1].c_str(), wn[1].c_str(),
          wn[1].c_str(), wn[1].c_str(), wn[1].c_str());
    }
  };
  std::vector<Verdict> verdicts;
  uint64_t queries = 0;
  double last_up = -1;
  bool status_ok = true;
  for (const auto& path : o.pcaps) {
    std::string error;
    auto source = PcapSource::open(path, error);
    if (!source) {
      std::fprintf(stderr, "exfilwatch explain: %s\n", error.c_str());
      status_ok = false;
      continue;
    }
    obs.file = path;
    Frame frame;
    uint64_t n = 0;
    while (source->next(frame)) {
      obs.names.clear();
      obs.pending.clear();
      engine->process(frame, ++n);
      const uint32_t now = static_cast<uint32_t>(frame.ts.sec);
      for (const auto& v : obs.pending) verdicts.push_back(v);
      if (tls) {
        score::TlsFeatures f;
        if (!tt.features(key, now, f)) continue;
        obs.seen = true;
        const double up = f.w[1].up;
        const bool alerted = !obs.pending.empty();
        if (!o.all && !alerted && last_up >= 0 && up < last_up * 1.01 + 1 && up >= last_up)
          continue;
        last_up = up;
        if (!text) continue;
        header();
        std::printf("%s\t%llu\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t%.1f\t%.2f\t%.2f\t%.2f\t%s\n",
                    isoTime(frame.ts).c_str(), static_cast<unsigned long long>(n), f.w[1].up,
                    f.w[1].down, f.w[2].up, f.w[2].down, f.w[2].flows, f.w[2].upload_flows, f.bulk,
                    f.drip, f.score, verdictText(obs.pending, 0).c_str());
        for (const auto& v : obs.pending) {
          if (!v.held_back) std::printf("#   reasons: %s\n", v.reasons.c_str());
        }
        continue;
      }
      // DNS: one row per name of the pair in this packet (responses with --all).
      for (const auto& nm : obs.names) {
        if (!nm.response) ++queries;
      }
      if (!text) continue;
      bool verdict_printed = false;
      for (std::size_t i = 0; i < obs.names.size(); ++i) {
        const auto& nm = obs.names[i];
        if (nm.response && !o.all && obs.pending.empty()) continue;
        std::string verdict;
        if (nm.allowed_by) {
          verdict = "allowed by rule " + std::to_string(nm.allowed_by) + " (" +
                    obs.allowed[nm.allowed_by].rule + ")";
        } else if (!verdict_printed) {
          verdict = verdictText(obs.pending, 0);
          verdict_printed = true;
        } else {
          verdict = "-";
        }
        const std::string ts = isoTime(frame.ts);
        header();
        score::DnsFeatures f;
        if (nm.allowed_by || !ds.features(key, now, f)) {
          // No scorer state: the allow rule took the name before scoring.
          std::printf("%s\t%llu\t%s\t%s\t%s\n", ts.c_str(), static_cast<unsigned long long>(n),
                      "-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-", verdict.c_str(),
                      nm.name.c_str());
          continue;
        }
        std::printf(
            "%s\t%llu\t%u\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f"
            "\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%s\n",
            ts.c_str(), static_cast<unsigned long long>(n), f.queries_total, f.w[0].info_bytes,
            f.w[1].info_bytes, f.w[2].info_bytes, f.w[1].unique, f.distinct, f.w[1].queries,
            f.w[1].nxdomain, f.w[1].answer_bytes, f.w[1].risky, f.w[1].lexical, f.entropy_p90,
            f.c_info, f.c_unique, f.c_answer, f.c_lexical, f.c_types, f.c_rules, f.score,
            verdict.c_str(), nm.name.c_str());
      }
      if (!verdict_printed && !obs.pending.empty()) {
        // A verdict on a packet none of whose names is shown (a response).
        header();
        std::printf("%s\t%llu\t%s\t%s\t%s\n", isoTime(frame.ts).c_str(),
                    static_cast<unsigned long long>(n),
                    "-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-",
                    verdictText(obs.pending, 0).c_str(), obs.pending.front().name.c_str());
      }
      for (const auto& v : obs.pending) {
        if (!v.held_back) std::printf("#   reasons: %s\n", v.reasons.c_str());
      }
    }
  }

  uint64_t written = 0, held = 0;
  for (const auto& v : verdicts) ++(v.held_back ? held : written);
  if (o.json) {
    printJson(o, domain, obs, verdicts, queries);
  } else if (obs.seen) {
    header();
    if (tls) {
      std::printf("# %llu verdict(s) for this pair\n", static_cast<unsigned long long>(written));
    } else {
      std::printf("# %llu verdict(s) for this pair, %llu repeat(s) held back; %llu queries\n",
                  static_cast<unsigned long long>(written), static_cast<unsigned long long>(held),
                  static_cast<unsigned long long>(queries));
      for (const auto& [id, a] : obs.allowed) {
        std::printf("# allowed: %llu name(s) by rule %u (%s), e.g. %s: no scoring, no alert\n",
                    static_cast<unsigned long long>(a.names), id, a.rule.c_str(), a.sample.c_str());
      }
    }
  }
  if (!obs.seen) {
    if (tls) {
      std::fprintf(stderr,
                   "exfilwatch explain: no TLS traffic between %s and %s in the capture(s)\n",
                   o.client.c_str(), o.dest.c_str());
    } else {
      std::fprintf(stderr,
                   "exfilwatch explain: client %s sent no name under %s in the capture(s)\n",
                   o.client.c_str(), domain.c_str());
      if (!obs.other_domains.empty()) {
        std::vector<std::pair<uint64_t, std::string>> top;
        for (const auto& [d, c] : obs.other_domains) top.emplace_back(c, d);
        std::sort(top.rbegin(), top.rend());
        std::string list;
        for (std::size_t i = 0; i < top.size() && i < 5; ++i) {
          list += (i ? ", " : "") + top[i].second + " (" + std::to_string(top[i].first) + ")";
        }
        std::fprintf(stderr, "  its busiest domains: %s\n", list.c_str());
      } else {
        std::fprintf(stderr, "  no DNS name from this client at all\n");
      }
    }
    return 1;
  }
  return status_ok ? 0 : 1;
}

}  // namespace exfilwatch::app
