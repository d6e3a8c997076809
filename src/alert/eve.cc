// eve.cc: EVE JSON formatting of DNS messages and alerts, Suricata 8 layout.
#include "alert/eve.h"

#include <charconv>
#include <cstring>
#include <ctime>

#include "common/escape.h"
#include "common/hash.h"

namespace exfilwatch {

FileEveSink::~FileEveSink() {
  flush();
  if (owned_ && file_ != nullptr) std::fclose(file_);
}

void FileEveSink::write(std::string_view line) {
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() ||
      std::fputc('\n', file_) == EOF) {
    ++failures_;
    return;
  }
  ++lines_;
}

void FileEveSink::flush() {
  if (file_ != nullptr && std::fflush(file_) != 0) ++failures_;
}

void appendTimestamp(std::string& out, const Timestamp& ts) {
  const std::time_t secs = static_cast<std::time_t>(ts.sec);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[48];
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06d+0000",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                              tm.tm_sec, static_cast<int>(ts.usec));
  if (n > 0) out.append(buf, static_cast<std::size_t>(n));
}

uint64_t eveFlowId(const PacketContext& pkt) {
  // Endpoints in a fixed order, so that both directions hash alike.
  const auto before = [](const IpAddress& a, uint16_t ap, const IpAddress& b, uint16_t bp) {
    if (a.family != b.family) return a.family < b.family;
    const int c = std::memcmp(a.bytes, b.bytes, sizeof a.bytes);
    return c != 0 ? c < 0 : ap < bp;
  };
  const bool src_first = before(pkt.src, pkt.src_port, pkt.dst, pkt.dst_port);
  const IpAddress& a = src_first ? pkt.src : pkt.dst;
  const IpAddress& b = src_first ? pkt.dst : pkt.src;
  const uint16_t ap = src_first ? pkt.src_port : pkt.dst_port;
  const uint16_t bp = src_first ? pkt.dst_port : pkt.src_port;
  uint64_t h = hashing::mixAddress(hashing::kFnvOffset, a);
  h = hashing::mixAddress(h, b);
  h = hashing::mixIn(h, (uint64_t{ap} << 16) | bp);
  const TunnelLayer* t = pkt.innerTunnel();
  const uint64_t vni = t != nullptr ? (uint64_t{static_cast<uint8_t>(t->type)} << 24) | t->vni : 0;
  h = hashing::mixIn(h, (uint64_t{pkt.ip_proto} << 32) | vni);
  h &= (uint64_t{1} << 51) - 1;
  return h != 0 ? h : 1;
}

namespace {

constexpr uint16_t kSshfp = 44;  // RFC 4255

void appendUint(std::string& out, uint64_t v) { out += std::to_string(v); }

// Suricata's dns_print_addr: IPv6 as eight groups of four hex digits, never
// compressed.
void appendRdataAddress(std::string& out, const IpAddress& a) {
  if (a.family != 6) {
    out += a.toString();
    return;
  }
  for (int i = 0; i < 16; i += 2) {
    if (i) out += ':';
    escape::appendHex(out, a.bytes[i]);
    escape::appendHex(out, a.bytes[i + 1]);
  }
}

// Suricata's dns_rrtype_string: the mnemonic, else the number.
std::string_view rrtypeString(uint16_t type, std::string& buf) {
  const std::string_view n = dns::rrtypeName(type);
  if (!n.empty()) return n;
  buf = std::to_string(type);
  return buf;
}

// Suricata's dns_rcode_string: the header's 4 bits only (the EDNS extension
// goes under exfilwatch.dns).
std::string rcodeString(unsigned rcode4) {
  const std::string_view n = dns::rcodeName(static_cast<uint16_t>(rcode4 & 0xF));
  return n.empty() ? std::to_string(rcode4 & 0xF) : std::string(n);
}

bool jsonNumber(std::string_view s) {
  // JSON's grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?
  std::size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  if (i >= s.size() || s[i] < '0' || s[i] > '9') return false;
  if (s[i] == '0' && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '9') return false;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (i >= s.size()) return false;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  }
  return i == s.size();
}

bool idList(std::string_view s) {
  if (s.empty() || s.front() == ',' || s.back() == ',') return false;
  for (char c : s)
    if (!(c == ',' || (c >= '0' && c <= '9'))) return false;
  return s.find(",,") == std::string_view::npos;
}

