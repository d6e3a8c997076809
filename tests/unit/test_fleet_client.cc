// test_fleet_client.cc: the fleet client's behaviour without a Redis
// (tests/integration/fleet_redis.py runs it against real ones): on loopback,
// a port nobody listens on, a listener that never answers and one that
// answers garbage. Down is reported once, the queue is bounded, waiting
// commands expire, stop() completes what is pending, and the start-up check
// names what failed.
#include <doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fleet/redis_client.h"

using namespace exfilwatch::fleet;
using namespace std::chrono_literals;

namespace {

// A loopback TCP listener on its own thread: accepts, writes `greeting` to
// each connection (nothing when empty) and keeps it open until destroyed.
class Listener {
 public:
  explicit Listener(std::string greeting) : greeting_(std::move(greeting)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(listen(fd_, 16) == 0);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~Listener() {
    stop_ = true;
    thread_.join();
    for (const int c : clients_) close(c);
    close(fd_);
  }
  uint16_t port = 0;
  std::atomic<int> accepted{0};

 private:
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      ++accepted;
      if (!greeting_.empty()) (void)!write(c, greeting_.data(), greeting_.size());
      clients_.push_back(c);
    }
  }
  std::string greeting_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<int> clients_;
};

// A loopback port nobody listens on (bound, then closed).
uint16_t closedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

ConnectionSettings settingsFor(uint16_t port) {
  SettingsBuilder b;
  b.set("url", "redis://127.0.0.1:" + std::to_string(port));
  b.set("connect_timeout_ms", "300");
  b.set("command_timeout_ms", "300");
  return b.finish();
}

CommandBatch incr(const std::string& key) {
  CommandBatch b;
  b.add(key, {"INCRBY", key, "1"});
  return b;
}

// What the callbacks saw, filled on the client's thread.
struct Seen {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::pair<bool, std::string>> states;
  std::vector<BatchResult> results;

  ClientOptions hook(ClientOptions o) {
    o.on_state = [this](bool up, const std::string& reason) {
      const std::lock_guard lock(m);
      states.emplace_back(up, reason);
    };
    return o;
  }
  RedisClient::Callback done() {
    return [this](BatchResult&& r) {
      const std::lock_guard lock(m);
      results.push_back(std::move(r));
      cv.notify_all();
    };
  }
  bool waitResults(std::size_t n, std::chrono::milliseconds limit) {
    std::unique_lock lock(m);
    return cv.wait_for(lock, limit, [&] { return results.size() >= n; });
  }
};

}  // namespace

TEST_CASE("fleet client: unreachable Redis is reported down once; the queue is bounded") {
  Seen seen;
  ClientOptions o;
  o.max_pending_batches = 3;
  o.queue_timeout = 400ms;
  o.backoff_min = 10ms;
  o.backoff_max = 40ms;
  const uint16_t port = closedPort();
  RedisClient client(settingsFor(port), seen.hook(o));
  client.start();
  for (int i = 0; i < 3; ++i) CHECK(client.submit(incr("k" + std::to_string(i)), seen.done()));
  CHECK_FALSE(client.submit(incr("k3"), seen.done()));  // over max_pending_batches: dropped
  REQUIRE(seen.waitResults(3, 5000ms));
  std::this_thread::sleep_for(200ms);  // more reconnect attempts, no more reports
  const ClientStats s = client.stats();
  {
    const std::lock_guard lock(seen.m);
    for (const BatchResult& r : seen.results) {
      CHECK(r.failed == 1);
      CHECK(r.failures.at(0) == Failure::Expired);
      CHECK(r.replies.at(0).type == RedisReply::Type::Nil);
    }
    REQUIRE(seen.states.size() == 1);
    CHECK_FALSE(seen.states[0].first);
    CHECK(seen.states[0].second ==
          "cannot connect to 127.0.0.1:" + std::to_string(port) + ": Connection refused");
  }
  CHECK(s.up == 0);
  CHECK(s.batches_submitted == 3);
  CHECK(s.batches_dropped == 1);
  CHECK(s.batches_failed == 3);
  CHECK(s.batches_sent == 0);
  CHECK(s.commands_failed == 3);
  CHECK(s.pending_batches == 0);
  CHECK(s.errors[static_cast<std::size_t>(ErrorKind::Connect)] >= 3);  // it kept retrying
  // Room again once the expired batches are gone.
  CHECK(client.submit(incr("k4"), seen.done()));
  client.stop();
}

