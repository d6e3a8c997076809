// commands.h: the subcommands of the exfilwatch CLI.
#pragma once

namespace exfilwatch::app {

int replayCommand(int argc, char** argv);   // argv[0] == "replay"
int rulesCommand(int argc, char** argv);    // argv[0] == "rules": check | test | list
int runCommand(int argc, char** argv);      // argv[0] == "run": the live sensor
int mirrorCommand(int argc, char** argv);   // argv[0] == "mirror": pcap -> VXLAN datagrams
int modelCommand(int argc, char** argv);    // argv[0] == "model": train the n-gram model
int explainCommand(int argc, char** argv);  // argv[0] == "explain": one pair's feature timeline
int checkCommand(int argc, char** argv);    // argv[0] == "check": validate as a start would
int configCommand(int argc, char** argv);   // argv[0] == "config": defaults, effective, reference

}  // namespace exfilwatch::app