int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Undoes score::appendSafeName's \xNN escapes.
void unescapeName(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\\' && i + 3 < in.size() && in[i + 1] == 'x' && hexDigit(in[i + 2]) >= 0 &&
        hexDigit(in[i + 3]) >= 0) {
      out += static_cast<char>(hexDigit(in[i + 2]) * 16 + hexDigit(in[i + 3]));
      i += 3;
      continue;
    }
    out += in[i];
  }
}

}  // namespace

void appendRdataText(std::string& out, const dns::DnsMessage& msg, const dns::ResourceRecord& rr) {
  using dns::RdataKind;
  if (!rr.rdata_ok) return;
  switch (rr.kind) {
    case RdataKind::Address:
      appendRdataAddress(out, rr.address);
      break;
    case RdataKind::Name:
      out += msg.raw(rr.target);
      break;
    case RdataKind::Mx:
      appendUint(out, rr.preference);
      out += ' ';
      out += msg.raw(rr.target);
      break;
    case RdataKind::Srv:
      appendUint(out, rr.preference);
      out += ' ';
      appendUint(out, rr.weight);
      out += ' ';
      appendUint(out, rr.port);
      out += ' ';
      out += msg.raw(rr.target);
      break;
    case RdataKind::Soa:
      out += msg.raw(rr.target);
      out += ' ';
      out += msg.raw(rr.target2);
      for (uint32_t v : rr.soa_values) {
        out += ' ';
        appendUint(out, v);
      }
      break;
    case RdataKind::Txt: {
      const auto& segs = msg.txtSegments();
      for (uint32_t i = 0; i < rr.txt_count && rr.txt_first + i < segs.size(); ++i) {
        if (i) out += ' ';
        out += msg.txt(segs[rr.txt_first + i]);
      }
      break;
    }
    default:
      break;
  }
}

void EveFormatter::header(const PacketContext& pkt, const EveMeta& meta,
                          std::string_view event_type) {
  w_.reset();
  w_.openObject();
  timestamp_.clear();
  appendTimestamp(timestamp_, pkt.ts);
  w_.string("timestamp", timestamp_);
  w_.uint("flow_id", eveFlowId(pkt));
  if (!meta.pcap_filename.empty()) w_.string("pcap_filename", meta.pcap_filename);
  if (pkt.vlan_count) {
    w_.openArray("vlan");
    for (int i = 0; i < pkt.vlan_count; ++i) w_.uint({}, pkt.vlan_ids[i]);
    w_.closeArray();
  }
  w_.string("event_type", event_type);
  if (!meta.host.empty()) w_.string("host", meta.host);
  if (meta.pcap_cnt) w_.uint("pcap_cnt", meta.pcap_cnt);
  w_.string("src_ip", pkt.src.toString());
  w_.uint("src_port", pkt.src_port);
  w_.string("dest_ip", pkt.dst.toString());
  w_.uint("dest_port", pkt.dst_port);
  w_.string("proto", pkt.ip_proto == ipproto::kTcp ? "TCP" : "UDP");
  if (pkt.outer.depth) {
    // Suricata's AlertJsonTunnel: the outermost packet's addresses, and how
    // many encapsulations deep the inner packet sits.
    w_.openObject("tunnel");
    if (pkt.outer.src.family != 0) {
      w_.string("src_ip", pkt.outer.src.toString());
      w_.uint("src_port", pkt.outer.src_port);
      w_.string("dest_ip", pkt.outer.dst.toString());
      w_.uint("dest_port", pkt.outer.dst_port);
      w_.string("proto", pkt.outer.proto == ipproto::kUdp        ? "UDP"
                         : pkt.outer.proto == ipproto::kGre      ? "GRE"
                         : pkt.outer.proto == ipproto::kIpIp     ? "IPV4"
                         : pkt.outer.proto == ipproto::kIpv6InIp ? "IPV6"
                                                                 : "UDP");
    }
    w_.uint("depth", pkt.outer.depth);
    if (meta.pcap_cnt) w_.uint("pcap_cnt", meta.pcap_cnt);
    w_.string("pkt_src", "wire/pcap");
    w_.closeObject();
  }
}

