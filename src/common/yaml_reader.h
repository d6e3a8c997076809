// yaml_reader.h: strict reading of configuration and rule files (yaml-cpp).
// Every mistake (wrong type, out-of-range number, unknown key) is an error
// that names the file and line, never a silent default: a typo in a
// threshold or a rule must not quietly change what the sensor detects.
// Integers are base 10 only ("0401" is 401, not octal). Control plane only.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace exfilwatch::yaml {

// What every Reader helper throws: "file:line: message". Callers rethrow it
// as their own error type, or add context between the two parts.
class Error : public std::runtime_error {
 public:
  Error(const std::string& where, const std::string& message)
      : std::runtime_error(where + message), where_(where), message_(message) {}
  const std::string& where() const { return where_; }  // "file:line: "
  const std::string& message() const { return message_; }

 private:
  std::string where_, message_;
};

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  const std::string& source() const { return source_; }
  // "source:line: " (no line when the node has no position).
  std::string where(const YAML::Node& node) const;
  [[noreturn]] void fail(const YAML::Node& node, const std::string& message) const {
    throw Error(where(node), message);
  }
  // Parses `text`; invalid YAML fails with the parser's line.
  YAML::Node load(const std::string& text) const;

  std::string string(const YAML::Node& node, const std::string& key) const;
  // A string that must not be empty (a name, a pattern).
  std::string text(const YAML::Node& node, const std::string& key) const;
  bool boolean(const YAML::Node& node, const std::string& key) const;
  // A base-10 integer in [min, max].
  template <class T>
  T integer(const YAML::Node& node, const std::string& key, T min, T max) const {
    return static_cast<T>(
        integerIn(node, key, static_cast<long long>(min), static_cast<long long>(max)));
  }
  // A number in [min, max] (NaN is out of every range).
  double real(const YAML::Node& node, const std::string& key, double min, double max) const;
  // A list whose items `item(node)` reads; "key: expected a list of WHAT".
  template <class F>
  auto list(const YAML::Node& node, const std::string& key, const std::string& what, F item) const {
    if (!node.IsSequence()) fail(node, key + ": expected a list of " + what);
    std::vector<decltype(item(node))> out;
    for (const auto& entry : node) out.push_back(item(entry));
    return out;
  }
  // A list of non-empty strings.
  std::vector<std::string> strings(const YAML::Node& node, const std::string& key) const;
  // A list of ports, 1-65535.
  std::vector<uint16_t> ports(const YAML::Node& node, const std::string& key) const;

  using Handler = std::function<void(const YAML::Node&)>;
  // Walks a mapping (null: nothing to do); every key must be one of
  // `handlers`, else the error lists the known ones.
  void section(const YAML::Node& node, const std::string& name,
               const std::map<std::string, Handler>& handlers) const;

 private:
  long long integerIn(const YAML::Node& node, const std::string& key, long long min,
                      long long max) const;

  std::string source_;
};

}  // namespace exfilwatch::yaml
