// reuseport_steering.cc: the classic BPF steering program, assembled here
// with forward labels, its attachment, and its user-space run.
#include "capture/reuseport_steering.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <stdexcept>

namespace exfilwatch {

namespace {
// Offsets within the VXLAN payload: 8 bytes of VXLAN header, then the inner
// Ethernet header (ethertype at 20); the IP header at 22, or at 26 after one
// 802.1Q tag.
constexpr uint32_t kEthertype = 20;
constexpr uint32_t kIpNoTag = 22;
constexpr uint32_t kVlanEthertype = 24;
constexpr uint32_t kIpOneTag = 26;
constexpr uint32_t kGolden32 = 0x9e3779b1U;  // clientHash's multiplier (inner_peek.cc)

// A forward-only assembler: classic BPF jumps are unsigned offsets, so every
// label is placed after the jumps to it, and resolved when placed.
class Assembler {
 public:
  void op(uint16_t code, uint32_t k) { prog_.push_back(bpf_insn{code, 0, 0, k}); }
  // Conditional jump: to `yes` when true, `no` when false ("" = next).
  void jump(uint16_t code, uint32_t k, const std::string& yes, const std::string& no) {
    const std::size_t at = prog_.size();
    prog_.push_back(bpf_insn{code, 0, 0, k});
    if (!yes.empty()) pending_[yes].push_back({at, true});
    if (!no.empty()) pending_[no].push_back({at, false});
  }
  void always(const std::string& to) {
    const std::size_t at = prog_.size();
    prog_.push_back(bpf_insn{BPF_JMP | BPF_JA, 0, 0, 0});
    pending_[to].push_back({at, true});
  }
  void label(const std::string& name) {
    const std::size_t here = prog_.size();
    for (const auto& [at, yes] : pending_[name]) {
      const std::size_t off = here - at - 1;
      bpf_insn& i = prog_[at];
      if (BPF_OP(i.code) == BPF_JA) {
        i.k = static_cast<uint32_t>(off);
      } else {
        if (off > 255) throw std::logic_error("steering program: jump too far");
        (yes ? i.jt : i.jf) = static_cast<uint8_t>(off);
      }
    }
    pending_.erase(name);
  }
  std::vector<bpf_insn> finish() {
    if (!pending_.empty())
      throw std::logic_error("steering program: unplaced label " + pending_.begin()->first);
    return std::move(prog_);
  }

