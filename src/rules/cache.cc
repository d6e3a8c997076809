// cache.cc: SHA-256 keyed, self-checking files of serialized Hyperscan
// databases.
#include "rules/cache.h"

#include <hs/hs.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace exfilwatch::rules {

namespace {

// FIPS 180-4 SHA-256, small and dependency-free: used on rule files and cache
// entries (kilobytes to a few megabytes), never on the packet path.
class Sha256 {
 public:
  Sha256() { reset(); }
  void update(const void* data, std::size_t len) {
    const auto* p = static_cast<const uint8_t*>(data);
    total_ += len;
    while (len > 0) {
      const std::size_t n = std::min(len, sizeof block_ - used_);
      std::memcpy(block_ + used_, p, n);
      used_ += n;
      p += n;
      len -= n;
      if (used_ == sizeof block_) {
        compress(block_);
        used_ = 0;
      }
    }
  }
  std::array<uint8_t, 32> finish() {
    const uint64_t bits = total_ * 8;
    const uint8_t pad = 0x80;
    update(&pad, 1);
    const uint8_t zero = 0;
    while (used_ != 56) update(&zero, 1);
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
    update(len, 8);
    std::array<uint8_t, 32> out{};
    for (int i = 0; i < 8; ++i) {
      for (int j = 0; j < 4; ++j) out[i * 4 + j] = static_cast<uint8_t>(h_[i] >> (24 - 8 * j));
    }
    return out;
  }

 private:
  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
  void reset() {
    static constexpr uint32_t init[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                         0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    std::memcpy(h_, init, sizeof h_);
    used_ = 0;
    total_ = 0;
  }
  void compress(const uint8_t* b) {
    static constexpr uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; ++i) {
      w[i] = (uint32_t{b[i * 4]} << 24) | (uint32_t{b[i * 4 + 1]} << 16) |
             (uint32_t{b[i * 4 + 2]} << 8) | uint32_t{b[i * 4 + 3]};
    }
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h_[0], bb = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6],
             h = h_[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      const uint32_t ch = (e & f) ^ (~e & g);
      const uint32_t t1 = h + S1 + ch + k[i] + w[i];
      const uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      const uint32_t maj = (a & bb) ^ (a & c) ^ (bb & c);
      const uint32_t t2 = S0 + maj;
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = bb;
      bb = a;
      a = t1 + t2;
    }
    h_[0] += a;
    h_[1] += bb;
    h_[2] += c;
    h_[3] += d;
    h_[4] += e;
    h_[5] += f;
    h_[6] += g;
    h_[7] += h;
  }

  uint32_t h_[8];
  uint8_t block_[64];
  std::size_t used_ = 0;
  uint64_t total_ = 0;
};

std::string toHex(const uint8_t* p, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

constexpr char kMagic[8] = {'E', 'X', 'F', 'W', 'H', 'S', '0', '1'};

void putU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out += static_cast<char>(v >> (8 * i));
}
bool getU64(const std::string& in, std::size_t& at, uint64_t& v) {
  if (in.size() < at + 8) return false;
  v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<uint8_t>(in[at + i])} << (8 * i);
  at += 8;
  return true;
}

void freeAll(DatabaseArray& dbs) {
  for (auto& db : dbs) {
    if (db) hs_free_database(db);
    db = nullptr;
  }
}

}  // namespace

std::string sha256Hex(const std::string& data) {
  Sha256 h;
  h.update(data.data(), data.size());
  const auto d = h.finish();
  return toHex(d.data(), d.size());
}

std::string cacheKey(const std::vector<RuleSource>& sources) {
  Sha256 h;
  // Everything that changes the compiled bytes or their meaning: format and
  // field layout of this code, Hyperscan's version, the target platform, and
  // each file's name (rule order follows it) and content.
  const std::string head = "exfilwatch-rules-cache-v1 fields=" + std::to_string(kFieldCount) +
                           " hs=" + hs_version();
  h.update(head.data(), head.size() + 1);
  hs_platform_info_t platform{};
  if (hs_populate_platform(&platform) == HS_SUCCESS) h.update(&platform, sizeof platform);
  for (const auto& s : sources) {
    const std::string name = std::filesystem::path(s.path).filename().string();
    const uint64_t sizes[2] = {name.size(), s.content.size()};
    h.update(sizes, sizeof sizes);
    h.update(name.data(), name.size());
    h.update(s.content.data(), s.content.size());
  }
  const auto d = h.finish();
  return toHex(d.data(), d.size());
}

std::string cacheEntryPath(const std::string& dir, const std::string& key) {
  return (std::filesystem::path(dir) / (key + ".hsdb")).string();
}

bool loadCachedDatabases(const std::string& dir, const std::string& key, DatabaseArray& out,
                         std::string& why) {
  out.fill(nullptr);
  const std::string path = cacheEntryPath(dir, key);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = "miss";
    return false;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string data = buffer.str();
  if (data.size() < sizeof kMagic + 8 + 32 || std::memcmp(data.data(), kMagic, sizeof kMagic) != 0) {
    why = "corrupt (bad header)";
    return false;
  }
  const std::string payload = data.substr(0, data.size() - 32);
  Sha256 h;
  h.update(payload.data(), payload.size());
  const auto digest = h.finish();
  if (std::memcmp(digest.data(), data.data() + payload.size(), 32) != 0) {
    why = "corrupt (checksum mismatch)";
    return false;
  }
  std::size_t at = sizeof kMagic;
  uint64_t count = 0;
  if (!getU64(payload, at, count) || count != kFieldCount) {
    why = "corrupt (field count)";
    return false;
  }
  for (std::size_t f = 0; f < kFieldCount; ++f) {
    uint64_t len = 0;
    if (!getU64(payload, at, len) || payload.size() - at < len) {
      freeAll(out);
      why = "corrupt (truncated)";
      return false;
    }
    if (len == 0) continue;
    hs_database_t* db = nullptr;
    if (hs_deserialize_database(payload.data() + at, len, &db) != HS_SUCCESS) {
      freeAll(out);
      why = "corrupt (Hyperscan refused the database)";
      return false;
    }
    out[f] = db;
    at += len;
  }
  why = "hit";
  return true;
}

bool storeCachedDatabases(const std::string& dir, const std::string& key, const DatabaseArray& dbs,
                          std::string& why) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    why = dir + ": " + ec.message();
    return false;
  }
  std::string payload(kMagic, sizeof kMagic);
  putU64(payload, kFieldCount);
  for (const auto* db : dbs) {
    if (!db) {
      putU64(payload, 0);
      continue;
    }
    char* bytes = nullptr;
    std::size_t len = 0;
    if (hs_serialize_database(db, &bytes, &len) != HS_SUCCESS) {
      why = "hs_serialize_database failed";
      return false;
    }
    putU64(payload, len);
    payload.append(bytes, len);
    std::free(bytes);  // Hyperscan's default allocator is malloc
  }
  Sha256 h;
  h.update(payload.data(), payload.size());
  const auto digest = h.finish();
  payload.append(reinterpret_cast<const char*>(digest.data()), digest.size());

  const std::string path = cacheEntryPath(dir, key);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(payload.data(), static_cast<std::streamsize>(payload.size()));
    if (!out) {
      why = tmp + ": write failed";
      std::filesystem::remove(tmp, ec);
      return false;
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    why = path + ": " + ec.message();
    std::filesystem::remove(tmp, ec);
    return false;
  }
  return true;
}

}  // namespace exfilwatch::rules
