// cluster_slots.h: Redis Cluster's key space: the hash slot of a key
// (CRC16 of the key, or of its {hash tag}, modulo 16384) and the map of
// slots to masters read from CLUSTER SLOTS.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fleet/redis_protocol.h"
#include "fleet/redis_url.h"

namespace exfilwatch::fleet {

constexpr uint16_t kSlots = 16384;
constexpr uint16_t kAnySlot = 0xffff;  // a command without a key: any node

// CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), as Redis Cluster uses.
uint16_t crc16(std::string_view data);
// The slot of `key`: if it holds a '{' followed later by a '}' with at least
// one byte between the first such pair, only those bytes are hashed.
uint16_t keySlot(std::string_view key);

struct SlotMap {
  std::vector<Endpoint> masters;
  std::array<int16_t, kSlots> owner{};  // index into masters; -1: no master serves it

  SlotMap() { owner.fill(-1); }
  bool complete() const;
  // The index of `e` in masters, added when new; -1 beyond max_masters.
  int indexOf(const Endpoint& e, std::size_t max_masters);
};

// Reads a CLUSTER SLOTS reply. `replying` is the node that answered: an
// empty, nil or "?" address of a master means that node's host. At most
// max_masters masters. False with the reason in *why on anything malformed.
bool parseClusterSlots(const RedisReply& reply, const Endpoint& replying, std::size_t max_masters,
                       SlotMap& out, std::string* why);

}  // namespace exfilwatch::fleet
