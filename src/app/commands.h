// commands.h: the subcommands of the exfilwatch CLI.
#pragma once

namespace exfilwatch::app {

int replayCommand(int argc, char** argv);  // argv[0] == "replay"

}  // namespace exfilwatch::app
