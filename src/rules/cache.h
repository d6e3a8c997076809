// cache.h: compiled Hyperscan databases, serialized to disk so that a restart
// (or a reload) with unchanged rule files skips compilation, which for a
// blocklist-sized rule set is most of the start-up time. The key is a SHA-256
// over the rule files (names and bytes), the Hyperscan version and the CPU
// platform Hyperscan compiles for, so a cache entry can never be used with
// other rules, another Hyperscan or another CPU feature set. Each entry
// carries a SHA-256 of its own payload: a truncated or corrupt entry is
// reported as a miss and the caller compiles. Load time only.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "rules/loader.h"
#include "rules/rule.h"

struct hs_database;

namespace exfilwatch::rules {

// SHA-256 of `data`, lower-case hex (64 characters). Exposed for tests.
std::string sha256Hex(const std::string& data);

// The cache key of a rule directory's contents (64 hex characters).
std::string cacheKey(const std::vector<RuleSource>& sources);

using DatabaseArray = std::array<hs_database*, kFieldCount>;  // null: no rule on that field

// Path of the entry for `key` in `dir`.
std::string cacheEntryPath(const std::string& dir, const std::string& key);

// Loads the databases for `key`. Returns true on a hit; false on a miss or a
// corrupt entry (`why` says which; nothing is left allocated in `out`).
bool loadCachedDatabases(const std::string& dir, const std::string& key, DatabaseArray& out,
                         std::string& why);

// Writes the entry (temp file + rename, so readers never see half of it).
// Returns false with `why` on failure; the caller carries on uncached.
bool storeCachedDatabases(const std::string& dir, const std::string& key, const DatabaseArray& dbs,
                          std::string& why);

}  // namespace exfilwatch::rules
