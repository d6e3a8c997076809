// registered_domain.h: the registered domain (eTLD+1) of a query name, from
// libpsl and the system public suffix list (ICANN and private sections).
// Tunnels vary the labels left of the registered domain, so detection
// aggregates on it. Look-ups are cached in a fixed-size direct-mapped table
// keyed by the name's last labels, which is exact: see registered_domain.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
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
  std::string_view lookup(std::string_view lower_name, int labels = 0);

  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }
  int keyLabels() const { return key_labels_; }

 private:
  struct Slot {
    std::string key;
    int16_t result_len = -1;  // length of the registered domain within key, -1: none
    bool used = false;
  };
  psl_ctx_st* psl_ = nullptr;
  int key_labels_ = 6;
  std::vector<Slot> cache_;
  uint64_t seed_ = 0;
  std::string scratch_;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
};

}  // namespace exfilwatch::dns
