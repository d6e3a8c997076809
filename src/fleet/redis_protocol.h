// redis_protocol.h: the Redis protocol as the fleet client speaks it, with
// hiredis doing the RESP work: commands are formatted by
// redisFormatCommandArgv and replies parsed by hiredis' reader
// (redisReaderCreateWithFunctions/Feed/GetReply). The reader's object
// functions build RedisReply values directly, so callers own plain C++
// values and never touch hiredis memory. They also enforce ReplyLimits
// before allocating: hiredis 0.14 has no limit of its own on the element
// count a peer announces, nor on a bulk length it then waits for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fleet/redis_url.h"

struct redisReader;

namespace exfilwatch::fleet {

// One reply, owned (RESP2 types).
struct RedisReply {
  enum class Type : uint8_t { Nil, Integer, String, Status, Error, Array };
  Type type = Type::Nil;
  int64_t integer = 0;
  std::string str;                   // String, Status, Error
  std::vector<RedisReply> elements;  // Array

  bool isError() const { return type == Type::Error; }
  bool operator==(const RedisReply&) const = default;
};

const char* typeName(RedisReply::Type t);

struct ReplyLimits {
  std::size_t max_bytes = std::size_t{8} << 20;     // of one reply: buffered bytes, and its strings
  std::size_t max_elements = std::size_t{1} << 17;  // array elements in one reply, all levels
};

// Turns the bytes of one connection into replies. After an error (garbage,
// a limit) it stays failed: the connection must be closed.
class ReplyReader {
 public:
  explicit ReplyReader(ReplyLimits limits = {});
  ~ReplyReader();
  ReplyReader(const ReplyReader&) = delete;
  ReplyReader& operator=(const ReplyReader&) = delete;

  // Appends bytes as read. False on an error (see error()).
  bool feed(const char* data, std::size_t n);

  enum class Next : uint8_t { Reply, More, Error };
  // The next complete reply into `out`, or More when the bytes so far end
  // inside one, or Error.
  Next next(RedisReply& out);

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

  struct Budget;  // what the reply being read has used (the object functions' privdata)

 private:
  Next fail(std::string message);

  std::unique_ptr<Budget> budget_;
  redisReader* reader_ = nullptr;
  std::size_t fed_since_reply_ = 0;
  std::string error_;
};

// Cluster redirections (-MOVED / -ASK error replies).
struct Redirect {
  enum class Kind : uint8_t { Moved, Ask };
  Kind kind = Kind::Moved;
  uint16_t slot = 0;
  Endpoint target;  // host "": the host of the node that replied (Redis 7 unknown endpoint)
};
// "MOVED 3999 127.0.0.1:6381", "ASK 3999 :6381", "MOVED 1 ::1:7000" (IPv6
// without brackets, as Redis writes it); nullopt for any other error text.
std::optional<Redirect> parseRedirect(std::string_view error_text);

// Commands formatted for the wire, each with the cluster slot of the key it
// is routed by. Built by the caller's thread, handed to RedisClient::submit.
class CommandBatch {
 public:
  struct Limits {
    std::size_t max_commands = 65536;
    std::size_t max_bytes = std::size_t{16} << 20;
  };
  CommandBatch() = default;
  explicit CommandBatch(Limits limits) : limits_(limits) {}

  // Appends one command (args[0] is its name) routed by `key` (its hash
  // slot; "" for a command without a key, sent to any node). False when the
  // batch is full or the command has no arguments; the batch is unchanged.
  bool add(std::string_view key, std::span<const std::string_view> args);
  bool add(std::string_view key, std::initializer_list<std::string_view> args) {
    return add(key, std::span<const std::string_view>(args.begin(), args.size()));
  }

  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  std::size_t bytes() const { return wire_.size(); }
  std::string_view wire(std::size_t i) const {
    return std::string_view(wire_).substr(entries_[i].offset, entries_[i].length);
  }
  uint16_t slot(std::size_t i) const { return entries_[i].slot; }

 private:
  struct Entry {
    uint32_t offset;
    uint32_t length;
    uint16_t slot;
  };
  Limits limits_;
  std::string wire_;
  std::vector<Entry> entries_;
};

}  // namespace exfilwatch::fleet