void EveFormatter::record(dns::Section section, const dns::DnsMessage& msg,
                          const dns::ResourceRecord& rr, int txt_index) {
  using dns::RdataKind;
  w_.openObject();
  w_.string("rrname", msg.raw(rr.name));
  w_.string("rrtype", rrtypeString(rr.type, scratch_));
  w_.uint("ttl", rr.ttl);
  // Suricata 8's schema has soa objects in answers and authorities, srv and
  // sshfp in answers only: elsewhere those types keep their text in rdata.
  const bool answers = section == dns::Section::Answer;
  const bool soa_object = section != dns::Section::Additional;
  // The record's data as presentation text in `rdata`.
  auto rdataText = [&] {
    scratch_.clear();
    appendRdataText(scratch_, msg, rr);
    w_.string("rdata", scratch_);
  };
  if (rr.rdata_ok) {
    switch (rr.kind) {
      case RdataKind::Address:
      case RdataKind::Name:
        rdataText();
        break;
      case RdataKind::Mx:  // Suricata: the exchange only
        w_.string("rdata", msg.raw(rr.target));
        break;
      case RdataKind::Txt: {
        const auto& segs = msg.txtSegments();
        const uint32_t at = rr.txt_first + static_cast<uint32_t>(txt_index);
        if (txt_index >= 0 && static_cast<uint32_t>(txt_index) < rr.txt_count && at < segs.size()) {
          w_.string("rdata", msg.txt(segs[at]));
        }
        break;
      }
      case RdataKind::Null:
        w_.string("rdata",
                  std::string_view(reinterpret_cast<const char*>(msg.bytes()) + rr.rdata_offset,
                                   rr.rdlength));
        break;
      case RdataKind::Soa:
        if (soa_object) {
          w_.openObject("soa");
          w_.string("mname", msg.raw(rr.target));
          w_.string("rname", msg.raw(rr.target2));
          w_.uint("serial", rr.soa_values[0]);
          w_.uint("refresh", rr.soa_values[1]);
          w_.uint("retry", rr.soa_values[2]);
          w_.uint("expire", rr.soa_values[3]);
          w_.uint("minimum", rr.soa_values[4]);
          w_.closeObject();
        } else {
          rdataText();
        }
        break;
      case RdataKind::Srv:
        if (answers) {
          w_.openObject("srv");
          w_.uint("priority", rr.preference);
          w_.uint("weight", rr.weight);
          w_.uint("port", rr.port);
          w_.string("name", msg.raw(rr.target));
          w_.closeObject();
        } else {
          rdataText();
        }
        break;
      case RdataKind::Opt: {
        // EDNS options, code and data in hex (Suricata's dns_log_opt).
        const uint8_t* p = msg.bytes() + rr.rdata_offset;
        std::size_t pos = 0;
        bool opened = false;
        while (pos + 4 <= rr.rdlength) {
          const uint16_t code = loadBe16(p + pos);
          const uint16_t len = loadBe16(p + pos + 2);
          if (len > rr.rdlength - pos - 4) break;
          if (!opened) {
            w_.openArray("opt");
            opened = true;
          }
          w_.openObject();
          w_.uint("code", code);
          scratch_.clear();
          for (std::size_t i = 0; i < len; ++i) escape::appendHex(scratch_, p[pos + 4 + i]);
          w_.string("data", scratch_);
          w_.closeObject();
          pos += 4 + std::size_t{len};
        }
        if (opened) w_.closeArray();
        break;
      }
      case RdataKind::Raw:
        if (answers && rr.type == kSshfp && rr.rdlength >= 2) {
          const uint8_t* p = msg.bytes() + rr.rdata_offset;
          scratch_.clear();
          for (std::size_t i = 2; i < rr.rdlength; ++i) {
            if (i > 2) scratch_ += ':';
            escape::appendHex(scratch_, p[i]);
          }
          w_.openObject("sshfp");
          w_.string("fingerprint", scratch_);
          w_.uint("algo", p[0]);
          w_.uint("type", p[1]);
          w_.closeObject();
        }
        break;
      default:
        break;
    }
  }
  w_.closeObject();
}

void EveFormatter::records(std::string_view key, dns::Section section, const dns::DnsMessage& msg,
                           const std::vector<dns::ResourceRecord>& rrs) {
  bool opened = false;
  for (const auto& rr : rrs) {
    // An OPT without options says nothing Suricata logs (EDNS itself goes
    // under exfilwatch.dns.edns).
    if (rr.kind == dns::RdataKind::Opt && rr.rdlength < 4) continue;
    if (!opened) {
      w_.openArray(key);
      opened = true;
    }
    // A TXT record is one entry per character-string, as Suricata writes it.
    const bool txt = rr.kind == dns::RdataKind::Txt && rr.rdata_ok && rr.txt_count > 1;
    const int n = txt ? rr.txt_count : 1;
    for (int i = 0; i < n; ++i) record(section, msg, rr, i);
  }
  if (opened) w_.closeArray();
}

