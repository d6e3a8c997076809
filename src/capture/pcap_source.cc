// pcap_source.cc: libpcap offline reader.
#include "capture/pcap_source.h"

#include <pcap/pcap.h>
#include <stdio_ext.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace exfilwatch {

namespace {
// libpcap reads a capture through stdio, whose buffer defaults to the file
// system's block size: a read(2) every few DNS packets. 64 KiB makes it one
// call per few hundred packets and still fits in the core's cache while
// libpcap copies records out; a much larger buffer leaves the cache before
// it is read.
constexpr std::size_t kReadBuffer = std::size_t{64} << 10;
}  // namespace

std::unique_ptr<PcapSource> PcapSource::open(const std::string& path, std::string& error) {
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  if (path == "-") {  // standard input: libpcap's own stream
    pcap_t* handle =
        pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_MICRO, errbuf);
    if (handle == nullptr) {
      error = path + ": " + errbuf;
      return nullptr;
    }
    return std::unique_ptr<PcapSource>(new PcapSource(handle, path, nullptr));
  }
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    error = path + ": " + std::strerror(errno);
    return nullptr;
  }
  std::unique_ptr<char[]> buffer(new char[kReadBuffer]);
  std::setvbuf(file, buffer.get(), _IOFBF, kReadBuffer);  // before the first read, as required
  // Only the thread that owns this source reads the stream, so stdio need
  // not lock it on each of libpcap's two reads per packet.
  __fsetlocking(file, FSETLOCKING_BYCALLER);
  pcap_t* handle =
      pcap_fopen_offline_with_tstamp_precision(file, PCAP_TSTAMP_PRECISION_MICRO, errbuf);
  if (handle == nullptr) {
    std::fclose(file);  // libpcap leaves the stream open when it fails
    error = path + ": " + errbuf;
    return nullptr;
  }
  return std::unique_ptr<PcapSource>(new PcapSource(handle, path, std::move(buffer)));
}

PcapSource::PcapSource(pcap* handle, std::string path, std::unique_ptr<char[]> read_buffer)
    : handle_(handle),
      read_buffer_(std::move(read_buffer)),
      path_(std::move(path)),
      linktype_(pcap_datalink(handle)) {}

PcapSource::~PcapSource() { pcap_close(handle_); }  // closes the stream before its buffer goes

bool PcapSource::next(Frame& frame) {
  struct pcap_pkthdr* header = nullptr;
  const u_char* data = nullptr;
  const int rc = pcap_next_ex(handle_, &header, &data);
  if (rc == 1) {
    ++frames_;
    frame.data = data;
    frame.caplen = header->caplen;
    frame.wirelen = header->len < header->caplen ? header->caplen : header->len;
    frame.ts.sec = header->ts.tv_sec;
    frame.ts.usec = static_cast<int32_t>(header->ts.tv_usec);
    frame.linktype = linktype_;
    return true;
  }
  if (rc == PCAP_ERROR) error_ = pcap_geterr(handle_);
  return false;
}

}  // namespace exfilwatch
