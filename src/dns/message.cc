// message.cc: the DNS message parser (RFC 1035 header, sections and name
// compression; RFC 6891 EDNS0; RDATA of the types tunnels and detection look
// at). Everything read from the wire is bounds-checked against the length we
// were given, which may be a snap-length-truncated mirror copy: we decode what
// is there, count what we refuse as a named weird and never throw. Storage is
// the caller's reused DnsMessage, so after warm-up a message costs no
// allocation.
#include "dns/message.h"

#include <array>
#include <charconv>
#include <cstring>

namespace exfilwatch::dns {

namespace {

constexpr std::size_t kHeaderSize = 12;
constexpr std::size_t kRrFixedSize = 10;  // type, class, ttl, rdlength
constexpr uint16_t kClassIn = 1;
// Class values that make an empty RDATA legitimate (RFC 2136 UPDATE deletes).
constexpr uint16_t kClassNone = 254;
constexpr uint16_t kClassAny = 255;
// Initial arena size: enough for a typical response, so the first messages
// do not grow the vectors byte by byte.
constexpr std::size_t kInitialTextCapacity = 2048;
const ResourceRecord kBlankRecord{};

// ASCII-only lower-casing of a whole name, eight bytes at a time (SWAR):
// for each byte, bit 7 of `upper` is set when it is 'A'..'Z', and 0x80 >> 2
// is the 0x20 that lower-cases it. Bytes >= 0x80 are left alone. Reads and
// writes whole words up to n rounded up to 8: callers guarantee the room.
void lowerCopyWords(uint8_t* __restrict out, const uint8_t* __restrict in, std::size_t n) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  for (std::size_t i = 0; i < n; i += 8) {
    uint64_t w;
    std::memcpy(&w, in + i, 8);
    const uint64_t low7 = w & ~kHigh;
    const uint64_t above_z = low7 + (0x7F - 'Z') * kOnes;
    const uint64_t from_a = low7 + (0x80 - 'A') * kOnes;
    const uint64_t upper = ~w & (from_a ^ above_z) & kHigh;
    w |= upper >> 2;
    std::memcpy(out + i, &w, 8);
  }
}

}  // namespace

void DnsMessage::clear() {
  id = 0;
  qr = false;
  opcode = 0;
  aa = tc = rd = ra = z = ad = cd = false;
  rcode = 0;
  qdcount = ancount = nscount = arcount = 0;
  questions.clear();
  answers.clear();
  authorities.clear();
  additionals.clear();
  edns = Edns{};
  complete = false;
  data_ = nullptr;
  size_ = 0;
  raw_text_.clear();
  lower_text_.clear();
  ++name_generation_;
  txt_segments_.clear();
  edns_options_.clear();
}

// The two commonest names in a message take no walk: the root (OPT owners)
// and one pointer to a name decoded before (every answer's owner). Kept
// small so it inlines; the walk is readNameWalk.
inline bool Parser::readName(DnsMessage& msg, std::size_t offset, NameRef& ref, std::size_t& next,
                             WeirdCounters& weird) const {
  const uint8_t* d = msg.data_;
  const std::size_t len = msg.size_;
  if (offset < len) {
    if (d[offset] == 0) {
      next = offset + 1;
      ref = NameRef{static_cast<uint32_t>(msg.raw_text_.size()), 0, 0, true};
      return true;
    }
    if ((d[offset] & 0xC0) == 0xC0 && len - offset >= 2) {
      const std::size_t target = (std::size_t{d[offset] & 0x3Fu} << 8) | d[offset + 1];
      const auto& known = msg.decoded_names_[target % DnsMessage::kDecodedNameSlots];
      if (target < offset && known.generation == msg.name_generation_ && known.offset == target &&
          known.jumps + 1 <= kMaxPointerChain) {
        next = offset + 2;
        ref = known.ref;
        return true;
      }
    }
  }
  return readNameWalk(msg, offset, ref, next, weird);
}

