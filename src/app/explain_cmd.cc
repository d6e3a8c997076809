// explain_cmd.cc: `exfilwatch explain`'s command line; the logic is in
// explain.cc (runExplain).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "app/cli.h"
#include "app/commands.h"
#include "app/explain.h"

namespace exfilwatch::app {

int explainCommand(int argc, char** argv) {
  ExplainOptions o;
  Command app("explain",
              "Feature timeline and verdicts for one (client, domain) or "
              "(client, destination) pair.");
  engine::ConfigSource source;
  addConfigOptions(app, source);
  app.add_option("--client", o.client, "the client's IP address")->type_name("IP")->required();
  auto* by_domain = app.add_option("--domain", o.domain,
                                   "the pair's domain, or any name under it, or @SERVER (DNS)")
                        ->type_name("NAME");
  auto* by_dest = app.add_option("--dest", o.dest, "the destination (TLS)")
                      ->type_name("IP:PORT")
                      ->excludes(by_domain);
  app.add_flag("--all", o.all, "every packet of the pair (TLS: every segment; DNS: responses too)");
  app.add_flag("--json", o.json, "one JSON object: the pair, its verdicts, its allowed names");
  app.add_option("PCAP", o.pcaps, "capture files")->required();
  if (const int status = parse(app, argc, argv); status >= 0) return status;
  if (by_domain->count() + by_dest->count() != 1) {
    std::fprintf(stderr, "exfilwatch explain: give --domain NAME or --dest IP:PORT\n");
    return 2;
  }
  // The port's range in the parser's words; the address is runExplain's.
  if (const auto colon = o.dest.rfind(':'); !o.dest.empty() && colon != std::string::npos) {
    try {
      parseUnsigned("--dest", o.dest.substr(colon + 1), 1, 65535);
    } catch (const CLI::ValidationError& e) {
      std::fprintf(stderr, "exfilwatch explain: %s\n", e.what());
      return 2;
    }
  }
  o.config_path = source.path;
  o.sets = source.sets;
  return runExplain(std::move(o));
}

}  // namespace exfilwatch::app
