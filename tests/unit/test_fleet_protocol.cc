// test_fleet_protocol.cc: what the fleet client reads and writes
// (src/fleet/redis_protocol.h, cluster_slots.h): hash slots against values
// from `redis-cli cluster keyslot` (Redis 7.0), replies through hiredis'
// reader into owned values, the reader's limits, MOVED/ASK, CLUSTER SLOTS,
// command formatting, and the reconnect backoff schedule.
#include <doctest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "fleet/cluster_slots.h"
#include "fleet/redis_client.h"
#include "fleet/redis_protocol.h"

using namespace exfilwatch::fleet;
using Type = RedisReply::Type;

namespace {

// Every reply in `bytes`, fed `chunk` bytes at a time; `error` gets the
// reader's error, if any.
std::vector<RedisReply> readAll(const std::string& bytes, std::size_t chunk,
                                std::string* error = nullptr, ReplyLimits limits = {}) {
  ReplyReader reader(limits);
  std::vector<RedisReply> out;
  for (std::size_t at = 0; at < bytes.size(); at += chunk) {
    if (!reader.feed(bytes.data() + at, std::min(chunk, bytes.size() - at))) break;
    RedisReply r;
    ReplyReader::Next next;
    while ((next = reader.next(r)) == ReplyReader::Next::Reply) out.push_back(std::move(r));
    if (next == ReplyReader::Next::Error) break;
  }
  if (error != nullptr) *error = reader.error();
  return out;
}

RedisReply integer(int64_t v) {
  RedisReply r;
  r.type = Type::Integer;
  r.integer = v;
  return r;
}

RedisReply text(Type t, std::string s) {
  RedisReply r;
  r.type = t;
  r.str = std::move(s);
  return r;
}

RedisReply array(std::vector<RedisReply> e) {
  RedisReply r;
  r.type = Type::Array;
  r.elements = std::move(e);
  return r;
}

}  // namespace

TEST_CASE("fleet: CRC16 and hash slots as Redis Cluster computes them") {
  CHECK(crc16("123456789") == 0x31C3);  // the XMODEM check value
  // Slots printed by `redis-cli -p PORT cluster keyslot KEY` on redis-server 7.0.15.
  const std::vector<std::pair<std::string, uint16_t>> known{
      {"", 0},
      {"a", 15495},
      {"foo", 12182},
      {"bar", 5061},
      {"123456789", 12739},
      {"{user1000}.following", 3443},
      {"{user1000}.followers", 3443},
      {"foo{}{bar}", 8363},     // empty tag: the whole key
      {"foo{{bar}}zap", 4015},  // tag "{bar"
      {"foo{bar}{zap}", 5061},  // the first tag only: "bar"
      {"{}", 15257},
      {"{", 4092},
      {"}", 12090},
      {"{a", 10276},
      {"a}", 5921},
      {"x{}y", 16116},
      {"{abc}", 7638},
      {"abc", 7638},
      {"{{}}", 4092},  // tag "{"
      {"somekey{tag}", 8338},
      {"tag", 8338},
      {"exfilwatch:{c:10.0.0.1|example.com}:q", 13360},
      {"exfilwatch:{d:example.com}:h", 5943},
      {std::string("\xff\x00\x80", 3), 7915},
  };
  for (const auto& known_slot : known) {
    INFO(known_slot.first);
    CHECK(keySlot(known_slot.first) == known_slot.second);
  }
}

TEST_CASE("fleet: replies become owned values, however the bytes are split") {
  const char wire[] =
      "+OK\r\n:42\r\n:-7\r\n$3\r\nfoo\r\n$-1\r\n*-1\r\n*0\r\n$0\r\n\r\n"
      "*3\r\n*1\r\n:1\r\n$5\r\na\r\nb\x00\r\n-ERR wrong\r\n"
      "-MOVED 3999 127.0.0.1:7002\r\n";
  const std::string bytes(wire, sizeof wire - 1);
  const std::vector<RedisReply> expected{
      text(Type::Status, "OK"),
      integer(42),
      integer(-7),
      text(Type::String, "foo"),
      RedisReply{},
      RedisReply{},
      array({}),
      text(Type::String, ""),
      array({array({integer(1)}), text(Type::String, std::string("a\r\nb\0", 5)),
             text(Type::Error, "ERR wrong")}),
      text(Type::Error, "MOVED 3999 127.0.0.1:7002"),
  };
  for (const std::size_t chunk : {bytes.size(), std::size_t{1}, std::size_t{3}, std::size_t{7}}) {
    INFO("chunk " << chunk);
    std::string error;
    const auto replies = readAll(bytes, chunk, &error);
    CHECK(error.empty());
    CHECK(replies == expected);
  }
}

