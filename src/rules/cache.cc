// cache.cc: SHA-256 keyed, self-checking files of serialized Hyperscan
// databases.
#include "rules/cache.h"

#include <hs/hs.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/escape.h"

namespace exfilwatch::rules {

namespace {

// SHA-256 from OpenSSL's libcrypto (already linked for JA3/JA4): used on
// rule files and cache entries, never on the packet path. A failure of the
// digest (it cannot happen short of a broken library) yields an all-zero
// digest, which never matches a stored one: the cache is then recompiled.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) {
    ok_ = ctx_ != nullptr && EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) == 1;
  }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, std::size_t len) {
    ok_ = ok_ && EVP_DigestUpdate(ctx_, data, len) == 1;
  }
  std::array<uint8_t, 32> finish() {
    std::array<uint8_t, 32> out{};
    unsigned int n = 0;
    if (!ok_ || EVP_DigestFinal_ex(ctx_, out.data(), &n) != 1 || n != out.size()) out.fill(0);
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
  bool ok_ = false;
};

std::string toHex(const uint8_t* p, std::size_t n) {
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) escape::appendHex(out, p[i]);
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
  const std::string head =
      "exfilwatch-rules-cache-v1 fields=" + std::to_string(kFieldCount) + " hs=" + hs_version();
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
  if (data.size() < sizeof kMagic + 8 + 32 ||
      std::memcmp(data.data(), kMagic, sizeof kMagic) != 0) {
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
