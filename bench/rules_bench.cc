// rules_bench.cc: what the rule engine costs per DNS name. Loads the shipped
// rules (rules/) alone, then with 10,000 generated domain literals added (a
// blocklist-sized set, written as a rule file so the loader is exercised at
// that size too), and reports side by side:
//   - a loop that only walks the same names (touches every byte), the floor;
//   - the per-worker Matcher (begin + dns.qname + dns.qname.raw scans), the
//     way Engine::detect() runs it per question;
// in ns per name, plus compile time, cache store and cache-hit load time.
// Names: ../shared/corpus/names (tunnel and benign), lower-cased.
//
// usage: rules_bench [RULES_DIR] [NAMES_DIR] [PASSES]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "build_config.h"
#include "rules/loader.h"
#include "rules/matcher.h"

namespace fs = std::filesystem;
using namespace exfilwatch::rules;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<std::string> loadNames(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    if (e.path().filename() != "names.csv") continue;
    std::ifstream in(e.path());
    std::string line;
    while (std::getline(in, line)) {
      const auto comma = line.find(',');
      if (comma == std::string::npos || line.rfind("label", 0) == 0) continue;
      std::string n = line.substr(comma + 1);
      if (!n.empty() && n.back() == '.') n.pop_back();
      for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!n.empty()) names.push_back(std::move(n));
    }
  }
  if (names.empty()) {  // no corpus: generated names of the same flavour
    std::mt19937 rng(7);
    for (int i = 0; i < 30000; ++i) {
      std::string n;
      const int len = 4 + static_cast<int>(rng() % 40);
      for (int j = 0; j < len; ++j) n += "abcdefghijklmnopqrstuvwxyz0123456789"[rng() % 36];
      names.push_back(n + ".example.com");
    }
  }
  return names;
}

// 10,000 distinct registrable-looking domains, one literal rule each.
std::string blocklistYaml(std::size_t count) {
  static const char* tlds[] = {"com", "net", "org", "info", "xyz", "top", "ru", "cn", "io", "biz"};
  std::mt19937 rng(42);
  std::string out = "rules:\n";
  for (std::size_t i = 0; i < count; ++i) {
    std::string label;
    const int len = 6 + static_cast<int>(rng() % 12);
    for (int j = 0; j < len; ++j) label += static_cast<char>('a' + rng() % 26);
    out += "  - {id: " + std::to_string(5000000 + i) + ", name: 'blocklist " + std::to_string(i) +
           "', field: dns.qname, literal: " + label + std::to_string(i) + "." + tlds[rng() % 10] +
           ", anchor: domain, severity: 2}\n";
  }
  return out;
}

double ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// ns per name of the walk-only floor.
double walkOnly(const std::vector<std::string>& names, int passes, uint64_t& sink) {
  const auto start = Clock::now();
  for (int p = 0; p < passes; ++p) {
    for (const auto& n : names) {
      uint64_t h = n.size();
      for (unsigned char c : n) h = h * 31 + c;
      sink += h;
    }
  }
  return ms(start, Clock::now()) * 1e6 / (static_cast<double>(names.size()) * passes);
}

double matchAll(const RuleSetPtr& set, const std::vector<std::string>& names, int passes,
                uint64_t& hits) {
  Matcher m;
  if (!m.adopt(set)) return -1;
  MatchContext ctx;
  ctx.qtype = 1;
  const auto start = Clock::now();
  for (int p = 0; p < passes; ++p) {
    for (const auto& n : names) {
      m.begin(ctx);
      m.scan(Field::DnsQname, n);
      m.scan(Field::DnsQnameRaw, n);
      hits += m.hitCount();
    }
  }
  return ms(start, Clock::now()) * 1e6 / (static_cast<double>(names.size()) * passes);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string rules_dir = argc > 1 && *argv[1] ? argv[1] : std::string(EXFILWATCH_SOURCE_DIR) + "/rules";
  const std::string names_dir =
      argc > 2 && *argv[2] ? argv[2] : std::string(EXFILWATCH_SOURCE_DIR) + "/../shared/corpus/names";
  const int passes = argc > 3 ? std::atoi(argv[3]) : 20;

  const auto names = loadNames(names_dir);
  std::size_t bytes = 0;
  for (const auto& n : names) bytes += n.size();
  std::printf("names: %zu (avg %.1f bytes), %d passes\n", names.size(),
              static_cast<double>(bytes) / static_cast<double>(names.size()), passes);

  // The large set: the shipped files plus a generated blocklist file.
  const fs::path work = fs::temp_directory_path() / ("exfilwatch-rules-bench-" + std::to_string(::getpid()));
  fs::remove_all(work);
  fs::create_directories(work / "rules");
  for (const auto& e : fs::directory_iterator(rules_dir)) {
    if (e.path().extension() == ".yaml") fs::copy_file(e.path(), work / "rules" / e.path().filename());
  }
  std::ofstream(work / "rules" / "zz-blocklist.yaml") << blocklistYaml(10000);

  uint64_t sink = 0, hits = 0;
  BuildInfo small_info;
  const RuleSetPtr small = RuleSet::loadDirectory(rules_dir, BuildOptions{}, &small_info);
  BuildOptions cached;
  cached.cache_dir = (work / "cache").string();
  BuildInfo big_info;
  const RuleSetPtr big = RuleSet::loadDirectory((work / "rules").string(), cached, &big_info);

  // Three rounds, interleaved, best of each: the machine is shared (CI,
  // other builds), and the minimum is the least disturbed figure.
  double walk = 1e18, small_ns = 1e18, big_ns = 1e18;
  for (int round = 0; round < 3; ++round) {
    walk = std::min(walk, walkOnly(names, passes, sink));
    small_ns = std::min(small_ns, matchAll(small, names, passes, hits));
    big_ns = std::min(big_ns, matchAll(big, names, passes, hits));
  }
  BuildInfo hit_info;
  const auto hit_start = Clock::now();
  const RuleSetPtr again = RuleSet::loadDirectory((work / "rules").string(), cached, &hit_info);
  const double hit_total = ms(hit_start, Clock::now());

  std::printf("%-34s %10s %12s %12s %10s\n", "", "ns/name", "compile ms", "db bytes", "rules");
  std::printf("%-34s %10.1f %12s %12s %10s\n", "walk names only (floor)", walk, "-", "-", "-");
  std::printf("%-34s %10.1f %12.1f %12zu %10zu\n", "default rules", small_ns, small_info.compile_ms,
              small_info.database_bytes, small_info.enabled);
  std::printf("%-34s %10.1f %12.1f %12zu %10zu\n", "default + 10,000 domain literals", big_ns,
              big_info.compile_ms, big_info.database_bytes, big_info.enabled);
  std::printf("large set: parse %.1f ms, compile %.1f ms, cache %s; restart with the cache: %s, "
              "%.1f ms total (parse %.1f ms + cache load %.1f ms)\n",
              big_info.load_ms, big_info.compile_ms, big_info.cache.c_str(), hit_info.cache.c_str(),
              hit_total, hit_info.load_ms, hit_info.cache_load_ms);
  std::printf("(checksum %llu, hits %llu)\n", static_cast<unsigned long long>(sink % 1000),
              static_cast<unsigned long long>(hits));
  fs::remove_all(work);
  return again ? 0 : 1;
}