bool Parser::readNameWalk(DnsMessage& msg, std::size_t offset, NameRef& ref, std::size_t& next,
                          WeirdCounters& weird) const {
  // The result is built in locals and stored once: writing `ref` field by
  // field and then copying it whole makes the wide load wait on the narrow
  // stores before it (a store-forwarding stall per name).
  const uint8_t* d = msg.data_;
  const std::size_t len = msg.size_;
  const std::size_t start = msg.raw_text_.size();

  // A decoded name never exceeds kMaxNameLength text bytes: make room once,
  // then write through plain pointers (no per-label growth checks).
  msg.raw_text_.reserve(start + kMaxNameLength + 1);
  msg.lower_text_.reserve(start + kMaxNameLength + 1);
  uint8_t* __restrict const raw = msg.raw_text_.data() + start;
  uint8_t* __restrict const lower = msg.lower_text_.data() + start;

  // The walk's state lives in plain locals (no lambda captures them): byte
  // stores into the text may alias anything, and state kept in memory was
  // reloaded after every one of them.
  std::size_t used = 0;
  uint32_t labels = 0;
  std::size_t pos = offset;
  std::size_t wire = 0;  // octets of the labels so far, length bytes included
  int jumps = 0;
  std::size_t after = 0;  // the local copy of `next`
  // Until the first pointer the labels sit one after another, and the text
  // is the wire bytes after the first length octet with each later length
  // octet turned into a '.'. That run is copied once when it ends (exactly
  // its bytes) and its dots patched in at the end: the positions of those
  // dots are kept here (at most 127 labels fit in 255 octets).
  bool in_first_run = true;
  uint8_t run_dots[128];
  std::size_t run_dot_count = 0;
  bool ok = false;
  Weird failure = Weird::DnsNameTruncated;

  // Terminates: every label step adds at least 2 to `wire`, which is capped
  // at kMaxNameLength, and every pointer step adds one to `jumps`, capped at
  // kMaxPointerChain. So a pointer loop, forward or backward, ends in one of
  // those two weirds, and a name costs at most 127 label and 16 pointer
  // steps wherever its pointers go: a message's work stays linear in its
  // length.
  bool forward = false;
  for (;;) {
    if (pos >= len) {
      failure = Weird::DnsNameTruncated;
      break;
    }
    const uint8_t b = d[pos];
    const unsigned kind = b & 0xC0U;
    if (kind == 0x00) {
      if (b == 0) {
        if (after == 0) after = pos + 1;
        ok = true;
        break;
      }
      // +1 for the root octet that must still follow.
      if (wire + 1 + b + 1 > kMaxNameLength) {
        failure = Weird::DnsNameTooLong;
        break;
      }
      if (b > len - pos - 1) {
        failure = Weird::DnsNameTruncated;
        break;
      }
      // Text so far <= wire - 1, plus '.' and b bytes: within the room
      // reserved above because wire + 1 + b + 1 <= kMaxNameLength.
      if (in_first_run) {
        if (labels > 0) run_dots[run_dot_count++] = static_cast<uint8_t>(used++);
      } else {
        if (labels > 0) raw[used++] = '.';  // a pointer was followed
        std::memcpy(raw + used, d + pos + 1, b);
      }
      used += b;
      ++labels;
      wire += 1 + std::size_t{b};
      pos += 1 + std::size_t{b};
      continue;
    }
    if (kind != 0xC0) {
      // 0x41 (binary labels, RFC 2673, withdrawn) and 0x7F (reserved for
      // more extended types, RFC 6891) are label types, as is 10xxxxxx
      // (reserved). Any other 01xxxxxx octet is what a broken encoder
      // writes for a 64..126-byte label.
      failure =
          kind == 0x40 && b != 0x41 && b != 0x7F ? Weird::DnsLabelTooLong : Weird::DnsBadLabelType;
      break;
    }
    if (len - pos < 2) {
      failure = Weird::DnsNameTruncated;
      break;
    }
    const std::size_t target = (std::size_t{b & 0x3FU} << 8) | d[pos + 1];
    // The name ends in the stream after its first pointer, whatever the
    // chain does: the caller can go on with the next field.
    if (after == 0) after = pos + 2;
    // RFC 1035 4.1.4 means a pointer to a prior occurrence, but resolvers
    // (dnsmasq, Google Public DNS) forward and answer names whose pointer
    // goes forward: followed like any other, counted once per name.
    if (target >= pos) forward = true;
    if (++jumps > kMaxPointerChain) {
      failure = Weird::DnsPointerChainTooLong;
      break;
    }
    if (in_first_run) {
      in_first_run = false;
      if (used != 0) std::memcpy(raw, d + offset + 1, used);
    }
    const auto& known = msg.decoded_names_[target % DnsMessage::kDecodedNameSlots];
    if (known.generation == msg.name_generation_ && known.offset == target &&
        jumps + known.jumps <= kMaxPointerChain && wire + known.wire <= kMaxNameLength) {
      // The rest of the name was decoded before and passed the same
      // checks: take its text instead of walking its labels again.
      if (labels == 0) {
        next = after;
        ref = known.ref;
        return true;  // the identical name, already remembered
      }
      raw[used++] = '.';
      std::memcpy(raw + used, msg.raw_text_.data() + known.ref.offset, known.ref.length);
      used += known.ref.length;
      labels += known.ref.labels;
      wire += known.wire - 1U;
      jumps += known.jumps;
      ok = true;
      break;
    }
    pos = target;
  }

  next = after;
  if (forward) weird.add(Weird::DnsPointerForward);
  if (!ok) weird.add(failure);
  if (in_first_run) {
    if (used != 0) std::memcpy(raw, d + offset + 1, used);
  }
  // Publishes the text, raw and lower-cased. Room: kMaxNameLength + 1
  // bytes were reserved and used <= 253, so the word-wise copy stays inside
  // both buffers. Length octets (1..63) are not upper-case letters, so
  // lowering before the dots go in is safe.
  msg.raw_text_.resize(start + used);
  msg.lower_text_.resize(start + used);
  lowerCopyWords(lower, raw, used);
  for (std::size_t k = 0; k < run_dot_count; ++k) {
    raw[run_dots[k]] = '.';
    lower[run_dots[k]] = '.';
  }
  // Built in a local and stored once: a NameRef written field by field and
  // then copied whole (into the remembered-names slot, or the caller's
  // record) made the 8-byte load wait on the narrow stores before it.
  const NameRef result{static_cast<uint32_t>(start), static_cast<uint16_t>(used),
                       static_cast<uint8_t>(labels), ok};
  ref = result;
  // A good name is remembered, so a later pointer to `offset` reuses it.
  if (ok && offset <= 0xFFFF) {
    auto& slot = msg.decoded_names_[offset % DnsMessage::kDecodedNameSlots];
    slot.generation = msg.name_generation_;
    slot.offset = static_cast<uint16_t>(offset);
    slot.wire = static_cast<uint16_t>(wire + 1);
    slot.jumps = static_cast<uint8_t>(jumps);
    slot.ref = result;
  }
  return ok;
}

