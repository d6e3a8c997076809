// test_eve.cc: EVE JSON records: escaping, timestamps, the dns block.
#include <doctest.h>

#include <string>

#include "alert/eve.h"
#include "alert/json.h"

using namespace exfilwatch;

TEST_CASE("strings are escaped the way Suricata escapes them") {
  std::string out;
  JsonWriter::appendEscaped(out, "plain.example.com");
  CHECK(out == "plain.example.com");
  out.clear();
  JsonWriter::appendEscaped(out, std::string("a\"b\\c\n\x01", 7));
  CHECK(out == "a\\\"b\\\\c\\n\\u0001");
  out.clear();
  JsonWriter::appendEscaped(out, "caf\xC3\xA9");  // valid UTF-8 passes through
  CHECK(out == "caf\xC3\xA9");
  out.clear();
  JsonWriter::appendEscaped(out, "a\xFF\x80z");  // invalid UTF-8: \xHH text
  CHECK(out == "a\\\\xff\\\\x80z");
  out.clear();
  JsonWriter::appendEscaped(out, "\xC0\x80");  // overlong NUL is not valid UTF-8
  CHECK(out == "\\\\xc0\\\\x80");
}

TEST_CASE("json writer nests objects and arrays") {
  JsonWriter w;
  w.openObject();
  w.string("a", "x");
  w.openArray("b");
  w.uint({}, 1);
  w.uint({}, 2);
  w.closeArray();
  w.openObject("c");
  w.boolean("d", true);
  w.sint("e", -5);
  w.closeObject();
  w.closeObject();
  CHECK(w.text() == R"({"a":"x","b":[1,2],"c":{"d":true,"e":-5}})");
  w.reset();
  w.openObject();
  w.closeObject();
  CHECK(w.text() == "{}");
}

TEST_CASE("timestamps are RFC 3339 UTC with microseconds") {
  std::string out;
  appendTimestamp(out, Timestamp{1476976981, 75993});
  CHECK(out == "2016-10-20T15:23:01.075993Z");
}
