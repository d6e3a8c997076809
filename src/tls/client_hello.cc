// client_hello.cc: bounded ClientHello parsing, JA3 and JA4.
#include "tls/client_hello.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "tls/wire.h"

namespace exfilwatch::tls {

namespace {
using wire::be16;
using wire::Cursor;
using wire::decList;
using wire::hexDigest;
using wire::Out;
constexpr std::size_t kMaxHandshake = 16384;  // larger hellos are refused, not buffered
constexpr uint8_t kHandshake = 22;
constexpr uint8_t kClientHelloType = 1;

void parseExtension(uint16_t type, Cursor e, ClientHello& h) {
  switch (type) {
    case 0x0000: {  // server_name
      h.has_sni = true;
      Cursor list = e.sub(e.u16());
      while (list.ok && !list.done()) {
        const uint8_t kind = list.u8();
        Cursor name = list.sub(list.u16());
        if (!list.ok) break;
        if (kind == 0 && h.sni_len == 0) {
          h.sni_len = static_cast<uint16_t>(std::min(name.len, sizeof h.sni - 1));
          std::memcpy(h.sni, name.p, h.sni_len);
        }
      }
      break;
    }
    case 0x000a: {  // supported_groups
      Cursor list = e.sub(e.u16());
      while (list.ok && list.len - list.off >= 2) h.groups.push(list.u16());
      break;
    }
    case 0x000b: {  // ec_point_formats
      Cursor list = e.sub(e.u8());
      while (list.ok && !list.done()) h.point_formats.push(list.u8());
      break;
    }
    case 0x000d: {  // signature_algorithms
      Cursor list = e.sub(e.u16());
      while (list.ok && list.len - list.off >= 2) h.sig_algs.push(list.u16());
      break;
    }
    case 0x0010: {  // application_layer_protocol_negotiation
      h.has_alpn = true;
      Cursor list = e.sub(e.u16());
      Cursor first = list.sub(list.u8());
      if (list.ok) {
        h.alpn_len = static_cast<uint8_t>(std::min(first.len, sizeof h.alpn - 1));
        std::memcpy(h.alpn, first.p, h.alpn_len);
      }
      break;
    }
    case 0x002b: {  // supported_versions (client: a list)
      Cursor list = e.sub(e.u8());
      while (list.ok && list.len - list.off >= 2) h.supported_versions.push(list.u16());
      break;
    }
    default:
      break;
  }
}

bool parseBody(const uint8_t* p, std::size_t len, ClientHello& h) {
  Cursor c{p, len};
  h.legacy_version = c.u16();
  c.sub(32);      // random
  c.sub(c.u8());  // legacy_session_id
  Cursor ciphers = c.sub(c.u16());
  if (!c.ok || (ciphers.len & 1)) return false;
  while (!ciphers.done()) h.ciphers.push(ciphers.u16());
  c.sub(c.u8());  // legacy_compression_methods
  if (!c.ok) return false;
  if (c.done()) return true;  // no extensions (old clients)
  Cursor exts = c.sub(c.u16());
  if (!c.ok) return false;
  while (exts.ok && !exts.done()) {
    const uint16_t type = exts.u16();
    Cursor data = exts.sub(exts.u16());
    if (!exts.ok) return false;
    h.extensions.push(type);
    parseExtension(type, data, h);
  }
  return exts.ok;
}

}  // namespace

bool isGrease(uint16_t v) { return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff); }

HelloStatus parseClientHello(const uint8_t* data, std::size_t len, ClientHello& out,
                             std::size_t& needed) {
  needed = 0;
  out = ClientHello{};
  // Gather the handshake message from consecutive handshake records.
  uint8_t gathered[kMaxHandshake + 4];
  std::size_t have = 0;
  std::size_t want = 4;  // the handshake header, then 4 + its length
  std::size_t off = 0;
  const uint8_t* direct = nullptr;  // whole message inside the first record: no copy
  while (have < want) {
    if (len - off < 5) {
      needed = off + 5;
      return HelloStatus::NeedMore;
    }
    if (data[off] != kHandshake || data[off + 1] != 3) return HelloStatus::NotHello;
    const uint16_t rec_len = be16(data + off + 3);
    if (rec_len == 0 || rec_len > kMaxHandshake + 2048) return HelloStatus::NotHello;
    const std::size_t body = off + 5;
    const std::size_t avail = std::min<std::size_t>(rec_len, len - body);
    if (have == 0 && avail >= 4) {
      if (data[body] != kClientHelloType) return HelloStatus::NotHello;
      const std::size_t hs_len =
          (std::size_t{data[body + 1]} << 16) | (data[body + 2] << 8) | data[body + 3];
      if (hs_len > kMaxHandshake) return HelloStatus::NotHello;
      want = 4 + hs_len;
      if (rec_len >= want && avail >= want) {
        direct = data + body;
        have = want;
        break;
      }
    }
    const std::size_t take = std::min(avail, sizeof gathered - have);
    std::memcpy(gathered + have, data + body, take);
    have += take;
    if (have >= 4 && want == 4) {
      if (gathered[0] != kClientHelloType) return HelloStatus::NotHello;
      const std::size_t hs_len =
          (std::size_t{gathered[1]} << 16) | (gathered[2] << 8) | gathered[3];
      if (hs_len > kMaxHandshake) return HelloStatus::NotHello;
      want = 4 + hs_len;
    }
    if (have >= want) break;
    if (avail < rec_len) {  // this record is not all here yet
      needed = body + rec_len;
      return HelloStatus::NeedMore;
    }
    off = body + rec_len;
  }
  const uint8_t* msg = direct ? direct : gathered;
  return parseBody(msg + 4, want - 4, out) ? HelloStatus::Complete : HelloStatus::NotHello;
}