bool Parser::rdataName(DnsMessage& msg, std::size_t at, std::size_t end, NameRef& ref,
                       std::size_t& next, WeirdCounters& weird) const {
  // Decoded against the whole message, since compression pointers may reach
  // back before the RDATA; whatever readName refuses it counts itself. An
  // in-bounds name that runs past the RDATA is a length error of the record.
  if (at >= end) {
    // No room for even the root octet: reading on would decode the next
    // record (or report truncation of a message that is not truncated).
    ref = NameRef{};
    ref.offset = static_cast<uint32_t>(msg.raw_text_.size());
    next = 0;
    weird.add(Weird::DnsRdataBadLength);
    return false;
  }
  if (!readName(msg, at, ref, next, weird)) return false;
  if (next > end) {
    weird.add(Weird::DnsRdataBadLength);
    return false;
  }
  return true;
}

void Parser::decodeOpt(DnsMessage& msg, ResourceRecord& rr, bool cut, WeirdCounters& weird) const {
  rr.kind = RdataKind::Opt;
  if (!rr.name.valid || rr.name.labels != 0) weird.add(Weird::DnsOptNotRoot);
  if (msg.edns.present) {
    // Only the first OPT counts (RFC 6891 §6.1.1 says FORMERR).
    weird.add(Weird::DnsOptMultiple);
    return;
  }
  Edns& e = msg.edns;
  e.present = true;
  e.udp_payload_size = rr.rclass;
  e.extended_rcode = static_cast<uint8_t>(rr.ttl >> 24);
  e.version = static_cast<uint8_t>(rr.ttl >> 16);
  e.dnssec_ok = (rr.ttl & 0x8000u) != 0;
  e.option_first = static_cast<uint32_t>(msg.edns_options_.size());
  msg.rcode = static_cast<uint16_t>((uint16_t{e.extended_rcode} << 4) | (msg.rcode & 0x0F));

  const ByteReader r(msg.data_, msg.size_);
  std::size_t pos = rr.rdata_offset;
  const std::size_t end = std::size_t{rr.rdata_offset} + rr.rdlength;
  while (pos < end) {
    uint16_t code = 0;
    uint16_t length = 0;
    if (end - pos < 4 || !r.u16(pos, code) || !r.u16(pos + 2, length) || length > end - pos - 4) {
      // Running out inside cut-off RDATA was already counted as
      // dns.record_truncated; otherwise the option list itself is wrong.
      if (!cut) weird.add(Weird::DnsOptBad);
      rr.rdata_ok = false;
      break;
    }
    // Built from locals: an option assembled field by field on the stack
    // and then copied whole stalls on store forwarding.
    msg.edns_options_.push_back(EdnsOption{code, length, static_cast<uint32_t>(pos + 4)});
    pos += 4 + std::size_t{length};
  }
  e.option_count = static_cast<uint16_t>(msg.edns_options_.size() - e.option_first);
}

