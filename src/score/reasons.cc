// reasons.cc: verdict text helpers (reasons.h).
#include "score/reasons.h"

#include <cstdio>

#include "common/escape.h"

namespace exfilwatch::score {

void appendKv(std::string& out, const char* key, const std::string& suffix, double v,
              int decimals) {
  char buf[80];
  std::snprintf(buf, sizeof buf, "%s%s=%.*f ", key, suffix.c_str(), decimals, v);
  out += buf;
}

void appendSafeName(std::string& out, std::string_view name, std::size_t max) {
  // No spaces and no '=': reasons are space-separated key=value pairs.
  escape::appendEscaped(out, name.substr(0, max),
                        [](uint8_t c) { return c > 0x20 && c < 0x7f && c != '=' && c != '\\'; });
  if (name.size() > max) out += "...";
}

std::string windowName(uint32_t s) {
  if (s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

}  // namespace exfilwatch::score
