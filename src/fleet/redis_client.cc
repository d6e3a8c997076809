// redis_client.cc: connections (Node), batches and cluster routing on one
// Asio strand. Every asynchronous operation carries the Link it was started
// on; a handler whose link is no longer its node's current one returns, so
// a closed connection's late completions change nothing.
#include "fleet/redis_client.h"

#include <arpa/inet.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <system_error>
#include <thread>

#include "fleet/cluster_slots.h"

namespace exfilwatch::fleet {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;
using std::chrono::milliseconds;

const char* errorKindName(ErrorKind kind) {
  static constexpr std::array<const char*, static_cast<std::size_t>(ErrorKind::kCount)> kNames{
      "resolve",  "connect", "tls",   "auth",     "handshake", "timeout",
      "protocol", "closed",  "reply", "redirect", "cluster"};
  const auto i = static_cast<std::size_t>(kind);
  return i < kNames.size() ? kNames[i] : "?";
}

const char* failureName(Failure f) {
  static constexpr std::array<const char*, 6> kNames{"none",    "timeout",   "disconnected",
                                                     "expired", "redirects", "stopped"};
  const auto i = static_cast<std::size_t>(f);
  return i < kNames.size() ? kNames[i] : "?";
}

milliseconds backoffDelay(uint32_t attempt, milliseconds min, milliseconds max, uint64_t random) {
  const int64_t lo = std::max<int64_t>(1, min.count());
  const int64_t hi = std::max(lo, static_cast<int64_t>(max.count()));
  int64_t ceiling = lo;
  for (uint32_t i = 0; i < attempt && ceiling < hi; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, hi);
  const int64_t half = ceiling / 2;
  const auto span = static_cast<uint64_t>(ceiling - half + 1);
  return milliseconds(half + static_cast<int64_t>(random % span));
}

namespace {

std::string formatCommand(std::initializer_list<std::string_view> args) {
  CommandBatch b;
  b.add("", args);
  return std::string(b.wire(0));
}

void bump(std::atomic<uint64_t>& a, uint64_t n = 1) { a.fetch_add(n, std::memory_order_relaxed); }

std::unique_ptr<ssl::context> makeTlsContext(const TlsSettings& t) {
  std::unique_ptr<ssl::context> ctx;
  try {
    ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  } catch (const boost::system::system_error& e) {
    throw SettingsError("url", std::string("cannot set up TLS: ") + e.what());
  }
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  error_code ec;
  if (!t.ca_file.empty()) {
    ctx->load_verify_file(t.ca_file, ec);
    if (ec) throw SettingsError("tls_ca_file", "cannot load '" + t.ca_file + "': " + ec.message());
  } else {
    ctx->set_default_verify_paths(ec);
  }
  if (!t.cert_file.empty()) {
    ctx->use_certificate_chain_file(t.cert_file, ec);
    if (ec) {
      throw SettingsError("tls_cert_file", "cannot load '" + t.cert_file + "': " + ec.message());
    }
    ctx->use_private_key_file(t.key_file, ssl::context::pem, ec);
    if (ec)
      throw SettingsError("tls_key_file", "cannot load '" + t.key_file + "': " + ec.message());
  }
  ctx->set_verify_mode(t.verify ? ssl::verify_peer : ssl::verify_none);
  return ctx;
}

struct Counters {
  std::atomic<uint64_t> up{0}, connects{0}, disconnects{0};
  std::array<std::atomic<uint64_t>, static_cast<std::size_t>(ErrorKind::kCount)> errors{};
  std::atomic<uint64_t> batches_submitted{0}, batches_dropped{0}, batches_sent{0};
  std::atomic<uint64_t> batches_completed{0}, batches_failed{0};
  std::atomic<uint64_t> commands_sent{0}, commands_failed{0};
  std::atomic<uint64_t> bytes_sent{0}, bytes_received{0};
  std::atomic<uint64_t> moved{0}, ask{0}, slot_map_refreshes{0}, callback_exceptions{0};
};

// One submitted batch while the client works on it.
struct BatchState {
  CommandBatch batch;
  RedisClient::Callback done;
  BatchResult result;
  struct Cmd {
    enum class State : uint8_t { Waiting, Sent, Done };
    State state = State::Waiting;
    uint32_t redirects = 0;
    std::optional<Endpoint> ask;  // next send: ASKING + the command on this node
  };
  std::vector<Cmd> cmds;
  std::size_t waiting = 0;    // Waiting commands
  std::size_t remaining = 0;  // not Done
  Clock::time_point deadline;
  Clock::time_point first_sent;
  bool sent = false;
};

// What a connection waits a reply for, in order.
struct Inflight {
  enum class Kind : uint8_t { Command, Asking, Auth, Select, Ping, Slots };
  Kind kind;
  std::shared_ptr<BatchState> batch;
  uint32_t index = 0;
  Clock::time_point sent;
};

// One TCP (or TLS) connection attempt and what belongs to it alone. Handlers
// hold it, their Node and the client (`keep`), so none outlives what it uses.
struct Link {
  Link(const asio::strand<asio::io_context::executor_type>& strand, ssl::context* tls_ctx,
       const ReplyLimits& limits)
      : resolver(strand), reader(limits) {
    if (tls_ctx != nullptr) {
      tls = std::make_unique<ssl::stream<tcp::socket>>(strand, *tls_ctx);
    } else {
      plain = std::make_unique<tcp::socket>(strand);
    }
  }
  tcp::socket& socket() const { return tls ? tls->next_layer() : *plain; }
  template <typename Handler>
  void asyncRead(Handler&& h) {
    if (tls) {
      tls->async_read_some(asio::buffer(buf), std::forward<Handler>(h));
    } else {
      plain->async_read_some(asio::buffer(buf), std::forward<Handler>(h));
    }
  }
  template <typename Handler>
  void asyncWrite(const std::string& data, Handler&& h) {
    if (tls) {
      asio::async_write(*tls, asio::buffer(data), std::forward<Handler>(h));
    } else {
      asio::async_write(*plain, asio::buffer(data), std::forward<Handler>(h));
    }
  }
  void close() {
    resolver.cancel();
    error_code ignored;
    socket().close(ignored);
  }

