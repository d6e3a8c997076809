// model_cmd.cc: `exfilwatch model train|score`: builds the benign-name
// character trigram model (src/score/ngram_model.h) from name lists and
// captures, deterministically, and prints per-name scores for evaluation.
//   train --out FILE INPUT...   INPUT: .csv (a `qname` column; rows whose
//         `label` column is not 0 are skipped: only benign names train),
//         .pcap/.pcapng (DNS query names, UDP), or text (first field per line)
//   score [--model FILE] [--domain-split] INPUT...  one line per distinct
//         name: model bits/char, information bits, name (for threshold work)
// Distinct names are collected in a sorted set before counting, so the same
// inputs give the same file byte for byte.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "app/cli.h"
#include "app/commands.h"
#include "capture/pcap_source.h"
#include "decode/decoder.h"
#include "dns/message.h"
#include "dns/registered_domain.h"
#include "score/ngram_model.h"

namespace exfilwatch::app {

namespace {
bool endsWith(const std::string& s, const char* suffix) {
  const std::size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

std::string normalise(std::string name) {
  while (!name.empty() && (name.back() == '.' || name.back() == '\r')) name.pop_back();
  for (auto& c : name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return name;
}

bool checkClasses(const std::string& path, const std::set<std::string>& classes);

// Names from one input; false (and a message) when it cannot be read, or
// when a labelled file cannot be what the model needs: no benign (label 0)
// row, or a label column with a single class (the wrong column or file).
bool readNames(const std::string& path, std::set<std::string>& out, std::size_t& added) {
  const std::size_t before = out.size();
  if (endsWith(path, ".pcap") || endsWith(path, ".pcapng")) {
    std::string error;
    auto src = PcapSource::open(path, error);
    if (!src) {
      std::fprintf(stderr, "exfilwatch model: %s\n", error.c_str());
      return false;
    }
    Decoder decoder;
    WeirdCounters weird;
    dns::Parser parser;
    dns::DnsMessage msg;
    Frame frame;
    while (src->next(frame)) {
      PacketContext pkt;
      if (!decoder.decode(frame, pkt, weird) || pkt.ip_proto != ipproto::kUdp) continue;
      if (pkt.dst_port != 53 && pkt.src_port != 53) continue;
      if (!parser.parse(pkt.payload, pkt.payload_len, msg, weird) || msg.qr) continue;
      for (const auto& q : msg.questions) {
        if (q.name.valid && q.name.length) out.insert(normalise(std::string(msg.lower(q.name))));
      }
    }
  } else {
    std::ifstream in(path);
    if (!in) {
      std::fprintf(stderr, "exfilwatch model: cannot open %s\n", path.c_str());
      return false;
    }
    std::string line;
    const bool csv = endsWith(path, ".csv");
    int name_col = -1, label_col = -1;
    bool header = csv;
    std::set<std::string> classes;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF files
      if (line.empty() || line[0] == '#') continue;
      if (csv) {
        std::vector<std::string> cols;
        std::stringstream ss(line);
        std::string col;
        while (std::getline(ss, col, ',')) cols.push_back(col);
        if (header) {
          for (std::size_t i = 0; i < cols.size(); ++i) {
            if (cols[i] == "qname") name_col = static_cast<int>(i);
            if (cols[i] == "label") label_col = static_cast<int>(i);
          }
          header = false;
          if (name_col < 0) {
            std::fprintf(stderr, "exfilwatch model: %s: no qname column\n", path.c_str());
            return false;
          }
          continue;
        }
        if (static_cast<int>(cols.size()) <= name_col) continue;
        if (label_col >= 0 && static_cast<int>(cols.size()) > label_col) {
          classes.insert(cols[label_col]);
        }
        if (label_col >= 0 &&
            (static_cast<int>(cols.size()) <= label_col || cols[label_col] != "0"))
          continue;
        const std::string n = normalise(cols[name_col]);
        if (!n.empty()) out.insert(n);
      } else {
        std::istringstream ls(line);
        std::string first;
        ls >> first;
        first = normalise(first);
        if (!first.empty()) out.insert(first);
      }
    }
    if (!checkClasses(path, classes)) return false;
  }
  added = out.size() - before;
  return true;
}

// Refuses a labelled file the model cannot be trained on.
bool checkClasses(const std::string& path, const std::set<std::string>& classes) {
  if (classes.empty()) return true;
  if (!classes.count("0")) {
    std::fprintf(stderr, "exfilwatch model: %s: no benign names (no row with label 0)\n",
                 path.c_str());
    return false;
  }
  if (classes.size() == 1) {
    std::fprintf(stderr,
                 "exfilwatch model: %s: the label column holds one class only (0): a labelled "
                 "file must hold benign (0) and other rows; give benign-only names as a plain "
                 "list\n",
                 path.c_str());
    return false;
  }
  return true;
}

}  // namespace

// A path as the model header records it: never absolute (the file is
// shipped and diffed; a build machine's directories mean nothing there).
std::string recorded(const std::string& path) {
  const std::filesystem::path p(path);
  return p.is_absolute() ? p.filename().string() : path;
}

int modelCommand(int argc, char** argv) {
  Command app("model", "Train and try the benign-name n-gram model (models/README.md).");
  app.require_subcommand(1);
  std::string out_path, model_path;
  std::vector<std::string> inputs;
  const std::string input_doc =
      ".csv with a qname column (label 0 rows only), .pcap/.pcapng (query names), or text with "
      "one name per line";
  CLI::App* train = app.add_subcommand("train", "train a model from benign names");
  train->add_option("--out", out_path, "the model file to write")->type_name("FILE")->required();
  train->add_option("INPUT", inputs, input_doc)->required();
  CLI::App* score_cmd = app.add_subcommand("score",
                                           "per distinct name: bits per character, "
                                           "information bits, prefix length, name");
  score_cmd->add_option("--model", model_path, "the model (default: the built-in one)")
      ->type_name("FILE");
  score_cmd->add_option("INPUT", inputs, input_doc)->required();
  if (const int status = parse(app, argc, argv); status >= 0) return status;
  const std::string sub = train->parsed() ? "train" : "score";
  std::set<std::string> names;
  std::vector<std::string> sources;
  for (const auto& in : inputs) {
    std::size_t added = 0;
    if (!readNames(in, names, added)) return 1;
    sources.push_back(recorded(in) + " (" + std::to_string(added) + " new distinct names)");
  }
  if (sub == "train") {
    if (names.empty()) {
      std::fprintf(stderr, "exfilwatch model: no benign names in the input: nothing to train on\n");
      return 1;
    }
    score::NgramModel::Counts counts;
    for (const auto& n : names) counts.addName(n);
    std::string command = "exfilwatch model train --out " + recorded(out_path);
    for (const auto& in : inputs) command += " " + recorded(in);
    const std::string text = score::NgramModel::serialize(counts, sources, command);
    std::string error;
    if (!score::NgramModel::parse(text, error)) {
      std::fprintf(stderr, "exfilwatch model: internal error: %s\n", error.c_str());
      return 1;
    }
    std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) {
      std::fprintf(stderr, "exfilwatch model: cannot write %s\n", out_path.c_str());
      return 1;
    }
    std::fprintf(stderr, "exfilwatch model: %zu distinct names, %llu labels -> %s\n", names.size(),
                 static_cast<unsigned long long>(counts.labels), out_path.c_str());
    return 0;
  }
  std::shared_ptr<const score::NgramModel> model;
  std::string error;
  model = model_path.empty() ? score::NgramModel::builtin()
                             : score::NgramModel::load(model_path, error);
  if (!model) {
    std::fprintf(stderr, "exfilwatch model: cannot load model %s %s\n", model_path.c_str(),
                 error.c_str());
    return 1;
  }
  dns::RegisteredDomain psl;
  for (const auto& n : names) {
    const std::string_view reg = psl.lookup(n);
    const std::string_view prefix = reg.size() < n.size() && !reg.empty()
                                        ? std::string_view(n).substr(0, n.size() - reg.size() - 1)
                                        : std::string_view{};
    std::printf("%.3f\t%.1f\t%zu\t%s\n", score::prefixModelBitsPerChar(model.get(), prefix),
                score::prefixInfoBits(model.get(), prefix), prefix.size(), n.c_str());
  }
  return 0;
}

}  // namespace exfilwatch::app
