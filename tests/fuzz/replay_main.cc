// replay_main.cc: `fuzz_regress TARGET PATH...`, the fuzz targets built
// without libFuzzer. Each target's LLVMFuzzerTestOneInput is compiled as
// fuzz_entry_<target> (tests/fuzz/meson.build) so all of them share one
// program; it runs once per file named (a directory: every regular file in
// it, sorted), so the crash inputs kept under tests/data/regress/<target>/
// are replayed by `make test` on every build, sanitized or not. Exits
// non-zero when the target is unknown or a path cannot be read.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#define EXFILWATCH_FUZZ_TARGETS(X) X(vxlan) X(geneve) X(l2l4) X(dns) X(dns_tcp) X(tls) X(rules) X(config) \
  X(registered_domain) X(redis_reply)
#define DECLARE(t) extern "C" int fuzz_entry_##t(const uint8_t* data, std::size_t size);
EXFILWATCH_FUZZ_TARGETS(DECLARE)
#undef DECLARE

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  using Entry = int (*)(const uint8_t*, std::size_t);
  Entry entry = nullptr;
  const std::string target = argc > 1 ? argv[1] : "";
#define MATCH(t) if (target == #t) entry = fuzz_entry_##t;
  EXFILWATCH_FUZZ_TARGETS(MATCH)
#undef MATCH
  if (entry == nullptr) {
    std::fprintf(stderr, "usage: fuzz_regress TARGET PATH... (unknown target '%s')\n", target.c_str());
    return 2;
  }
  std::vector<fs::path> files;
  for (int i = 2; i < argc; ++i) {
    const fs::path p(argv[i]);
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      for (const auto& e : fs::directory_iterator(p))
        if (e.is_regular_file()) files.push_back(e.path());
    } else if (fs::is_regular_file(p, ec)) {
      files.push_back(p);
    } else {
      std::fprintf(stderr, "replay: cannot read %s\n", argv[i]);
      return 2;
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<uint8_t> copy(bytes.begin(), bytes.end());  // exact-size heap buffer, as libFuzzer
    entry(copy.data(), copy.size());
  }
  std::printf("%s: replayed %zu inputs\n", target.c_str(), files.size());
  return 0;
}
