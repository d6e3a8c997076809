// eve.cc: EVE JSON formatting of DNS messages and alerts.
#include "alert/eve.h"

#include <ctime>

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
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                              tm.tm_sec, static_cast<int>(ts.usec));
  if (n > 0) out.append(buf, static_cast<std::size_t>(n));
}

namespace {
void appendUint(std::string& out, uint64_t v) { out += std::to_string(v); }
}  // namespace

void appendRdataText(std::string& out, const dns::DnsMessage& msg, const dns::ResourceRecord& rr) {
  using dns::RdataKind;
  if (!rr.rdata_ok) return;
  switch (rr.kind) {
    case RdataKind::Address:
      out += rr.address.toString();
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
  scratch_.clear();
  appendTimestamp(scratch_, pkt.ts);
  w_.string("timestamp", scratch_);
  w_.string("event_type", event_type);
  if (!meta.sensor.empty()) w_.string("sensor", meta.sensor);
  if (meta.pcap_cnt) w_.uint("pcap_cnt", meta.pcap_cnt);
  w_.string("src_ip", pkt.src.toString());
  w_.uint("src_port", pkt.src_port);
  w_.string("dest_ip", pkt.dst.toString());
  w_.uint("dest_port", pkt.dst_port);
  w_.string("proto", pkt.ip_proto == ipproto::kTcp ? "TCP" : "UDP");
  if (pkt.vlan_count) {
    w_.openArray("vlan");
    for (int i = 0; i < pkt.vlan_count; ++i) w_.uint({}, pkt.vlan_ids[i]);
    w_.closeArray();
  }
  if (const TunnelLayer* t = pkt.innerTunnel()) {
    w_.openObject("tunnel");
    w_.string("type", t->type == TunnelType::Geneve ? "geneve" : "vxlan");
    w_.uint("vni", t->vni);
    if (pkt.tunnel_depth > 1) w_.uint("depth", pkt.tunnel_depth);
    w_.closeObject();
  }
}

void EveFormatter::records(std::string_view key, const dns::DnsMessage& msg,
                           const std::vector<dns::ResourceRecord>& rrs) {
  bool opened = false;
  for (const auto& rr : rrs) {
    if (rr.type == dns::rrtype::OPT) continue;
    if (!opened) {
      w_.openArray(key);
      opened = true;
    }
    w_.openObject();
    w_.string("rrname", msg.raw(rr.name));
    w_.string("rrtype", dns::rrtypeText(rr.type));
    w_.uint("ttl", rr.ttl);
    scratch_.clear();
    appendRdataText(scratch_, msg, rr);
    if (!scratch_.empty() || (rr.kind == dns::RdataKind::Txt && rr.rdata_ok)) {
      w_.string("rdata", scratch_);
    }
    w_.closeObject();
  }
  if (opened) w_.closeArray();
}

void EveFormatter::dnsBlock(const dns::DnsMessage& msg, std::string_view registered_domain) {
  w_.openObject("dns");
  w_.string("type", msg.qr ? "answer" : "query");
  w_.uint("id", msg.id);
  char flags[8];
  const unsigned word = (msg.qr ? 0x8000U : 0U) | (unsigned{msg.opcode} << 11) |
                        (msg.aa ? 0x400U : 0U) | (msg.tc ? 0x200U : 0U) | (msg.rd ? 0x100U : 0U) |
                        (msg.ra ? 0x80U : 0U) | (msg.z ? 0x40U : 0U) | (msg.ad ? 0x20U : 0U) |
                        (msg.cd ? 0x10U : 0U) | (msg.rcode & 0xFU);
  std::snprintf(flags, sizeof flags, "%04x", word);
  w_.string("flags", flags);
  if (msg.qr) w_.boolean("qr", true);
  if (msg.aa) w_.boolean("aa", true);
  if (msg.tc) w_.boolean("tc", true);
  if (msg.rd) w_.boolean("rd", true);
  if (msg.ra) w_.boolean("ra", true);
  if (msg.z) w_.boolean("z", true);
  if (msg.ad) w_.boolean("ad", true);
  if (msg.cd) w_.boolean("cd", true);
  w_.uint("opcode", msg.opcode);
  w_.string("rcode", dns::rcodeText(msg.rcode));
  if (!msg.questions.empty()) {
    const auto& q = msg.questions.front();
    w_.string("rrname", msg.raw(q.name));
    w_.string("rrtype", dns::rrtypeText(q.type));
    if (!registered_domain.empty()) w_.string("registered_domain", registered_domain);
    w_.openArray("queries");
    for (const auto& question : msg.questions) {
      w_.openObject();
      w_.string("rrname", msg.raw(question.name));
      w_.string("rrtype", dns::rrtypeText(question.type));
      w_.closeObject();
    }
    w_.closeArray();
  }
  records("answers", msg, msg.answers);
  records("authorities", msg, msg.authorities);
  records("additionals", msg, msg.additionals);
  if (msg.edns.present) {
    w_.openObject("edns");
    w_.uint("udp_payload_size", msg.edns.udp_payload_size);
    w_.uint("version", msg.edns.version);
    w_.boolean("do", msg.edns.dnssec_ok);
    const auto& opts = msg.ednsOptions();
    if (msg.edns.option_count) {
      w_.openArray("options");
      for (uint32_t i = 0; i < msg.edns.option_count && msg.edns.option_first + i < opts.size();
           ++i) {
        const auto& o = opts[msg.edns.option_first + i];
        w_.openObject();
        w_.uint("code", o.code);
        w_.uint("length", o.length);
        w_.closeObject();
      }
      w_.closeArray();
    }
    w_.closeObject();
  }
  if (!msg.complete) w_.boolean("incomplete", true);
  w_.closeObject();
}

const std::string& EveFormatter::dns(const PacketContext& pkt, const EveMeta& meta,
                                     const dns::DnsMessage& msg,
                                     std::string_view registered_domain) {
  header(pkt, meta, "dns");
  dnsBlock(msg, registered_domain);
  w_.closeObject();
  return w_.text();
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
  if (!alert.reasons.empty()) w_.string("reasons", alert.reasons);
  if (!alert.evidence.empty()) w_.string("evidence", alert.evidence);
  w_.closeObject();
  if (msg != nullptr) dnsBlock(*msg, registered_domain);
  w_.closeObject();
  return w_.text();
}

}  // namespace exfilwatch
