// explain.h: `exfilwatch explain`'s logic, apart from its argument parsing.
#pragma once

#include <string>
#include <vector>

namespace exfilwatch::app {

struct ExplainOptions {
  std::string config_path;        // "" = defaults
  std::vector<std::string> sets;  // --set KEY=VALUE
  std::vector<std::string> pcaps;
  std::string client;  // the pair's client address
  std::string domain;  // DNS pair: its domain, or any name under it, or "@SERVER"
  std::string dest;    // TLS pair: "IP:PORT" of the server (instead of domain)
  bool all = false;    // a row per packet of the pair (TLS: every segment; DNS: responses too)
  bool json = false;   // one JSON object: the pair, its verdicts, what the allow list took
};

// Runs the captures through the sensor's pipeline and explains one pair.
// Exit status: 0 the pair is in the captures, 1 it is not (or a capture could
// not be read), 2 a usage or configuration error.
int runExplain(ExplainOptions options);

}  // namespace exfilwatch::app
