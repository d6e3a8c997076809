// rules_diff.cc: `exfilwatch rules diff OLD_DIR NEW_DIR PCAP...`. How an
// analyst checks a tuning change before reloading the sensor: the same
// captures run through two engines built as replay builds them, one per rules
// directory, and their alerts are compared one by one (capture, packet,
// signature, pair, name).
#include "app/rules_diff.h"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <map>
#include <memory>

#include "alert/json.h"
#include "rules/matcher.h"

namespace exfilwatch::app {

namespace {

struct NullSink final : EveSink {
  void write(std::string_view) override {}
  void flush() override {}
};

struct Run {
  std::vector<AlertRecord> alerts;  // sorted
  std::size_t rules = 0;
  bool ok = true;
};

Run runWith(const ControlPlanePtr& plane, const std::vector<std::string>& pcaps,
            const char* command) {
  Run run;
  NullSink sink;
  Engine engine(plane, sink);
  AlertCollector collector;
  engine.setObserver(&collector);
  run.ok = runCaptures(engine, pcaps, &collector, command);
  run.alerts = std::move(collector.alerts);
  std::sort(run.alerts.begin(), run.alerts.end());
  run.rules = plane->rules ? plane->rules->size() : 0;
  return run;
}

using Verdict = std::map<uint32_t, uint64_t>;  // signature id -> alerts

std::map<std::string, Verdict> byPair(const std::vector<AlertRecord>& alerts) {
  std::map<std::string, Verdict> out;
  for (const auto& a : alerts) ++out[a.pair()][a.signature_id];
  return out;
}

std::string verdictText(const Verdict& v) {
  if (v.empty()) return "no alert";
  std::string out;
  for (const auto& [sid, n] : v) {
    if (!out.empty()) out += ", ";
    out += std::to_string(sid) + " x" + std::to_string(n);
  }
  return out;
}

void printAlert(char sign, const AlertRecord& a) {
  std::printf("%c %s  %s:%llu  %u %s  %s%s%s\n", sign, isoTime(a.ts).c_str(), a.file.c_str(),
              static_cast<unsigned long long>(a.frame), a.signature_id, a.signature.c_str(),
              a.pair().c_str(), a.name.empty() ? "" : "  ", a.name.c_str());
}

void jsonAlert(JsonWriter& w, const AlertRecord& a) {
  w.openObject();
  w.string("file", a.file);
  w.uint("pcap_cnt", a.frame);
  w.string("time", isoTime(a.ts));
  w.uint("signature_id", a.signature_id);
  w.string("signature", a.signature);
  w.string("client", a.client);
  if (a.tls) {
    w.string("server", a.server);
  } else {
    w.string("domain", a.domain);
    w.string("name", a.name);
  }
  w.closeObject();
}

void jsonVerdict(JsonWriter& w, std::string_view key, const Verdict& v) {
  w.openObject(key);
  for (const auto& [sid, n] : v) w.uint(std::to_string(sid), n);
  w.closeObject();
}

}  // namespace

std::vector<AlertRecord> alertsMinus(const std::vector<AlertRecord>& a,
                                     const std::vector<AlertRecord>& b) {
  std::vector<AlertRecord> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

std::vector<AlertRecord> alertsWithoutAllowRules(const ControlPlanePtr& plane,
                                                 const std::vector<std::string>& pcaps) {
  if (!plane->rules) return {};
  std::vector<rules::Rule> list = plane->rules->rules();
  for (auto& r : list) {
    if (r.action == rules::Action::Allow) r.enabled = false;
  }
  auto shadow = std::make_shared<ControlPlane>(*plane);
  shadow->rules = rules::RuleSet::build(std::move(list), "", rules::BuildOptions{});
  return runWith(shadow, pcaps, "rules test").alerts;
}

int runRulesDiff(const RulesDiffOptions& o) {
  Run old_run, new_run;
  try {
    old_run =
        runWith(analystPlane(o.config_path, o.sets, o.old_dir, o.no_cache), o.pcaps, "rules diff");
    new_run =
        runWith(analystPlane(o.config_path, o.sets, o.new_dir, o.no_cache), o.pcaps, "rules diff");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exfilwatch rules diff: %s\n", e.what());
    return 2;
  }
  if (!old_run.ok || !new_run.ok) return 2;
  const auto removed = alertsMinus(old_run.alerts, new_run.alerts);
  const auto added = alertsMinus(new_run.alerts, old_run.alerts);
  const auto old_pairs = byPair(old_run.alerts), new_pairs = byPair(new_run.alerts);
  std::map<std::string, std::pair<Verdict, Verdict>> changed;
  for (const auto& [pair, v] : old_pairs) {
    const auto it = new_pairs.find(pair);
    if (it == new_pairs.end() || it->second != v)
      changed[pair] = {v, it == new_pairs.end() ? Verdict{} : it->second};
  }
  for (const auto& [pair, v] : new_pairs) {
    if (!old_pairs.count(pair)) changed[pair] = {Verdict{}, v};
  }

  if (o.json) {
    JsonWriter w;
    w.openObject();
    w.openObject("old");
    w.string("rules_directory", o.old_dir);
    w.uint("rules", old_run.rules);
    w.uint("alerts", old_run.alerts.size());
    w.closeObject();
    w.openObject("new");
    w.string("rules_directory", o.new_dir);
    w.uint("rules", new_run.rules);
    w.uint("alerts", new_run.alerts.size());
    w.closeObject();
    w.openArray("added");
    for (const auto& a : added) jsonAlert(w, a);
    w.closeArray();
    w.openArray("removed");
    for (const auto& a : removed) jsonAlert(w, a);
    w.closeArray();
    w.openArray("changed_pairs");
    for (const auto& [pair, v] : changed) {
      w.openObject();
      w.string("pair", pair);
      jsonVerdict(w, "old", v.first);
      jsonVerdict(w, "new", v.second);
      w.closeObject();
    }
    w.closeArray();
    w.closeObject();
    std::printf("%s\n", w.text().c_str());
  } else {
    std::printf(
        "rules diff on %zu capture(s): %s (%zu rules): %zu alerts; %s (%zu rules): %zu alerts\n",
        o.pcaps.size(), o.old_dir.c_str(), old_run.rules, old_run.alerts.size(), o.new_dir.c_str(),
        new_run.rules, new_run.alerts.size());
    std::printf("%zu alert(s) added, %zu removed, %zu pair(s) changed verdict\n", added.size(),
                removed.size(), changed.size());
    for (const auto& a : added) printAlert('+', a);
    for (const auto& a : removed) printAlert('-', a);
    if (!changed.empty()) std::printf("pairs whose verdict changed:\n");
    for (const auto& [pair, v] : changed) {
      std::printf("  %s: %s -> %s\n", pair.c_str(), verdictText(v.first).c_str(),
                  verdictText(v.second).c_str());
    }
  }
  return added.empty() && removed.empty() ? 0 : 1;
}

}  // namespace exfilwatch::app
