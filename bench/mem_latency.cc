// mem_latency.cc: the machine's load-to-use latency by working-set size, from
// a pointer chase (each load's address is the previous load's value, so no
// two overlap) over one line in every 64 bytes of a region, visited in a
// random order. Full detection waits on random reads of tables of 1-64 MB
// (pair state, seen names, scan and name caches); how much cache the
// machine gives it at the time of a run decides much of its speed, and on
// a shared host that changes with the neighbours' load. bench/run.sh
// prints this before and after its parts, beside the figures it explains.
//
// usage: mem_latency [MB ...]   (default 0.25 1 2 4 8 16 64)
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <numeric>
#include <random>
#include <vector>

#include "common/huge_array.h"

namespace {

// One cache line of the chased region: the address of the next one to read.
struct alignas(64) Line {
  Line* next;
};

// Nanoseconds per dependent load over `bytes` of memory, in the sensor's own
// table memory (HugeArray: huge pages where the kernel gives them,
// faulted in up front). Throws std::bad_alloc when it cannot be mapped.
double chaseNs(std::size_t bytes, std::size_t loads) {
  const std::size_t lines = std::max<std::size_t>(bytes / sizeof(Line), 2);
  exfilwatch::HugeArray<Line> region(lines);

  std::vector<std::size_t> order(lines);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::shuffle(order.begin(), order.end(), std::mt19937_64(7));
  for (std::size_t i = 0; i < lines; ++i) region[order[i]].next = &region[order[(i + 1) % lines]];
  // One lap first so that the measured loads find the region as warm as it
  // can be.
  const Line* p = &region[order[0]];
  for (std::size_t i = 0; i < std::min(lines, loads); ++i) p = p->next;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < loads; ++i) p = p->next;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // `p` is used so the chase cannot be optimised away.
  return seconds / static_cast<double>(loads) * 1e9 + (p == nullptr ? 1.0 : 0.0);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<double> sizes_mb;
  for (int i = 1; i < argc; ++i) sizes_mb.push_back(std::atof(argv[i]));
  if (sizes_mb.empty()) sizes_mb = {0.25, 1, 2, 4, 8, 16, 64};
  for (double mb : sizes_mb) {
    if (!(mb > 0 && mb <= 65536)) {
      std::fprintf(stderr, "usage: mem_latency [MB ...] (sizes from 0 to 65536 MB)\n");
      return 2;
    }
  }
  std::printf("memory latency, ns per dependent random load, by working set:");
  for (std::size_t i = 0; i < sizes_mb.size(); ++i) {
    const double mb = sizes_mb[i];
    double ns = 0;
    try {
      ns = chaseNs(static_cast<std::size_t>(mb * 1024 * 1024), 2'000'000);
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "\nmem_latency: cannot map %.2f MB\n", mb);
      return 1;
    }
    std::printf("%s %g MB %.0f", i == 0 ? "" : ",", mb, ns);
  }
  std::printf("\n");
  return 0;
}
