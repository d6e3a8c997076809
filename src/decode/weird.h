// weird.h: the named anomalies ("weirds", after Zeek) that every stage of the
// packet path counts instead of throwing. The names are stable: they are
// metric labels and appear in the replay summary, so never rename one; add new
// ones at the end of their group.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace exfilwatch {

// X(identifier, "stable.name")
#define EXFILWATCH_WEIRDS(X)                               \
  /* link layer and capture */                             \
  X(LinkUnknownType, "link.unknown_linktype")              \
  X(LinkTruncated, "link.truncated")                       \
  X(EtherTruncated, "ether.truncated")                     \
  X(VlanTruncated, "vlan.truncated")                       \
  X(VlanTooManyTags, "vlan.too_many_tags")                 \
  X(SllTruncated, "sll.truncated")                         \
  X(NullTruncated, "null.truncated")                       \
  X(NullUnknownFamily, "null.unknown_family")              \
  X(PppTruncated, "ppp.truncated")                         \
  X(PppoeTruncated, "pppoe.truncated")                     \
  X(PppoeBadHeader, "pppoe.bad_header")                    \
  /* tunnels */                                            \
  X(VxlanTruncated, "vxlan.truncated")                     \
  X(VxlanBadFlags, "vxlan.bad_flags")                      \
  X(GeneveTruncated, "geneve.truncated")                   \
  X(GeneveBadVersion, "geneve.bad_version")                \
  X(GeneveOptionsTruncated, "geneve.options_truncated")    \
  X(GeneveUnknownProtocol, "geneve.unknown_protocol")      \
  X(TunnelTooDeep, "tunnel.too_deep")                      \
  X(GreTruncated, "gre.truncated")                         \
  X(GreBadVersion, "gre.bad_version")                      \
  X(GreBadFlags, "gre.bad_flags")                          \
  /* IPv4 */                                               \
  X(Ipv4Truncated, "ipv4.truncated")                       \
  X(Ipv4BadVersion, "ipv4.bad_version")                    \
  X(Ipv4BadHeaderLength, "ipv4.bad_header_length")         \
  X(Ipv4BadTotalLength, "ipv4.bad_total_length")           \
  X(Ipv4BadOption, "ipv4.bad_option")                      \
  X(IpSnapTruncated, "ip.snaplen_truncated")               \
  X(IpTrailingBytes, "ip.trailing_bytes")                  \
  /* IPv6 */                                               \
  X(Ipv6Truncated, "ipv6.truncated")                       \
  X(Ipv6BadVersion, "ipv6.bad_version")                    \
  X(Ipv6BadPayloadLength, "ipv6.bad_payload_length")       \
  X(Ipv6ExtTruncated, "ipv6.ext_header_truncated")         \
  X(Ipv6TooManyExt, "ipv6.too_many_ext_headers")           \
  X(Ipv6JumboUnsupported, "ipv6.jumbogram")                \
  /* IP fragments */                                       \
  X(FragOverlap, "ip.fragment_overlap")                    \
  X(FragTooLarge, "ip.fragment_too_large")                 \
  X(FragTimeout, "ip.fragment_timeout")                    \
  X(FragTableFull, "ip.fragment_table_full")               \
  X(FragBadLength, "ip.fragment_bad_length")               \
  X(FragTruncated, "ip.fragment_truncated")                \
  X(FragTooMany, "ip.fragment_too_many")                   \
  X(FragDuplicate, "ip.fragment_duplicate")                \
  /* transport */                                          \
  X(UdpTruncated, "udp.truncated")                         \
  X(UdpBadLength, "udp.bad_length")                        \
  X(TcpTruncated, "tcp.truncated")                         \
  X(TcpBadDataOffset, "tcp.bad_data_offset")               \
  /* DNS message */                                        \
  X(DnsTruncatedHeader, "dns.truncated_header")            \
  X(DnsNameTruncated, "dns.name_truncated")                \
  X(DnsLabelTooLong, "dns.label_too_long")                 \
  X(DnsNameTooLong, "dns.name_too_long")                   \
  X(DnsPointerForward, "dns.pointer_forward")              \
  X(DnsPointerChainTooLong, "dns.pointer_chain_too_long")  \
  X(DnsBadLabelType, "dns.bad_label_type")                 \
  X(DnsQuestionTruncated, "dns.question_truncated")        \
  X(DnsRecordTruncated, "dns.record_truncated")            \
  X(DnsRdataBadLength, "dns.rdata_bad_length")             \
  X(DnsTooManyRecords, "dns.too_many_records")             \
  X(DnsTrailingBytes, "dns.trailing_bytes")                \
  X(DnsOptBad, "dns.opt_bad")                              \
  X(DnsOptMultiple, "dns.opt_multiple")                    \
  X(DnsOptNotRoot, "dns.opt_not_root")                     \
  X(DnsTxtBadLength, "dns.txt_bad_length")                 \
  X(DnsSnapTruncated, "dns.snaplen_truncated")             \
  X(DnsOpcodeIquery, "dns.opcode_iquery")                  \
  X(DnsOpcodeNotify, "dns.opcode_notify")                  \
  X(DnsOpcodeUpdate, "dns.opcode_update")                  \
  X(DnsOpcodeOther, "dns.opcode_other")                    \
  X(DnsMultipleQuestions, "dns.multiple_questions")        \
  X(DnsClassNotIn, "dns.class_not_in")                     \
  /* DNS over TCP */                                       \
  X(DnsTcpGap, "dns_tcp.gap")                              \
  X(DnsTcpShortMessage, "dns_tcp.short_message")           \
  X(DnsTcpFlowTableFull, "dns_tcp.flow_evicted")           \
  X(DnsTcpBufferBudget, "dns_tcp.buffer_budget_exceeded")  \
  X(DnsTcpResync, "dns_tcp.resync")                        \
  X(DnsTcpResyncFailed, "dns_tcp.resync_failed")           \
  X(DnsTcpRetransmit, "dns_tcp.retransmission")            \
  /* TLS */                                                \
  X(TlsNotHandshake, "tls.not_handshake")                  \
  X(TlsClientHelloTruncated, "tls.client_hello_truncated") \
  X(TlsClientHelloMalformed, "tls.client_hello_malformed") \
  X(TlsClientHelloTooLarge, "tls.client_hello_too_large")  \
  X(TlsServerNotHandshake, "tls.server_not_handshake")     \
  X(TlsServerHelloMissing, "tls.server_hello_missing")     \
  X(TlsServerHelloTruncated, "tls.server_hello_truncated") \
  X(TlsServerHelloMalformed, "tls.server_hello_malformed") \
  /* live socket input */                                  \
  X(SocketRunt, "socket.runt")                             \
  X(SocketNotTunnel, "socket.not_tunnel")                  \
  X(SocketOversize, "socket.oversize")                     \
  X(SocketForeignSource, "socket.foreign_source")

enum class Weird : uint16_t {
#define EXFILWATCH_WEIRD_ENUM(id, name) id,
  EXFILWATCH_WEIRDS(EXFILWATCH_WEIRD_ENUM)
#undef EXFILWATCH_WEIRD_ENUM
      Count_
};

inline constexpr std::size_t kWeirdCount = static_cast<std::size_t>(Weird::Count_);

// The stable name of an anomaly, e.g. "dns.label_too_long".
std::string_view weirdName(Weird w);

// Per-thread anomaly counters: plain integers, summed at report/scrape time,
// so the packet path never touches a shared cache line.
class WeirdCounters {
 public:
  void add(Weird w, uint64_t n = 1) { counts_[static_cast<std::size_t>(w)] += n; }
  uint64_t get(Weird w) const { return counts_[static_cast<std::size_t>(w)]; }
  uint64_t total() const;
  void mergeFrom(const WeirdCounters& other);

 private:
  std::array<uint64_t, kWeirdCount> counts_{};
};

}  // namespace exfilwatch
