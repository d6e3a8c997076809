// worker_scaling.cc: how the live sensor's worker stage scales from one
// worker to two, without a socket sender (issue #9: "two workers at least
// 1.6 times one worker"). On loopback the sender, not the sensor, is the
// ceiling on a 2-core machine (bench/README.md, "Live"), so live_bench.py cannot
// answer this.
//
// The captures' tunnel datagrams (the UDP payloads a mirror session sends,
// VXLAN header first) are loaded into memory, then pushed through the real
// WorkerPool built on MemoryFeeds instead of sockets (sensor/memory_feed.h):
// every worker reads its feed in batches of listen.batch_size and runs the
// code the sensor runs after recvmmsg: inner peek, owner = clientHash % N,
// run here or copy into the SPSC ring to the owner, the owner's Engine
// (default rules, scoring), the EVE rings and the writer thread (/dev/null).
// The feeds are split as the kernel's SO_REUSEPORT group splits traffic
// mirrored by AWS: by a hash of the outer flow, which carries the inner
// 5-tuple's hash in its source port. Three set-ups on the same input: 1
// worker, 2 workers, and "2x1": two separate 1-worker pools each fed only
// its own clients (nothing handed off or shared: what kernel-side steering
// would give, and the machine's own ceiling for two busy threads). Runs
// With kernel steering (listen.kernel_steering, the default) the feeds of
// the 2-worker run are split as the reuseport BPF program splits them
// (capture/reuseport_steering.h; the program itself, run by libpcap's
// interpreter on each datagram), so the owner receives its own clients;
// "2h" is the same pool without steering, every datagram spread by outer
// flow and half of them handed off. Runs
// interleaved (1, 2, 2h, 2x1, 2x1, 2h, 2, 1, ...), medians reported; each run is a
// fresh pool (fresh Engines), timed from start() until every datagram was
// processed (or counted as a hand-off drop; there are none unless a ring
// overflows, and the feeds wait for a ring over half full).
//
// Also reported per run: the CPU the process used (cores busy = CPU time /
// wall time, so a ratio below 2 with under 2 cores busy means waiting, not
// work), what other processes and the hypervisor's steal took meanwhile
// (others, in cores, from /proc/stat: a noisy run shows), CPU ns per
// datagram (the process, and the worker threads alone), the share of
// datagrams each worker owned (the client hash's balance caps the speed-up
// at 1 / largest share), hand-offs; and, once, the dispatch step alone
// (peek, hash, copy into a ring, pop: what a receiving worker does for a
// datagram it does not own) in ns per datagram on one thread, against one
// worker's CPU per datagram. There is no dispatcher thread: each worker
// dispatches what its own socket gives it, so this says how much of a
// worker's time dispatch is.
//
// usage: worker_scaling [--config FILE] [--datagrams N] [--reps N]
//                       [--no-separate] [--only 1|2|2h|2x1] PCAP...
// Last line: RESULT worker-scaling <1w datagrams/s> <2w datagrams/s> <ratio>.
#include <pthread.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "alert/async_sink.h"
#include "capture/pcap_source.h"
#include "capture/reuseport_steering.h"
#include "common/hash.h"
#include "common/spsc_ring.h"
#include "config/config.h"
#include "decode/inner_peek.h"
#include "engine/pipeline.h"
#include "sensor/memory_feed.h"
#include "sensor/workers.h"

using namespace exfilwatch;
using Clock = std::chrono::steady_clock;

