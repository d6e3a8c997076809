// pcap_source.cc: libpcap offline reader.
#include "capture/pcap_source.h"

#include <pcap/pcap.h>

namespace exfilwatch {

std::unique_ptr<PcapSource> PcapSource::open(const std::string& path, std::string& error) {
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* handle =
      pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_MICRO, errbuf);
  if (handle == nullptr) {
    error = path + ": " + errbuf;
    return nullptr;
  }
  return std::unique_ptr<PcapSource>(new PcapSource(handle, path));
}

PcapSource::PcapSource(pcap* handle, std::string path)
    : handle_(handle), path_(std::move(path)), linktype_(pcap_datalink(handle)) {}

PcapSource::~PcapSource() { pcap_close(handle_); }

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
