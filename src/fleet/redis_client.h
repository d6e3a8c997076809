// redis_client.h: the fleet's asynchronous Redis client (issue 22). Boost.Asio
// does the non-blocking I/O (TCP, or TLS through asio::ssl::stream for
// rediss://); hiredis only formats commands and parses replies
// (redis_protocol.h).
//
// The fleet thread hands it pipelined batches (CommandBatch) and gets one
// completion per batch with every reply. Nothing here waits on the network
// for the caller: submit() queues (bounded: beyond max_pending_* the batch
// is dropped and counted) and returns. With Redis Cluster each command goes
// to the master of its key's slot (CLUSTER SLOTS), one connection per
// master; MOVED updates the map and retries, ASK retries once on the
// importing node after ASKING, both a bounded number of times per command.
//
// Faults (unreachable, slow, restarted, failed over, error replies,
// garbage, AUTH refused) never throw on the I/O path: the connection is
// closed, what it had in flight fails (commands are not resent: INCRBY is
// not idempotent), and it reconnects with exponential backoff and jitter.
// Commands waiting for a connection wait up to queue_timeout. on_state
// reports each change between up and down once.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fleet/redis_protocol.h"
#include "fleet/redis_url.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace exfilwatch::fleet {

// What went wrong, counted by kind (exfilwatch_fleet_errors_total{kind}).
enum class ErrorKind : uint8_t {
  Resolve,    // the host name does not resolve
  Connect,    // TCP connect failed
  Tls,        // TLS handshake failed (certificate, name, protocol)
  Auth,       // AUTH refused, or the server wants a password we lack
  Handshake,  // SELECT or PING refused (e.g. a bad database, LOADING)
  Timeout,    // connect/handshake or a reply took too long
  Protocol,   // unparsable or unexpected bytes, or a reply over its limits
  Closed,     // the server closed the connection, or a read/write failed
  Reply,      // an error reply to a command (passed on to the caller)
  Redirect,   // a command redirected more than max_redirects times
  Cluster,    // a bad or incomplete CLUSTER SLOTS map
  kCount
};
const char* errorKindName(ErrorKind kind);

// Why a command of a batch has no reply.
enum class Failure : uint8_t {
  None,
  Timeout,       // sent; the connection was closed as slow before its reply
  Disconnected,  // sent; the connection was lost before its reply (it may have run)
  Expired,       // not sent within queue_timeout (no connection to its node)
  Redirects,     // redirected too often, or to more nodes than allowed
  Stopped,       // the client stopped
};
const char* failureName(Failure f);

struct BatchResult {
  std::vector<RedisReply> replies;         // one per command, in order; Nil where failed
  std::vector<Failure> failures;           // one per command; None where a reply came
  std::size_t failed = 0;                  // commands without a reply
  std::chrono::nanoseconds round_trip{0};  // first send to last reply
  bool ok() const { return failed == 0; }
};

struct ClientStats {
  uint64_t up = 0;  // 1 when every connection needed is ready
  uint64_t connects = 0, disconnects = 0;
  std::array<uint64_t, static_cast<std::size_t>(ErrorKind::kCount)> errors{};
  uint64_t batches_submitted = 0, batches_dropped = 0;  // dropped: over max_pending_*
  uint64_t batches_sent = 0;                            // at least one command written
  uint64_t batches_completed = 0;  // every command answered (error replies included)
  uint64_t batches_failed = 0;     // completed with at least one Failure
  uint64_t commands_sent = 0, commands_failed = 0;
  uint64_t bytes_sent = 0, bytes_received = 0;
  uint64_t moved = 0, ask = 0, slot_map_refreshes = 0;
  uint64_t pending_batches = 0, pending_bytes = 0;  // now
  uint64_t callback_exceptions = 0;
};

