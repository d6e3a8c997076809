// yaml_reader.cc: the strict YAML helpers shared by configuration and rules.
#include "common/yaml_reader.h"

#include <cstdio>

namespace exfilwatch::yaml {

namespace {
std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}
}  // namespace

std::string Reader::where(const YAML::Node& node) const {
  const auto mark = node.Mark();
  std::string out = source_;
  if (mark.line >= 0) out += ":" + std::to_string(mark.line + 1);
  return out + ": ";
}

YAML::Node Reader::load(const std::string& text) const {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(source_ + ":" + std::to_string(e.mark.line + 1) + ": ", "invalid YAML: " + e.msg);
  }
}

std::string Reader::string(const YAML::Node& node, const std::string& key) const {
  if (!node.IsScalar()) fail(node, key + ": expected a string");
  return node.Scalar();
}

std::string Reader::text(const YAML::Node& node, const std::string& key) const {
  std::string s = string(node, key);
  if (s.empty()) fail(node, key + ": must not be empty");
  return s;
}

bool Reader::boolean(const YAML::Node& node, const std::string& key) const {
  bool value = false;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
    fail(node, key + ": expected true or false");
  }
  return value;
}

long long Reader::integerIn(const YAML::Node& node, const std::string& key, long long min,
                            long long max) const {
  if (!node.IsScalar()) fail(node, key + ": expected an integer");
  const std::string& text = node.Scalar();
  long long value = 0;
  bool ok = false;
  try {
    std::size_t used = 0;
    value = std::stoll(text, &used, 10);
    ok = used == text.size();
  } catch (const std::logic_error&) {
  }
  if (!ok) fail(node, key + ": expected an integer, got '" + text + "'");
  if (value < min || value > max) {
    fail(node, key + ": " + std::to_string(value) + " is out of range [" + std::to_string(min) +
                   ", " + std::to_string(max) + "]");
  }
  return value;
}

double Reader::real(const YAML::Node& node, const std::string& key, double min, double max) const {
  if (!node.IsScalar()) fail(node, key + ": expected a number");
  const std::string& text = node.Scalar();
  double value = 0;
  bool ok = false;
  try {
    std::size_t used = 0;
    value = std::stod(text, &used);
    ok = used == text.size();
  } catch (const std::logic_error&) {
  }
  if (!ok) fail(node, key + ": expected a number, got '" + text + "'");
  if (!(value >= min && value <= max)) {
    fail(node, key + ": " + text + " is out of range [" + number(min) + ", " + number(max) + "]");
  }
  return value;
}

std::vector<std::string> Reader::strings(const YAML::Node& node, const std::string& key) const {
  return list(node, key, "strings", [&](const YAML::Node& item) { return text(item, key); });
}

std::vector<uint16_t> Reader::ports(const YAML::Node& node, const std::string& key) const {
  return list(node, key, "ports",
              [&](const YAML::Node& item) { return integer<uint16_t>(item, key, 1, 65535); });
}

void Reader::section(const YAML::Node& node, const std::string& name,
                     const std::map<std::string, Handler>& handlers) const {
  if (node.IsNull()) return;
  if (!node.IsMap()) fail(node, name + ": expected a mapping");
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    const auto it = handlers.find(key);
    if (it == handlers.end()) {
      std::string known;
      for (const auto& h : handlers) known += (known.empty() ? "" : ", ") + h.first;
      fail(kv.first,
           "unknown key '" + (name.empty() ? key : name + "." + key) + "' (known: " + known + ")");
    }
    it->second(kv.second);
  }
}

}  // namespace exfilwatch::yaml
