// explain_cmd.cc: `exfilwatch explain`'s command line; the logic is in
// explain.cc (runExplain).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "app/commands.h"
#include "app/explain.h"

namespace exfilwatch::app {

namespace {
void usage() {
  std::fprintf(stderr,
               "usage: exfilwatch explain [--config FILE] [--all] [--json] PCAP... --client IP\n"
               "                          (--domain NAME | --dest IP:PORT)\n"
               "  runs the captures through the sensor's pipeline (rules and allow list\n"
               "  loaded) and explains one pair: one row per query of the pair (its name,\n"
               "  features, score and verdict; names an allow rule took say which rule),\n"
               "  TLS: per upload segment that moves a window by 1%% or more\n"
               "  --domain NAME    the pair's domain, or any name under it\n"
               "  --dest IP:PORT   a TLS pair's server\n"
               "  --all            every packet of the pair (DNS: responses too)\n"
               "  --json           one JSON object: the pair, its verdicts, its allowed names\n"
               "  exit status: 0 pair found, 1 pair not in the captures, 2 usage error\n");
}
}  // namespace

int explainCommand(int argc, char** argv) {
  ExplainOptions o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "exfilwatch explain: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--config")
      o.config_path = value();
    else if (a == "--client")
      o.client = value();
    else if (a == "--domain")
      o.domain = value();
    else if (a == "--dest")
      o.dest = value();
    else if (a == "--all")
      o.all = true;
    else if (a == "--json")
      o.json = true;
    else if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "exfilwatch explain: unknown option %s\n", a.c_str());
      usage();
      return 2;
    } else
      o.pcaps.push_back(a);
  }
  if (o.pcaps.empty() || o.client.empty() || o.domain.empty() == o.dest.empty()) {
    usage();
    return 2;
  }
  return runExplain(std::move(o));
}

}  // namespace exfilwatch::app