  tcp::resolver resolver;
  std::unique_ptr<tcp::socket> plain;
  std::unique_ptr<ssl::stream<tcp::socket>> tls;
  ReplyReader reader;
  std::array<char, 16384> buf{};
  bool writing = false;
  std::string tls_failure;  // what certificate verification refused
  bool tls_name_failed = false;
};

}  // namespace

class RedisClient::Impl : public std::enable_shared_from_this<Impl> {
 public:
  class Node;

  Impl(ConnectionSettings settings, ClientOptions options, asio::io_context& io)
      : settings_(std::move(settings)),
        options_(std::move(options)),
        strand_(asio::make_strand(io)),
        tick_(strand_),
        rng_(std::random_device{}()) {
    if (settings_.tls.enabled) tls_ctx_ = makeTlsContext(settings_.tls);
    if (!settings_.password.empty()) {
      auth_wire_ = settings_.user.empty()
                       ? formatCommand({"AUTH", settings_.password})
                       : formatCommand({"AUTH", settings_.user, settings_.password});
    }
    if (settings_.db != 0) select_wire_ = formatCommand({"SELECT", std::to_string(settings_.db)});
    ping_wire_ = formatCommand({"PING"});
    slots_wire_ = formatCommand({"CLUSTER", "SLOTS"});
    asking_wire_ = formatCommand({"ASKING"});
    const auto shortest = std::min(settings_.connect_timeout_ms, settings_.command_timeout_ms);
    tick_period_ = milliseconds(std::clamp<uint32_t>(shortest / 4, 5, 250));
  }

  // ---- caller's threads -------------------------------------------------
  void start() {
    asio::post(strand_, [self = shared_from_this()] { self->begin(); });
  }

  void stop() {
    if (stopped_.exchange(true)) return;
    asio::post(strand_, [self = shared_from_this()] { self->shutdown(); });
  }

  bool submit(CommandBatch batch, Callback done) {
    const std::size_t bytes = batch.bytes();
    bool post = false;
    {
      const std::lock_guard lock(mutex_);
      if (stopped_.load() || pending_batches_ >= options_.max_pending_batches ||
          pending_bytes_ + bytes > options_.max_pending_bytes) {
        bump(counters_.batches_dropped);
        return false;
      }
      ++pending_batches_;
      pending_bytes_ += bytes;
      inbox_.push_back({std::move(batch), std::move(done), Clock::now()});
      post = !drain_posted_;
      drain_posted_ = true;
    }
    bump(counters_.batches_submitted);
    if (post) asio::post(strand_, [self = shared_from_this()] { self->drainInbox(); });
    return true;
  }

  ClientStats stats() const {
    ClientStats s;
    forEachCounter([](const char*, const std::atomic<uint64_t>& from,
                      uint64_t& to) { to = from.load(std::memory_order_relaxed); },
                   counters_, s);
    for (std::size_t i = 0; i < s.errors.size(); ++i) {
      s.errors[i] = counters_.errors[i].load(std::memory_order_relaxed);
    }
    const std::lock_guard lock(mutex_);
    s.pending_batches = pending_batches_;
    s.pending_bytes = pending_bytes_;
    return s;
  }

  bool up() const { return counters_.up.load(std::memory_order_relaxed) != 0; }

  // ---- start-up check (the caller runs a private io_context) -------------
  void beginCheck(std::function<void(CheckResult)> done) {
    check_done_ = std::move(done);
    start();
  }
  // While the caller's io_context is not running.
  std::string checkTimeoutMessage(milliseconds timeout) const;

  // ---- the strand -------------------------------------------------------
 private:
  friend class Node;

  struct Submitted {
    CommandBatch batch;
    Callback done;
    Clock::time_point at;
  };

