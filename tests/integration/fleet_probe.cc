// fleet_probe.cc: drives the fleet Redis client (src/fleet) for
// tests/integration/fleet_redis.py. Settings come as fleet keys:
//
//   fleet_probe [--KEY VALUE]... [--check MS] [--max-pending N]
//               [--queue-timeout-ms N] [--backoff-min-ms N] [--backoff-max-ms N]
//
// --check runs the start-up check, prints {"check":"ok"} or
// {"check":"error","message":...} and exits 0 or 1. Otherwise it reads a
// script from stdin, one step a line, and prints JSON lines:
//   batch CMD ARG... [; CMD ARG...]   submit, wait, print the replies
//                                     (each command routed by its first argument)
//   submit CMD ARG... [; ...]         submit without waiting; the result is
//                                     printed when it completes
//   stats | slot KEY | sleep MS | wait_up MS | wait_down MS | drain MS
// State changes print as {"event":"state",...} when they happen.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "alert/json.h"
#include "fleet/cluster_slots.h"
#include "fleet/redis_client.h"

namespace {

using exfilwatch::JsonWriter;
using namespace exfilwatch::fleet;
using std::chrono::milliseconds;

std::mutex out_mutex;

void emit(const std::string& line) {
  const std::lock_guard lock(out_mutex);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  JsonWriter::appendEscaped(out, s);
  return out + "\"";
}

// nil: null, integer: a number, string: "text", status: {"status":..},
// error: {"error":..}, array: [...].
std::string replyJson(const RedisReply& r) {
  switch (r.type) {
    case RedisReply::Type::Nil:
      return "null";
    case RedisReply::Type::Integer:
      return std::to_string(r.integer);
    case RedisReply::Type::String:
      return quote(r.str);
    case RedisReply::Type::Status:
      return "{\"status\":" + quote(r.str) + "}";
    case RedisReply::Type::Error:
      return "{\"error\":" + quote(r.str) + "}";
    case RedisReply::Type::Array: {
      std::string out = "[";
      for (std::size_t i = 0; i < r.elements.size(); ++i) {
        out += (i ? "," : "") + replyJson(r.elements[i]);
      }
      return out + "]";
    }
  }
  return "null";
}

std::string resultJson(uint64_t id, const BatchResult& r) {
  JsonWriter w;
  w.openObject();
  w.uint("batch", id);
  w.boolean("ok", r.ok());
  w.uint("failed", r.failed);
  std::string replies = "[";
  std::string failures = "[";
  for (std::size_t i = 0; i < r.replies.size(); ++i) {
    replies += (i ? "," : "") + replyJson(r.replies[i]);
    failures += (i ? "," : "") + quote(failureName(r.failures[i]));
  }
  w.raw("replies", replies + "]");
  w.raw("failures", failures + "]");
  w.uint("round_trip_us", static_cast<uint64_t>(r.round_trip.count() / 1000));
  w.closeObject();
  return w.text();
}

std::string statsJson(const ClientStats& s) {
  JsonWriter w;
  w.openObject();
  w.openObject("errors");
  for (std::size_t i = 0; i < s.errors.size(); ++i) {
    w.uint(errorKindName(static_cast<ErrorKind>(i)), s.errors[i]);
  }
  w.closeObject();
  forEachCounter([&](const char* name, uint64_t v) { w.uint(name, v); }, s);
  w.uint("pending_batches", s.pending_batches);
  w.closeObject();
  return "{\"stats\":" + w.text() + "}";
}

// "INCRBY k 1 ; PFADD h a b": each command routed by its first argument.
CommandBatch parseBatch(std::istringstream& in) {
  CommandBatch batch;
  std::vector<std::string> words;
  auto flush = [&] {
    if (words.empty()) return;
    const std::vector<std::string_view> args(words.begin(), words.end());
    if (!batch.add(words.size() > 1 ? words[1] : "", args)) emit(R"({"error":"batch full"})");
    words.clear();
  };
  std::string word;
  while (in >> word) {
    if (word == ";") {
      flush();
    } else {
      words.push_back(word);
    }
  }
  flush();
  return batch;
}

struct State {
  std::mutex m;
  std::condition_variable cv;
  std::optional<bool> up;
  uint64_t outstanding = 0;  // submitted without waiting, not completed
};

}  // namespace

