// corpus_names.h: the DNS names of the shared name corpus
// (../shared/corpus/names/dns/<kind>/names.csv: "label,name"), benign and
// tunnel, for unit tests that hold a fast path to its plain counterpart
// over real names.
#pragma once

#include <cctype>
#include <fstream>
#include <string>
#include <vector>

#include "build_config.h"

namespace exfilwatch::testing {

// Appends the names of the plain, iodine, dns2tcp and dnscapy sets,
// lower-cased and without a trailing dot, until `names` holds `limit`.
inline void appendCorpusNames(std::vector<std::string>& names, std::size_t limit) {
  for (const char* kind : {"plain", "iodine", "dns2tcp", "dnscapy"}) {
    std::ifstream in(std::string(EXFILWATCH_SOURCE_DIR) + "/../shared/corpus/names/dns/" + kind +
                     "/names.csv");
    std::string line;
    while (std::getline(in, line) && names.size() < limit) {
      const auto comma = line.find(',');
      if (comma == std::string::npos || line.rfind("label", 0) == 0) continue;
      std::string name = line.substr(comma + 1);
      if (!name.empty() && name.back() == '.') name.pop_back();
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!name.empty()) names.push_back(std::move(name));
    }
  }
}

}  // namespace exfilwatch::testing