 private:
  struct Fixup {
    std::size_t at;
    bool yes;
  };
  std::vector<bpf_insn> prog_;
  std::map<std::string, std::vector<Fixup>> pending_;
};

// A = the big-endian 32-bit words at `off`, `off`+4, ... XOR-ed together.
void loadFolded(Assembler& a, uint32_t off, int words) {
  a.op(BPF_LD | BPF_W | BPF_ABS, off);
  for (int i = 1; i < words; ++i) {
    a.op(BPF_MISC | BPF_TAX, 0);
    a.op(BPF_LD | BPF_W | BPF_ABS, off + 4 * static_cast<uint32_t>(i));
    a.op(BPF_ALU | BPF_XOR | BPF_X, 0);
  }
}

// With the source port in M[0] and the destination port in A: A = the
// client's address (the side with the higher port; ties to the source),
// folded to 32 bits, then to "hash". Also the target of `dst` jumps from
// port-less packets, whose client is the destination.
void emitClientAddress(Assembler& a, uint32_t src_off, uint32_t dst_off, int words,
                       const std::string& src, const std::string& dst) {
  a.op(BPF_LDX | BPF_MEM, 0);
  a.jump(BPF_JMP | BPF_JGT | BPF_X, 0, dst, src);  // the higher port is the client's
  a.label(src);
  loadFolded(a, src_off, words);
  a.always("hash");
  a.label(dst);
  loadFolded(a, dst_off, words);
  a.always("hash");
}

// Goes on when the IP header at `base` has version `nibble` (0x40, 0x60).
void requireVersion(Assembler& a, uint32_t base, uint32_t nibble) {
  a.op(BPF_LD | BPF_B | BPF_ABS, base);
  a.op(BPF_ALU | BPF_AND | BPF_K, 0xf0);
  a.jump(BPF_JMP | BPF_JEQ | BPF_K, nibble, "", "unreadable");
}

// The IPv4 header at `base`: A = the client's address, then to "hash".
void emitIpv4(Assembler& a, uint32_t base, const std::string& tag) {
  const std::string src = "src4" + tag, dst = "dst4" + tag, ports = "ports4" + tag;
  requireVersion(a, base, 0x40);
  a.op(BPF_LD | BPF_H | BPF_ABS, base + 6);
  a.jump(BPF_JMP | BPF_JSET | BPF_K, 0x3fff, dst, "");  // a fragment: no ports, the destination
  a.op(BPF_LD | BPF_B | BPF_ABS, base + 9);
  a.jump(BPF_JMP | BPF_JEQ | BPF_K, 17, ports, "");
  a.jump(BPF_JMP | BPF_JEQ | BPF_K, 6, ports, dst);
  a.label(ports);
  a.op(BPF_LDX | BPF_B | BPF_MSH, base);  // X = IHL * 4
  a.op(BPF_LD | BPF_H | BPF_IND, base);   // source port
  a.op(BPF_ST, 0);
  a.op(BPF_LD | BPF_H | BPF_IND, base + 2);  // destination port
  emitClientAddress(a, base + 12, base + 16, 1, src, dst);
}

// The IPv6 header at `base` (no extension headers): as emitIpv4.
void emitIpv6(Assembler& a, uint32_t base, const std::string& tag) {
  const std::string src = "src6" + tag, dst = "dst6" + tag, ports = "ports6" + tag;
  requireVersion(a, base, 0x60);
  a.op(BPF_LD | BPF_B | BPF_ABS, base + 6);
  a.jump(BPF_JMP | BPF_JEQ | BPF_K, 17, ports, "");
  a.jump(BPF_JMP | BPF_JEQ | BPF_K, 6, ports, dst);  // other next headers: the destination
  a.label(ports);
  a.op(BPF_LD | BPF_H | BPF_ABS, base + 40);
  a.op(BPF_ST, 0);
  a.op(BPF_LD | BPF_H | BPF_ABS, base + 42);
  emitClientAddress(a, base + 8, base + 24, 4, src, dst);
}
}  // namespace

std::vector<bpf_insn> vxlanSteeringProgram(uint32_t workers) {
  if (workers == 0 || workers > 0xffff) throw std::invalid_argument("steering: 1 to 65535 workers");
  Assembler a;
  a.op(BPF_LD | BPF_H | BPF_ABS, kEthertype);
  a.jump(BPF_JMP | BPF_JEQ | BPF_K, 0x0800, "v4", "");
  a.jump(BPF_JMP | BPF_JEQ | BPF_K, 0x86dd, "v6", "");
  a.jump(BPF_JMP | BPF_JEQ | BPF_K, 0x8100, "", "unreadable");
  a.op(BPF_LD | BPF_H | BPF_ABS, kVlanEthertype);
  a.jump(BPF_JMP | BPF_JEQ | BPF_K, 0x0800, "v4tag", "");
  a.jump(BPF_JMP | BPF_JEQ | BPF_K, 0x86dd, "v6tag", "unreadable");
  a.label("v4");
  emitIpv4(a, kIpNoTag, "");
  a.label("v6");
  emitIpv6(a, kIpNoTag, "");
  a.label("v4tag");
  emitIpv4(a, kIpOneTag, "tag");
  a.label("v6tag");
  emitIpv6(a, kIpOneTag, "tag");
  // clientHash: (address * golden) >> 16, modulo the workers.
  a.label("hash");
  a.op(BPF_ALU | BPF_MUL | BPF_K, kGolden32);
  a.op(BPF_ALU | BPF_RSH | BPF_K, 16);
  a.op(BPF_ALU | BPF_MOD | BPF_K, workers);
  a.op(BPF_RET | BPF_A, 0);
  // An index past the group: the kernel falls back to its own hash.
  a.label("unreadable");
  a.op(BPF_RET | BPF_K, workers);
  return a.finish();
}

bool attachReuseportProgram(int fd, const std::vector<bpf_insn>& program, std::string& error) {
  // struct sock_fprog of <linux/filter.h>, whose struct sock_filter has the
  // layout of libpcap's bpf_insn (the header pair cannot be included together).
  struct {
    unsigned short len;
    const bpf_insn* filter;
  } fprog{static_cast<unsigned short>(program.size()), program.data()};
  if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fprog, sizeof fprog) != 0) {
    error = std::string("SO_ATTACH_REUSEPORT_CBPF: ") + std::strerror(errno);
    return false;
  }
  return true;
}

uint32_t runSteeringProgram(const std::vector<bpf_insn>& program, const uint8_t* payload,
                            uint32_t len) {
  return bpf_filter(program.data(), payload, len, len);
}

}  // namespace exfilwatch