TEST_CASE("fleet client: stop() completes pending batches as Stopped") {
  Seen seen;
  ClientOptions o;
  o.queue_timeout = 60s;
  RedisClient client(settingsFor(closedPort()), seen.hook(o));
  client.start();
  CHECK(client.submit(incr("a"), seen.done()));
  CHECK(client.submit(CommandBatch{}, seen.done()));  // empty: completes at once
  CHECK(client.submit(incr("b"), seen.done()));
  client.stop();
  {
    const std::lock_guard lock(seen.m);
    REQUIRE(seen.results.size() == 3);
    int stopped = 0;
    for (const BatchResult& r : seen.results) {
      if (r.failed == 1 && r.failures[0] == Failure::Stopped) ++stopped;
    }
    CHECK(stopped == 2);
  }
  CHECK_FALSE(client.submit(incr("c"), seen.done()));
}

TEST_CASE("fleet client: a silent server times out; garbage is a protocol error") {
  Seen seen;
  Listener silent("");
  ClientOptions o;
  o.backoff_min = 10ms;
  o.backoff_max = 20ms;
  o.queue_timeout = 60s;
  {
    RedisClient client(settingsFor(silent.port), seen.hook(o));
    client.start();
    std::this_thread::sleep_for(900ms);  // three handshakes of 300 ms at most
    const ClientStats s = client.stats();
    CHECK(s.errors[static_cast<std::size_t>(ErrorKind::Timeout)] >= 1);
    CHECK(silent.accepted >= 2);  // reconnected after the timeout
    client.stop();
  }
  {
    const std::lock_guard lock(seen.m);
    REQUIRE(seen.states.size() == 1);
    CHECK(seen.states[0].second ==
          "127.0.0.1:" + std::to_string(silent.port) + ": AUTH/PING took longer than 300 ms");
  }
  Listener garbage("HTTP/1.1 400 Bad Request\r\n\r\n");
  ClientStats s;
  {
    RedisClient client(settingsFor(garbage.port), o);
    client.start();
    std::this_thread::sleep_for(300ms);
    s = client.stats();
    client.stop();
  }
  CHECK(s.errors[static_cast<std::size_t>(ErrorKind::Protocol)] >= 2);
  CHECK(s.up == 0);
  CHECK(s.connects == 0);
}

TEST_CASE("fleet client: the start-up check names what failed") {
  const uint16_t port = closedPort();
  CheckResult r = checkConnection(settingsFor(port), 2000ms);
  CHECK_FALSE(r.ok);
  CHECK(r.what() ==
        "fleet.url: cannot connect to 127.0.0.1:" + std::to_string(port) + ": Connection refused");

  Listener silent("");
  r = checkConnection(settingsFor(silent.port), 2000ms);
  CHECK_FALSE(r.ok);
  CHECK(r.what() == "fleet.url: 127.0.0.1:" + std::to_string(silent.port) +
                        ": AUTH/PING took longer than 300 ms");
  // The caller's timeout, when shorter than the connection's.
  r = checkConnection(settingsFor(silent.port), 100ms);
  CHECK(r.what() == "fleet.url: no answer within 100 ms from 127.0.0.1:" +
                        std::to_string(silent.port) + " (AUTH/PING)");

  Listener garbage("-ERR unknown command 'garbage'\r\n+PONG\r\n");  // answers before it is asked
  SettingsBuilder b;
  b.set("url", "redis://127.0.0.1:" + std::to_string(garbage.port));
  r = checkConnection(b.finish(), 2000ms);
  CHECK_FALSE(r.ok);
  CHECK(r.what() == "fleet.url: 127.0.0.1:" + std::to_string(garbage.port) +
                        " refused PING: ERR unknown command 'garbage'");

  Listener pong("+PONG\r\n");
  SettingsBuilder ok;
  ok.set("url", "redis://127.0.0.1:" + std::to_string(pong.port));
  r = checkConnection(ok.finish(), 2000ms);
  CHECK(r.ok);
}