void EveFormatter::dnsBlock(const dns::DnsMessage& msg) {
  w_.openObject("dns");
  w_.sint("version", 3);
  w_.string("type", msg.qr ? "response" : "request");
  w_.uint("id", msg.id);
  // The header's flags word as on the wire, in Suricata's "{:x}".
  const unsigned word = msg.size() >= 4 ? loadBe16(msg.bytes() + 2) : 0U;
  char flags[8];
  std::snprintf(flags, sizeof flags, "%x", word);
  w_.string("flags", flags);
  if (word & 0x8000U) w_.boolean("qr", true);
  if (word & 0x0400U) w_.boolean("aa", true);
  if (word & 0x0200U) w_.boolean("tc", true);
  if (word & 0x0100U) w_.boolean("rd", true);
  if (word & 0x0080U) w_.boolean("ra", true);
  if (word & 0x0040U) w_.boolean("z", true);
  w_.uint("opcode", (word >> 11) & 0xFU);
  w_.string("rcode", rcodeString(word & 0xFU));
  if (!msg.questions.empty()) {
    w_.openArray("queries");
    for (const auto& question : msg.questions) {
      w_.openObject();
      w_.string("rrname", msg.raw(question.name));
      w_.string("rrtype", rrtypeString(question.type, scratch_));
      w_.closeObject();
    }
    w_.closeArray();
  }
  records("answers", dns::Section::Answer, msg, msg.answers);
  records("authorities", dns::Section::Authority, msg, msg.authorities);
  records("additionals", dns::Section::Additional, msg, msg.additionals);
  w_.closeObject();
}

void EveFormatter::openExtension(const PacketContext& pkt, const dns::DnsMessage* msg,
                                 std::string_view registered_domain) {
  w_.openObject("exfilwatch");
  if (const TunnelLayer* t = pkt.innerTunnel()) {
    w_.openObject("tunnel");
    w_.string("type", t->type == TunnelType::Geneve ? "geneve" : "vxlan");
    w_.uint("vni", t->vni);
    w_.closeObject();
  }
  if (!registered_domain.empty()) w_.string("registered_domain", registered_domain);
  if (msg == nullptr) return;
  const unsigned word = msg->size() >= 4 ? loadBe16(msg->bytes() + 2) : 0U;
  const bool extended_rcode = msg->rcode > 0xF;
  if (!msg->complete || msg->edns.present || extended_rcode || (word & 0x30U)) {
    w_.openObject("dns");
    if (word & 0x0020U) w_.boolean("ad", true);
    if (word & 0x0010U) w_.boolean("cd", true);
    if (extended_rcode) w_.string("rcode", dns::rcodeText(msg->rcode));
    if (msg->edns.present) {
      w_.openObject("edns");
      w_.uint("udp_payload_size", msg->edns.udp_payload_size);
      w_.uint("version", msg->edns.version);
      w_.boolean("do", msg->edns.dnssec_ok);
      w_.uint("options", msg->edns.option_count);
      w_.closeObject();
    }
    if (!msg->complete) w_.boolean("incomplete", true);
    w_.closeObject();
  }
}

const std::string& EveFormatter::dns(const PacketContext& pkt, const EveMeta& meta,
                                     const dns::DnsMessage& msg,
                                     std::string_view registered_domain) {
  header(pkt, meta, "dns");
  dnsBlock(msg);
  openExtension(pkt, &msg, registered_domain);
  w_.closeObject();
  w_.closeObject();
  return w_.text();
}

void EveFormatter::reasonValues(std::string_view reasons) {
  // score/reasons.h: space-separated key=value, names with spaces, '=' and
  // '\' escaped as \xNN, so splitting is exact.
  w_.openObject("values");
  std::size_t pos = 0;
  while (pos < reasons.size()) {
    std::size_t end = reasons.find(' ', pos);
    if (end == std::string_view::npos) end = reasons.size();
    const std::string_view token = reasons.substr(pos, end - pos);
    pos = end + 1;
    const std::size_t eq = token.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    const std::string_view key = token.substr(0, eq);
    const std::string_view value = token.substr(eq + 1);
    if (value.empty() || value == "-") continue;  // absent (a TLS flow without SNI)
    if (jsonNumber(value)) {
      w_.raw(key, value);
    } else if (idList(value)) {
      w_.openArray(key);
      std::size_t at = 0;
      while (at <= value.size()) {
        std::size_t comma = value.find(',', at);
        if (comma == std::string_view::npos) comma = value.size();
        uint64_t id = 0;
        std::from_chars(value.data() + at, value.data() + comma, id);
        w_.uint({}, id);
        at = comma + 1;
      }
      w_.closeArray();
    } else {
      unescapeName(value, scratch_);
      w_.string(key, scratch_);
    }
  }
  w_.closeObject();
}

