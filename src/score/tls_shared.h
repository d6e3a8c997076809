// tls_shared.h: what the TLS tracker tells the fleet's shared state and reads
// back from it (issue 22, docs/fleet.md), as shared_state.h does for DNS.
// Behind the NLB each TLS connection (its own source port) lands on one
// sensor, so an upload split over many connections is seen 1/N per sensor.
// A TlsSharedHook (src/share) learns which (client, destination) pairs
// changed, flushes deltas of their window counters off the packet path and
// keeps what the other sensors added; the verdict reads local + others.
#pragma once

#include <array>
#include <cstdint>

#include "decode/packet.h"
#include "score/score_config.h"
#include "score/shared_state.h"

namespace exfilwatch::score {

// The window counters shared with the fleet, in TlsCounters' order.
enum TlsSharedField : uint8_t {
  kTlsSharedUp,
  kTlsSharedDown,
  kTlsSharedFlows,
  kTlsSharedUploadFlows,
  kTlsSharedFields
};
using TlsSharedCounts = std::array<int64_t, kTlsSharedFields>;

// Other sensors' part of each window's buckets `bucket` and `bucket - 1`.
struct TlsSharedView {
  struct Window {
    uint32_t bucket = 0;
    TlsSharedCounts cur{}, prev{};
  } w[kWindows];
};

class TlsSharedHook {
 public:
  virtual ~TlsSharedHook() = default;
  // A pair's record changed for the first time since the last flush. False
  // when the hook could not note it (full): the tracker tries again later.
  virtual bool touched(uint64_t key, const IpAddress& client, const IpAddress& server,
                       uint16_t port) = 0;
  // Other sensors' counts for the pair; null when none are known.
  virtual const TlsSharedView* view(uint64_t key) const = 0;
  // Fleet-wide suppression of the pair's alert (one sensor raises it).
  virtual ClaimOutcome claim(const IpAddress& client, const IpAddress& server, uint16_t port,
                             uint32_t signature_id, int64_t now, uint32_t suppress_seconds) = 0;

  // The live sensor cannot wait for the claim: as SharedStateHook's.
  struct DeferredAlert {
    SharedStateHook::DeferredAlert alert;  // its `domain` unused
    IpAddress server;
    uint16_t port = 0;
  };
  virtual bool defersClaims() const { return false; }
  virtual bool deferClaim(DeferredAlert&& alert) {
    (void)alert;
    return false;
  }
};

}  // namespace exfilwatch::score
