// tls_tracker.cc: flows, ClientHello reassembly, upload windows, verdicts.
#include "score/tls_tracker.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/hash.h"
#include "score/reasons.h"

namespace exfilwatch::score {

namespace {
constexpr uint64_t kSeed = 0xbb67ae8584caa73bULL;
}  // namespace

using tls::HelloStatus;

TlsTracker::TlsTracker(const TlsScoreConfig& cfg, uint32_t suppress_seconds)
    : cfg_(cfg),
      ports_(65536, false),
      flows_(std::max<uint32_t>(cfg.max_flows, 2)),
      pairs_(StateTable<TlsPairRecord>::capacityFor(cfg.memory_bytes)),
      hello_max_(std::max<uint32_t>(cfg.hello_max_bytes, 512)) {
  pool_.assign(static_cast<std::size_t>(cfg.hello_buffers) * hello_max_, 0);
  free_bufs_.reserve(cfg.hello_buffers);
  for (uint32_t i = cfg.hello_buffers; i-- > 0;) free_bufs_.push_back(i);
  reasons_.reserve(1024);
  ja3_texts_.resize(kJa3Texts);
  ja3s_texts_.resize(kJa3Texts);
  reconfigure(cfg, suppress_seconds);
}

void TlsTracker::reconfigure(const TlsScoreConfig& cfg, uint32_t suppress_seconds) {
  const auto mem = cfg_.memory_bytes;
  const auto flows = cfg_.max_flows;
  const auto bufs = cfg_.hello_buffers;
  const auto hmax = cfg_.hello_max_bytes;
  cfg_ = cfg;
  cfg_.memory_bytes = mem;  // sizes hold until restart
  cfg_.max_flows = flows;
  cfg_.hello_buffers = bufs;
  cfg_.hello_max_bytes = hmax;
  for (auto& w : cfg_.windows) w = std::max<uint32_t>(w, 1);
  own_gate_.setInterval(suppress_seconds);
  std::fill(ports_.begin(), ports_.end(), false);
  for (uint16_t p : cfg_.ports) ports_[p] = true;
  for (int i = 0; i < kWindows; ++i) win_names_[i] = windowName(cfg_.windows[i]);
}

uint64_t TlsTracker::pairKey(const IpAddress& client, const IpAddress& server,
                             uint16_t port) const {
  uint64_t h = hashing::fnv1a(&client.family, 1, kSeed);
  h = hashing::fnv1a(client.bytes, client.size(), h);
  h = hashing::fnv1a(server.bytes, server.size(), h ^ server.family);
  h = hashing::fnv1a(&port, sizeof port, h);
  h = hashing::fmix64(h);
  return h ? h : 1;
}

void TlsTracker::releaseBuffer(TlsFlowRecord& flow) {
  if (flow.hello_buf != kNil) {
    free_bufs_.push_back(flow.hello_buf);  // capacity reserved: never reallocates
    flow.hello_buf = kNil;
  }
}

const TlsVerdict* TlsTracker::onTcpSegment(const PacketContext& pkt) {
  if (!cfg_.enabled) return nullptr;
  bool client_is_src;
  if (ports_[pkt.dst_port]) {
    client_is_src = true;
  } else if (ports_[pkt.src_port]) {
    client_is_src = false;
  } else {
    return nullptr;
  }
  ++stats_.segments;
  const IpAddress& client = client_is_src ? pkt.src : pkt.dst;
  const IpAddress& server = client_is_src ? pkt.dst : pkt.src;
  const uint16_t cport = client_is_src ? pkt.src_port : pkt.dst_port;
  const uint16_t sport = client_is_src ? pkt.dst_port : pkt.src_port;
  const uint64_t pkey = pairKey(client, server, sport);
  uint64_t fkey = hashing::fmix64(pkey ^ (uint64_t{cport} * 0x9e3779b97f4a7c15ULL));
  if (fkey == 0) fkey = 1;

  bool new_flow = false;
  TlsFlowRecord& flow =
      flows_.findOrInsert(fkey, new_flow, [this](TlsFlowRecord& f) { releaseBuffer(f); });
  const uint32_t now = static_cast<uint32_t>(pkt.ts.sec);
  if (new_flow) {
    ++stats_.flows;
    flow.hello_buf = kNil;
    flow.first_us = pkt.ts.micros();
    flow.pair_key = pkey;
  }
  flow.last_us = pkt.ts.micros();
  const uint64_t wire = pkt.payload_wire_len;
  (client_is_src ? flow.up : flow.down) += wire;

  bool new_pair = false;
  TlsPairRecord& pair = pairs_.findOrInsert(pkey, new_pair);
  if (new_pair) pair.first_seen = now;
  pair.last_seen = now;
  bool upload_flow = false;
  if (client_is_src && !flow.counted_upload && flow.up >= cfg_.drip_flow_min_bytes &&
      static_cast<double>(flow.up) >= cfg_.upload_ratio * static_cast<double>(flow.down)) {
    flow.counted_upload = 1;
    upload_flow = true;
  }
  if (new_flow) ++pair.flows_total;
  for (int i = 0; i < kWindows; ++i) {
    auto& w = pair.win[i];
    w.advance(now, cfg_.windows[i]);
    (client_is_src ? w.cur.up : w.cur.down) += wire;
    if (new_flow) ++w.cur.flows;
    if (upload_flow) ++w.cur.upload_flows;
  }
  if (shared_ != nullptr && !pair.shared_dirty && shared_->touched(pkey, client, server, sport))
      [[unlikely]] {
    pair.shared_dirty = 1;
  }

  if (client_is_src && pkt.payload_len > 0 &&
      (flow.hello_state == kWaiting || flow.hello_state == kCollecting)) {
    hello(flow, pair, pkt);
  }
  // The server's first payload answers the ClientHello we read: not looked
  // for on flows picked up mid-stream, whose bytes are application data.
  if (!client_is_src && pkt.payload_len > 0 && !flow.server_hello_done &&
      flow.hello_state == kDone) {
    flow.server_hello_done = 1;
    serverHello(pair, pkt);
  }
  if (!client_is_src || wire == 0) return nullptr;  // only uploads move the verdict

  TlsFeatures f;
  compute(pair, now, f);
  if (f.score < 1.0) return nullptr;
  return admit(pair, &flow, f, server, sport, now);
}

const TlsVerdict* TlsTracker::admit(TlsPairRecord& pair, const TlsFlowRecord* flow,
                                    const TlsFeatures& f, const IpAddress& server, uint16_t port,
                                    uint32_t now) {
  // One alert per pair per interval, whichever detector raised it.
  const Admission admission = gate_->admit(pair.key, now);
  if (admission == Admission::Suppressed) {
    ++stats_.suppressed;
    return nullptr;
  }
  ++pair.alerts;
  ++stats_.verdicts;
  formatReasons(pair, flow, f, server, port);
  verdict_.update = admission == Admission::Update;
  verdict_.drip = f.drip >= 1.0 && f.bulk < 1.0;
  verdict_.score = f.score;
  verdict_.alerts = pair.alerts;
  verdict_.reasons = reasons_;
  return &verdict_;
}

TlsPairRecord* TlsTracker::takeDirty(uint64_t key) {
  TlsPairRecord* r = pairs_.find(key);
  if (r != nullptr) r->shared_dirty = 0;
  return r;
}

double TlsTracker::scoreOf(uint64_t key, uint32_t now) const {
  const TlsPairRecord* r = pairs_.peek(key);
  if (r == nullptr) return 0.0;
  TlsFeatures f;
  compute(*r, now, f);
  return f.score;
}

const TlsVerdict* TlsTracker::reevaluate(uint64_t key, const IpAddress& server, uint16_t port,
                                         uint32_t now) {
  if (!cfg_.enabled) return nullptr;
  TlsPairRecord* r = pairs_.find(key);
  if (r == nullptr) return nullptr;
  TlsFeatures f;
  compute(*r, now, f);
  if (f.score < 1.0) return nullptr;
  return admit(*r, nullptr, f, server, port, now);
}

void TlsTracker::hello(TlsFlowRecord& flow, TlsPairRecord& pair, const PacketContext& pkt) {
  const bool truncated = pkt.payload_len < pkt.payload_wire_len;
  const uint8_t* data = pkt.payload;
  std::size_t len = pkt.payload_len;
  std::size_t needed = 0;
  HelloStatus st;
  if (flow.hello_state == kWaiting) {
    if (data[0] != 22) {  // not a TLS handshake record: not TLS, stop looking
      ++stats_.hello_not_tls;
      weird_->add(Weird::TlsNotHandshake);
      flow.hello_state = kFailed;
      return;
    }
    st = tls::parseClientHello(data, len, parsed_, needed);
    if (st == HelloStatus::NeedMore) {
      if (truncated) {
        ++stats_.hello_truncated;
        weird_->add(Weird::TlsClientHelloTruncated);
        flow.hello_state = kFailed;
        return;
      }
      if (needed > hello_max_ || len > hello_max_) {
        ++stats_.hello_too_big;
        weird_->add(Weird::TlsClientHelloTooLarge);
        flow.hello_state = kFailed;
        return;
      }
      if (free_bufs_.empty()) {
        ++stats_.hello_no_buffer;
        flow.hello_state = kFailed;
        return;
      }
      flow.hello_buf = free_bufs_.back();
      free_bufs_.pop_back();
      std::memcpy(&pool_[std::size_t{flow.hello_buf} * hello_max_], data, len);
      flow.hello_len = static_cast<uint16_t>(len);
      flow.hello_next_seq = pkt.tcp_seq + static_cast<uint32_t>(len);
      flow.hello_state = kCollecting;
      return;
    }
  } else {
    // Collecting: in-order segments only; a retransmission's overlap is
    // skipped, a gap ends the attempt (counted).
    const auto delta = static_cast<int32_t>(pkt.tcp_seq - flow.hello_next_seq);
    std::size_t skip = 0;
    if (delta > 0) {
      ++stats_.hello_gap;
      releaseBuffer(flow);
      flow.hello_state = kFailed;
      return;
    }
    skip = static_cast<std::size_t>(-static_cast<int64_t>(delta));
    if (skip >= len) return;  // pure retransmission
    data += skip;
    len -= skip;
    if (flow.hello_len + len > hello_max_) {
      ++stats_.hello_too_big;
      weird_->add(Weird::TlsClientHelloTooLarge);
      releaseBuffer(flow);
      flow.hello_state = kFailed;
      return;
    }
    uint8_t* buf = &pool_[std::size_t{flow.hello_buf} * hello_max_];
    std::memcpy(buf + flow.hello_len, data, len);
    flow.hello_len = static_cast<uint16_t>(flow.hello_len + len);
    flow.hello_next_seq += static_cast<uint32_t>(len);
    st = tls::parseClientHello(buf, flow.hello_len, parsed_, needed);
    if (st == HelloStatus::NeedMore) {
      if (truncated) {
        ++stats_.hello_truncated;
        weird_->add(Weird::TlsClientHelloTruncated);
        releaseBuffer(flow);
        flow.hello_state = kFailed;
      }
      return;
    }
  }
  releaseBuffer(flow);
  if (st == HelloStatus::NotHello) {
    ++stats_.hello_not_tls;
    weird_->add(Weird::TlsClientHelloMalformed);
    flow.hello_state = kFailed;
    return;
  }
  ++stats_.hellos;
  flow.hello_state = kDone;
  const std::string_view sni = parsed_.serverName();
  pair.sni_len = static_cast<uint8_t>(std::min(sni.size(), sizeof pair.sni));
  std::memcpy(pair.sni, sni.data(), pair.sni_len);
  const std::string_view alpn = parsed_.firstAlpn();
  pair.alpn_len = static_cast<uint8_t>(std::min(alpn.size(), sizeof pair.alpn));
  std::memcpy(pair.alpn, alpn.data(), pair.alpn_len);
  tls::ja3(parsed_, pair.ja3);
  tls::ja4(parsed_, pair.ja4);
  pair.version = parsed_.legacy_version;
  for (uint16_t v : parsed_.supported_versions) {
    if (!tls::isGrease(v) && v > pair.version && v <= 0x0304) pair.version = v;
  }
  Ja3Text& t = ja3_texts_[std::strtoull(pair.ja3 + 24, nullptr, 16) % ja3_texts_.size()];
  if (std::memcmp(t.hash, pair.ja3, sizeof t.hash) != 0) {
    const std::size_t n = tls::ja3String(parsed_, t.text, sizeof t.text);
    t.len = n < sizeof t.text ? static_cast<uint16_t>(n) : 0;  // cut: not kept
    std::memcpy(t.hash, pair.ja3, sizeof t.hash);
  }
}

void TlsTracker::serverHello(TlsPairRecord& pair, const PacketContext& pkt) {
  tls::ServerHelloAnomaly why;
  if (!tls::parseServerHello(pkt.payload, pkt.payload_len, parsed_server_, why)) {
    switch (why) {
      case tls::ServerHelloAnomaly::NotHandshake:
        weird_->add(Weird::TlsServerNotHandshake);
        break;
      case tls::ServerHelloAnomaly::NotServerHello:
        weird_->add(Weird::TlsServerHelloMissing);
        break;
      case tls::ServerHelloAnomaly::Truncated:
        weird_->add(Weird::TlsServerHelloTruncated);
        break;
      case tls::ServerHelloAnomaly::Malformed:
      case tls::ServerHelloAnomaly::None:
        weird_->add(Weird::TlsServerHelloMalformed);
        break;
    }
    return;
  }
  ++stats_.server_hellos;
  pair.server_version = parsed_server_.negotiatedVersion();
  tls::ja3s(parsed_server_, pair.ja3s);
  Ja3sText& t = ja3s_texts_[(std::size_t{pair.ja3s[14]} << 8 | pair.ja3s[15]) % ja3s_texts_.size()];
  if (std::memcmp(t.md5, pair.ja3s, sizeof t.md5) != 0) {
    const std::size_t n = tls::ja3sString(parsed_server_, t.text, sizeof t.text);
    t.len = n < sizeof t.text ? static_cast<uint16_t>(n) : 0;  // cut: not kept
    std::memcpy(t.md5, pair.ja3s, sizeof t.md5);
  }
}

std::string_view TlsTracker::ja3sText(const uint8_t (&ja3s)[16]) const {
  const Ja3sText& t = ja3s_texts_[(std::size_t{ja3s[14]} << 8 | ja3s[15]) % ja3s_texts_.size()];
  if (std::memcmp(t.md5, ja3s, sizeof t.md5) != 0) return {};
  return {t.text, t.len};
}

std::string_view TlsTracker::ja3Text(const char* ja3_hash) const {
  if (ja3_hash[0] == 0 || std::strlen(ja3_hash) != 32) return {};
  const Ja3Text& t = ja3_texts_[std::strtoull(ja3_hash + 24, nullptr, 16) % ja3_texts_.size()];
  if (std::memcmp(t.hash, ja3_hash, sizeof t.hash) != 0) return {};
  return {t.text, t.len};
}

void TlsTracker::expire(Timestamp now) {
  const int64_t limit = now.micros() - int64_t{cfg_.flow_idle_seconds} * 1000000;
  stats_.expired += flows_.expireLru([&](TlsFlowRecord& f) {
    if (f.last_us >= limit) return false;
    releaseBuffer(f);
    return true;
  });
}

void TlsTracker::compute(const TlsPairRecord& r, uint32_t now, TlsFeatures& f) const {
  for (int i = 0; i < kWindows; ++i) {
    const auto& w = r.win[i];
    const uint32_t width = cfg_.windows[i];
    const uint32_t b = now / width;
    auto& o = f.w[i];
    if (b == w.bucket || now < uint64_t{w.bucket} * width) {
      const double pw = w.prevWeight(now, width);
      o.up = w.cur.up + w.prev.up * pw;
      o.down = w.cur.down + w.prev.down * pw;
      o.flows = w.cur.flows + w.prev.flows * pw;
      o.upload_flows = w.cur.upload_flows + w.prev.upload_flows * pw;
    } else if (b == w.bucket + 1) {
      const double pw = 1.0 - static_cast<double>(now - uint64_t{b} * width) / width;
      o.up = w.cur.up * pw;
      o.down = w.cur.down * pw;
      o.flows = w.cur.flows * pw;
      o.upload_flows = w.cur.upload_flows * pw;
    }
  }
  if (shared_ != nullptr) [[unlikely]]
    addShared(r, now, f);
  const auto& m = f.w[1];
  const auto& l = f.w[kWindows - 1];
  f.ratio_ok_mid = m.up >= cfg_.upload_ratio * m.down;
  f.ratio_ok_long = l.up >= cfg_.upload_ratio * l.down;
  f.bulk = f.ratio_ok_mid && cfg_.bulk_upload_bytes
               ? m.up / static_cast<double>(cfg_.bulk_upload_bytes)
               : 0.0;
  if (f.ratio_ok_long && cfg_.drip_flows && cfg_.drip_upload_bytes) {
    f.drip = std::min(l.upload_flows / cfg_.drip_flows,
                      l.up / static_cast<double>(cfg_.drip_upload_bytes));
  }
  f.score = std::max(f.bulk, f.drip);
}

// Adds the other sensors' counts to the local window values, weighted as
// the local buckets are (DnsScorer::addShared).
void TlsTracker::addShared(const TlsPairRecord& r, uint32_t now, TlsFeatures& f) const {
  const TlsSharedView* view = shared_->view(r.key);
  if (view == nullptr) return;
  const TlsSharedView& v = *view;
  for (int i = 0; i < kWindows; ++i) {
    const uint32_t width = cfg_.windows[i];
    const uint32_t b = now / width;
    const double elapsed = static_cast<double>(now - uint64_t{b} * width) / width;
    const auto add = weighWindow(v.w[i], b, elapsed);
    auto& o = f.w[i];
    auto sum = [](double& x, double d) { x = std::max(0.0, x + d); };
    sum(o.up, add[kTlsSharedUp]);
    sum(o.down, add[kTlsSharedDown]);
    sum(o.flows, add[kTlsSharedFlows]);
    sum(o.upload_flows, add[kTlsSharedUploadFlows]);
  }
}

bool TlsTracker::features(uint64_t key, uint32_t now, TlsFeatures& out) const {
  const TlsPairRecord* r = pairs_.peek(key);
  if (r == nullptr) return false;
  out = TlsFeatures{};
  compute(*r, now, out);
  return true;
}

void TlsTracker::formatReasons(const TlsPairRecord& r, const TlsFlowRecord* flow,
                               const TlsFeatures& f, const IpAddress& server, uint16_t port) {
  std::string& o = reasons_;
  o.clear();
  appendKv(o, "score", "", f.score, 2);
  const auto& m = f.w[1];
  const auto& l = f.w[kWindows - 1];
  appendKv(o, "upload_bytes_", win_names_[1], m.up, 0);
  appendKv(o, "download_bytes_", win_names_[1], m.down, 0);
  appendKv(o, "up_down_ratio_", win_names_[1], m.down > 0 ? m.up / m.down : m.up, 1);
  appendKv(o, "upload_bytes_", win_names_[kWindows - 1], l.up, 0);
  appendKv(o, "upload_flows_", win_names_[kWindows - 1], l.upload_flows, 0);
  appendKv(o, "flows_", win_names_[kWindows - 1], l.flows, 0);
  appendKv(o, "flows_total", "", r.flows_total, 0);
  if (flow != nullptr) {
    appendKv(o, "flow_bytes_up", "", static_cast<double>(flow->up), 0);
    appendKv(o, "flow_bytes_down", "", static_cast<double>(flow->down), 0);
    appendKv(o, "flow_duration_s", "", (flow->last_us - flow->first_us) / 1e6, 1);
  }
  appendKv(o, "alerts", "", r.alerts, 0);
  o += "destination=";
  if (server.family == 6) o += '[';
  o += server.toString();
  if (server.family == 6) o += ']';
  o += ':';
  o += std::to_string(port);
  o += " sni=";
  if (r.sni_len)
    appendSafeName(o, {r.sni, r.sni_len});
  else
    o += '-';
  o += " alpn=";
  if (r.alpn_len)
    appendSafeName(o, {r.alpn, r.alpn_len});
  else
    o += '-';
  o += " ja3=";
  o += r.ja3[0] ? r.ja3 : "-";
  o += " ja4=";
  o += r.ja4[0] ? r.ja4 : "-";
}

}  // namespace exfilwatch::score
