// message.h: a parsed DNS message (RFC 1035, 2671/6891 EDNS0, 2782 SRV,
// 2535 KEY). Parsing never throws and never reads past the buffer; what it
// refuses is counted as a named weird. What resolvers forward (forward
// compression pointers, opcodes other than QUERY, several questions, classes
// other than IN) is parsed and counted too, never refused: a blind spot would
// hide a tunnel (tests/data/resolver-forwarding). Names keep their original bytes
// (tunnels put raw 8-bit bytes in labels) and a lower-cased twin for
// aggregation. A DnsMessage is reused from packet to packet: its vectors keep
// their capacity, so steady-state parsing does not allocate.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "decode/packet.h"
#include "decode/weird.h"

namespace exfilwatch::dns {

inline constexpr std::size_t kMaxLabelLength = 63;
inline constexpr std::size_t kMaxNameLength = 255;  // wire octets, incl. length bytes and root
inline constexpr int kMaxPointerChain = 16;         // compression pointers followed per name

namespace rrtype {
inline constexpr uint16_t A = 1, NS = 2, CNAME = 5, SOA = 6, NULL_ = 10, PTR = 12, HINFO = 13,
                          MX = 15, TXT = 16, KEY = 25, AAAA = 28, SRV = 33, NAPTR = 35, OPT = 41,
                          DS = 43, RRSIG = 46, NSEC = 47, DNSKEY = 48, NSEC3 = 50, SVCB = 64,
                          HTTPS = 65, SPF = 99, TKEY = 249, TSIG = 250, ANY = 255, CAA = 257;
}  // namespace rrtype

namespace rcode {
inline constexpr uint16_t NOERROR = 0, FORMERR = 1, SERVFAIL = 2, NXDOMAIN = 3, NOTIMP = 4,
                          REFUSED = 5;
}  // namespace rcode

// A name inside the message's text arena (DnsMessage::raw()/lower()): dotted
// form, no trailing dot, the root is empty. `raw` keeps the original bytes
// (a '.' or NUL byte inside a label stays as it is, so use `labels` rather
// than counting dots); `lower` is ASCII lower-cased, other bytes untouched.
// When a name fails to decode, the text holds the labels decoded before the
// failure and `valid` is false.
struct NameRef {
  uint32_t offset = 0;
  uint16_t length = 0;
  uint8_t labels = 0;
  bool valid = false;  // false when the name could not be fully decoded
};

struct TxtSegment {
  uint32_t offset = 0;  // into the message bytes
  uint8_t length = 0;
};

struct EdnsOption {
  uint16_t code = 0;
  uint16_t length = 0;
  uint32_t offset = 0;  // of the option data, into the message bytes
};

enum class RdataKind : uint8_t {
  Raw,      // kept as bytes only
  Address,  // A, AAAA
  Name,     // CNAME, NS, PTR (also DNAME and the obsolete MD, MF, MB, MG, MR)
  Mx,       // preference + exchange
  Srv,      // priority, weight, port, target
  Soa,      // mname, rname, serial, refresh, retry, expire, minimum
  Txt,      // character-strings (TXT, SPF)
  Null,     // opaque bytes (NULL)
  Key,      // flags, protocol, algorithm, public key
  Opt,      // the EDNS0 pseudo-record
};

// Invariant: rdata_offset + rdlength <= DnsMessage::size(). A record whose
// RDATA was cut off (snap length) is stored with rdlength clamped to what is
// there, kind Raw and rdata_ok false.
struct ResourceRecord {
  NameRef name;
  uint16_t type = 0;
  uint16_t rclass = 0;
  uint32_t ttl = 0;
  uint16_t rdlength = 0;
  uint32_t rdata_offset = 0;  // into the message bytes
  RdataKind kind = RdataKind::Raw;
  bool rdata_ok = true;  // false when the RDATA did not decode as its type says

  IpAddress address;            // A, AAAA
  NameRef target;               // CNAME/NS/PTR target, MX exchange, SRV target, SOA mname
  NameRef target2;              // SOA rname
  uint16_t preference = 0;      // MX preference, SRV priority
  uint16_t weight = 0;          // SRV
  uint16_t port = 0;            // SRV
  uint32_t soa_values[5] = {};  // serial, refresh, retry, expire, minimum
  uint16_t key_flags = 0;       // KEY
  uint8_t key_protocol = 0;
  uint8_t key_algorithm = 0;
  uint32_t txt_first = 0;  // index into DnsMessage::txtSegments()
  uint16_t txt_count = 0;
};

struct Question {
  NameRef name;
  uint16_t type = 0;
  uint16_t qclass = 0;
};

enum class Section : uint8_t { Answer, Authority, Additional };

struct Edns {
  bool present = false;
  uint16_t udp_payload_size = 0;
  uint8_t extended_rcode = 0;  // upper 8 bits of the 12-bit rcode
  uint8_t version = 0;
  bool dnssec_ok = false;
  uint32_t option_first = 0;  // index into DnsMessage::ednsOptions()
  uint16_t option_count = 0;
};

struct ParseLimits {
  // Resource records stored per message, answer + authority + additional
  // together; questions are capped separately at the same number. Records
  // beyond it are walked (an OPT among them still fills `edns`) but not
  // stored: dns.too_many_records is counted once and `complete` is false.
  uint32_t max_records = 512;
};

// A byte buffer for decoded name texts with vector-like size/resize, but
// resize never initialises the bytes and never shrinks the storage: the
// parser writes every byte it exposes, so zero-filling would be overhead.
class TextBuffer {
 public:
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return storage_.size(); }
  const uint8_t* data() const { return storage_.data(); }
  uint8_t* data() { return storage_.data(); }
  void clear() { size_ = 0; }
  // Makes room for n bytes in all (never shrinks); data() may move.
  void reserve(std::size_t n) {
    if (n > storage_.size()) storage_.resize(std::max(n, storage_.size() * 2));
  }
  void resize(std::size_t n) {
    if (n > storage_.size()) storage_.resize(std::max(n, storage_.size() * 2));
    size_ = n;
  }