namespace {

struct Datagram {
  std::vector<uint8_t> bytes;
  bool vxlan = true;
};

// The tunnel payload of a captured frame, as `exfilwatch mirror` sends it:
// frames already encapsulated (outer UDP 4789/6081) give their UDP payload;
// bare Ethernet frames get a VXLAN header (VNI 1).
bool tunnelPayload(const Frame& frame, Datagram& out) {
  const uint8_t* payload = nullptr;
  uint32_t len = 0;
  if (tunnelPayloadOf(frame, payload, len, out.vxlan)) {
    out.bytes.assign(payload, payload + len);
    return true;
  }
  if (frame.linktype != static_cast<int>(LinkType::Ethernet)) return false;
  const uint8_t header[8] = {0x08, 0, 0, 0, 0, 0, 1, 0};
  out.bytes.assign(header, header + 8);
  out.bytes.insert(out.bytes.end(), frame.data, frame.data + frame.caplen);
  out.vxlan = true;
  return true;
}

double cpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// CPU time of the live worker threads (named exfw-worker-N), from
// /proc/self/task/*/schedstat (ns on CPU): the workers alone, without the
// EVE writer and this thread.
double workerThreadsCpuSeconds() {
  double sum = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream comm(e.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name.rfind("exfw-worker", 0) != 0) continue;
    std::ifstream st(e.path() / "schedstat");
    unsigned long long ns = 0;
    st >> ns;
    sum += static_cast<double>(ns) / 1e9;
  }
  return sum;
}

// Non-idle time of the whole machine so far (all CPUs, seconds), steal
// included: minus this process's CPU, what other processes and the
// hypervisor took while a run was timed.
double machineBusySeconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  unsigned long long v[10] = {};
  in >> cpu;
  for (auto& x : v) in >> x;
  const unsigned long long busy =
      v[0] + v[1] + v[2] + v[5] + v[6] + v[7];  // user nice system irq softirq steal
  return static_cast<double>(busy) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

struct RunResult {
  double seconds = 0, cpu = 0, worker_cpu = 0, others = 0;
  uint64_t processed = 0, handoff = 0, drops = 0, eve_lines = 0;
  std::vector<uint64_t> owned;  // processed per worker
};

