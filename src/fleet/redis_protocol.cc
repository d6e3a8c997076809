// redis_protocol.cc: hiredis' reader and command formatting behind owned
// C++ values.
#include "fleet/redis_protocol.h"

#include <hiredis/hiredis.h>

#include <array>
#include <climits>
#include <new>

#include "fleet/cluster_slots.h"

namespace exfilwatch::fleet {

const char* typeName(RedisReply::Type t) {
  static constexpr std::array<const char*, 6> kNames{"nil",    "integer", "string",
                                                     "status", "error",   "array"};
  const auto i = static_cast<std::size_t>(t);
  return i < kNames.size() ? kNames[i] : "?";
}

struct ReplyReader::Budget {
  ReplyLimits limits;
  std::size_t elements = 0;  // values created
  std::size_t reserved = 0;  // elements announced by the arrays so far
  std::size_t bytes = 0;
  const char* exceeded = nullptr;  // which limit the reply broke
};

namespace {

using Budget = ReplyReader::Budget;

// The reader's object functions. They run inside hiredis (C): nothing may
// throw, and a null return makes the reader fail (then it frees the root).
RedisReply* place(const redisReadTask* task, RedisReply::Type type) {
  auto* budget = static_cast<Budget*>(task->privdata);
  if (++budget->elements > budget->limits.max_elements + 1) {  // the root, and what is announced
    budget->exceeded = "elements";
    return nullptr;
  }
  if (task->parent == nullptr) {
    auto* root = new (std::nothrow) RedisReply;
    if (root != nullptr) root->type = type;
    return root;
  }
  auto* parent = static_cast<RedisReply*>(task->parent->obj);
  auto& siblings = parent->elements;
  // Within the capacity reserved for the announced count, so pointers to
  // earlier siblings (parents of what comes next) stay valid.
  if (siblings.size() >= siblings.capacity() || task->idx != static_cast<int>(siblings.size())) {
    budget->exceeded = "array shape";
    return nullptr;
  }
  RedisReply& r = siblings.emplace_back();
  r.type = type;
  return &r;
}

void* createString(const redisReadTask* task, char* str, size_t len) {
  auto* budget = static_cast<Budget*>(task->privdata);
  budget->bytes += len;
  if (budget->bytes > budget->limits.max_bytes) {
    budget->exceeded = "bytes";
    return nullptr;
  }
  const auto type = task->type == REDIS_REPLY_ERROR    ? RedisReply::Type::Error
                    : task->type == REDIS_REPLY_STATUS ? RedisReply::Type::Status
                                                       : RedisReply::Type::String;
  RedisReply* r = place(task, type);
  if (r == nullptr) return nullptr;
  try {
    r->str.assign(str, len);
  } catch (const std::bad_alloc&) {
    budget->exceeded = "memory";
    return nullptr;  // hiredis frees the root, which owns r
  }
  return r;
}

void* createArray(const redisReadTask* task, int elements) {
  auto* budget = static_cast<Budget*>(task->privdata);
  if (elements < 0) return nullptr;
  // Every value but the root is announced by its array first, so bounding
  // the announced total bounds what is reserved and created.
  budget->reserved += static_cast<std::size_t>(elements);
  if (budget->reserved > budget->limits.max_elements) {
    budget->exceeded = "elements";
    return nullptr;
  }
  RedisReply* r = place(task, RedisReply::Type::Array);
  if (r == nullptr) return nullptr;
  try {
    r->elements.reserve(static_cast<std::size_t>(elements));
  } catch (const std::bad_alloc&) {
    budget->exceeded = "memory";
    return nullptr;
  }
  return r;
}

void* createInteger(const redisReadTask* task, long long value) {
  RedisReply* r = place(task, RedisReply::Type::Integer);
  if (r != nullptr) r->integer = value;
  return r;
}

void* createNil(const redisReadTask* task) { return place(task, RedisReply::Type::Nil); }

// hiredis frees only the root (a reply it drops on an error); children live
// inside it.
void freeObject(void* obj) { delete static_cast<RedisReply*>(obj); }

redisReplyObjectFunctions kObjectFunctions{createString, createArray, createInteger, createNil,
                                           freeObject};

}  // namespace

ReplyReader::ReplyReader(ReplyLimits limits) : budget_(std::make_unique<Budget>()) {
  budget_->limits = limits;
  reader_ = redisReaderCreateWithFunctions(&kObjectFunctions);
  if (reader_ == nullptr) {
    error_ = "out of memory";
    return;
  }
  reader_->privdata = budget_.get();  // redisReaderSetPrivdata casts the result to int
}

ReplyReader::~ReplyReader() {
  if (reader_ != nullptr) redisReaderFree(reader_);
}

ReplyReader::Next ReplyReader::fail(std::string message) {
  error_ = std::move(message);
  return Next::Error;
}

bool ReplyReader::feed(const char* data, std::size_t n) {
  if (failed()) return false;
  if (redisReaderFeed(reader_, data, n) != REDIS_OK) {
    fail("out of memory");
    return false;
  }
  fed_since_reply_ += n;
  return true;
}

ReplyReader::Next ReplyReader::next(RedisReply& out) {
  if (failed()) return Next::Error;
  void* obj = nullptr;
  if (redisReaderGetReply(reader_, &obj) != REDIS_OK) {
    if (budget_->exceeded != nullptr) {
      return fail(std::string("reply over its limit (") + budget_->exceeded + ")");
    }
    return fail(std::string("protocol error: ") + reader_->errstr);
  }
  if (obj == nullptr) {
    // The bytes of an unfinished reply (give or take the read that ended
    // the previous one): hiredis would wait for any announced bulk length.
    if (fed_since_reply_ > budget_->limits.max_bytes) {
      return fail("reply over its limit (" + std::to_string(budget_->limits.max_bytes) + " bytes)");
    }
    return Next::More;
  }
  const std::unique_ptr<RedisReply> reply(static_cast<RedisReply*>(obj));
  out = std::move(*reply);
  budget_->elements = 0;
  budget_->reserved = 0;
  budget_->bytes = 0;
  fed_since_reply_ = 0;
  return Next::Reply;
}

std::optional<Redirect> parseRedirect(std::string_view e) {
  Redirect r;
  if (e.substr(0, 6) == "MOVED ") {
    r.kind = Redirect::Kind::Moved;
    e.remove_prefix(6);
  } else if (e.substr(0, 4) == "ASK ") {
    r.kind = Redirect::Kind::Ask;
    e.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const auto space = e.find(' ');
  if (space == 0 || space == std::string_view::npos || space > 5) return std::nullopt;
  unsigned slot = 0;
  for (const char c : e.substr(0, space)) {
    if (c < '0' || c > '9') return std::nullopt;
    slot = slot * 10 + static_cast<unsigned>(c - '0');
  }
  if (slot >= kSlots) return std::nullopt;
  r.slot = static_cast<uint16_t>(slot);
  const std::string_view address = e.substr(space + 1);
  const auto colon = address.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const std::string_view host = address.substr(0, colon);
  if (!parsePort(address.substr(colon + 1), r.target.port)) return std::nullopt;
  if (!host.empty() && !validHost(host)) return std::nullopt;
  r.target.host = std::string(host);
  return r;
}

bool CommandBatch::add(std::string_view key, std::span<const std::string_view> args) {
  if (args.empty() || args.size() > INT_MAX || entries_.size() >= limits_.max_commands) {
    return false;
  }
  constexpr std::size_t kInline = 16;
  std::array<const char*, kInline> inline_ptrs{};
  std::array<size_t, kInline> inline_lens{};
  std::vector<const char*> heap_ptrs;
  std::vector<size_t> heap_lens;
  const char** ptrs = inline_ptrs.data();
  size_t* lens = inline_lens.data();
  if (args.size() > kInline) {
    heap_ptrs.resize(args.size());
    heap_lens.resize(args.size());
    ptrs = heap_ptrs.data();
    lens = heap_lens.data();
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    ptrs[i] = args[i].data();
    lens[i] = args[i].size();
  }
  char* cmd = nullptr;
  const int n = redisFormatCommandArgv(&cmd, static_cast<int>(args.size()), ptrs, lens);
  if (n < 0 || cmd == nullptr) return false;
  const auto length = static_cast<std::size_t>(n);
  const bool fits =
      wire_.size() + length <= limits_.max_bytes && wire_.size() + length <= UINT32_MAX;
  if (fits) {
    entries_.push_back({static_cast<uint32_t>(wire_.size()), static_cast<uint32_t>(length),
                        key.empty() ? kAnySlot : keySlot(key)});
    wire_.append(cmd, length);
  }
  redisFreeCommand(cmd);
  return fits;
}

}  // namespace exfilwatch::fleet
