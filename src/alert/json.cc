// json.cc: streaming JSON writer with Suricata-compatible string escaping.
#include "alert/json.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "common/escape.h"

namespace exfilwatch {

namespace {
bool validUtf8(std::string_view s) {
  std::size_t i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    int extra = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + static_cast<std::size_t>(extra) >= n) return false;
    for (int k = 1; k <= extra; ++k) {
      const unsigned char cc = p[i + static_cast<std::size_t>(k)];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and out-of-range code points are invalid.
    if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      return false;
    }
    i += static_cast<std::size_t>(extra) + 1;
  }
  return true;
}

void appendJsonChar(std::string& out, unsigned char c) {
  switch (c) {
    case '"':
      out += "\\\"";
      return;
    case '\\':
      out += "\\\\";
      return;
    case '\n':
      out += "\\n";
      return;
    case '\r':
      out += "\\r";
      return;
    case '\t':
      out += "\\t";
      return;
    case '\b':
      out += "\\b";
      return;
    case '\f':
      out += "\\f";
      return;
    default:
      break;
  }
  if (c < 0x20 || c == 0x7F) {
    out += "\\u00";
    escape::appendHex(out, c);
    return;
  }
  out += static_cast<char>(c);
}
}  // namespace

void JsonWriter::appendEscaped(std::string& out, std::string_view value) {
  const bool utf8 = validUtf8(value);
  for (char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80 && !utf8) {
      // Suricata's string_from_bytes: the text "\xHH", itself JSON-escaped.
      out += "\\\\x";
      escape::appendHex(out, c);
    } else if (c >= 0x80) {
      out += static_cast<char>(c);
    } else {
      appendJsonChar(out, c);
    }
  }
}

void JsonWriter::reset() {
  out_.clear();
  depth_ = 0;
  first_[0] = true;
}

void JsonWriter::prefix(std::string_view key) {
  if (!first_[depth_]) out_ += ',';
  first_[depth_] = false;
  if (!key.empty()) {
    out_ += '"';
    appendEscaped(out_, key);
    out_ += "\":";
  }
}

void JsonWriter::openObject(std::string_view key) {
  if (depth_ > 0 || !out_.empty()) prefix(key);
  out_ += '{';
  if (depth_ + 1 < kMaxDepth) ++depth_;
  first_[depth_] = true;
}

void JsonWriter::closeObject() {
  out_ += '}';
  if (depth_ > 0) --depth_;
}

void JsonWriter::openArray(std::string_view key) {
  prefix(key);
  out_ += '[';
  if (depth_ + 1 < kMaxDepth) ++depth_;
  first_[depth_] = true;
}

void JsonWriter::closeArray() {
  out_ += ']';
  if (depth_ > 0) --depth_;
}

void JsonWriter::string(std::string_view key, std::string_view value) {
  prefix(key);
  out_ += '"';
  appendEscaped(out_, value);
  out_ += '"';
}

void JsonWriter::uint(std::string_view key, uint64_t value) {
  prefix(key);
  char buf[24];
  const auto res = std::to_chars(buf, buf + sizeof buf, value);
  out_.append(buf, res.ptr);
}

void JsonWriter::sint(std::string_view key, int64_t value) {
  prefix(key);
  char buf[24];
  const auto res = std::to_chars(buf, buf + sizeof buf, value);
  out_.append(buf, res.ptr);
}

void JsonWriter::real(std::string_view key, double value, int decimals) {
  prefix(key);
  if (!std::isfinite(value)) {
    out_ += "null";
    return;
  }
  char buf[64];
  const int n = std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  if (n > 0)
    out_.append(buf, static_cast<std::size_t>(std::min(n, static_cast<int>(sizeof buf) - 1)));
}

void JsonWriter::boolean(std::string_view key, bool value) {
  prefix(key);
  out_ += value ? "true" : "false";
}

void JsonWriter::raw(std::string_view key, std::string_view json) {
  prefix(key);
  out_ += json;
}

}  // namespace exfilwatch
