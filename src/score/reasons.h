// reasons.h: the text of a scorer's verdict ("score=1.20 info_bytes_1m=830
// ... first_name=..."), shared by the DNS and the TLS scorer so both read
// alike: space-separated key=value pairs, attacker-chosen names escaped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace exfilwatch::score {

// A window's width as a key suffix: 60 -> "1m", 3600 -> "1h", 90 -> "90s".
std::string windowName(uint32_t seconds);

// Appends "<key><suffix>=<v> " with `decimals` digits after the point.
void appendKv(std::string& out, const char* key, const std::string& suffix, double v, int decimals);

// Appends `name` with bytes outside printable ASCII, spaces, '=' and '\\'
// escaped as \xNN, at most `max` input bytes (then "...").
void appendSafeName(std::string& out, std::string_view name, std::size_t max = 80);

}  // namespace exfilwatch::score
