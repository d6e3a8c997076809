// script_util.cc: see script_util.h.
#include "share/script_util.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

namespace exfilwatch::share {

std::string sha1Hex(const std::string& text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(text.data(), text.size(), md, &n, EVP_sha1(), nullptr);
  std::string hex;
  char b[3];
  for (unsigned i = 0; i < n; ++i) {
    std::snprintf(b, sizeof b, "%02x", md[i]);
    hex += b;
  }
  return hex;
}

bool replyInt(const fleet::RedisReply& r, int64_t& out) {
  constexpr int64_t kLimit = int64_t{1} << 48;
  if (r.type == fleet::RedisReply::Type::Nil) {
    out = 0;
    return true;
  }
  if (r.type == fleet::RedisReply::Type::Integer) {
    out = r.integer;
  } else {
    if (r.type != fleet::RedisReply::Type::String || r.str.empty() || r.str.size() > 20)
      return false;
    char* end = nullptr;
    out = std::strtoll(r.str.c_str(), &end, 10);
    if (end == nullptr || *end != '\0') return false;
  }
  out = out > kLimit ? kLimit : out < -kLimit ? -kLimit : out;
  return true;
}

bool parseClaimReply(const fleet::RedisReply& r, bool& granted, int64_t& count) {
  if (r.type != fleet::RedisReply::Type::Array || r.elements.size() != 2 ||
      r.elements[0].type != fleet::RedisReply::Type::Integer ||
      r.elements[1].type != fleet::RedisReply::Type::Integer) {
    return false;
  }
  granted = r.elements[0].integer != 0;
  count = r.elements[1].integer;
  return true;
}

void emitClaimed(score::ClaimOutcome o, const score::SharedStateHook::DeferredAlert& a,
                 const Emit& emit) {
  if (!emit) return;
  switch (o) {
    case score::ClaimOutcome::Suppressed:
      break;
    case score::ClaimOutcome::Initial:
      emit(a.initial, a.initial_fields);
      break;
    case score::ClaimOutcome::Update:
      emit(a.update, a.update_fields);
      break;
    case score::ClaimOutcome::Unknown:  // fail open: local suppression alone
      emit(a.local_update ? a.update : a.initial,
           a.local_update ? a.update_fields : a.initial_fields);
      break;
  }
}

}  // namespace exfilwatch::share