void Parser::decodeRdata(DnsMessage& msg, ResourceRecord& rr, WeirdCounters& weird) const {
  const ByteReader r(msg.data_, msg.size_);
  const std::size_t start = rr.rdata_offset;
  const std::size_t end = start + rr.rdlength;
  const uint8_t* p = msg.data_ + start;

  // An empty RDATA with class NONE/ANY is an UPDATE prerequisite or delete
  // (RFC 2136 §2.4, §2.5): legitimate for every type.
  if (rr.rdlength == 0 && (rr.rclass == kClassNone || rr.rclass == kClassAny)) return;

  auto badLength = [&] {
    weird.add(Weird::DnsRdataBadLength);
    rr.rdata_ok = false;
  };
  // Reads a name at `at` that must end by `end`; `after` is where it ends.
  auto name = [&](std::size_t at, NameRef& ref, std::size_t& after) {
    if (!rdataName(msg, at, end, ref, after, weird)) {
      rr.rdata_ok = false;
      return false;
    }
    return true;
  };

  switch (rr.type) {
    case rrtype::A:
      rr.kind = RdataKind::Address;
      if (rr.rdlength != 4) return badLength();
      rr.address.assignV4(p);
      return;
    case rrtype::AAAA:
      rr.kind = RdataKind::Address;
      if (rr.rdlength != 16) return badLength();
      rr.address.assignV6(p);
      return;
    case rrtype::CNAME:
    case rrtype::NS:
    case rrtype::PTR:
    case 3:     // MD
    case 4:     // MF
    case 7:     // MB
    case 8:     // MG
    case 9:     // MR
    case 39: {  // DNAME
      rr.kind = RdataKind::Name;
      std::size_t after = 0;
      if (!name(start, rr.target, after)) return;
      if (after != end) badLength();
      return;
    }
    case rrtype::MX: {
      rr.kind = RdataKind::Mx;
      if (rr.rdlength < 3) return badLength();  // preference + at least the root
      rr.preference = loadBe16(p);
      std::size_t after = 0;
      if (!name(start + 2, rr.target, after)) return;
      if (after != end) badLength();
      return;
    }
    case rrtype::SRV: {
      rr.kind = RdataKind::Srv;
      if (rr.rdlength < 7) return badLength();
      rr.preference = loadBe16(p);
      rr.weight = loadBe16(p + 2);
      rr.port = loadBe16(p + 4);
      // RFC 2782 forbids compressing the target, but servers do it and the
      // pointer is harmless to follow.
      std::size_t after = 0;
      if (!name(start + 6, rr.target, after)) return;
      if (after != end) badLength();
      return;
    }
    case rrtype::SOA: {
      rr.kind = RdataKind::Soa;
      std::size_t after = 0;
      if (!name(start, rr.target, after)) return;
      if (!name(after, rr.target2, after)) return;
      if (end - after != 20) return badLength();
      for (std::size_t i = 0; i < 5; ++i) r.u32(after + 4 * i, rr.soa_values[i]);
      return;
    }
    case rrtype::TXT:
    case rrtype::SPF: {
      rr.kind = RdataKind::Txt;
      rr.txt_first = static_cast<uint32_t>(msg.txt_segments_.size());
      std::size_t pos = start;
      while (pos < end) {
        const uint8_t n = msg.data_[pos];
        if (n > end - pos - 1) {
          // A character-string running past the RDATA: keep the strings
          // before it; the tunnel payload is usually in them.
          weird.add(Weird::DnsTxtBadLength);
          rr.rdata_ok = false;
          break;
        }
        msg.txt_segments_.push_back(TxtSegment{static_cast<uint32_t>(pos + 1), n});
        pos += 1 + std::size_t{n};
      }
      rr.txt_count = static_cast<uint16_t>(msg.txt_segments_.size() - rr.txt_first);
      return;
    }
    case rrtype::NULL_:
      // Anything up to 65535 bytes (RFC 1035 §3.3.10): iodine's downstream.
      rr.kind = RdataKind::Null;
      return;
    case rrtype::KEY:
      rr.kind = RdataKind::Key;
      if (rr.rdlength < 4) return badLength();
      rr.key_flags = loadBe16(p);
      rr.key_protocol = p[2];
      rr.key_algorithm = p[3];
      return;
    default:
      rr.kind = RdataKind::Raw;
      return;
  }
}

