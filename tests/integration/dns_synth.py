"""dns_synth: small DNS captures built with struct, framed as the mirror lab
records them (VXLAN on UDP 4789, VNI 1234), for the detection tests.

frame(client, qid, name, qtype, server) -> one query frame;
write_pcap(path, [(time, frame), ...]) writes a classic pcap.
"""
import struct


def csum(h):
    s = sum(struct.unpack("!10H", h))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, payload_len):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, 0, 0, 64, 17, 0, bytes(src), bytes(dst))
    return h[:10] + struct.pack("!H", csum(h)) + h[12:]


def dns_query(qid, name, qtype=1):
    q = struct.pack("!HHHHHH", qid & 0xFFFF, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack("!HH", qtype, 1)


def encode_name(name):
    out = b""
    for label in name.split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def dns_message(qid, opcode=0, questions=(), answers=(), authorities=()):
    """A query message: questions [(name, qtype)], records [(name, type, rdata)]."""
    flags = (opcode & 0xF) << 11 | 0x0100
    m = struct.pack("!HHHHHH", qid & 0xFFFF, flags, len(questions), len(answers), len(authorities), 0)
    for name, qtype in questions:
        m += encode_name(name) + struct.pack("!HH", qtype, 1)
    for name, rtype, rdata in list(answers) + list(authorities):
        m += encode_name(name) + struct.pack("!HHIH", rtype, 1, 0, len(rdata)) + rdata
    return m


def frame(client, qid, name, qtype=1, server=(10, 53, 0, 1), dns=None):
    if dns is None:
        dns = dns_query(qid, name, qtype)
    inner_udp = struct.pack("!HHHH", 30000 + qid % 20000, 53, 8 + len(dns), 0) + dns
    inner = (b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00" +
             ipv4(client, list(server), len(inner_udp)) + inner_udp)
    vx = struct.pack("!BBBBI", 0x08, 0, 0, 0, 1234 << 8) + inner
    outer_udp = struct.pack("!HHHH", 40000 + qid % 20000, 4789, 8 + len(vx), 0) + vx
    return (b"\x02\x00\x00\x00\x00\x0a\x02\x00\x00\x00\x00\x0b\x08\x00" +
            ipv4([10, 54, 0, 2], [10, 54, 0, 1], len(outer_udp)) + outer_udp)


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts, data in sorted(frames, key=lambda x: x[0]):
            f.write(struct.pack("<IIII", int(ts), int(round((ts % 1) * 1e6)) % 1000000, len(data), len(data)))
            f.write(data)


def read_pcap(path):
    """[(time, frame)] of a classic little-endian microsecond pcap."""
    data = open(path, "rb").read()
    assert data[:4] == b"\xd4\xc3\xb2\xa1", f"{path}: not a little-endian microsecond pcap"
    out, off = [], 24
    while off + 16 <= len(data):
        s, us, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        out.append((s + us / 1e6, data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return out
