// json_flat.h: a small JSON reader for tests that check EVE lines field by
// field. A document becomes a map from dotted paths to scalar texts:
// {"a":{"b":[1,"x"]}} -> {"a.b.0": "1", "a.b.1": "x"}. Strings are
// unescaped (\uXXXX below 0x80 only, enough for EVE's ASCII fields).
#pragma once

#include <cctype>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

namespace exfilwatch::testing {

using Json = std::map<std::string, std::string>;

class JsonFlattener {
 public:
  // False when `text` is not one well-formed JSON value.
  static bool parse(std::string_view text, Json& out) {
    JsonFlattener p(text, out);
    if (!p.value("")) return false;
    p.skipSpace();
    return p.pos_ == text.size();
  }

 private:
  JsonFlattener(std::string_view text, Json& out) : s_(text), out_(out) {}

  void skipSpace() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool eat(char c) {
    skipSpace();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }
  bool string(std::string& out) {
    if (!eat('"')) return false;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      char c = s_[pos_++];
      if (c == '\\') {
        if (pos_ >= s_.size()) return false;
        const char e = s_[pos_++];
        switch (e) {
          case 'n':
            c = '\n';
            break;
          case 't':
            c = '\t';
            break;
          case 'r':
            c = '\r';
            break;
          case 'b':
            c = '\b';
            break;
          case 'f':
            c = '\f';
            break;
          case 'u': {
            if (pos_ + 4 > s_.size()) return false;
            const long v = std::strtol(std::string(s_.substr(pos_, 4)).c_str(), nullptr, 16);
            pos_ += 4;
            if (v >= 0x80) return false;
            c = static_cast<char>(v);
            break;
          }
          default:
            c = e;
            break;  // \" \\ \/
        }
      }
      out += c;
    }
    return eat('"');
  }
  bool value(const std::string& path) {
    skipSpace();
    if (pos_ >= s_.size()) return false;
    const char c = s_[pos_];
    if (c == '{') {
      ++pos_;
      if (eat('}')) return true;
      do {
        std::string key;
        if (!string(key) || !eat(':') || !value(join(path, key))) return false;
      } while (eat(','));
      return eat('}');
    }
    if (c == '[') {
      ++pos_;
      if (eat(']')) return true;
      int i = 0;
      do {
        if (!value(join(path, std::to_string(i++)))) return false;
      } while (eat(','));
      return eat(']');
    }
    if (c == '"') {
      std::string text;
      if (!string(text)) return false;
      out_[path] = text;
      return true;
    }
    const std::size_t start = pos_;
    while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) ||
                                s_[pos_] == '-' || s_[pos_] == '+' || s_[pos_] == '.')) {
      ++pos_;
    }
    if (pos_ == start) return false;
    out_[path] = std::string(s_.substr(start, pos_ - start));
    return true;
  }

  std::string_view s_;
  Json& out_;
  std::size_t pos_ = 0;
};

}  // namespace exfilwatch::testing