// Calls f(name, s.field...) for every counter of ClientStats (or of structs
// with the same fields) but `errors` and the pending gauges: one list for
// copies, exports and tests.
template <typename F, typename... Stats>
void forEachCounter(F&& f, Stats&... s) {
  f("up", s.up...);
  f("connects", s.connects...);
  f("disconnects", s.disconnects...);
  f("batches_submitted", s.batches_submitted...);
  f("batches_dropped", s.batches_dropped...);
  f("batches_sent", s.batches_sent...);
  f("batches_completed", s.batches_completed...);
  f("batches_failed", s.batches_failed...);
  f("commands_sent", s.commands_sent...);
  f("commands_failed", s.commands_failed...);
  f("bytes_sent", s.bytes_sent...);
  f("bytes_received", s.bytes_received...);
  f("moved", s.moved...);
  f("ask", s.ask...);
  f("slot_map_refreshes", s.slot_map_refreshes...);
  f("callback_exceptions", s.callback_exceptions...);
}

struct ClientOptions {
  std::size_t max_pending_batches = 64;  // submitted and not completed
  std::size_t max_pending_bytes = std::size_t{64} << 20;
  std::chrono::milliseconds queue_timeout{10000};  // longest wait for a connection
  std::chrono::milliseconds backoff_min{100};      // reconnect delays (backoffDelay)
  std::chrono::milliseconds backoff_max{10000};
  uint32_t max_redirects = 5;  // per command
  std::size_t max_nodes = 64;  // connections (masters, seeds, ASK targets)
  ReplyLimits reply_limits;
  // On the client's thread, once per change between up and down (the first
  // call is the first outcome); reason says why it is down, "" when up.
  std::function<void(bool up, const std::string& reason)> on_state;
  // On the client's thread: each completed batch's round trip, in ns (e.g.
  // into the sensor's fixed-bucket latency histogram).
  std::function<void(uint64_t ns)> on_round_trip;
};

class RedisClient {
 public:
  // Called on the client's thread; must not block. It may call submit().
  using Callback = std::function<void(BatchResult&&)>;

  // Runs on a thread of its own. Throws SettingsError when the TLS files do
  // not load (control plane).
  RedisClient(ConnectionSettings settings, ClientOptions options);
  // Runs on `io`, which the caller runs (from any number of threads: the
  // client keeps to a strand). stop() then completes asynchronously.
  RedisClient(ConnectionSettings settings, ClientOptions options, boost::asio::io_context& io);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  void start();  // starts connecting; returns at once
  // Fails what is pending (Stopped), closes every connection and, with its
  // own thread, joins it. Idempotent.
  void stop();

  // Thread-safe, never blocks on the network. False when the batch is
  // dropped (too many pending batches or bytes, or stopped): `done` is then
  // not called. Otherwise `done` is called once, on the client's thread.
  bool submit(CommandBatch batch, Callback done);

  bool up() const;
  ClientStats stats() const;

  class Impl;

 private:
  struct OwnThread;
  std::unique_ptr<OwnThread> own_;  // destroyed after impl_ (declared first)
  std::shared_ptr<Impl> impl_;
};

struct CheckResult {
  bool ok = false;
  std::string key;      // the fleet key to look at ("url", "password_file", ...)
  std::string message;  // what happened
  std::string what() const { return "fleet." + key + ": " + message; }
};

// The start-up check: connect, TLS, AUTH, SELECT and PING, and for a
// cluster CLUSTER SLOTS and the same with every master, within `timeout`.
// Blocks the caller (start-up only); a sensor whose check fails does not start.
CheckResult checkConnection(const ConnectionSettings& settings, std::chrono::milliseconds timeout,
                            const ClientOptions& options = {});

// The delay before reconnect attempt `attempt` (0: the first retry): a
// ceiling of min * 2^attempt, at most max, of which a random part is taken
// ([ceiling/2, ceiling]), so sensors that lost Redis together do not return
// in step. `random` is any 64-bit random value.
std::chrono::milliseconds backoffDelay(uint32_t attempt, std::chrono::milliseconds min,
                                       std::chrono::milliseconds max, uint64_t random);

}  // namespace exfilwatch::fleet
