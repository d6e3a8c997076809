// cluster_slots.cc: hash slots and the CLUSTER SLOTS reply.
#include "fleet/cluster_slots.h"

#include <algorithm>

namespace exfilwatch::fleet {

namespace {

constexpr std::array<uint16_t, 256> kCrcTable = [] {
  std::array<uint16_t, 256> t{};
  for (unsigned i = 0; i < 256; ++i) {
    unsigned crc = i << 8;
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1;
    t[i] = static_cast<uint16_t>(crc);
  }
  return t;
}();

}  // namespace

uint16_t crc16(std::string_view data) {
  uint16_t crc = 0;
  for (const char c : data) {
    crc = static_cast<uint16_t>((crc << 8) ^
                                kCrcTable[((crc >> 8) ^ static_cast<unsigned char>(c)) & 0xff]);
  }
  return crc;
}

uint16_t keySlot(std::string_view key) {
  const auto open = key.find('{');
  if (open != std::string_view::npos) {
    const auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return crc16(key) & (kSlots - 1);
}

bool SlotMap::complete() const {
  return std::none_of(owner.begin(), owner.end(), [](int16_t o) { return o < 0; });
}

int SlotMap::indexOf(const Endpoint& e, std::size_t max_masters) {
  for (std::size_t i = 0; i < masters.size(); ++i) {
    if (masters[i] == e) return static_cast<int>(i);
  }
  if (masters.size() >= max_masters || masters.size() >= 0x7fff) return -1;
  masters.push_back(e);
  return static_cast<int>(masters.size() - 1);
}

bool parseClusterSlots(const RedisReply& reply, const Endpoint& replying, std::size_t max_masters,
                       SlotMap& out, std::string* why) {
  using Type = RedisReply::Type;
  auto fail = [&](const std::string& message) {
    if (why != nullptr) *why = "CLUSTER SLOTS: " + message;
    return false;
  };
  if (reply.type != Type::Array) {
    return fail(reply.isError() ? reply.str
                                : std::string("expected an array, got ") + typeName(reply.type));
  }
  SlotMap map;
  for (const RedisReply& range : reply.elements) {
    if (range.type != Type::Array || range.elements.size() < 3) {
      return fail("expected [start, end, master, ...] entries");
    }
    const RedisReply& start = range.elements[0];
    const RedisReply& end = range.elements[1];
    const RedisReply& node = range.elements[2];
    if (start.type != Type::Integer || end.type != Type::Integer || start.integer < 0 ||
        end.integer >= kSlots || start.integer > end.integer) {
      return fail("bad slot range");
    }
    if (node.type != Type::Array || node.elements.size() < 2 ||
        node.elements[1].type != Type::Integer) {
      return fail("expected [host, port, ...] for the master");
    }
    const RedisReply& host = node.elements[0];
    const int64_t port = node.elements[1].integer;
    if (port < 1 || port > 65535) return fail("bad port " + std::to_string(port));
    Endpoint e;
    e.port = static_cast<uint16_t>(port);
    if (host.type == Type::Nil ||
        (host.type == Type::String && (host.str.empty() || host.str == "?"))) {
      e.host = replying.host;
    } else if (host.type == Type::String && validHost(host.str)) {
      e.host = host.str;
    } else {
      return fail("bad master host");
    }
    const int index = map.indexOf(e, max_masters);
    if (index < 0) return fail("more than " + std::to_string(max_masters) + " masters");
    for (int64_t s = start.integer; s <= end.integer; ++s) {
      auto& owner = map.owner[static_cast<std::size_t>(s)];
      if (owner >= 0) return fail("slot " + std::to_string(s) + " listed twice");
      owner = static_cast<int16_t>(index);
    }
  }
  out = std::move(map);
  return true;
}

}  // namespace exfilwatch::fleet
