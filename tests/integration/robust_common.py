"""robust_common: helpers for the robustness tests (issue #8): a streaming
pcap writer for generated floods (Ethernet/IPv4, UDP or TCP, fragments),
peak RSS of a child process, and key=value parsing of summaries. Stdlib only."""
import os
import re
import resource
import struct
import subprocess
import sys

EXFILWATCH = os.environ.get("EXFILWATCH", "build/exfilwatch")
SHARED = os.environ.get("SHARED_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
CAPTURES = os.path.join(SHARED, "captures")

CLIENT_MAC = b"\x02\x00\x00\x00\x00\x01"
SERVER_MAC = b"\x02\x00\x00\x00\x00\x02"


def _csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src, dst, proto, payload, ident=0, flags_frag=0, total=None):
    total = 20 + len(payload) if total is None else total
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ident & 0xFFFF, flags_frag, 64, proto, 0, src, dst)
    h = h[:10] + struct.pack("!H", _csum(h)) + h[12:]
    return h + payload


def udp(sport, dport, payload):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp(sport, dport, seq, flags, payload=b"", ack=0):
    return struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack, 5 << 4, flags, 65535, 0, 0) + payload


def eth(ip_packet):
    return SERVER_MAC + CLIENT_MAC + b"\x08\x00" + ip_packet


def dns_query(qid, name, qtype=1):
    q = b"".join(bytes([len(l)]) + l for l in name.encode().split(b".")) + b"\0"
    return struct.pack("!HHHHHH", qid & 0xFFFF, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", qtype, 1)


def v4(n):
    """10.x.y.z from an integer."""
    return bytes([10, (n >> 16) & 255, (n >> 8) & 255, n & 255])


class PcapWriter:
    """Classic pcap, Ethernet, microsecond timestamps; written as it goes."""

    def __init__(self, path):
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        self.count = 0

    def write(self, ts_us, frame):
        self.f.write(struct.pack("<IIII", ts_us // 1000000, ts_us % 1000000, len(frame), len(frame)) + frame)
        self.count += 1

    def close(self):
        self.f.close()


def run_measured(args, **kw):
    """Runs args in a fresh Python child so RUSAGE_CHILDREN is this command's
    alone; returns (CompletedProcess, peak RSS in bytes)."""
    wrapper = ("import resource,subprocess,sys\n"
               "r=subprocess.run(sys.argv[1:])\n"
               "sys.stderr.write('\\nmaxrss_kb=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
               "sys.exit(r.returncode)\n")
    r = subprocess.run([sys.executable, "-c", wrapper, *args], capture_output=True, text=True, **kw)
    m = re.findall(r"maxrss_kb=(\d+)", r.stderr)
    assert m, r.stderr
    return r, int(m[-1]) * 1024


def kv(text):
    """Every key=value token (numeric values) of a summary, later ones win;
    'a=3/100' yields a=3 and a_capacity=100."""
    out = {}
    for k, v in re.findall(r"([A-Za-z_][\w.]*)=([\d./]+)", text):
        if "/" in v:
            a, _, b = v.partition("/")
            out[k] = float(a) if "." in a else int(a)
            out[k + "_capacity"] = int(b)
        else:
            try:
                out[k] = float(v) if "." in v else int(v)
            except ValueError:
                pass
    return out