// One timed run. independent = false: one WorkerPool of `workers` workers,
// fed as the kernel feeds the sensor (the configuration under test).
// independent = true: `workers` separate one-worker pools, each fed only
// its own clients (split by the same client hash), so nothing is handed
// off and nothing is shared (no common seen-names set, separate EVE
// sinks): the machine's own ceiling for two busy threads, without the
// hand-off design.
RunResult runOnce(const ControlPlanePtr& plane, const std::vector<Datagram>& input, uint64_t passes,
                  std::size_t workers, bool independent, bool steering) {
  const ListenConfig& listen = plane->config.listen;
  std::vector<std::unique_ptr<MemoryFeed>> feeds;
  for (std::size_t i = 0; i < workers; ++i) {
    feeds.push_back(std::make_unique<MemoryFeed>(LinkType::VxlanPayload, listen.batch_size,
                                                 listen.max_datagram_bytes));
    feeds.back()->setPasses(passes);
  }
  // The kernel's REUSEPORT choice. With steering (listen.kernel_steering,
  // the default): the reuseport BPF program's answer, run here by libpcap's
  // interpreter on the same bytes; where it has none, and without steering:
  // a hash of the outer flow, whose source port a mirror session derives
  // from the inner 5-tuple. Independent pools: the owner's client hash.
  const std::vector<bpf_insn> program = vxlanSteeringProgram(static_cast<uint32_t>(workers));
  for (const Datagram& d : input) {
    const auto len = static_cast<uint32_t>(d.bytes.size());
    InnerFlow f;
    const bool ok = peekInnerFlow(d.bytes.data(), len, d.vxlan, f);
    uint64_t h = !ok ? 0 : independent ? clientHash(f) : hashing::fmix64(flowHash(f));
    if (!independent && steering && d.vxlan) {
      const uint32_t socket = runSteeringProgram(program, d.bytes.data(), len);
      if (socket < workers) h = socket;
    }
    feeds[h % workers]->add(d.bytes.data(), len);
  }
  uint64_t total = 0;
  for (auto& f : feeds) total += f->total();

  ControlPlaneHolder holder(plane);
  std::atomic<uint64_t> generation{plane->generation};
  std::vector<std::unique_ptr<AsyncEveSink>> sinks;
  std::vector<std::unique_ptr<WorkerPool>> pools;
  const std::size_t npools = independent ? workers : 1;
  for (std::size_t p = 0; p < npools; ++p) {
    std::vector<MemoryFeed*> mine;
    if (independent) {
      mine.push_back(feeds[p].get());
    } else {
      for (auto& f : feeds) mine.push_back(f.get());
    }
    sinks.push_back(std::make_unique<AsyncEveSink>(std::fopen("/dev/null", "w"), true, mine.size(),
                                                   listen.eve_queue_bytes));
    pools.push_back(std::make_unique<WorkerPool>(holder, generation, *sinks.back(), mine));
    sinks.back()->start();
  }
  auto done_now = [&] {
    uint64_t done = 0;
    for (auto& pool : pools) {
      for (std::size_t i = 0; i < pool->size(); ++i) {
        done += pool->counters(i).processed.get() + pool->counters(i).handoff_drops.get();
      }
    }
    return done;
  };
  const double cpu0 = cpuSeconds();
  const double busy0 = machineBusySeconds();
  const auto t0 = Clock::now();
  for (auto& pool : pools) pool->start();
  RunResult r;
  // Waits without stealing the workers' CPU: on 2 cores with 2 workers a
  // fixed fast poll would preempt a worker thousands of times a second.
  // Sleeps half the estimated time left (at least 200 us, at most 50 ms),
  // so the end is seen within about 1% with a handful of wake-ups.
  for (;;) {
    const uint64_t done = done_now();
    if (done >= total) break;
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    const double left =
        done ? elapsed * static_cast<double>(total - done) / static_cast<double>(done) : 0.01;
    std::this_thread::sleep_for(std::chrono::duration<double>(std::clamp(left / 2, 200e-6, 0.05)));
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.cpu = cpuSeconds() - cpu0;
  r.others = std::max(0.0, machineBusySeconds() - busy0 - r.cpu) / r.seconds;
  r.worker_cpu = workerThreadsCpuSeconds();
  for (auto& pool : pools) pool->stop();
  for (auto& sink : sinks) {
    sink->stop();
    r.eve_lines += sink->lines();
  }
  for (auto& pool : pools) {
    for (std::size_t i = 0; i < pool->size(); ++i) {
      const WorkerCounters& c = pool->counters(i);
      r.processed += c.processed.get();
      r.handoff += c.handoff_out.get();
      r.drops += c.handoff_drops.get();
      r.owned.push_back(c.processed.get());
    }
  }
  return r;
}

// The dispatch step alone, on one thread: for every datagram, peek the inner
// flow, hash the client, copy into an SPSC ring (the real SpscByteRing),
// commit per batch of 64, then pop what was queued (what the owner's
// drainInbound does before its Engine). ns per datagram.
double dispatchOnlyNs(const std::vector<Datagram>& input, uint64_t datagrams, uint64_t ring_bytes) {
  SpscByteRing ring(ring_bytes);
  uint64_t sink = 0;
  const auto t0 = Clock::now();
  uint64_t n = 0;
  std::size_t k = 0;
  while (n < datagrams) {
    for (int b = 0; b < 64; ++b, ++n) {
      const Datagram& d = input[k];
      if (++k == input.size()) k = 0;
      InnerFlow f;
      const auto len = static_cast<uint32_t>(d.bytes.size());
      if (peekInnerFlow(d.bytes.data(), len, d.vxlan, f)) {
        sink += clientHash(f) & 1;
        if (uint8_t* slot = ring.reserve(len, len, 0)) std::memcpy(slot, d.bytes.data(), len);
      }
    }
    ring.commit();
    SpscByteRing::Record r;
    while (ring.peek(r)) {
      sink += r.data[0];
      ring.pop(r);
    }
    ring.release();
  }
  const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  if (sink == 42) std::puts("");  // keep the loop
  return ns / static_cast<double>(n);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  uint64_t target = 1000000;
  int reps = 5;
  bool separate = true;
  std::string only;
  std::vector<std::string> pcaps;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "worker_scaling: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--config") {
      config_path = next();
    } else if (a == "--datagrams") {
      target = std::strtoull(next(), nullptr, 10);
    } else if (a == "--reps") {
      reps = std::max(1, std::atoi(next()));
    } else if (a == "--no-separate") {
      separate = false;
    } else if (a == "--only") {  // one set-up (1, 2, 2h or 2x1), no summary: for perf record
      only = next();
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr,
                   "usage: worker_scaling [--config FILE] [--datagrams N] [--reps N] "
                   "[--no-separate] [--only 1|2|2h|2x1] PCAP...\n");
      return 2;
    } else {
      pcaps.push_back(a);
    }
  }
  if (pcaps.empty()) {
    std::fprintf(stderr, "worker_scaling: no capture given\n");
    return 2;
  }
  std::vector<Datagram> input;
  for (const auto& path : pcaps) {
    std::string error;
    auto src = PcapSource::open(path, error);
    if (!src) {
      std::fprintf(stderr, "worker_scaling: %s\n", error.c_str());
      return 1;
    }
    Frame frame;
    while (src->next(frame)) {
      Datagram d;
      if (tunnelPayload(frame, d)) input.push_back(std::move(d));
    }
  }
  if (input.empty()) {
    std::fprintf(stderr, "worker_scaling: no datagrams in the captures\n");
    return 1;
  }
  const uint64_t passes = std::max<uint64_t>(1, (target + input.size() - 1) / input.size());
  ControlPlanePtr plane;
  try {
    plane = engine::Pipeline({config_path, {}, {}}).build(1);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "worker_scaling: %s\n", e.what());
    return 2;
  }
  uint64_t bytes = 0;
  for (const auto& d : input) bytes += d.bytes.size();
  std::printf(
      "input: %zu datagrams (%.0f bytes average) x %llu passes = %llu per run; rules %s, "
      "batch %u, hand-off ring %llu bytes; %u cores\n",
      input.size(), static_cast<double>(bytes) / static_cast<double>(input.size()),
      static_cast<unsigned long long>(passes),
      static_cast<unsigned long long>(passes * input.size()), plane->rules ? "on" : "off",
      plane->config.listen.batch_size,
      static_cast<unsigned long long>(plane->config.listen.handoff_ring_bytes),
      std::thread::hardware_concurrency());
  std::printf("%-4s %-8s %12s %8s %6s %7s %8s %8s %10s %7s %5s  %s\n", "rep", "workers",
              "datagrams/s", "seconds", "cores", "others", "cpu ns", "wrk ns", "handed off",
              "drops", "eve", "owned by worker");
  struct Setup {
    const char* label;
    std::size_t workers;
    bool independent;
    bool steering;
    std::vector<double> rate, cores, cpu_ns, wrk_ns;
    double max_share = 0;
  };
  const bool steering = plane->config.listen.kernel_steering;
  std::vector<Setup> setups = {{"1", 1, false, steering, {}, {}, {}, {}},
                               {"2", 2, false, steering, {}, {}, {}, {}}};
  if (steering) setups.push_back({"2h", 2, false, false, {}, {}, {}, {}});
  if (separate) setups.push_back({"2x1", 2, true, false, {}, {}, {}, {}});
  uint64_t total_drops = 0;
  for (int rep = 0; rep < reps; ++rep) {
    std::vector<Setup*> order;
    for (auto& setup : setups) {
      if (only.empty() || only == setup.label) order.push_back(&setup);
    }
    if (rep % 2) std::reverse(order.begin(), order.end());  // 1,2,.. / ..,2,1 / 1,2,..
    for (Setup* setup : order) {
      const RunResult r =
          runOnce(plane, input, passes, setup->workers, setup->independent, setup->steering);
      const double n = static_cast<double>(r.processed + r.drops);
      const double dps = static_cast<double>(r.processed) / r.seconds;
      setup->rate.push_back(dps);
      setup->cores.push_back(r.cpu / r.seconds);
      setup->cpu_ns.push_back(r.cpu * 1e9 / n);
      setup->wrk_ns.push_back(r.worker_cpu * 1e9 / n);
      total_drops += r.drops;
      std::string owned;
      for (uint64_t o : r.owned) {
        const double share =
            static_cast<double>(o) / static_cast<double>(std::max<uint64_t>(1, r.processed));
        setup->max_share = std::max(setup->max_share, share);
        char buf[32];
        std::snprintf(buf, sizeof buf, "%s%.1f%%", owned.empty() ? "" : " ", 100 * share);
        owned += buf;
      }
      std::printf("%-4d %-8s %12.0f %8.3f %6.2f %7.2f %8.0f %8.0f %10llu %7llu %5llu  %s\n",
                  rep + 1, setup->label, dps, r.seconds, r.cpu / r.seconds, r.others,
                  r.cpu * 1e9 / n, r.worker_cpu * 1e9 / n,
                  static_cast<unsigned long long>(r.handoff),
                  static_cast<unsigned long long>(r.drops),
                  static_cast<unsigned long long>(r.eve_lines), owned.c_str());
      std::fflush(stdout);
    }
  }
  if (!only.empty()) return 0;
  std::printf("\n");
  for (const Setup& setup : setups) {
    char share[64] = "";
    if (setup.workers > 1)
      std::snprintf(share, sizeof share, "; largest share %.1f%%", 100 * setup.max_share);
    std::printf(
        "median of %d: %-3s %s %.0f datagrams/s (%.2f cores busy, %.0f CPU ns a datagram, %.0f of "
        "them in "
        "the workers%s)\n",
        reps, setup.label,
        setup.independent    ? "(2 separate 1-worker pools, no hand-off)"
        : setup.workers == 1 ? "worker "
        : setup.steering     ? "workers (kernel steering)"
                             : "workers (no kernel steering: hand-off)",
        median(setup.rate), median(setup.cores), median(setup.cpu_ns), median(setup.wrk_ns), share);
  }
  const double one = median(setups[0].rate);
  const double two = median(setups[1].rate);
  std::printf(
      "ratio 2 workers / 1 worker: %.2fx (goal >= 1.6x; the owner balance caps it at %.2fx)\n",
      two / one, 1.0 / setups[1].max_share);
  if (steering) {
    std::printf(
        "ratio 2 workers without kernel steering (every datagram spread by outer flow, half "
        "handed off) / 1 worker: %.2fx\n",
        median(setups[2].rate) / one);
  }
  if (separate) {
    const double sep = median(setups.back().rate);
    std::printf(
        "ratio 2 separate 1-worker pools / 1 worker: %.2fx (the machine's ceiling for two busy "
        "threads); "
        "2 workers reach %.0f%% of it\n",
        sep / one, 100 * two / sep);
  }
  if (total_drops)
    std::printf("NOTE: %llu hand-off drops\n", static_cast<unsigned long long>(total_drops));
  const double dispatch = dispatchOnlyNs(input, 2000000, plane->config.listen.handoff_ring_bytes);
  const double worker_ns = median(setups[0].wrk_ns);
  std::printf(
      "dispatch alone (peek + client hash + copy into a ring + pop, one thread): %.0f ns/datagram, "
      "%.0f datagrams/s; a worker's whole datagram (1 worker): %.0f ns of CPU, so dispatch is "
      "%.1f%% of it. "
      "There is no dispatcher thread: each worker dispatches what its socket gives it\n",
      dispatch, 1e9 / dispatch, worker_ns, 100 * dispatch / worker_ns);
  std::printf("RESULT worker-scaling %.0f %.0f %.2f\n", one, two, two / one);
  return 0;
}
