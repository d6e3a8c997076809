// server_hello.cc: bounded ServerHello parsing and JA3S.
#include "tls/server_hello.h"

#include "tls/wire.h"

namespace exfilwatch::tls {

namespace {
using wire::Cursor;
constexpr uint8_t kHandshake = 22;
constexpr uint8_t kServerHelloType = 2;
constexpr uint16_t kSupportedVersions = 0x002b;

bool parseBody(Cursor c, ServerHello& h) {
  h.legacy_version = c.u16();
  c.sub(32);      // random
  c.sub(c.u8());  // legacy_session_id_echo
  h.cipher = c.u16();
  c.u8();  // legacy_compression_method
  if (!c.ok) return false;
  if (c.done()) return true;  // no extensions (TLS 1.0 to 1.2 servers may omit them)
  Cursor exts = c.sub(c.u16());
  if (!c.ok || !c.done()) return false;  // the block must end the message
  while (exts.ok && !exts.done()) {
    const uint16_t type = exts.u16();
    Cursor data = exts.sub(exts.u16());
    if (!exts.ok) return false;
    h.extensions.push(type);
    // The server names the one version it chose (RFC 8446 4.2.1).
    if (type == kSupportedVersions) {
      h.selected_version = data.u16();
      if (!data.ok || !data.done()) return false;
    }
  }
  return exts.ok;
}
}  // namespace

bool parseServerHello(const uint8_t* data, std::size_t len, ServerHello& out,
                      ServerHelloAnomaly& why) {
  out = ServerHello{};
  why = ServerHelloAnomaly::None;
  Cursor c{data, len};
  const uint8_t type = c.u8();
  const uint8_t major = c.u8();
  c.u8();  // minor: any 3.x
  const uint16_t rec_len = c.u16();
  if (!c.ok) {
    why = ServerHelloAnomaly::Truncated;
    return false;
  }
  if (type != kHandshake || major != 3) {
    why = ServerHelloAnomaly::NotHandshake;
    return false;
  }
  // Only what this segment holds of the record: the message must be in it.
  Cursor rec = c.sub(std::min<std::size_t>(rec_len, len - c.off));
  const uint8_t hs_type = rec.u8();
  const uint32_t hs_len = rec.u24();
  if (!rec.ok) {
    why = rec_len < 4 ? ServerHelloAnomaly::Malformed : ServerHelloAnomaly::Truncated;
    return false;
  }
  if (hs_type != kServerHelloType) {
    why = ServerHelloAnomaly::NotServerHello;
    return false;
  }
  if (hs_len + 4 > rec_len) {  // spans records: not followed
    why = ServerHelloAnomaly::Truncated;
    return false;
  }
  Cursor body = rec.sub(hs_len);
  if (!rec.ok) {
    why = ServerHelloAnomaly::Truncated;
    return false;
  }
  if (!parseBody(body, out)) {
    why = ServerHelloAnomaly::Malformed;
    return false;
  }
  return true;
}

std::size_t ja3sString(const ServerHello& h, char* buf, std::size_t cap) {
  wire::Out o{buf, cap};
  o.dec(h.legacy_version);
  o.ch(',');
  if (!isGrease(h.cipher)) o.dec(h.cipher);
  o.ch(',');
  wire::decList(o, h.extensions);
  return o.n;
}

void ja3s(const ServerHello& h, uint8_t (&md5)[16]) {
  char text[512];  // 5 + 1 + 5 + 1 + kMaxExtensions x 6 digits and dashes
  const std::size_t n = ja3sString(h, text, sizeof text);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  if (EVP_Digest(text, n, digest, &dlen, EVP_md5(), nullptr) != 1 || dlen != 16) dlen = 0;
  for (std::size_t i = 0; i < 16; ++i) md5[i] = i < dlen ? digest[i] : 0;
}

void hex16(const uint8_t (&md5)[16], char (&out)[33]) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < 16; ++i) {
    out[2 * i] = kHex[md5[i] >> 4];
    out[2 * i + 1] = kHex[md5[i] & 15];
  }
  out[32] = '\0';
}

}  // namespace exfilwatch::tls