TEST_CASE("fleet: the reader fails on garbage and stays failed") {
  std::string error;
  CHECK(readAll("+OK\r\nHTTP/1.1 400 Bad Request\r\n", 64, &error).size() == 1);
  CHECK(error.rfind("protocol error: ", 0) == 0);
  ReplyReader reader;
  CHECK(reader.feed("!x\r\n", 4));
  RedisReply r;
  CHECK(reader.next(r) == ReplyReader::Next::Error);
  CHECK(reader.failed());
  CHECK_FALSE(reader.feed("+OK\r\n", 5));
  CHECK(reader.next(r) == ReplyReader::Next::Error);
  // Deeper than hiredis nests.
  std::string deep;
  for (int i = 0; i < 12; ++i) deep += "*1\r\n";
  deep += ":1\r\n";
  CHECK(readAll(deep, deep.size(), &error).empty());
  CHECK(error.rfind("protocol error: ", 0) == 0);
}

TEST_CASE("fleet: the reader's limits hold before anything is allocated") {
  ReplyLimits limits;
  limits.max_bytes = 1024;
  limits.max_elements = 100;
  std::string error;
  // An announced count is refused at once, however large.
  CHECK(readAll("*2147483647\r\n", 64, &error, limits).empty());
  CHECK(error == "reply over its limit (elements)");
  // Nested arrays each within the limit, together over it.
  std::string nested = "*2\r\n*60\r\n";
  for (int i = 0; i < 60; ++i) nested += ":1\r\n";
  CHECK(readAll(nested + "*60\r\n", 64, &error, limits).empty());
  CHECK(error == "reply over its limit (elements)");
  // An announced bulk is not waited for beyond max_bytes.
  const std::string big = "$1000000000\r\n" + std::string(1500, 'x');
  CHECK(readAll(big, 100, &error, limits).empty());
  CHECK(error == "reply over its limit (1024 bytes)");
  // Strings of one reply add up.
  std::string many = "*10\r\n";
  for (int i = 0; i < 10; ++i) many += "$200\r\n" + std::string(200, 'y') + "\r\n";
  CHECK(readAll(many, many.size(), &error, limits).empty());
  CHECK(error == "reply over its limit (bytes)");
  // The limits are per reply: many small replies pass.
  std::string small;
  for (int i = 0; i < 500; ++i) small += "*3\r\n:1\r\n:2\r\n$3\r\nabc\r\n";
  CHECK(readAll(small, 333, &error, limits).size() == 500);
  CHECK(error.empty());
}

TEST_CASE("fleet: MOVED and ASK") {
  auto r = parseRedirect("MOVED 3999 127.0.0.1:6381");
  REQUIRE(r);
  CHECK(r->kind == Redirect::Kind::Moved);
  CHECK(r->slot == 3999);
  CHECK(r->target == Endpoint{"127.0.0.1", 6381});
  r = parseRedirect("ASK 16383 :7000");  // Redis 7, unknown endpoint: the replying host
  REQUIRE(r);
  CHECK(r->kind == Redirect::Kind::Ask);
  CHECK(r->slot == 16383);
  CHECK(r->target == Endpoint{"", 7000});
  r = parseRedirect("MOVED 0 ::1:7001");
  REQUIRE(r);
  CHECK(r->target == Endpoint{"::1", 7001});
  r = parseRedirect("MOVED 12 redis-2.cache.amazonaws.com:6379");
  REQUIRE(r);
  CHECK(r->target.host == "redis-2.cache.amazonaws.com");
  for (const char* bad : {"MOVED 16384 h:1", "MOVED 1 h", "MOVED  1 h:1", "MOVED 1 h:0",
                          "MOVED 1 h:70000", "MOVED x h:1", "MOVED 1 bad host:1", "ASK 1",
                          "ERR MOVED 1 h:1", "moved 1 h:1", "MOVED 123456 h:1", "TRYAGAIN", ""}) {
    INFO(bad);
    CHECK_FALSE(parseRedirect(bad));
  }
}