  void begin() {
    if (stopped_.load()) return;
    if (settings_.cluster) {
      requestRefresh();
    } else {
      single_ = node(settings_.endpoint);
    }
    scheduleTick();
  }

  std::shared_ptr<Node> node(const Endpoint& e);
  void dispatch();
  void requestRefresh();
  void tryRefresh();
  void onSlots(Node& from, RedisReply&& reply);
  void onCommandReply(Node& from, const Inflight& f, RedisReply&& reply);
  void onNodeReady(Node& n);
  void onNodeDown(Node& n, ErrorKind kind, const std::string& message);
  void failCommand(const std::shared_ptr<BatchState>& b, uint32_t i, Failure f);
  void complete(const std::shared_ptr<BatchState>& b);
  void evaluate(const std::string& reason);
  void finishCheck(bool ok, std::string key, std::string message);
  void drainInbox();
  void scheduleTick();
  void tick();
  void shutdown();
  void countError(ErrorKind k) { bump(counters_.errors[static_cast<std::size_t>(k)]); }
  bool isMaster(const Node& n) const;

  const ConnectionSettings settings_;
  const ClientOptions options_;
  asio::strand<asio::io_context::executor_type> strand_;
  asio::steady_timer tick_;
  milliseconds tick_period_{100};
  std::unique_ptr<ssl::context> tls_ctx_;
  std::string auth_wire_, select_wire_, ping_wire_, slots_wire_, asking_wire_;
  std::mt19937_64 rng_;
  Counters counters_;

  // Shared with submit() (any thread).
  mutable std::mutex mutex_;
  std::vector<Submitted> inbox_;
  bool drain_posted_ = false;
  std::size_t pending_batches_ = 0;
  std::size_t pending_bytes_ = 0;
  std::atomic<bool> stopped_{false};

  // The strand's own.
  bool shut_down_ = false;
  std::vector<std::shared_ptr<BatchState>> active_;
  std::map<std::string, std::shared_ptr<Node>> nodes_;
  std::shared_ptr<Node> single_;
  SlotMap slot_map_;
  bool have_map_ = false;
  std::vector<std::shared_ptr<Node>> master_nodes_;  // parallel to slot_map_.masters
  bool refresh_wanted_ = false;
  bool slots_pending_ = false;
  Clock::time_point last_refresh_{};
  std::string last_error_;
  std::optional<bool> reported_up_;
  std::function<void(CheckResult)> check_done_;
  std::size_t check_seed_failures_ = 0;
};

using Impl = RedisClient::Impl;

class Impl::Node : public std::enable_shared_from_this<Node> {
 public:
  enum class State : uint8_t { Idle, Backoff, Connecting, Handshake, Ready };

  Node(Impl& impl, Endpoint ep)
      : impl_(impl), ep_(std::move(ep)), name_(ep_.toString()), retry_(impl.strand_) {}

  const Endpoint& endpoint() const { return ep_; }
  const std::string& name() const { return name_; }
  State state() const { return state_; }
  bool ready() const { return state_ == State::Ready; }
  bool wanted() const { return wanted_; }
  void setWanted(bool w) {
    wanted_ = w;
    if (!w && inflight_.empty()) close();
  }
  const std::string& phase() const { return phase_; }

  void connect() {
    if (state_ != State::Idle && state_ != State::Backoff) return;
    state_ = State::Connecting;
    phase_ = "connecting";
    phase_start_ = Clock::now();
    link_ =
        std::make_shared<Link>(impl_.strand_, impl_.tls_ctx_.get(), impl_.options_.reply_limits);
    auto self = shared_from_this();
    auto link = link_;
    link->resolver.async_resolve(
        ep_.host, std::to_string(ep_.port), tcp::resolver::numeric_service,
        [self, link, keep = impl_.shared_from_this()](const error_code& ec,
                                                      const tcp::resolver::results_type& results) {
          if (link != self->link_) return;
          if (ec) {
            self->fail(ErrorKind::Resolve,
                       "cannot resolve '" + self->ep_.host + "': " + ec.message());
            return;
          }
          asio::async_connect(link->socket(), results,
                              [self, link, keep](const error_code& ec2, const tcp::endpoint&) {
                                if (link != self->link_) return;
                                self->connected(ec2);
                              });
        });
  }

  // Appends one request; written by flush().
  void queue(Inflight::Kind kind, std::string_view wire, std::shared_ptr<BatchState> batch = {},
             uint32_t index = 0) {
    out_.append(wire);
    inflight_.push_back({kind, std::move(batch), index, Clock::now()});
  }

  void flush() {
    if (!link_ || link_->writing || out_.empty()) return;
    if (state_ != State::Handshake && state_ != State::Ready) return;
    auto data = std::make_shared<std::string>(std::move(out_));
    out_.clear();
    link_->writing = true;
    auto self = shared_from_this();
    auto link = link_;
    link->asyncWrite(*data, [self, link, data, keep = impl_.shared_from_this()](
                                const error_code& ec, std::size_t n) {
      if (link != self->link_) return;
      link->writing = false;
      if (ec) {
        self->fail(ErrorKind::Closed, "writing to " + self->name_ + " failed: " + ec.message());
        return;
      }
      bump(self->impl_.counters_.bytes_sent, n);
      self->flush();
    });
  }

