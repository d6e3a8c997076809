// wire.h: what the TLS analyzers share (src/tls only): a bounded cursor
// over one buffer, a bounded string builder over a caller's buffer, the
// fingerprints' decimal lists and digests. Nothing here allocates.
#pragma once

#include <openssl/evp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "tls/client_hello.h"

namespace exfilwatch::tls::wire {

inline uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// Bounded cursor over one buffer.
struct Cursor {
  const uint8_t* p;
  std::size_t len;
  std::size_t off = 0;
  bool ok = true;
  bool need(std::size_t n) {
    if (!ok || n > len - off) ok = false;
    return ok;
  }
  uint8_t u8() { return need(1) ? p[off++] : 0; }
  uint16_t u16() {
    if (!need(2)) return 0;
    const uint16_t v = be16(p + off);
    off += 2;
    return v;
  }
  uint32_t u24() {
    if (!need(3)) return 0;
    const uint32_t v = (uint32_t{p[off]} << 16) | (uint32_t{p[off + 1]} << 8) | p[off + 2];
    off += 3;
    return v;
  }
  Cursor sub(std::size_t n) {
    if (!need(n)) return Cursor{p, 0, 0, false};
    Cursor c{p + off, n};
    off += n;
    return c;
  }
  bool done() const { return off == len; }
};

inline void hexDigest(const EVP_MD* md, const char* data, std::size_t len, char* out,
                      std::size_t chars) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  if (EVP_Digest(data, len, digest, &dlen, md, nullptr) != 1) dlen = 0;
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < chars; ++i) {
    const unsigned byte = i / 2 < dlen ? digest[i / 2] : 0;
    out[i] = kHex[(i & 1) ? (byte & 15) : (byte >> 4)];
  }
  out[chars] = '\0';
}

// Small bounded string builder over a caller's buffer.
struct Out {
  char* buf;
  std::size_t cap;
  std::size_t n = 0;
  void put(const char* s, std::size_t len) {
    const std::size_t k = std::min(len, cap - n);
    std::memcpy(buf + n, s, k);
    n += k;
  }
  void ch(char c) { put(&c, 1); }
  void dec(unsigned v) {
    char t[12];
    const int k = std::snprintf(t, sizeof t, "%u", v);
    put(t, static_cast<std::size_t>(k));
  }
  void hex4(uint16_t v) {
    char t[5];
    std::snprintf(t, sizeof t, "%04x", v);
    put(t, 4);
  }
};

template <class L>
void decList(Out& o, const L& list) {
  bool first = true;
  for (auto v : list) {
    if (isGrease(static_cast<uint16_t>(v))) continue;
    if (!first) o.ch('-');
    o.dec(v);
    first = false;
  }
}

}  // namespace exfilwatch::tls::wire