TEST_CASE("fleet: CLUSTER SLOTS") {
  // As redis-server 7.0 answers for a 3-master cluster (ids shortened).
  const std::string wire =
      "*3\r\n"
      "*3\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:7000\r\n$2\r\nid\r\n*0\r\n"
      "*3\r\n:5461\r\n:10922\r\n*4\r\n$0\r\n\r\n:7001\r\n$2\r\nid\r\n*0\r\n"
      "*4\r\n:10923\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:7002\r\n$2\r\nid\r\n"
      "*3\r\n$9\r\n127.0.0.1\r\n:7005\r\n$2\r\nid\r\n";
  const auto replies = readAll(wire, wire.size());
  REQUIRE(replies.size() == 1);
  SlotMap map;
  std::string why;
  REQUIRE(parseClusterSlots(replies[0], Endpoint{"10.1.1.1", 7001}, 64, map, &why));
  CHECK(map.complete());
  REQUIRE(map.masters.size() == 3);
  CHECK(map.masters[0] == Endpoint{"127.0.0.1", 7000});
  CHECK(map.masters[1] == Endpoint{"10.1.1.1", 7001});   // "" host: the node that answered
  CHECK(map.masters[2] == Endpoint{"127.0.0.1", 7002});  // replicas are not masters
  CHECK(map.owner[0] == 0);
  CHECK(map.owner[5460] == 0);
  CHECK(map.owner[5461] == 1);
  CHECK(map.owner[keySlot("foo")] == 2);

  // Gaps are reported as incomplete, overlaps and bad fields as errors.
  const auto partial = readAll("*1\r\n*3\r\n:0\r\n:100\r\n*2\r\n$1\r\nh\r\n:1\r\n", 1000);
  REQUIRE(parseClusterSlots(partial.at(0), {}, 64, map, &why));
  CHECK_FALSE(map.complete());
  const auto overlap = readAll(
      "*2\r\n*3\r\n:0\r\n:100\r\n*2\r\n$1\r\nh\r\n:1\r\n*3\r\n:100\r\n:200\r\n*2\r\n$1\r\ng\r\n:"
      "1\r\n",
      1000);
  CHECK_FALSE(parseClusterSlots(overlap.at(0), {}, 64, map, &why));
  CHECK(why == "CLUSTER SLOTS: slot 100 listed twice");
  const auto port = readAll("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:0\r\n", 1000);
  CHECK_FALSE(parseClusterSlots(port.at(0), {}, 64, map, &why));
  const auto range = readAll("*1\r\n*3\r\n:5\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n", 1000);
  CHECK_FALSE(parseClusterSlots(range.at(0), {}, 64, map, &why));
  CHECK_FALSE(parseClusterSlots(text(Type::Error, "ERR This instance has cluster support disabled"),
                                {}, 64, map, &why));
  CHECK(why == "CLUSTER SLOTS: ERR This instance has cluster support disabled");
  CHECK_FALSE(parseClusterSlots(replies[0], {}, 2, map, &why));  // over max_masters
}

TEST_CASE("fleet: commands are formatted by hiredis and carry their key's slot") {
  CommandBatch b;
  CHECK(b.add("{c:10.0.0.1}:q", {"INCRBY", "{c:10.0.0.1}:q", "5"}));
  CHECK(b.add("", {"PING"}));
  const std::string binary("a\0\r\nb", 5);
  CHECK(b.add(binary, {"SET", binary, "v", "NX", "EX", "60"}));
  REQUIRE(b.size() == 3);
  CHECK(b.wire(0) == "*3\r\n$6\r\nINCRBY\r\n$14\r\n{c:10.0.0.1}:q\r\n$1\r\n5\r\n");
  CHECK(b.slot(0) == keySlot("c:10.0.0.1"));
  CHECK(b.wire(1) == "*1\r\n$4\r\nPING\r\n");
  CHECK(b.slot(1) == kAnySlot);
  const char set[] =
      "*6\r\n$3\r\nSET\r\n$5\r\na\0\r\nb\r\n$1\r\nv\r\n$2\r\nNX\r\n$2\r\nEX\r\n$2\r\n60\r\n";
  CHECK(b.wire(2) == std::string(set, sizeof set - 1));
  CHECK(b.bytes() == b.wire(0).size() + b.wire(1).size() + b.wire(2).size());

  std::vector<std::string> members;
  std::vector<std::string_view> args{"PFADD", "h"};
  for (int i = 0; i < 40; ++i) members.push_back("m" + std::to_string(i));
  for (const auto& m : members) args.emplace_back(m);
  CHECK(b.add("h", args));  // more arguments than fit inline
  CHECK(b.wire(3).rfind("*42\r\n$5\r\nPFADD\r\n$1\r\nh\r\n$2\r\nm0\r\n", 0) == 0);

  CommandBatch small(CommandBatch::Limits{2, 64});
  CHECK_FALSE(small.add("k", std::span<const std::string_view>{}));
  CHECK(small.add("k", {"GET", "k"}));
  CHECK_FALSE(small.add("k", {"SET", "k", std::string(64, 'v')}));  // over max_bytes
  CHECK(small.add("k", {"GET", "k"}));
  CHECK_FALSE(small.add("k", {"GET", "k"}));  // over max_commands
  CHECK(small.size() == 2);
}

TEST_CASE("fleet: reconnect backoff grows, is jittered and has a ceiling") {
  using std::chrono::milliseconds;
  const milliseconds min(100), max(10000);
  int64_t ceiling = 100;
  for (uint32_t attempt = 0; attempt < 40; ++attempt) {
    INFO("attempt " << attempt);
    for (const uint64_t random : {uint64_t{0}, uint64_t{1}, uint64_t{12345}, ~uint64_t{0}}) {
      const auto d = backoffDelay(attempt, min, max, random);
      CHECK(d.count() >= ceiling / 2);
      CHECK(d.count() <= ceiling);
    }
    CHECK(backoffDelay(attempt, min, max, 0).count() == ceiling / 2);
    ceiling = std::min<int64_t>(ceiling * 2, max.count());
  }
  CHECK(backoffDelay(1000000, min, max, ~uint64_t{0}) <= max);
  // Different random values spread the delays.
  CHECK(backoffDelay(5, min, max, 1) != backoffDelay(5, min, max, 777));
  // A ceiling below the floor is the floor.
  CHECK(backoffDelay(3, milliseconds(50), milliseconds(10), 0).count() == 25);
}
