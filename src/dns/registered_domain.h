// registered_domain.h: the registered domain (eTLD+1) of a query name, from
// libpsl and the system public suffix list (ICANN and private sections).
// Tunnels vary the labels left of the registered domain, so detection
// aggregates on it. Look-ups are cached in two fixed-size direct-mapped
// tables, both exact (see registered_domain.cc): one keyed by the name (its
// last labels), and behind it one keyed by the shortest suffix of the name
// that decides the answer, so a new name under a known domain costs a walk
// of the rule tree instead of a libpsl look-up.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

struct psl_ctx_st;

namespace exfilwatch::dns {

inline constexpr const char* kDefaultPublicSuffixList =
    "/usr/share/publicsuffix/public_suffix_list.dat";

class RegisteredDomain {
 public:
  // Loads the list; throws std::runtime_error (configuration time only).
  explicit RegisteredDomain(const std::string& psl_path = kDefaultPublicSuffixList,
                            std::size_t cache_slots = 16384);
  ~RegisteredDomain();
  RegisteredDomain(const RegisteredDomain&) = delete;
  RegisteredDomain& operator=(const RegisteredDomain&) = delete;

  // `lower_name`: lower-cased dotted name without trailing dot. Returns the
  // registered domain as a suffix view of `lower_name`, or an empty view when
  // the name is a public suffix itself, empty, or a single unlisted label.
  // `labels`: the name's label count when the caller knows it (the DNS
  // parser does), 0 otherwise; it saves looking for the last labels.
  std::string_view lookup(std::string_view lower_name, int labels = 0) {
    return lookup(prepare(lower_name, labels));
  }
  // The same in two steps, so that the name cache's memory access can
  // overlap other work: prepare() hashes the name's key and starts loading
  // its cache slot; lookup(prepared) finishes. The name's bytes must stay
  // unchanged in between.
  struct Prepared {
    std::string_view name;
    std::string_view key;  // empty: no registered domain (empty or over-long name)
    uint64_t hash = 0;
  };
  Prepared prepare(std::string_view lower_name, int labels = 0) const;
  std::string_view lookup(const Prepared& prepared);

  uint64_t hits() const { return hits_; }      // answered by the name cache
  uint64_t misses() const { return misses_; }  // not: the deciding-suffix cache was asked
  uint64_t listLookups() const { return list_lookups_; }  // answered by libpsl itself
  int keyLabels() const { return key_labels_; }

 private:
  // A direct-mapped table of answers by exact key. A slot is one cache
  // line holding the key's hash, length, answer and first bytes, so a hit
  // on a name of up to kHead bytes touches nothing else; a longer key's
  // remainder is kept beside it in `tails`.
  struct Table {
    static constexpr std::size_t kHead = 48;
    struct alignas(64) Slot {
      uint64_t hash = 0;
      uint16_t key_len = 0;
      int16_t result_len = -1;  // length of the registered domain within key, -1: none
      bool used = false;
      char head[kHead] = {};
    };
    std::vector<Slot> slots;
    std::vector<std::string> tails;
    std::size_t mask = 0;

    explicit Table(std::size_t size);  // a power of two
    Slot& slotOf(uint64_t hash) { return slots[hash & mask]; }
    const Slot& slotOf(uint64_t hash) const { return slots[hash & mask]; }
    bool holds(const Slot& slot, uint64_t hash, std::string_view key) const;
    void store(Slot& slot, uint64_t hash, std::string_view key, int16_t result_len);
  };
  void loadRuleTree(const std::string& path);
  // The part of `key` that decides its registered domain (a suffix of it).
  std::string_view decidingSuffix(std::string_view key) const;
  // The answer for a deciding suffix, from the suffix table or from libpsl.
  int16_t suffixResult(std::string_view key);
  uint64_t hashOf(std::string_view key) const;

  psl_ctx_st* psl_ = nullptr;
  int key_labels_ = 6;
  // Every suffix that is a rule of the list or a parent of one (ASCII
  // rules and the ASCII parents of the others), and whether a wildcard rule
  // ("*.ck") sits right below it.
  std::unordered_map<std::string_view, bool> rule_nodes_;
  std::string rule_text_;  // storage of rule_nodes_'s keys
  bool have_rule_tree_ = false;
  Table cache_;         // by name (or its last key_labels_ labels)
  Table suffix_cache_;  // by deciding suffix
  uint64_t seed_ = 0;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
  uint64_t list_lookups_ = 0;
};

}  // namespace exfilwatch::dns
