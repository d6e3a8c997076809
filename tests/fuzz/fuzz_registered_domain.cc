// fuzz_registered_domain.cc: differential libFuzzer target for the
// registered-domain caches (src/dns/registered_domain.cc): for any name, the
// two-level cache (name, then deciding suffix of the public suffix rule
// tree) must answer what libpsl answers for the name's last keyLabels()
// labels (the longest rule plus one: the lookup's documented contract; what
// lies further left, a tunnel's payload, never changes the answer). The
// input is one name, ASCII lower-cased as the DNS parser hands it over.
// Names with a NUL byte are skipped: libpsl cannot see past it, while the
// cache judges the labels right of it (on purpose: tunnels put raw bytes in
// labels).
#include <libpsl.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "dns/registered_domain.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  // Small caches, so that entries are replaced all the time.
  static exfilwatch::dns::RegisteredDomain cached(exfilwatch::dns::kDefaultPublicSuffixList, 64);
  static psl_ctx_t* psl = psl_load_file(exfilwatch::dns::kDefaultPublicSuffixList);
  if (psl == nullptr || size > 300 || std::memchr(data, 0, size) != nullptr) return 0;
  std::string name(reinterpret_cast<const char*>(data), size);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string want;
  if (!name.empty() && name.size() <= 255) {
    std::size_t start = 0;  // of the last keyLabels() labels
    int dots = 0;
    for (std::size_t i = name.size(); i-- > 0;) {
      if (name[i] == '.' && ++dots == cached.keyLabels()) {
        start = i + 1;
        break;
      }
    }
    const char* found = psl_registrable_domain(psl, name.c_str() + start);
    if (found != nullptr) want = found;
  }
  // Twice: once filling the caches, once answered from them.
  for (int i = 0; i < 2; ++i) {
    if (cached.lookup(name) != want) std::abort();
  }
  return 0;
}
