// main.cc: the exfilwatch command line: dispatches to the subcommands.
#include <cstdio>
#include <cstring>
#include <string>

#include "app/cli.h"
#include "app/commands.h"
#include "build_config.h"

namespace {
void usage() {
  std::fprintf(stderr,
               "exfilwatch %s: DNS tunneling and exfiltration detection for mirrored traffic\n"
               "\n"
               "usage: exfilwatch COMMAND [ARGS]\n"
               "  replay [--config FILE] [--set KEY=VALUE] [--eve FILE] [--dns-log] PCAP|DIR...\n"
               "                 run captures through the detection path, EVE JSON out\n"
               "  run [--config FILE] [--set KEY=VALUE] [--eve FILE] [--stats-interval N]\n"
               "                 the live sensor: VXLAN/GENEVE over UDP, NLB health checks\n"
               "  check [--config FILE] [--set KEY=VALUE]\n"
               "                 load and validate everything a start would; exit 0 or 2\n"
               "  config --defaults | --reference | [--config FILE] [--set KEY=VALUE]\n"
               "                 print the default, the effective configuration, or its reference\n"
               "  mirror PCAP... --to HOST:PORT [--vni N] [--pps N] [--loop N]\n"
               "                 send captures as a traffic-mirror session would\n"
               "  rules check|test|list [DIR] [PCAP...]\n"
               "                 validate, try out and list the analyst rules\n"
               "  rules diff OLD_DIR NEW_DIR PCAP...\n"
               "                 alerts a rule change adds and removes on captures\n"
               "  model train --out FILE NAMES-or-PCAP...\n"
               "                 train the benign-name n-gram model (models/README.md)\n"
               "  explain PCAP... --client IP (--domain NAME | --dest IP:PORT)\n"
               "                 one pair's features and verdicts, as the sensor decides them\n"
               "  version        print the version\n"
               "\n"
               "exfilwatch COMMAND --help for a command's options.\n",
               EXFILWATCH_VERSION);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage();
    return 2;
  }
  const std::string command = argv[1];
  if (command == "replay") return exfilwatch::app::replayCommand(argc - 1, argv + 1);
  if (command == "run") return exfilwatch::app::runCommand(argc - 1, argv + 1);
  if (command == "mirror") return exfilwatch::app::mirrorCommand(argc - 1, argv + 1);
  if (command == "rules") return exfilwatch::app::rulesCommand(argc - 1, argv + 1);
  if (command == "model") return exfilwatch::app::modelCommand(argc - 1, argv + 1);
  if (command == "explain") return exfilwatch::app::explainCommand(argc - 1, argv + 1);
  if (command == "check") return exfilwatch::app::checkCommand(argc - 1, argv + 1);
  if (command == "config") return exfilwatch::app::configCommand(argc - 1, argv + 1);
  if (command == "version" || command == "--version") {
    exfilwatch::app::Command app("version", "Print the version.");
    if (const int status = exfilwatch::app::parse(app, argc - 1, argv + 1); status >= 0) {
      return status;
    }
    std::printf("exfilwatch %s\n", EXFILWATCH_VERSION);
    return 0;
  }
  if (command == "help" || command == "--help" || command == "-h") {
    usage();
    return 0;
  }
  std::fprintf(stderr, "exfilwatch: unknown command '%s'\n\n", command.c_str());
  usage();
  return 2;
}
