// test_pcap_source.cc: the offline reader. It reads captures through its own
// stdio buffer; these tests hold it to what libpcap's default reader
// delivers, frame for frame, across many buffer refills, and to clean
// errors for missing, foreign and cut files.
#include <doctest.h>
#include <pcap/pcap.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "capture/pcap_source.h"

using namespace exfilwatch;

namespace {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/exfilwatch-pcap-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// Writes `count` Ethernet frames of varying length (60..1514 bytes, a few
// cut by a 1,400-byte snap length), each filled from a running counter, so
// the file spans many read buffers (64 KiB) and records straddle their edges.
void writeCapture(const std::string& file, int count) {
  pcap_t* dead = pcap_open_dead(DLT_EN10MB, 1400);
  REQUIRE(dead != nullptr);
  pcap_dumper_t* dumper = pcap_dump_open(dead, file.c_str());
  REQUIRE(dumper != nullptr);
  std::vector<u_char> bytes(1514);
  uint32_t counter = 1;
  for (int i = 0; i < count; ++i) {
    const uint32_t wirelen = 60 + (static_cast<uint32_t>(i) * 7919U) % 1455U;
    for (auto& b : bytes) b = static_cast<u_char>(counter++ * 2654435761U >> 24);
    pcap_pkthdr header{};
    header.ts.tv_sec = 1700000000 + i / 1000;
    header.ts.tv_usec = static_cast<suseconds_t>(i % 1000) * 1000;
    header.len = wirelen;
    header.caplen = wirelen < 1400 ? wirelen : 1400;
    pcap_dump(reinterpret_cast<u_char*>(dumper), &header, bytes.data());
  }
  pcap_dump_close(dumper);
  pcap_close(dead);
}

struct Record {
  long sec, usec;
  uint32_t caplen, wirelen;
  std::vector<uint8_t> data;
  bool operator==(const Record&) const = default;
};

// The reference: libpcap opening the file itself, with stdio's default buffer.
std::vector<Record> readWithLibpcap(const std::string& file) {
  char errbuf[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline(file.c_str(), errbuf);
  REQUIRE(p != nullptr);
  std::vector<Record> out;
  pcap_pkthdr* h = nullptr;
  const u_char* data = nullptr;
  while (pcap_next_ex(p, &h, &data) == 1) {
    out.push_back({static_cast<long>(h->ts.tv_sec), static_cast<long>(h->ts.tv_usec), h->caplen,
                   h->len, std::vector<uint8_t>(data, data + h->caplen)});
  }
  pcap_close(p);
  return out;
}

std::vector<Record> readWithSource(PcapSource& source) {
  std::vector<Record> out;
  Frame f;
  while (source.next(f)) {
    out.push_back({static_cast<long>(f.ts.sec), static_cast<long>(f.ts.usec), f.caplen, f.wirelen,
                   std::vector<uint8_t>(f.data, f.data + f.caplen)});
  }
  return out;
}

}  // namespace

TEST_CASE("pcap source: frames as libpcap's own reader gives them, across buffer refills") {
  TempDir dir;
  const std::string file = (dir.path / "many.pcap").string();
  writeCapture(file, 6000);  // about 4 MiB: some 60 refills of the read buffer
  REQUIRE(std::filesystem::file_size(file) > (std::uintmax_t{3} << 20));

  const std::vector<Record> expected = readWithLibpcap(file);
  REQUIRE(expected.size() == 6000);
  std::string error;
  auto source = PcapSource::open(file, error);
  REQUIRE(source != nullptr);
  CHECK(error.empty());
  CHECK(source->linktype() == DLT_EN10MB);
  const std::vector<Record> got = readWithSource(*source);
  CHECK(source->error().empty());
  CHECK(source->frames() == expected.size());
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("frame " << i);
    REQUIRE(got[i] == expected[i]);
  }
}

TEST_CASE("pcap source: a small file is read whole") {
  TempDir dir;
  const std::string file = (dir.path / "few.pcap").string();
  writeCapture(file, 3);
  std::string error;
  auto source = PcapSource::open(file, error);
  REQUIRE(source != nullptr);
  CHECK(readWithSource(*source) == readWithLibpcap(file));
  CHECK(source->error().empty());
}

TEST_CASE("pcap source: a capture cut inside a record ends early with a message") {
  TempDir dir;
  const std::string file = (dir.path / "cut.pcap").string();
  writeCapture(file, 2000);
  const std::vector<Record> whole = readWithLibpcap(file);
  // Cut 100 bytes into the last record's data.
  const auto size = std::filesystem::file_size(file);
  const auto last = whole.back().caplen;
  std::filesystem::resize_file(file, size - last + 100);

  std::string error;
  auto source = PcapSource::open(file, error);
  REQUIRE(source != nullptr);
  const std::vector<Record> got = readWithSource(*source);
  REQUIRE(got.size() == whole.size() - 1);
  CHECK(got.back() == whole[whole.size() - 2]);
  CHECK(source->error().find("truncated") != std::string::npos);
}

TEST_CASE("pcap source: missing and foreign files are refused with the path in the message") {
  TempDir dir;
  std::string error;
  const std::string missing = (dir.path / "absent.pcap").string();
  CHECK(PcapSource::open(missing, error) == nullptr);
  CHECK(error.find(missing) == 0);
  CHECK(error.find("No such file") != std::string::npos);

  const std::string text = (dir.path / "notes.txt").string();
  std::ofstream(text) << "not a capture, just some words in a file\n";
  error.clear();
  CHECK(PcapSource::open(text, error) == nullptr);
  CHECK(error.find(text) == 0);
  CHECK(error.size() > text.size() + 2);

  error.clear();
  CHECK(PcapSource::open(dir.path.string(), error) == nullptr);  // a directory
  CHECK(error.find(dir.path.string()) == 0);
}