 private:
  std::vector<uint8_t> storage_;
  std::size_t size_ = 0;
};

class DnsMessage {
 public:
  // Header.
  uint16_t id = 0;
  bool qr = false;  // false: query, true: response
  uint8_t opcode = 0;
  bool aa = false, tc = false, rd = false, ra = false, z = false, ad = false, cd = false;
  uint16_t rcode = 0;  // 4 bits from the header, extended by EDNS when present
  uint16_t qdcount = 0, ancount = 0, nscount = 0, arcount = 0;

  std::vector<Question> questions;
  std::vector<ResourceRecord> answers;
  std::vector<ResourceRecord> authorities;
  std::vector<ResourceRecord> additionals;
  Edns edns;

  // True when every question and record the header announced was walked and
  // stored. Individual names (NameRef::valid) and RDATA (rdata_ok) may still
  // have failed inside a complete message: their end on the wire was known.
  bool complete = false;

  const uint8_t* bytes() const { return data_; }
  std::size_t size() const { return size_; }

  // Name texts (see NameRef).
  std::string_view raw(const NameRef& n) const {
    return {reinterpret_cast<const char*>(raw_text_.data()) + n.offset, n.length};
  }
  std::string_view lower(const NameRef& n) const {
    return {reinterpret_cast<const char*>(lower_text_.data()) + n.offset, n.length};
  }
  std::string_view txt(const TxtSegment& s) const {
    return {reinterpret_cast<const char*>(data_) + s.offset, s.length};
  }
  const std::vector<TxtSegment>& txtSegments() const { return txt_segments_; }
  const std::vector<EdnsOption>& ednsOptions() const { return edns_options_; }

  // Resets for reuse; keeps capacity.
  void clear();

 private:
  friend class Parser;
  const uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  TextBuffer raw_text_;
  TextBuffer lower_text_;

  // Names already decoded in this message, by the wire offset they start
  // at: answers point back at the question name, so most record names are
  // served from here instead of being decoded and copied again. Entries of
  // an older generation are empty; clear() and any text rollback bump it.
  struct DecodedName {
    uint32_t generation = 0;
    uint16_t offset = 0;
    uint16_t wire = 0;  // wire octets of the name (length bytes and root)
    uint8_t jumps = 0;  // compression pointers followed while decoding it
    NameRef ref;
  };
  static constexpr std::size_t kDecodedNameSlots = 32;
  DecodedName decoded_names_[kDecodedNameSlots];
  uint32_t name_generation_ = 1;
  void rollbackText(std::size_t mark) {
    raw_text_.resize(mark);
    lower_text_.resize(mark);
    ++name_generation_;
  }
  std::vector<TxtSegment> txt_segments_;
  std::vector<EdnsOption> edns_options_;
  ResourceRecord walked_record_;  // a record walked past the storage limit
};

// Parses one DNS message (UDP payload, or one TCP message without its length
// prefix). Returns false when not even the 12-byte header is there; otherwise
// true, with `complete` telling whether every section decoded. The message
// keeps a pointer to `data`: use it only while `data` lives.
class Parser {
 public:
  explicit Parser(ParseLimits limits = {}) : limits_(limits) {}
  bool parse(const uint8_t* data, std::size_t len, DnsMessage& out, WeirdCounters& weird) const;

 private:
  // Decodes the (possibly compressed) name at `offset` of msg's bytes into
  // msg's text arena and returns ref.valid. `next` is set to the offset just
  // after the name in the stream (after its first pointer, if any) whenever
  // that is known, even if decoding failed later in the pointer chain;
  // otherwise `next` is 0 (never a valid position: the header is 12 bytes).
  bool readName(DnsMessage& msg, std::size_t offset, NameRef& ref, std::size_t& next,
                WeirdCounters& weird) const;
  bool readNameWalk(DnsMessage& msg, std::size_t offset, NameRef& ref, std::size_t& next,
                    WeirdCounters& weird) const;
  // Reads one RR at `off`. Returns false when its end is unknown (the walk
  // must stop); `off` is then unspecified. When `store` is false the record is
  // walked but not kept (an OPT still fills msg.edns).
  bool parseRecord(DnsMessage& msg, std::size_t& off, Section section, bool store,
                   WeirdCounters& weird) const;
  void decodeRdata(DnsMessage& msg, ResourceRecord& rr, WeirdCounters& weird) const;
  void decodeOpt(DnsMessage& msg, ResourceRecord& rr, bool cut, WeirdCounters& weird) const;
  // A name inside RDATA that must end at or before `end`.
  bool rdataName(DnsMessage& msg, std::size_t at, std::size_t end, NameRef& ref, std::size_t& next,
                 WeirdCounters& weird) const;
  ParseLimits limits_;
};

std::string_view rrtypeName(uint16_t type);  // IANA mnemonic ("A", "NSAP-PTR"), empty if unknown
std::string_view rcodeName(uint16_t rcode);  // "NOERROR", "NXDOMAIN", ..., empty if unknown
std::string rrtypeText(uint16_t type);       // rrtypeName, or "TYPE<n>" (RFC 3597)
std::string rcodeText(uint16_t rcode);       // rcodeName, or the number

}  // namespace exfilwatch::dns
