// frames.h: shared input framing for the decoder fuzz targets. An input is a
// sequence of frames, each "u16 big-endian header + bytes": the low 15 bits
// are the captured length, the top bit marks the frame as cut by a snap
// length (wire length = captured + 64). Several frames per input let one
// input drive IP fragment reassembly; a trailing partial frame is used as is.
#pragma once

#include <cstddef>
#include <cstdint>

#include "decode/decoder.h"

namespace exfilwatch::fuzz {

// Feeds every frame of data[0..size) to a fresh Decoder with small fragment
// limits (so the fuzzer reaches eviction), then expires all fragment state.
inline void decodeFrames(const uint8_t* data, std::size_t size, int linktype) {
  DecoderConfig cfg;
  cfg.fragments.max_datagrams = 8;
  cfg.fragments.max_bytes = 16 * 1024;
  cfg.fragments.max_fragments_per_datagram = 8;
  Decoder decoder(cfg);
  WeirdCounters weird;
  PacketContext ctx;
  std::size_t off = 0;
  int64_t sec = 1;
  while (off < size) {
    uint32_t caplen = 0, wirelen = 0;
    if (size - off >= 2) {
      const uint16_t hdr = static_cast<uint16_t>(data[off] << 8 | data[off + 1]);
      off += 2;
      caplen = hdr & 0x7fff;
      if (caplen > size - off) caplen = static_cast<uint32_t>(size - off);
      wirelen = caplen + ((hdr & 0x8000) ? 64 : 0);
    } else {
      caplen = wirelen = static_cast<uint32_t>(size - off);
    }
    Frame f;
    f.data = data + off;
    f.caplen = caplen;
    f.wirelen = wirelen;
    f.ts = Timestamp{sec++, 0};
    f.linktype = linktype;
    ctx.reset();
    if (decoder.decode(f, ctx, weird)) {
      // Touch every payload byte the decoder exposes: ASan checks the view.
      volatile uint8_t sink = 0;
      for (uint32_t i = 0; i < ctx.payload_len; ++i) sink = sink ^ ctx.payload[i];
      (void)sink;
    }
    off += caplen;
  }
  decoder.expire(Timestamp{sec + 3600, 0}, weird);
}

}  // namespace exfilwatch::fuzz
