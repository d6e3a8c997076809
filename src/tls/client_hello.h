// client_hello.h: the TLS ClientHello (RFC 8446 4.1.2, RFC 5246 7.4.1.2)
// from the first bytes a client sends, and its JA3 and JA4 fingerprints.
//
// In: the client's stream from its first byte (one or more TLS records; the
// handshake message may span records and TCP segments: the caller buffers,
// see TlsTracker). Out: Complete with the fields, NeedMore, or NotHello.
// Every read is bounds-checked; lists are kept in fixed arrays with caps
// (what does not fit is counted, never stored), so parsing never allocates.
// JA3 (Salesforce): MD5 of "version,ciphers,extensions,groups,point_formats"
// in decimal, GREASE values (RFC 8701) removed. JA4 (FoxIO, TLS over TCP):
// "t" version SNI cipher-count extension-count ALPN "_" sha256/12 of sorted
// ciphers "_" sha256/12 of sorted extensions (without SNI and ALPN) "_"
// signature algorithms in order. Hashes come from OpenSSL's libcrypto.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace exfilwatch::tls {

inline constexpr std::size_t kMaxCiphers = 128;
inline constexpr std::size_t kMaxExtensions = 64;
inline constexpr std::size_t kMaxGroups = 48;
inline constexpr std::size_t kMaxPointFormats = 8;
inline constexpr std::size_t kMaxSigAlgs = 48;
inline constexpr std::size_t kMaxVersions = 16;

template <class T, std::size_t N>
struct FixedList {
  std::array<T, N> v{};
  uint16_t n = 0;
  bool overflow = false;
  void push(T x) {
    if (n < N) v[n++] = x; else overflow = true;
  }
  const T* begin() const { return v.data(); }
  const T* end() const { return v.data() + n; }
};

struct ClientHello {
  uint16_t legacy_version = 0;
  FixedList<uint16_t, kMaxCiphers> ciphers;
  FixedList<uint16_t, kMaxExtensions> extensions;  // in order, GREASE included
  FixedList<uint16_t, kMaxGroups> groups;
  FixedList<uint8_t, kMaxPointFormats> point_formats;
  FixedList<uint16_t, kMaxSigAlgs> sig_algs;
  FixedList<uint16_t, kMaxVersions> supported_versions;
  char sni[256] = {};
  uint16_t sni_len = 0;
  char alpn[64] = {};  // first protocol only
  uint8_t alpn_len = 0;
  bool has_sni = false;
  bool has_alpn = false;
  std::string_view serverName() const { return {sni, sni_len}; }
  std::string_view firstAlpn() const { return {alpn, alpn_len}; }
};

enum class HelloStatus : uint8_t { Complete, NeedMore, NotHello };

// `data`: the client's stream from its first byte. `needed` (NeedMore) is the
// total stream length the hello needs, when known (else 0).
HelloStatus parseClientHello(const uint8_t* data, std::size_t len, ClientHello& out,
                             std::size_t& needed);

bool isGrease(uint16_t v);

// 32 lowercase hex digits + NUL.
void ja3(const ClientHello& h, char (&out)[33]);
// Writes the JA3 string itself (before hashing) into `buf`; returns its length.
std::size_t ja3String(const ClientHello& h, char* buf, std::size_t cap);
// "t13d1516h2_8daaf6152771_e5627efa2ab1" + NUL.
void ja4(const ClientHello& h, char (&out)[37]);

}  // namespace exfilwatch::tls
