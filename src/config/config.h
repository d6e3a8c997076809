// config.h: the sensor's configuration, loaded from YAML. Loading is the
// control plane: it throws ConfigError with "file:line: message" on any
// mistake (unknown key, wrong type, out-of-range value), so a typo never
// silently falls back to a default. Once built, a Config is immutable.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "decode/decoder.h"
#include "dns/message.h"
#include "dns/registered_domain.h"
#include "dns/tcp_stream.h"
#include "score/lexical.h"

namespace exfilwatch {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Config {
  std::string source;  // file it came from, "" for defaults

  DecoderConfig decoder;
  std::vector<uint16_t> dns_ports{53};
  dns::ParseLimits dns_limits;
  dns::TcpLimits dns_tcp;
  std::string public_suffix_list = dns::kDefaultPublicSuffixList;

  score::LexicalThresholds lexical;
  uint32_t alert_suppress_seconds = 300;  // one alert per client and domain per interval
  uint32_t alert_suppress_slots = 65536;  // bounded suppression table

  std::string sensor_name;
  bool dns_log = false;
};

// Defaults when path is empty. Throws ConfigError.
Config loadConfig(const std::string& path);
Config parseConfig(const std::string& yaml_text, const std::string& source_name);

}  // namespace exfilwatch