bool Parser::parseRecord(DnsMessage& msg, std::size_t& off, Section section, bool store,
                         WeirdCounters& weird) const {
  // Built in place in its section (no copy of the record); a record that
  // is only walked goes to a scratch slot.
  std::vector<ResourceRecord>* dest = nullptr;
  if (store) {
    dest = section == Section::Answer      ? &msg.answers
           : section == Section::Authority ? &msg.authorities
                                           : &msg.additionals;
  }
  // Copied from a blank record rather than value-initialised, which g++
  // compiles to a `rep stos` whose start-up cost dwarfs the record.
  ResourceRecord& rr =
      dest ? dest->emplace_back(kBlankRecord) : (msg.walked_record_ = kBlankRecord);
  const std::size_t text_mark = msg.raw_text_.size();
  auto give_up = [&] {
    if (dest) dest->pop_back();
    msg.rollbackText(text_mark);
    return false;
  };
  std::size_t next = 0;
  readName(msg, off, rr.name, next, weird);
  // The name's end is unknown, so nothing after it can be found.
  if (next == 0) return give_up();

  const ByteReader r(msg.data_, msg.size_);
  if (!r.has(next, kRrFixedSize)) {
    weird.add(Weird::DnsRecordTruncated);
    return give_up();
  }
  r.u16(next, rr.type);
  r.u16(next + 2, rr.rclass);
  r.u32(next + 4, rr.ttl);
  r.u16(next + 8, rr.rdlength);
  rr.rdata_offset = static_cast<uint32_t>(next + kRrFixedSize);

  bool cut = false;
  const std::size_t avail = msg.size_ - rr.rdata_offset;
  if (rr.rdlength > avail) {
    // Keep the invariant rdata_offset + rdlength <= size(): consumers slice
    // the RDATA without checking.
    weird.add(Weird::DnsRecordTruncated);
    rr.rdlength = static_cast<uint16_t>(avail);
    rr.rdata_ok = false;
    cut = true;
  }
  off = std::size_t{rr.rdata_offset} + rr.rdlength;

  if (rr.type == rrtype::OPT) {
    if (section == Section::Additional) {
      decodeOpt(msg, rr, cut, weird);
    } else {
      // OPT only belongs in the additional section (RFC 6891 §6.1.1).
      weird.add(Weird::DnsOptBad);
      rr.rdata_ok = false;
    }
  } else if (store && !cut) {
    decodeRdata(msg, rr, weird);
  }

  // Walked only: give back its text so the arena stays bounded by what is
  // stored.
  if (!store) msg.rollbackText(text_mark);
  return !cut;
}