const std::string& EveFormatter::alert(const PacketContext& pkt, const EveMeta& meta,
                                       const Alert& alert, const dns::DnsMessage* msg,
                                       std::string_view registered_domain) {
  header(pkt, meta, "alert");
  w_.openObject("alert");
  w_.string("action", "allowed");
  w_.uint("gid", 1);
  w_.uint("signature_id", alert.signature_id);
  w_.uint("rev", 1);
  w_.string("signature", alert.signature);
  w_.string("category", alert.category);
  w_.uint("severity", static_cast<uint64_t>(alert.severity));
  // Suricata writes a rule's `metadata: key value, ...` as string arrays.
  w_.openObject("metadata");
  if (!registered_domain.empty()) {
    w_.openArray("registered_domain");
    w_.string({}, registered_domain);
    w_.closeArray();
  }
  if (!alert.category.empty()) {
    w_.openArray("category");
    w_.string({}, alert.category);
    w_.closeArray();
  }
  if (!alert.tool.empty()) {
    w_.openArray("tool");
    w_.string({}, alert.tool);
    w_.closeArray();
  }
  if (!alert.tags.empty()) {
    w_.openArray("tag");
    for (const auto& t : alert.tags) w_.string({}, t);
    w_.closeArray();
  }
  if (!alert.mitre.empty()) {
    w_.openArray("mitre_technique_id");
    for (const auto& t : alert.mitre) w_.string({}, t);
    w_.closeArray();
  }
  if (!alert.detector.empty()) {
    w_.openArray("detector");
    w_.string({}, alert.detector);
    w_.closeArray();
  }
  w_.closeObject();
  w_.closeObject();
  if (msg != nullptr) dnsBlock(*msg);
  if (alert.has_tls) {
    const AlertTls& t = alert.tls;
    w_.openObject("tls");
    if (!t.sni.empty()) w_.string("sni", t.sni);
    if (!t.version.empty()) w_.string("version", t.version);
    if (!t.ja3_hash.empty()) {
      w_.openObject("ja3");
      w_.string("hash", t.ja3_hash);
      if (!t.ja3_string.empty()) w_.string("string", t.ja3_string);
      w_.closeObject();
    }
    if (!t.ja3s_hash.empty()) {
      w_.openObject("ja3s");
      w_.string("hash", t.ja3s_hash);
      if (!t.ja3s_string.empty()) w_.string("string", t.ja3s_string);
      w_.closeObject();
    }
    if (!t.ja4.empty()) w_.string("ja4", t.ja4);
    if (!t.alpn.empty()) {
      w_.openArray("client_alpns");
      w_.string({}, t.alpn);
      w_.closeArray();
    }
    w_.closeObject();
  }
  openExtension(pkt, msg, registered_domain);
  if (!alert.detector.empty()) w_.string("detector", alert.detector);
  if (!alert.reasons.empty()) {
    w_.string("reasons", alert.reasons);
    reasonValues(alert.reasons);
  }
  if (!alert.evidence.empty()) w_.string("evidence", alert.evidence);
  w_.closeObject();
  w_.closeObject();

  fields_.timestamp = timestamp_;
  fields_.signature = alert.signature;
  fields_.category = alert.category;
  fields_.src_ip = pkt.src.toString();
  fields_.dest_ip = pkt.dst.toString();
  fields_.domain.assign(registered_domain);
  if (msg != nullptr && !msg->questions.empty()) {
    fields_.rrname.assign(msg->raw(msg->questions.front().name));
  } else {
    fields_.rrname.clear();
  }
  fields_.reasons = alert.reasons;
  fields_.sensor.assign(meta.host);
  fields_.signature_id = alert.signature_id;
  fields_.flow_id = eveFlowId(pkt);
  fields_.severity = alert.severity;
  return w_.text();
}

}  // namespace exfilwatch
