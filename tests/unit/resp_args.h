// resp_args.h: the arguments of one command as the fleet client formats it
// (a RESP array of bulk strings), for the tests of src/share.
#pragma once

#include <string>
#include <string_view>
#include <vector>

inline std::vector<std::string> respArgs(std::string_view wire) {
  std::vector<std::string> out;
  std::size_t p = wire.find("\r\n") + 2;
  while (p < wire.size()) {
    const std::size_t e = wire.find("\r\n", p);
    const std::size_t len = std::stoul(std::string(wire.substr(p + 1, e - p - 1)));
    out.emplace_back(wire.substr(e + 2, len));
    p = e + 2 + len + 2;
  }
  return out;
}