bool Parser::parse(const uint8_t* data, std::size_t len, DnsMessage& out,
                   WeirdCounters& weird) const {
  out.clear();
  out.data_ = data;
  out.size_ = data ? len : 0;
  const ByteReader r(out.data_, out.size_);
  if (!r.has(0, kHeaderSize)) {
    weird.add(Weird::DnsTruncatedHeader);
    return false;
  }
  if (out.raw_text_.capacity() < kInitialTextCapacity) {
    out.raw_text_.reserve(kInitialTextCapacity);
    out.lower_text_.reserve(kInitialTextCapacity);
  }

  uint16_t flags = 0;
  r.u16(0, out.id);
  r.u16(2, flags);
  r.u16(4, out.qdcount);
  r.u16(6, out.ancount);
  r.u16(8, out.nscount);
  r.u16(10, out.arcount);
  out.qr = (flags & 0x8000) != 0;
  out.opcode = static_cast<uint8_t>((flags >> 11) & 0x0F);
  out.aa = (flags & 0x0400) != 0;
  out.tc = (flags & 0x0200) != 0;
  out.rd = (flags & 0x0100) != 0;
  out.ra = (flags & 0x0080) != 0;
  out.z = (flags & 0x0040) != 0;
  out.ad = (flags & 0x0020) != 0;
  out.cd = (flags & 0x0010) != 0;
  out.rcode = flags & 0x0F;

  // Not refused: a resolver forwards them (dnsmasq passes every opcode and
  // class through), so a tunnel may use them. UPDATE's zone, prerequisite,
  // update and additional sections have the layout of the question, answer,
  // authority and additional ones; IQUERY, NOTIFY and the rest use those.
  switch (out.opcode) {
    case 0:
      break;
    case 1:
      weird.add(Weird::DnsOpcodeIquery);
      break;
    case 4:
      weird.add(Weird::DnsOpcodeNotify);
      break;
    case 5:
      weird.add(Weird::DnsOpcodeUpdate);
      break;
    default:  // STATUS, DSO and the unassigned ones
      weird.add(Weird::DnsOpcodeOther);
      break;
  }
  if (out.qdcount > 1) weird.add(Weird::DnsMultipleQuestions);

  std::size_t off = kHeaderSize;
  bool class_not_in = false;
  bool walked = true;   // every announced entry was walked
  bool dropped = false;  // some were walked but not stored

  for (uint32_t i = 0; i < out.qdcount; ++i) {
    if (off >= out.size_) {
      // Announced but not there at all (counts too high, or the snap length
      // ended exactly between entries).
      weird.add(Weird::DnsQuestionTruncated);
      walked = false;
      break;
    }
    const std::size_t text_mark = out.raw_text_.size();
    std::size_t next = 0;
    NameRef name;
    uint16_t type = 0;
    uint16_t qclass = 0;
    // A question whose name does not decode (forward or out-of-range
    // pointer, loop, bad label) ends the walk: its type and class would be
    // read from bytes of unknown meaning, and junk must not be reported as
    // a question. The weird is counted; the message is incomplete.
    if (!readName(out, off, name, next, weird) || next == 0) {
      out.rollbackText(text_mark);
      walked = false;
      break;
    }
    if (!r.u16(next, type) || !r.u16(next + 2, qclass)) {
      weird.add(Weird::DnsQuestionTruncated);
      out.rollbackText(text_mark);
      walked = false;
      break;
    }
    off = next + 4;
    class_not_in |= qclass != kClassIn;
    if (out.questions.size() < limits_.max_records) {
      // From locals, not a Question filled on the stack and copied: that
      // copy waited on the narrow stores before it (store forwarding).
      out.questions.push_back(Question{name, type, qclass});
    } else {
      out.rollbackText(text_mark);
      dropped = true;
    }
  }

  if (class_not_in) weird.add(Weird::DnsClassNotIn);

  const struct {
    uint16_t count;
    Section section;
  } sections[] = {{out.ancount, Section::Answer},
                  {out.nscount, Section::Authority},
                  {out.arcount, Section::Additional}};
  uint32_t stored = 0;
  for (const auto& s : sections) {
    for (uint32_t i = 0; walked && i < s.count; ++i) {
      if (off >= out.size_) {
        weird.add(Weird::DnsRecordTruncated);
        walked = false;
        break;
      }
      const bool store = stored < limits_.max_records;
      if (!parseRecord(out, off, s.section, store, weird)) {
        walked = false;
        break;
      }
      if (store) {
        ++stored;
      } else {
        dropped = true;
      }
    }
  }

  if (dropped) weird.add(Weird::DnsTooManyRecords);
  if (walked && off < out.size_) weird.add(Weird::DnsTrailingBytes);
  out.complete = walked && !dropped;
  return true;
}

