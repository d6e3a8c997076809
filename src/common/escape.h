// escape.h: bytes an attacker chose (tunnel names, TXT data, rule test
// strings) made safe for a terminal, a log line or a pattern, as \xNN with
// lower-case hex. Each caller says which bytes it keeps as they are.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace exfilwatch::escape {

// Appends the two lower-case hex digits of `c`.
inline void appendHex(std::string& out, uint8_t c) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += kHex[c >> 4];
  out += kHex[c & 15];
}

// Appends `text`, each byte `keep(byte)` rejects written as \xNN.
template <class Keep>
void appendEscaped(std::string& out, std::string_view text, Keep keep) {
  for (const char ch : text) {
    const auto c = static_cast<uint8_t>(ch);
    if (keep(c)) {
      out += ch;
    } else {
      out += "\\x";
      appendHex(out, c);
    }
  }
}

template <class Keep>
std::string escaped(std::string_view text, Keep keep) {
  std::string out;
  out.reserve(text.size());
  appendEscaped(out, text, keep);
  return out;
}

// Printable ASCII, space included.
inline bool printable(uint8_t c) { return c >= 0x20 && c < 0x7f; }
// Printable ASCII but '\\', so an escaped text reads back unambiguously.
inline bool printableNoBackslash(uint8_t c) { return printable(c) && c != '\\'; }
inline bool alphanumeric(uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

}  // namespace exfilwatch::escape