  // Timeouts, checked by the client's tick.
  void checkTimeouts(Clock::time_point now) {
    const milliseconds connect_timeout(impl_.settings_.connect_timeout_ms);
    const milliseconds command_timeout(impl_.settings_.command_timeout_ms);
    if ((state_ == State::Connecting || state_ == State::Handshake) &&
        now - phase_start_ > connect_timeout) {
      fail(ErrorKind::Timeout, name_ + ": " + phase_ + " took longer than " +
                                   std::to_string(connect_timeout.count()) + " ms");
    } else if (state_ == State::Ready && !inflight_.empty() &&
               now - inflight_.front().sent > command_timeout) {
      fail(ErrorKind::Timeout,
           name_ + ": no reply within " + std::to_string(command_timeout.count()) + " ms");
    }
  }

  // Closes the connection and fails what it had in flight; reconnects
  // after a backoff delay when still wanted.
  void fail(ErrorKind kind, const std::string& message) {
    impl_.countError(kind);
    if (state_ == State::Ready) bump(impl_.counters_.disconnects);
    close(kind == ErrorKind::Timeout ? Failure::Timeout : Failure::Disconnected);
    if (wanted_ && !impl_.shut_down_ && !impl_.check_done_) {
      state_ = State::Backoff;
      const milliseconds delay = backoffDelay(attempts_++, impl_.options_.backoff_min,
                                              impl_.options_.backoff_max, impl_.rng_());
      retry_.expires_after(delay);
      retry_.async_wait(
          [self = shared_from_this(), keep = impl_.shared_from_this()](const error_code& ec) {
            if (!ec && self->state_ == State::Backoff && self->wanted_ && !self->impl_.shut_down_) {
              self->connect();
            }
          });
    }
    impl_.onNodeDown(*this, kind, message);
  }

  // Without a reconnect; fails what was in flight as `why` (Stopped when
  // shutting down).
  void close(Failure why = Failure::Disconnected) {
    if (link_) link_->close();
    link_.reset();
    out_.clear();
    state_ = State::Idle;
    error_code ignored;
    retry_.cancel(ignored);
    std::deque<Inflight> lost;
    lost.swap(inflight_);
    for (const Inflight& f : lost) {
      if (f.kind == Inflight::Kind::Slots) impl_.slots_pending_ = false;
      if (f.kind != Inflight::Kind::Command) continue;
      impl_.failCommand(f.batch, f.index, impl_.shut_down_ ? Failure::Stopped : why);
    }
  }

  bool tlsNameFailed() const { return tls_name_failed_; }