std::size_t ja3String(const ClientHello& h, char* buf, std::size_t cap) {
  Out o{buf, cap};
  o.dec(h.legacy_version);
  o.ch(',');
  decList(o, h.ciphers);
  o.ch(',');
  decList(o, h.extensions);
  o.ch(',');
  decList(o, h.groups);
  o.ch(',');
  bool first = true;
  for (uint8_t v : h.point_formats) {
    if (!first) o.ch('-');
    o.dec(v);
    first = false;
  }
  return o.n;
}

void ja3(const ClientHello& h, char (&out)[33]) {
  char buf[4096];
  const std::size_t n = ja3String(h, buf, sizeof buf);
  hexDigest(EVP_md5(), buf, n, out, 32);
}

namespace {
const char* versionCode(uint16_t v) {
  switch (v) {
    case 0x0304:
      return "13";
    case 0x0303:
      return "12";
    case 0x0302:
      return "11";
    case 0x0301:
      return "10";
    case 0x0300:
      return "s3";
    case 0x0002:
      return "s2";
    case 0xfeff:
      return "d1";
    case 0xfefd:
      return "d2";
    case 0xfefc:
      return "d3";
    default:
      return "00";
  }
}
bool alnum(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
}  // namespace

void ja4(const ClientHello& h, char (&out)[37]) {
  static constexpr char kHex[] = "0123456789abcdef";
  uint16_t version = h.legacy_version;
  bool any = false;
  for (uint16_t v : h.supported_versions) {
    if (isGrease(v)) continue;
    if (!any || v > version) version = v;
    any = true;
  }
  uint16_t ciphers[kMaxCiphers];
  std::size_t nc = 0;
  for (uint16_t v : h.ciphers)
    if (!isGrease(v)) ciphers[nc++] = v;
  uint16_t exts[kMaxExtensions];
  std::size_t ne = 0, ne_all = 0;
  for (uint16_t v : h.extensions) {
    if (isGrease(v)) continue;
    ++ne_all;
    if (v != 0x0000 && v != 0x0010) exts[ne++] = v;
  }
  char a[11];
  char alpn[3] = "00";
  if (h.alpn_len > 0) {
    const auto f = static_cast<unsigned char>(h.alpn[0]);
    const auto l = static_cast<unsigned char>(h.alpn[h.alpn_len - 1]);
    if (alnum(f) && alnum(l)) {
      alpn[0] = static_cast<char>(f);
      alpn[1] = static_cast<char>(l);
    } else {
      alpn[0] = kHex[f >> 4];
      alpn[1] = kHex[l & 15];
    }
  }
  std::snprintf(a, sizeof a, "t%s%c%02u%02u%s", versionCode(version), h.has_sni ? 'd' : 'i',
                static_cast<unsigned>(std::min<std::size_t>(nc, 99)),
                static_cast<unsigned>(std::min<std::size_t>(ne_all, 99)), alpn);

  char text[2048];
  char b[13], c[13];
  std::sort(ciphers, ciphers + nc);
  if (nc == 0) {
    std::memcpy(b, "000000000000", 13);
  } else {
    Out o{text, sizeof text};
    for (std::size_t i = 0; i < nc; ++i) {
      if (i) o.ch(',');
      o.hex4(ciphers[i]);
    }
    hexDigest(EVP_sha256(), text, o.n, b, 12);
  }
  std::sort(exts, exts + ne);
  if (ne == 0) {
    std::memcpy(c, "000000000000", 13);
  } else {
    Out o{text, sizeof text};
    for (std::size_t i = 0; i < ne; ++i) {
      if (i) o.ch(',');
      o.hex4(exts[i]);
    }
    bool first = true;
    for (uint16_t s : h.sig_algs) {
      if (isGrease(s)) continue;
      o.ch(first ? '_' : ',');
      o.hex4(s);
      first = false;
    }
    hexDigest(EVP_sha256(), text, o.n, c, 12);
  }
  std::snprintf(out, sizeof out, "%s_%s_%s", a, b, c);
}

}  // namespace exfilwatch::tls
