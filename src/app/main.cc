// main.cc: the exfilwatch command line: dispatches to the subcommands.
#include <cstdio>
#include <cstring>
#include <string>

#include "app/commands.h"
#include "build_config.h"

namespace {
void usage() {
  std::fprintf(stderr,
               "exfilwatch %s: DNS tunneling and exfiltration detection for mirrored traffic\n"
               "\n"
               "usage: exfilwatch COMMAND [ARGS]\n"
               "  replay [--config FILE] [--eve FILE] [--dns-log] PCAP...\n"
               "                 run captures through the detection path, EVE JSON out\n"
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
  if (command == "version" || command == "--version") {
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