 private:
  void connected(const error_code& ec) {
    if (ec) {
      fail(ErrorKind::Connect, "cannot connect to " + name_ + ": " + ec.message());
      return;
    }
    error_code ignored;
    link_->socket().set_option(tcp::no_delay(true), ignored);
    link_->socket().set_option(asio::socket_base::keep_alive(true), ignored);
    if (!link_->tls) {
      handshake();
      return;
    }
    phase_ = "TLS handshake";
    const TlsSettings& t = impl_.settings_.tls;
    const std::string& name = t.server_name.empty() ? ep_.host : t.server_name;
    in_addr a4{};
    const bool address =
        name.find(':') != std::string::npos || inet_pton(AF_INET, name.c_str(), &a4) == 1;
    // SNI carries names only (RFC 6066), never an address.
    if (!address) SSL_set_tlsext_host_name(link_->tls->native_handle(), name.c_str());
    if (t.verify) {
      // Says which check failed: OpenSSL reports both as "certificate verify failed".
      link_->tls->set_verify_callback(
          [name, link = link_.get()](bool preverified, ssl::verify_context& ctx) {
            if (!preverified) {
              link->tls_failure =
                  X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.native_handle()));
              return false;
            }
            if (!ssl::host_name_verification(name)(preverified, ctx)) {
              link->tls_failure = "the certificate is not for '" + name + "'";
              link->tls_name_failed = true;
              return false;
            }
            return true;
          },
          ignored);
    }
    auto self = shared_from_this();
    auto link = link_;
    link->tls->async_handshake(
        ssl::stream_base::client,
        [self, link, keep = impl_.shared_from_this()](const error_code& ec2) {
          if (link != self->link_) return;
          if (ec2) {
            std::string why = ec2.message();
            if (!link->tls_failure.empty()) why += " (" + link->tls_failure + ")";
            self->tls_name_failed_ = link->tls_name_failed;
            self->fail(ErrorKind::Tls, "TLS handshake with " + self->name_ + " failed: " + why);
            return;
          }
          self->handshake();
        });
  }

  // AUTH, SELECT and PING, pipelined; ready at PONG.
  void handshake() {
    state_ = State::Handshake;
    phase_ = "AUTH/PING";
    if (!impl_.auth_wire_.empty()) queue(Inflight::Kind::Auth, impl_.auth_wire_);
    if (!impl_.select_wire_.empty() && !impl_.settings_.cluster) {
      queue(Inflight::Kind::Select, impl_.select_wire_);
    }
    queue(Inflight::Kind::Ping, impl_.ping_wire_);
    read();
    flush();
  }

  void read() {
    auto self = shared_from_this();
    auto link = link_;
    link->asyncRead(
        [self, link, keep = impl_.shared_from_this()](const error_code& ec, std::size_t n) {
          if (link != self->link_) return;
          if (ec) {
            self->fail(ErrorKind::Closed,
                       ec == asio::error::eof
                           ? self->name_ + " closed the connection"
                           : "reading from " + self->name_ + " failed: " + ec.message());
            return;
          }
          bump(self->impl_.counters_.bytes_received, n);
          if (!link->reader.feed(link->buf.data(), n)) {
            self->fail(ErrorKind::Protocol, self->name_ + ": " + link->reader.error());
            return;
          }
          RedisReply reply;
          for (;;) {
            const auto next = link->reader.next(reply);
            if (next == ReplyReader::Next::More) break;
            if (next == ReplyReader::Next::Error) {
              self->fail(ErrorKind::Protocol, self->name_ + ": " + link->reader.error());
              return;
            }
            self->onReply(std::move(reply));
            if (link != self->link_) return;  // the reply closed the connection
          }
          self->impl_.dispatch();
          if (link != self->link_) return;
          if (!self->wanted_ && self->inflight_.empty()) {
            self->close();
            return;
          }
          self->read();
        });
  }

  void onReply(RedisReply&& r) {
    if (inflight_.empty()) {
      fail(ErrorKind::Protocol, name_ + " sent a reply nobody asked for");
      return;
    }
    const Inflight f = std::move(inflight_.front());
    inflight_.pop_front();
    switch (f.kind) {
      case Inflight::Kind::Auth:
        if (r.isError()) {
          const std::string who = impl_.settings_.user.empty()
                                      ? std::string("the default user")
                                      : "user '" + impl_.settings_.user + "'";
          fail(ErrorKind::Auth, "AUTH as " + who + " refused by " + name_ + ": " + r.str);
        }
        return;
      case Inflight::Kind::Select:
        if (r.isError()) {
          fail(ErrorKind::Handshake, "SELECT " + std::to_string(impl_.settings_.db) +
                                         " refused by " + name_ + ": " + r.str);
        }
        return;
      case Inflight::Kind::Ping:
        if (r.isError()) {
          const bool auth = r.str.rfind("NOAUTH", 0) == 0;
          fail(auth ? ErrorKind::Auth : ErrorKind::Handshake,
               name_ +
                   (auth ? " requires a password (set fleet.password_file): " : " refused PING: ") +
                   r.str);
        } else if (state_ == State::Handshake) {
          state_ = State::Ready;
          phase_ = "ready";
          attempts_ = 0;
          bump(impl_.counters_.connects);
          impl_.onNodeReady(*this);
        }
        return;
      case Inflight::Kind::Slots:
        impl_.onSlots(*this, std::move(r));
        return;
      case Inflight::Kind::Asking:
        if (r.isError()) impl_.countError(ErrorKind::Reply);
        return;
      case Inflight::Kind::Command:
        impl_.onCommandReply(*this, f, std::move(r));
        return;
    }
  }

  Impl& impl_;
  const Endpoint ep_;
  const std::string name_;
  State state_ = State::Idle;
  std::string phase_ = "idle";
  Clock::time_point phase_start_{};
  std::shared_ptr<Link> link_;
  std::deque<Inflight> inflight_;
  std::string out_;
  asio::steady_timer retry_;
  uint32_t attempts_ = 0;
  bool wanted_ = true;
  bool tls_name_failed_ = false;
};

std::shared_ptr<Impl::Node> Impl::node(const Endpoint& e) {
  const std::string name = e.toString();
  if (const auto it = nodes_.find(name); it != nodes_.end()) {
    if (!it->second->wanted()) it->second->setWanted(true);
    if (it->second->state() == Node::State::Idle) it->second->connect();
    return it->second;
  }
  if (nodes_.size() >= options_.max_nodes) return nullptr;
  auto n = std::make_shared<Node>(*this, e);
  nodes_.emplace(name, n);
  n->connect();
  return n;
}

bool Impl::isMaster(const Node& n) const {
  return std::any_of(master_nodes_.begin(), master_nodes_.end(),
                     [&](const std::shared_ptr<Node>& m) { return m.get() == &n; });
}

