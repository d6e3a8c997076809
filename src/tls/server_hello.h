// server_hello.h: the TLS ServerHello (RFC 8446 4.1.3, RFC 5246 7.4.1.3)
// from the first bytes a server sends, and its JA3S fingerprint.
//
// In: the server's first TCP payload on a scored TLS port. The ServerHello
// is the first handshake message and small, so it is read from that one
// segment (the record may go on with the certificate: only the message
// must be complete). Out: true with the fields, or false and the named
// anomaly. Every read is bounds-checked; extensions go into a fixed array
// (what does not fit is counted, never stored), so parsing never allocates.
// JA3S (Salesforce, as Suricata computes it): MD5 of
// "legacy_version,cipher,extensions" in decimal, extensions joined by '-',
// GREASE values (RFC 8701) removed.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tls/client_hello.h"

namespace exfilwatch::tls {

struct ServerHello {
  uint16_t legacy_version = 0;
  uint16_t cipher = 0;
  uint16_t selected_version = 0;                   // supported_versions (TLS 1.3), 0 when absent
  FixedList<uint16_t, kMaxExtensions> extensions;  // in order, GREASE included
  // What was agreed: supported_versions when present, else the legacy field.
  uint16_t negotiatedVersion() const {
    return selected_version ? selected_version : legacy_version;
  }
};

// Why parseServerHello said no; each maps to a weird (decode/weird.h).
enum class ServerHelloAnomaly : uint8_t {
  None,
  NotHandshake,    // the first record is not a handshake (an alert, data)
  NotServerHello,  // a handshake record whose first message is another type
  Truncated,       // the message goes on past the bytes we have
  Malformed,       // a length disagrees with its container
};

bool parseServerHello(const uint8_t* data, std::size_t len, ServerHello& out,
                      ServerHelloAnomaly& why);

// The JA3S string (before hashing) into `buf`; returns its length.
std::size_t ja3sString(const ServerHello& h, char* buf, std::size_t cap);
// The JA3S MD5 digest (16 bytes).
void ja3s(const ServerHello& h, uint8_t (&md5)[16]);
// 32 lowercase hex digits + NUL.
void hex16(const uint8_t (&md5)[16], char (&out)[33]);

}  // namespace exfilwatch::tls