int main(int argc, char** argv) {
  SettingsBuilder builder;
  ClientOptions options;
  std::optional<milliseconds> check;
  try {
    for (int i = 1; i + 1 < argc; i += 2) {
      const std::string flag = argv[i];
      const std::string value = argv[i + 1];
      if (flag == "--check") {
        check = milliseconds(std::stoul(value));
      } else if (flag == "--max-pending") {
        options.max_pending_batches = std::stoul(value);
      } else if (flag == "--queue-timeout-ms") {
        options.queue_timeout = milliseconds(std::stoul(value));
      } else if (flag == "--backoff-min-ms") {
        options.backoff_min = milliseconds(std::stoul(value));
      } else if (flag == "--backoff-max-ms") {
        options.backoff_max = milliseconds(std::stoul(value));
      } else if (flag.rfind("--", 0) == 0) {
        builder.set(flag.substr(2), value);
      }
    }
    const ConnectionSettings settings = builder.finish();
    if (check) {
      const CheckResult r = checkConnection(settings, *check);
      emit(r.ok ? R"({"check":"ok"})" : R"({"check":"error","message":)" + quote(r.what()) + "}");
      return r.ok ? 0 : 1;
    }

    State state;
    options.on_state = [&](bool up, const std::string& reason) {
      emit(R"({"event":"state","up":)" + std::string(up ? "true" : "false") + R"(,"reason":)" +
           quote(reason) + "}");
      const std::lock_guard lock(state.m);
      state.up = up;
      state.cv.notify_all();
    };
    RedisClient client(settings, options);
    client.start();
    uint64_t next_id = 0;
    std::string line;
    while (std::getline(std::cin, line)) {
      std::istringstream in(line);
      std::string op;
      if (!(in >> op)) continue;
      if (op == "batch" || op == "submit") {
        const uint64_t id = ++next_id;
        const bool wait = op == "batch";
        std::optional<BatchResult> result;
        const bool accepted = client.submit(parseBatch(in), [&, id, wait](BatchResult&& r) {
          if (!wait) {
            emit(resultJson(id, r));
            const std::lock_guard lock(state.m);
            --state.outstanding;
            state.cv.notify_all();
            return;
          }
          const std::lock_guard lock(state.m);
          result = std::move(r);
          state.cv.notify_all();
        });
        if (!accepted) {
          emit(R"({"batch":)" + std::to_string(id) + R"(,"submitted":false})");
          continue;
        }
        std::unique_lock lock(state.m);
        if (wait) {
          state.cv.wait(lock, [&] { return result.has_value(); });
          lock.unlock();
          emit(resultJson(id, *result));
        } else {
          ++state.outstanding;
          lock.unlock();
          emit(R"({"batch":)" + std::to_string(id) + R"(,"submitted":true})");
        }
      } else if (op == "stats") {
        emit(statsJson(client.stats()));
      } else if (op == "slot") {
        std::string key;
        in >> key;
        emit(R"({"key":)" + quote(key) + R"(,"slot":)" + std::to_string(keySlot(key)) + "}");
      } else if (op == "sleep") {
        unsigned long ms = 0;
        in >> ms;
        std::this_thread::sleep_for(milliseconds(ms));
      } else if (op == "wait_up" || op == "wait_down" || op == "drain") {
        unsigned long ms = 0;
        in >> ms;
        std::unique_lock lock(state.m);
        const bool want = op == "wait_up";
        const bool ok = state.cv.wait_for(lock, milliseconds(ms), [&] {
          return op == "drain" ? state.outstanding == 0 : state.up == want;
        });
        lock.unlock();
        emit("{\"" + op + "\":" + (ok ? "true" : "false") + "}");
      } else {
        emit(R"({"error":"unknown step )" + op + "\"}");
      }
    }
    client.stop();
    emit(statsJson(client.stats()));
  } catch (const SettingsError& e) {
    emit(R"({"check":"error","message":)" + quote(e.what()) + "}");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fleet_probe: %s\n", e.what());
    return 2;
  }
  return 0;
}