void Impl::drainInbox() {
  std::vector<Submitted> taken;
  {
    const std::lock_guard lock(mutex_);
    taken.swap(inbox_);
    drain_posted_ = false;
  }
  for (Submitted& s : taken) {
    auto b = std::make_shared<BatchState>();
    b->batch = std::move(s.batch);
    b->done = std::move(s.done);
    const std::size_t n = b->batch.size();
    b->cmds.resize(n);
    b->result.replies.resize(n);
    b->result.failures.assign(n, Failure::None);
    b->waiting = b->remaining = n;
    b->deadline = s.at + options_.queue_timeout;
    active_.push_back(b);
    if (shut_down_) {
      for (uint32_t i = 0; i < n; ++i) failCommand(b, i, Failure::Stopped);
    }
    if (n == 0) complete(b);
  }
  dispatch();
}

void Impl::dispatch() {
  if (shut_down_) return;
  const auto now = Clock::now();
  std::vector<std::pair<std::shared_ptr<BatchState>, uint32_t>> unroutable;
  for (const auto& b : active_) {
    if (b->waiting == 0) continue;
    for (uint32_t i = 0; i < b->cmds.size(); ++i) {
      auto& cmd = b->cmds[i];
      if (cmd.state != BatchState::Cmd::State::Waiting) continue;
      std::shared_ptr<Node> target;
      if (!settings_.cluster) {
        target = single_;
      } else if (cmd.ask) {
        target = node(*cmd.ask);
        if (!target) {
          unroutable.emplace_back(b, i);  // after the loop: completing edits active_
          continue;
        }
      } else if (b->batch.slot(i) == kAnySlot) {
        for (const auto& m : master_nodes_) {
          if (m && m->ready()) target = m;
        }
      } else if (have_map_) {
        const int16_t owner = slot_map_.owner[b->batch.slot(i)];
        if (owner >= 0) target = master_nodes_[static_cast<std::size_t>(owner)];
      }
      if (!target || !target->ready()) continue;  // waits (queue_timeout)
      if (cmd.ask) {
        target->queue(Inflight::Kind::Asking, asking_wire_);
        cmd.ask.reset();
      }
      target->queue(Inflight::Kind::Command, b->batch.wire(i), b, i);
      cmd.state = BatchState::Cmd::State::Sent;
      --b->waiting;
      bump(counters_.commands_sent);
      if (!b->sent) {
        b->sent = true;
        b->first_sent = now;
        bump(counters_.batches_sent);
      }
    }
  }
  for (const auto& [b, i] : unroutable) failCommand(b, i, Failure::Redirects);
  for (const auto& [name, n] : nodes_) n->flush();
}

void Impl::failCommand(const std::shared_ptr<BatchState>& b, uint32_t i, Failure f) {
  auto& cmd = b->cmds[i];
  if (cmd.state == BatchState::Cmd::State::Done) return;
  if (cmd.state == BatchState::Cmd::State::Waiting) --b->waiting;
  cmd.state = BatchState::Cmd::State::Done;
  b->result.failures[i] = f;
  ++b->result.failed;
  bump(counters_.commands_failed);
  if (--b->remaining == 0) complete(b);
}

void Impl::complete(const std::shared_ptr<BatchState>& b) {
  const auto it = std::find(active_.begin(), active_.end(), b);
  if (it == active_.end()) return;
  active_.erase(it);
  {
    const std::lock_guard lock(mutex_);
    --pending_batches_;
    pending_bytes_ -= b->batch.bytes();
  }
  if (b->sent) b->result.round_trip = Clock::now() - b->first_sent;
  if (b->result.ok()) {
    bump(counters_.batches_completed);
    if (b->sent && options_.on_round_trip) {
      options_.on_round_trip(static_cast<uint64_t>(b->result.round_trip.count()));
    }
  } else {
    bump(counters_.batches_failed);
  }
  if (!b->done) return;
  try {
    b->done(std::move(b->result));
  } catch (const std::exception&) {
    bump(counters_.callback_exceptions);
  }
}

void Impl::onCommandReply(Node& from, const Inflight& f, RedisReply&& reply) {
  const auto& b = f.batch;
  auto& cmd = b->cmds[f.index];
  if (cmd.state != BatchState::Cmd::State::Sent) return;
  if (settings_.cluster && reply.isError()) {
    if (const auto redirect = parseRedirect(reply.str)) {
      Endpoint target = redirect->target;
      if (target.host.empty()) target.host = from.endpoint().host;
      if (cmd.redirects >= options_.max_redirects) {
        countError(ErrorKind::Redirect);
        failCommand(b, f.index, Failure::Redirects);
        return;
      }
      ++cmd.redirects;
      if (redirect->kind == Redirect::Kind::Moved) {
        bump(counters_.moved);
        const int index = slot_map_.indexOf(target, options_.max_nodes);
        if (index < 0) {
          countError(ErrorKind::Redirect);
          failCommand(b, f.index, Failure::Redirects);
          return;
        }
        if (master_nodes_.size() < slot_map_.masters.size()) master_nodes_.push_back(node(target));
        slot_map_.owner[redirect->slot] = static_cast<int16_t>(index);
        requestRefresh();
      } else {
        bump(counters_.ask);
        cmd.ask = target;
      }
      cmd.state = BatchState::Cmd::State::Waiting;
      ++b->waiting;
      return;  // dispatched again at the end of this read
    }
    if (reply.str.rfind("CLUSTERDOWN", 0) == 0 || reply.str.rfind("READONLY", 0) == 0) {
      requestRefresh();
    }
  }
  if (reply.isError()) countError(ErrorKind::Reply);
  b->result.replies[f.index] = std::move(reply);
  cmd.state = BatchState::Cmd::State::Done;
  if (--b->remaining == 0) complete(b);
}

