// json.h: a small streaming JSON writer for EVE records. It appends into a
// reused std::string (no allocation once warm) and escapes strings the way
// Suricata's JsonBuilder does: valid UTF-8 passes through, otherwise bytes
// >= 0x80 become the text \xHH; control characters use JSON escapes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace exfilwatch {

class JsonWriter {
 public:
  void reset();
  const std::string& text() const { return out_; }

  // An empty key means "array element".
  void openObject(std::string_view key = {});
  void closeObject();
  void openArray(std::string_view key = {});
  void closeArray();
  void string(std::string_view key, std::string_view value);
  void uint(std::string_view key, uint64_t value);
  void sint(std::string_view key, int64_t value);
  void real(std::string_view key, double value, int decimals = 3);
  void boolean(std::string_view key, bool value);
  // Appends a pre-rendered JSON value (must be valid JSON).
  void raw(std::string_view key, std::string_view json);

  // Appends `value` escaped, without quotes, Suricata-style.
  static void appendEscaped(std::string& out, std::string_view value);

 private:
  void prefix(std::string_view key);
  static constexpr int kMaxDepth = 32;
  std::string out_;
  bool first_[kMaxDepth] = {true};
  int depth_ = 0;
};

}  // namespace exfilwatch
