// reuseport_steering.h: kernel-side dispatch of VXLAN datagrams to the
// worker that owns their inner client.
//
// Each worker has its own SO_REUSEPORT socket. Left to itself the kernel
// picks the socket by a hash of the *outer* flow, and AWS varies the outer
// source port per inner flow, so one client's queries and responses reach
// every worker and half of all datagrams had to be copied to their owner
// through a ring (workers.h). That hand-off, not the copy but the cache
// lines moving between cores, cost a third of the CPU per datagram with two
// workers. A classic BPF program attached to the reuseport group
// (SO_ATTACH_REUSEPORT_CBPF, no privileges, no libbpf) reads the inner
// Ethernet / IPv4 or IPv6 / ports of the VXLAN payload and returns
// clientHash % N: the socket index, which is the worker index, because the
// workers bind their sockets in order. The owner the workers compute
// (inner_peek.h clientHash) and the program's choice are the same function;
// tests/unit/test_live.cc checks them against each other on every datagram
// of the shared captures, by running the program in libpcap's interpreter.
//
// What the program cannot read (GENEVE, more than one VLAN tag, IPv6
// extension headers, truncated frames) goes where the kernel's own hash
// sends it, and the receiving worker still hands it to its owner: steering
// only saves work, it never decides correctness.
#pragma once

#include <pcap/pcap.h>  // struct bpf_insn, bpf_filter()

#include <cstdint>
#include <string>
#include <vector>

namespace exfilwatch {

// The program for a group of `workers` sockets (1 to 65535), for datagrams
// whose payload starts at the VXLAN header.
std::vector<bpf_insn> vxlanSteeringProgram(uint32_t workers);

// Attaches the program to the reuseport group of `fd` (a bound UDP socket).
// False with the reason in `error` (the sensor then runs on hand-offs alone).
bool attachReuseportProgram(int fd, const std::vector<bpf_insn>& program, std::string& error);

// The socket index the kernel would choose for `payload`: the program run by
// libpcap's BPF interpreter. A value >= workers means "the kernel's own
// hash" (what the program returns for datagrams it cannot read).
uint32_t runSteeringProgram(const std::vector<bpf_insn>& program, const uint8_t* payload,
                            uint32_t len);

}  // namespace exfilwatch