void Impl::requestRefresh() {
  if (!settings_.cluster) return;
  refresh_wanted_ = true;
  tryRefresh();
}

void Impl::tryRefresh() {
  constexpr milliseconds kMinInterval{100};
  if (!refresh_wanted_ || slots_pending_ || shut_down_) return;
  const auto now = Clock::now();
  if (have_map_ && now - last_refresh_ < kMinInterval) return;  // the tick comes back
  std::shared_ptr<Node> via;
  for (const auto& m : master_nodes_) {
    if (m && m->ready()) via = m;
  }
  for (const auto& [name, n] : nodes_) {
    if (!via && n->ready()) via = n;
  }
  if (!via) {
    for (const Endpoint& seed : settings_.seeds) node(seed);
    return;
  }
  via->queue(Inflight::Kind::Slots, slots_wire_);
  via->flush();
  slots_pending_ = true;
  last_refresh_ = now;
  bump(counters_.slot_map_refreshes);
}

void Impl::onSlots(Node& from, RedisReply&& reply) {
  slots_pending_ = false;
  SlotMap map;
  std::string why;
  if (!parseClusterSlots(reply, from.endpoint(), options_.max_nodes, map, &why)) {
    countError(ErrorKind::Cluster);
    last_error_ = from.name() + ": " + why;
    if (check_done_) return finishCheck(false, "url", last_error_);
    evaluate(last_error_);
    return;
  }
  const auto uncovered = std::count(map.owner.begin(), map.owner.end(), int16_t{-1});
  if (uncovered > 0) {
    countError(ErrorKind::Cluster);
    last_error_ = "cluster: " + std::to_string(uncovered) + " of 16384 slots have no master (" +
                  from.name() + ")";
    if (check_done_) return finishCheck(false, "url", last_error_);
  } else {
    refresh_wanted_ = false;
  }
  slot_map_ = std::move(map);
  have_map_ = true;
  master_nodes_.clear();
  for (const Endpoint& m : slot_map_.masters) master_nodes_.push_back(node(m));
  for (const auto& [name, n] : nodes_) {
    if (!isMaster(*n)) n->setWanted(false);
  }
  std::erase_if(nodes_, [](const auto& kv) {
    return !kv.second->wanted() && kv.second->state() == Node::State::Idle;
  });
  dispatch();
  evaluate(last_error_);
}

void Impl::onNodeReady(Node& n) {
  if (settings_.cluster && (refresh_wanted_ || !have_map_)) {
    refresh_wanted_ = true;
    tryRefresh();
  }
  (void)n;
  dispatch();
  evaluate("");
}

void Impl::onNodeDown(Node& n, ErrorKind kind, const std::string& message) {
  last_error_ = message;
  if (check_done_) {
    // Any seed will do to find the cluster; every master must answer.
    if (settings_.cluster && !have_map_ && ++check_seed_failures_ < settings_.seeds.size()) return;
    std::string key = "url";
    if (kind == ErrorKind::Auth) key = "password_file";
    if (kind == ErrorKind::Tls && message.find("certificate") != std::string::npos) {
      key = n.tlsNameFailed() ? "tls_server_name" : "tls_ca_file";
    }
    // TLS 1.3: the server refuses a missing client certificate after the handshake.
    if (message.find("certificate required") != std::string::npos) key = "tls_cert_file";
    if (settings_.cluster && !(n.endpoint() == settings_.endpoint) && kind != ErrorKind::Auth &&
        kind != ErrorKind::Tls) {
      key = "seeds";
    }
    finishCheck(false, key, message);
    return;
  }
  if (settings_.cluster && (isMaster(n) || !have_map_)) requestRefresh();
  evaluate(message);
}

void Impl::evaluate(const std::string& reason) {
  bool up = false;
  if (!settings_.cluster) {
    up = single_ && single_->ready();
  } else {
    up = have_map_ && !master_nodes_.empty() && slot_map_.complete() &&
         std::all_of(master_nodes_.begin(), master_nodes_.end(),
                     [](const std::shared_ptr<Node>& m) { return m && m->ready(); });
  }
  if (check_done_) {
    if (up) finishCheck(true, "", "");
    return;
  }
  counters_.up.store(up ? 1 : 0, std::memory_order_relaxed);
  // Down is reported for a reason (a failure), never for "not connected yet".
  if (reported_up_ == up || (!up && reason.empty())) return;
  reported_up_ = up;
  if (options_.on_state) {
    try {
      options_.on_state(up, up ? std::string() : reason);
    } catch (const std::exception&) {
      bump(counters_.callback_exceptions);
    }
  }
}