namespace {

struct TypeName {
  uint16_t type;
  std::string_view name;
};

// IANA "Resource Record (RR) TYPEs", sorted by value for binary search.
constexpr TypeName kTypeNames[] = {
    {1, "A"},           {2, "NS"},         {3, "MD"},        {4, "MF"},       {5, "CNAME"},
    {6, "SOA"},         {7, "MB"},         {8, "MG"},        {9, "MR"},       {10, "NULL"},
    {11, "WKS"},        {12, "PTR"},       {13, "HINFO"},    {14, "MINFO"},   {15, "MX"},
    {16, "TXT"},        {17, "RP"},        {18, "AFSDB"},    {19, "X25"},     {20, "ISDN"},
    {21, "RT"},         {22, "NSAP"},      {23, "NSAP-PTR"}, {24, "SIG"},     {25, "KEY"},
    {26, "PX"},         {27, "GPOS"},      {28, "AAAA"},     {29, "LOC"},     {30, "NXT"},
    {31, "EID"},        {32, "NIMLOC"},    {33, "SRV"},      {34, "ATMA"},    {35, "NAPTR"},
    {36, "KX"},         {37, "CERT"},      {38, "A6"},       {39, "DNAME"},   {40, "SINK"},
    {41, "OPT"},        {42, "APL"},       {43, "DS"},       {44, "SSHFP"},   {45, "IPSECKEY"},
    {46, "RRSIG"},      {47, "NSEC"},      {48, "DNSKEY"},   {49, "DHCID"},   {50, "NSEC3"},
    {51, "NSEC3PARAM"}, {52, "TLSA"},      {53, "SMIMEA"},   {55, "HIP"},     {56, "NINFO"},
    {57, "RKEY"},       {58, "TALINK"},    {59, "CDS"},      {60, "CDNSKEY"}, {61, "OPENPGPKEY"},
    {62, "CSYNC"},      {63, "ZONEMD"},    {64, "SVCB"},     {65, "HTTPS"},   {99, "SPF"},
    {100, "UINFO"},     {101, "UID"},      {102, "GID"},     {103, "UNSPEC"}, {104, "NID"},
    {105, "L32"},       {106, "L64"},      {107, "LP"},      {108, "EUI48"},  {109, "EUI64"},
    {249, "TKEY"},      {250, "TSIG"},     {251, "IXFR"},    {252, "AXFR"},   {253, "MAILB"},
    {254, "MAILA"},     {255, "ANY"},      {256, "URI"},     {257, "CAA"},    {258, "AVC"},
    {259, "DOA"},       {260, "AMTRELAY"}, {32768, "TA"},    {32769, "DLV"},
};

constexpr bool sortedByType() {
  for (std::size_t i = 1; i < std::size(kTypeNames); ++i)
    if (kTypeNames[i - 1].type >= kTypeNames[i].type) return false;
  return true;
}
static_assert(sortedByType(), "kTypeNames must be sorted for the binary search");

// IANA "DNS RCODEs"; 16 is BADVERS in the header/OPT rcode space (BADSIG is
// the same value in a TSIG's own error field).
constexpr std::array<std::string_view, 24> kRcodeNames = {
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",  "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE",  "DSOTYPENI", "",        "",        "",         "",
    "BADVERS", "BADKEY",  "BADTIME",  "BADMODE",   "BADNAME", "BADALG",  "BADTRUNC", "BADCOOKIE",
};

std::string withNumber(std::string_view prefix, uint16_t n) {
  char buf[8];
  const auto res = std::to_chars(buf, buf + sizeof buf, n);
  std::string s(prefix);
  s.append(buf, res.ptr);
  return s;
}

}  // namespace

std::string_view rrtypeName(uint16_t type) {
  std::size_t lo = 0, hi = std::size(kTypeNames);
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (kTypeNames[mid].type < type) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo < std::size(kTypeNames) && kTypeNames[lo].type == type) return kTypeNames[lo].name;
  return {};
}

std::string_view rcodeName(uint16_t rcode) {
  return rcode < kRcodeNames.size() ? kRcodeNames[rcode] : std::string_view{};
}

std::string rrtypeText(uint16_t type) {
  const std::string_view n = rrtypeName(type);
  return n.empty() ? withNumber("TYPE", type) : std::string(n);
}

std::string rcodeText(uint16_t rcode) {
  const std::string_view n = rcodeName(rcode);
  return n.empty() ? withNumber("", rcode) : std::string(n);
}

}  // namespace exfilwatch::dns