void Impl::finishCheck(bool ok, std::string key, std::string message) {
  if (!check_done_) return;
  auto done = std::move(check_done_);
  check_done_ = nullptr;
  done(CheckResult{ok, std::move(key), std::move(message)});
  shutdown();
}

std::string Impl::checkTimeoutMessage(milliseconds timeout) const {
  std::string where;
  for (const auto& [name, n] : nodes_) {
    if (!n->ready()) where += (where.empty() ? "" : ", ") + name + " (" + n->phase() + ")";
  }
  if (where.empty() && settings_.cluster) where = "the cluster map (CLUSTER SLOTS)";
  return "no answer within " + std::to_string(timeout.count()) + " ms from " + where;
}

void Impl::scheduleTick() {
  if (shut_down_) return;
  tick_.expires_after(tick_period_);
  tick_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (!ec) self->tick();
  });
}

void Impl::tick() {
  if (shut_down_) return;
  const auto now = Clock::now();
  // Copies: a timeout completes batches and may drop nodes.
  std::vector<std::shared_ptr<Node>> nodes;
  nodes.reserve(nodes_.size());
  for (const auto& [name, n] : nodes_) nodes.push_back(n);
  for (const auto& n : nodes) n->checkTimeouts(now);
  const auto batches = active_;
  for (const auto& b : batches) {
    if (b->waiting == 0 || now < b->deadline) continue;
    for (uint32_t i = 0; i < b->cmds.size(); ++i) {
      if (b->cmds[i].state == BatchState::Cmd::State::Waiting) failCommand(b, i, Failure::Expired);
    }
  }
  std::erase_if(nodes_, [](const auto& kv) {
    return !kv.second->wanted() && kv.second->state() == Node::State::Idle;
  });
  tryRefresh();
  scheduleTick();
}

void Impl::shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  stopped_.store(true);
  error_code ignored;
  tick_.cancel(ignored);
  for (const auto& [name, n] : nodes_) {
    n->setWanted(false);
    n->close();
  }
  const auto batches = active_;
  for (const auto& b : batches) {
    for (uint32_t i = 0; i < b->cmds.size(); ++i) failCommand(b, i, Failure::Stopped);
  }
  nodes_.clear();
  master_nodes_.clear();
  single_.reset();
  drainInbox();  // batches submitted meanwhile: Stopped
}

// ---- RedisClient ------------------------------------------------------------

struct RedisClient::OwnThread {
  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard{
      asio::make_work_guard(io)};
  std::thread thread;
};

RedisClient::RedisClient(ConnectionSettings settings, ClientOptions options)
    : own_(std::make_unique<OwnThread>()),
      impl_(std::make_shared<Impl>(std::move(settings), std::move(options), own_->io)) {}

RedisClient::RedisClient(ConnectionSettings settings, ClientOptions options, asio::io_context& io)
    : impl_(std::make_shared<Impl>(std::move(settings), std::move(options), io)) {}

RedisClient::~RedisClient() {
  try {
    stop();
  } catch (const std::system_error&) {
    // join() failed: the thread is already gone.
  }
}

void RedisClient::start() {
  impl_->start();
  if (own_ && !own_->thread.joinable()) {
    own_->thread = std::thread([io = &own_->io] { io->run(); });
  }
}

void RedisClient::stop() {
  impl_->stop();
  if (!own_) return;
  own_->guard.reset();
  if (own_->thread.joinable()) {
    // From a callback (the client's thread): the thread ends once idle and
    // the destructor joins it.
    if (own_->thread.get_id() != std::this_thread::get_id()) own_->thread.join();
  } else {
    own_->io.run();  // never started: runs the shutdown
  }
}

bool RedisClient::submit(CommandBatch batch, Callback done) {
  return impl_->submit(std::move(batch), std::move(done));
}

bool RedisClient::up() const { return impl_->up(); }

ClientStats RedisClient::stats() const { return impl_->stats(); }

CheckResult checkConnection(const ConnectionSettings& settings, milliseconds timeout,
                            const ClientOptions& options) {
  asio::io_context io{1};
  std::shared_ptr<Impl> impl;
  try {
    impl = std::make_shared<Impl>(settings, options, io);
  } catch (const SettingsError& e) {
    const std::string prefix = "fleet." + e.key() + ": ";
    return {false, e.key(), std::string(e.what()).substr(prefix.size())};
  }
  std::optional<CheckResult> result;
  impl->beginCheck([&](CheckResult r) { result = std::move(r); });
  const auto deadline = Clock::now() + timeout;
  while (!result && !io.stopped() && Clock::now() < deadline) {
    io.run_one_until(deadline);
  }
  if (!result) {
    const std::string message = impl->checkTimeoutMessage(timeout);
    impl->stop();
    io.restart();
    io.run_for(milliseconds(100));
    return {false, "url", message};
  }
  io.run_for(milliseconds(100));  // lets the closed connections' handlers finish
  return *result;
}

}  // namespace exfilwatch::fleet
