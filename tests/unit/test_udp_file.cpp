// udp-file: option negotiation, safe paths, files (netascii, temp+rename), fault injection, the
// auto block/window sizes, and the command line.
#include <catch2/catch.hpp>

#include <filesystem>
#include <cerrno>
#include <cstring>
#include <fstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_fixture.hpp"
#include "netlab/tftp/client.hpp"
#include "netlab/tftp/detail/listen_guard.hpp"
#include "netlab/tftp/fault.hpp"
#include "netlab/tftp/files.hpp"
#include "netlab/tftp/negotiate.hpp"
#include "netlab/tftp/server.hpp"

using namespace netlab;
using namespace netlab::tftp;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

request rrq_with(std::vector<option> opts, opcode op = opcode::rrq) {
  request r;
  r.op = op;
  r.filename = "f";
  r.options = std::move(opts);
  return r;
}

std::string value_of(const std::vector<option>& v, const char* name) {
  const auto* p = find_option(v, name);
  return p ? *p : std::string("(absent)");
}

struct temp_dir {
  fs::path path;
  temp_dir() {
    path = fs::temp_directory_path() / ("netlab-unit-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  static int& counter() {
    static int c = 0;
    return c;
  }
  fs::path write(const std::string& name, const std::string& data) const {
    std::ofstream(path / name, std::ios::binary) << data;
    return path / name;
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("server negotiation: caps, tsize, timeouts, unknown options ignored", "[tftp][negotiate]") {
  server_limits lim;
  lim.max_blksize = 1428;
  lim.max_windowsize = 8;
  auto a = negotiate(rrq_with({{"BLKSIZE", "65464"}, {"windowsize", "64"}, {"tsize", "0"}, {"timeout", "3"}, {"color", "blue"}}),
                     lim, 12345);
  CHECK(a.settings.blksize == 1428);
  CHECK(a.settings.windowsize == 8);
  CHECK(a.settings.timeout == 3s);
  CHECK(value_of(a.accepted, "blksize") == "1428");
  CHECK(value_of(a.accepted, "tsize") == "12345");
  CHECK(value_of(a.accepted, "color") == "(absent)");
  CHECK(a.accepted.size() == 4);

  SECTION("malformed values are ignored, not errors") {
    auto b = negotiate(rrq_with({{"blksize", "7"}, {"windowsize", "0"}, {"timeout", "256"}, {"tsize", "-1"}}), lim, 1);
    CHECK(b.accepted.empty());
    CHECK(b.settings.blksize == 512);
    CHECK(b.settings.windowsize == 1);
  }
  SECTION("utimeout wins over timeout") {
    auto c = negotiate(rrq_with({{"timeout", "2"}, {"utimeout", "50000"}}), lim, 1);
    CHECK(c.settings.timeout == 50ms);
    CHECK(value_of(c.accepted, "timeout") == "(absent)");
    CHECK(value_of(c.accepted, "utimeout") == "50000");
  }
  SECTION("a WRQ's tsize is the client's") {
    auto d = negotiate(rrq_with({{"tsize", "777"}}, opcode::wrq), lim, 0);
    REQUIRE(d.client_tsize);
    CHECK(*d.client_tsize == 777);
    CHECK(value_of(d.accepted, "tsize") == "777");
  }
  SECTION("no options: no OACK") { CHECK(negotiate(rrq_with({}), lim, 5).accepted.empty()); }
}

TEST_CASE("client options and OACK validation", "[tftp][negotiate]") {
  client_wish w;
  w.blksize = 1428;
  w.windowsize = 16;
  w.timeout = 50ms;
  auto opts = request_options(w);
  CHECK(value_of(opts, "blksize") == "1428");
  CHECK(value_of(opts, "windowsize") == "16");
  CHECK(value_of(opts, "tsize") == "0");
  CHECK(value_of(opts, "utimeout") == "50000");

  SECTION("RFC 1350 sizes send no blksize/windowsize; whole seconds use timeout") {
    client_wish p;
    p.blksize = 512;
    p.windowsize = 1;
    p.timeout = 2s;
    auto o = request_options(p);
    CHECK(value_of(o, "blksize") == "(absent)");
    CHECK(value_of(o, "windowsize") == "(absent)");
    CHECK(value_of(o, "timeout") == "2");
    p.options = false;
    CHECK(request_options(p).empty());
  }
  SECTION("a valid OACK may lower what was asked") {
    auto a = accept_oack(oack{{{"blksize", "1024"}, {"tsize", "99"}}}, w);
    CHECK(a.error.empty());
    CHECK(a.settings.blksize == 1024);
    CHECK(a.settings.windowsize == 1);  // not acknowledged: RFC 1350 default
    REQUIRE(a.tsize);
    CHECK(*a.tsize == 99);
  }
  SECTION("an OACK that raises a value or adds an option is refused") {
    CHECK_FALSE(accept_oack(oack{{{"blksize", "2000"}}}, w).error.empty());
    CHECK_FALSE(accept_oack(oack{{{"windowsize", "17"}}}, w).error.empty());
    CHECK_FALSE(accept_oack(oack{{{"multicast", "1"}}}, w).error.empty());
    CHECK_FALSE(accept_oack(oack{{{"tsize", "abc"}}}, w).error.empty());
  }
}

TEST_CASE("auto block and window sizes", "[tftp]") {
  CHECK(blksize_for_mtu(1500, false) == 1468);
  CHECK(blksize_for_mtu(1500, true) == 1448);
  CHECK(blksize_for_mtu(65536, false) == 65464);
  CHECK(blksize_for_mtu(576, false) == 544);
  CHECK(blksize_for_mtu(100, false) == 512);
  CHECK(windowsize_for_buffer(425984, 65464, 16) == 1);
  CHECK(windowsize_for_buffer(16 << 20, 65464, 16) == 16);
  CHECK(windowsize_for_buffer(2 * 8510464, 65464, auto_windowsize_cap) == 64);  // what the 8.1 MiB asked for buys
  CHECK(windowsize_for_buffer(425984, 1468, 16) == 16);
  CHECK(windowsize_for_buffer(0, 1468, 16) == 1);
}

TEST_CASE("the listening port never answers its own endpoint, and rate-limits ERRORs", "[tftp][security]") {
  using asio::ip::make_address;
  using asio::ip::udp;
  const udp::endpoint local(make_address("127.0.0.1"), 6969);
  CHECK(detail::is_own_endpoint(udp::endpoint(make_address("127.0.0.1"), 6969), local));
  CHECK(detail::is_own_endpoint(udp::endpoint(make_address("127.0.0.2"), 6969), local));   // loopback, our port
  CHECK(detail::is_own_endpoint(udp::endpoint(make_address("::ffff:127.0.0.1"), 6969), local));
  CHECK_FALSE(detail::is_own_endpoint(udp::endpoint(make_address("127.0.0.1"), 6970), local));
  CHECK_FALSE(detail::is_own_endpoint(udp::endpoint(make_address("192.0.2.7"), 6969), local));
  const udp::endpoint any(make_address("::"), 69);
  CHECK(detail::is_own_endpoint(udp::endpoint(make_address("192.0.2.7"), 69), any));     // wildcard: any address
  CHECK(detail::is_own_endpoint(udp::endpoint(make_address("::ffff:192.0.2.7"), 69), any));
  CHECK_FALSE(detail::is_own_endpoint(udp::endpoint(make_address("192.0.2.7"), 40000), any));
  // 20 per second, bursts of 40: 1,000 malformed requests in 2 s draw at most 40 + 2 * 20 replies.
  const auto t0 = std::chrono::steady_clock::now();
  detail::token_bucket bucket(20.0, 40.0, t0);
  int replies = 0;
  for (int i = 0; i < 1000; ++i)
    if (bucket.take(t0 + std::chrono::milliseconds(2 * i))) ++replies;
  CHECK(replies >= 79);
  CHECK(replies <= 80);
  CHECK(bucket.take(t0 + std::chrono::seconds(60)));  // refilled after a quiet minute
}

TEST_CASE("requests are opened beneath the root's descriptor, never by a path checked earlier", "[tftp][security]") {
  temp_dir root, outside;
  root.write("ok.txt", "x");
  fs::create_directories(root.path / "sub");
  root.write("sub/in.txt", "y");
  auto secret = outside.write("secret", "s");
  fs::create_symlink(secret, root.path / "out-link");              // absolute, leads out
  fs::create_symlink("../" + outside.path.filename().string() + "/secret", root.path / "rel-out");
  fs::create_symlink("out-link", root.path / "chain");              // a chain ending outside
  fs::create_symlink("ok.txt", root.path / "in-link");              // relative, stays inside
  fs::create_symlink("in-link", root.path / "in-chain");            // a chain staying inside
  fs::create_symlink(root.path / "ok.txt", root.path / "abs-in");   // absolute, even if inside
  fs::create_symlink(outside.path, root.path / "dir-out");          // a directory outside
  REQUIRE(::mkfifo((root.path / "fifo").c_str(), 0600) == 0);
  std::error_code ec;
  auto dir = root_dir::open(root.path, ec);
  REQUIRE(dir);
  for (bool fallback : {false, true}) {
    INFO((fallback ? "per-component openat fallback" : "openat2"));
    detail::force_openat_fallback(fallback);
    auto read_ok = [&](const std::string& n) { return open_for_read(*dir, n).ok(); };
    auto read_refusal = [&](const std::string& n) { return open_for_read(*dir, n).refusal; };
    CHECK(read_ok("ok.txt"));
    CHECK(read_ok("sub/in.txt"));
    CHECK(read_ok("./sub//in.txt"));
    CHECK(read_ok((root.path / "ok.txt").string()));
    CHECK(read_ok("in-link") == !fallback);  // the fallback follows no symlink at all
    CHECK(read_ok("in-chain") == !fallback);
    for (const char* bad : {"../x", "sub/../ok.txt", "out-link", "rel-out", "chain", "abs-in", "dir-out/secret", "sub",
                            "fifo", "/etc/passwd"}) {
      INFO(bad);
      CHECK(read_refusal(bad) == error_code::access_violation);
    }
    CHECK(read_refusal(secret.string()) == error_code::access_violation);
    CHECK(read_refusal("missing") == error_code::file_not_found);
    CHECK(read_refusal("") == error_code::file_not_found);
    auto f = open_for_read(*dir, "ok.txt");
    REQUIRE(f.ok());
    auto src = source::open(std::move(f.fd), false, ec);
    REQUIRE(src);
    CHECK(src->size() == 1);
    // Writes: the directory is opened beneath the root, the name checked there without following it.
    CHECK(open_for_write(*dir, "new.bin", false).ok());
    CHECK(open_for_write(*dir, "sub/new.bin", false).leaf == "new.bin");
    CHECK(open_for_write(*dir, "ok.txt", false).refusal == error_code::file_exists);
    CHECK(open_for_write(*dir, "ok.txt", true).ok());
    CHECK(open_for_write(*dir, "out-link", true).refusal == error_code::access_violation);
    CHECK(open_for_write(*dir, "dir-out/new.bin", true).refusal == error_code::access_violation);
    CHECK(open_for_write(*dir, "nodir/new.bin", false).refusal == error_code::file_not_found);
    CHECK(open_for_write(*dir, "../new.bin", false).refusal == error_code::access_violation);
  }
  detail::force_openat_fallback(false);
  CHECK_FALSE(fs::exists(outside.path / "new.bin"));
}

TEST_CASE("uploads never go through a dangling symlink, even one planted after the check", "[tftp][security]") {
  temp_dir root, outside;
  const auto target = outside.path / "planted";
  fs::create_symlink(target, root.path / "dangling");
  std::error_code ec;
  auto dir = root_dir::open(root.path, ec);
  REQUIRE(dir);
  // Without --allow-overwrite a dangling symlink is an existing name; with it, still never replaced.
  CHECK(open_for_write(*dir, "dangling", false).refusal == error_code::file_exists);
  CHECK(open_for_write(*dir, "dangling", true).refusal == error_code::access_violation);
  // The race: the name is free at the check, a symlink appears before the rename.
  auto w = open_for_write(*dir, "late", false);
  REQUIRE(w.ok());
  sink::options o;
  o.dir_fd = w.fd.get();
  o.target = w.leaf;
  o.temporary = ".late.part";
  auto s = sink::create(o, ec);
  REQUIRE(s);
  const std::uint8_t data[] = {'h', 'i'};
  REQUIRE(s->write(data, 2, ec));
  fs::create_symlink(target, root.path / "late");
  CHECK_FALSE(s->commit(ec));
  CHECK(ec == std::errc::file_exists);
  s.reset();
  CHECK_FALSE(fs::exists(target));                                    // nothing written outside
  CHECK(fs::is_symlink(fs::symlink_status(root.path / "late")));     // the planted name untouched
  CHECK_FALSE(fs::exists(fs::symlink_status(root.path / ".late.part")));  // the temporary removed
  // A temporary is never created through a symlink either.
  fs::create_symlink(target, root.path / ".planted.part");
  o.temporary = ".planted.part";
  CHECK_FALSE(sink::create(o, ec));
  CHECK_FALSE(fs::exists(target));
  CHECK(fs::is_symlink(fs::symlink_status(root.path / ".planted.part")));
  // The normal case: created in the directory and renamed there.
  o.temporary = ".ok.part";
  o.target = "ok.bin";
  auto good = sink::create(o, ec);
  REQUIRE(good);
  REQUIRE(good->write(data, 2, ec));
  REQUIRE(good->commit(ec));
  CHECK(slurp(root.path / "ok.bin") == "hi");
}

TEST_CASE("netascii is converted a window at a time, exact across block and chunk boundaries", "[tftp][files]") {
  temp_dir d;
  // 3.5 MiB of text with CR and LF everywhere, and on both sides of each 1 MiB conversion chunk.
  std::string text(3 * (1 << 20) + (1 << 19), 'a');
  std::uint32_t x = 12345;
  for (auto& c : text) {
    x = x * 1103515245u + 12345u;
    const auto r = (x >> 16) % 16;
    c = r == 0 ? '\n' : r == 1 ? '\r' : r == 2 ? '\0' : static_cast<char>('a' + r);
  }
  for (std::size_t k = 1; k <= 3; ++k) {
    text[k * (1 << 20) - 1] = '\r';
    text[k * (1 << 20)] = '\n';
  }
  text.back() = '\r';
  const auto wire = netascii_encode(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
  std::error_code ec;
  auto s = source::open(d.write("t.txt", text), true, ec);
  REQUIRE(s);
  CHECK_FALSE(s->size_known());  // not before the conversion reached the end
  auto check = [&](std::uint64_t lo, std::uint64_t hi) {
    INFO("window [" << lo << ", " << hi << ")");
    REQUIRE(s->ensure(lo, hi, ec));
    hi = std::min<std::uint64_t>(hi, wire.size());
    for (std::uint64_t o = lo; o < hi; o += 997) REQUIRE(*s->at(o) == wire[o]);
    REQUIRE(*s->at(hi - 1) == wire[hi - 1]);
    REQUIRE(std::memcmp(s->at(lo), wire.data() + lo, hi - lo) == 0);
  };
  const std::uint64_t blk = 1428, win = 16 * blk;
  for (std::uint64_t lo = 0; lo < wire.size(); lo += win) {
    check(lo, lo + win);
    if (lo >= 3 * win) check(lo - 3 * win, lo - 2 * win);  // a retransmission goes back
  }
  CHECK(s->size_known());
  CHECK(s->size() == wire.size());
  check(0, 100);                                   // back to the very start
  check(wire.size() - 10, wire.size() + 1000);     // past the end: clamped
  // An empty file's size is known at once.
  auto e = source::open(d.write("e.txt", ""), true, ec);
  REQUIRE(e);
  CHECK(e->size_known());
  CHECK(e->size() == 0);
}

TEST_CASE("sink writes a temporary and renames on commit; abandon removes it", "[tftp][files]") {
  temp_dir d;
  sink::options o;
  o.target = d.path / "out.bin";
  o.temporary = d.path / "out.bin.part";
  o.sha256 = true;
  std::error_code ec;
  {
    auto s = sink::create(o, ec);
    REQUIRE(s);
    const std::string data = "abc";
    REQUIRE(s->write(reinterpret_cast<const std::uint8_t*>(data.data()), data.size(), ec));
    CHECK(fs::exists(o.temporary));
    CHECK_FALSE(fs::exists(o.target));
    REQUIRE(s->commit(ec));
    CHECK(s->sha256() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  }
  CHECK(slurp(o.target) == "abc");
  CHECK_FALSE(fs::exists(o.temporary));
  {
    auto s = sink::create(o, ec);  // the target exists: commit refuses without overwrite
    REQUIRE(s);
    CHECK_FALSE(s->commit(ec));
  }
  CHECK_FALSE(fs::exists(o.temporary));  // abandoned by the destructor
  CHECK(slurp(o.target) == "abc");
  o.keep_partial = true;
  o.target = d.path / "other.bin";
  {
    auto s = sink::create(o, ec);
    REQUIRE(s);
  }
  CHECK(fs::exists(o.temporary));
}

TEST_CASE("a partial file kept on failure holds every byte written, the buffered tail too", "[tftp][files]") {
  temp_dir d;
  sink::options o;
  o.target = d.path / "out.bin";
  o.temporary = d.path / "out.bin.part";
  o.keep_partial = true;
  std::error_code ec;
  // 3 MiB + 1000 in 1468-byte pieces: one 2 MiB flush has happened, the rest is still buffered.
  std::string want;
  {
    auto s = sink::create(o, ec);
    REQUIRE(s);
    std::string piece(1468, '\0');
    for (std::size_t i = 0; want.size() < (3u << 20) + 1000; ++i) {
      for (std::size_t k = 0; k < piece.size(); ++k) piece[k] = static_cast<char>((i * 31 + k) & 0xff);
      REQUIRE(s->write(reinterpret_cast<const std::uint8_t*>(piece.data()), piece.size(), ec));
      want += piece;
    }
    // Some bytes were received into the area but never written (a datagram beyond a gap): not kept.
    std::memset(s->receive_area(1468), 'z', 1468);
    s->abandon();
    CHECK(s->bytes() == want.size());
  }
  CHECK_FALSE(fs::exists(o.target));
  CHECK(fs::file_size(o.temporary) == want.size());
  CHECK(slurp(o.temporary) == want);
}

TEST_CASE("sha256_fd digests an open file from its start, whatever its offset", "[tftp][files]") {
  temp_dir d;
  const auto p = d.write("abc.txt", "abc");
  unique_fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(fd);
  REQUIRE(::lseek(fd.get(), 2, SEEK_SET) == 2);
  std::uint64_t size = 0;
  std::error_code ec;
  CHECK(sha256_fd(fd.get(), size, ec) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(size == 3);
  CHECK_FALSE(ec);
}

namespace {
/// A sink writing `name` straight to its target in `d`.
std::unique_ptr<sink> sink_in(const temp_dir& d, const char* name, bool netascii, bool sha256, sink::options& o) {
  o.target = d.path / name;
  o.netascii = netascii;
  o.sha256 = sha256;
  std::error_code ec;
  return sink::create(o, ec);
}
}  // namespace

TEST_CASE("sink takes bytes received into its area without a copy, and writes after drain", "[tftp][files]") {
  temp_dir d;
  sink::options o;
  auto s = sink_in(d, "in-place.bin", false, true, o);
  REQUIRE(s);
  std::error_code ec;
  // Three slots of 1000 bytes as a receiver lays them out; slot 1 is a duplicate that is skipped, so
  // slot 2 is not where the buffer ends and must be moved there.
  constexpr std::size_t blk = 1000;
  std::uint8_t* area = s->receive_area(3 * blk + 1);
  std::memset(area, 'a', blk);
  std::memset(area + blk, 'x', blk);
  std::memset(area + 2 * blk, 'c', blk);
  REQUIRE(s->write(area, blk, ec));
  REQUIRE(s->write(area + 2 * blk, blk, ec));
  // The next area starts where the delivered bytes end.
  CHECK(s->receive_area(10) == area + 2 * blk);
  std::string expect(blk, 'a');
  expect += std::string(blk, 'c');
  // A batch bigger than the buffer grows it, keeping what is not yet written.
  std::uint8_t* big = s->receive_area(3u << 20);
  std::memset(big, 'z', 3u << 20);
  REQUIRE(s->write(big, 3u << 20, ec));
  expect += std::string(3u << 20, 'z');
  CHECK(fs::file_size(o.target) == 0);  // nothing written until drain: the ACK goes out first
  REQUIRE(s->drain(ec));
  CHECK(fs::file_size(o.target) == expect.size());
  const std::string tail = "end";
  REQUIRE(s->write(reinterpret_cast<const std::uint8_t*>(tail.data()), tail.size(), ec));
  REQUIRE(s->drain(ec));
  CHECK(fs::file_size(o.target) == expect.size());  // under 1 MiB: drain keeps it
  REQUIRE(s->commit(ec));
  expect += tail;
  CHECK(slurp(o.target) == expect);
  CHECK(s->sha256() == sha256_hex(reinterpret_cast<const std::uint8_t*>(expect.data()), expect.size()));
}

TEST_CASE("sink decodes netascii received into its area", "[tftp][files]") {
  temp_dir d;
  sink::options o;
  auto s = sink_in(d, "text.txt", true, false, o);
  REQUIRE(s);
  std::error_code ec;
  const std::string a = "one\r\ntwo\r", b("\nthree\r\0", 8);  // a CR LF split across the two blocks
  std::uint8_t* area = s->receive_area(2 * 16 + 1);
  std::memcpy(area, a.data(), a.size());
  std::memcpy(area + 16, b.data(), b.size());
  REQUIRE(s->write(area, a.size(), ec));
  REQUIRE(s->write(area + 16, b.size(), ec));
  REQUIRE(s->commit(ec));
  CHECK(slurp(o.target) == "one\ntwo\nthree\r");
}

TEST_CASE("a mapped source is sent by the kernel; a file that shrinks fails the send, no SIGBUS", "[tftp][files]") {
  temp_dir d;
  std::string data(20 << 20, '\0');  // larger than the part mapped at a time
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 13) ^ (i >> 20));
  auto p = d.write("m.bin", data);
  std::error_code ec;
  auto s = source::open(p, false, ec);
  REQUIRE(s);
  REQUIRE(s->mapped());
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const auto sent_by_kernel = [&](std::uint64_t at, std::size_t n) {
    REQUIRE(::write(fds[1], s->at(at), n) == static_cast<ssize_t>(n));
    std::string got(n, '\0');
    REQUIRE(::read(fds[0], got.data(), n) == static_cast<ssize_t>(n));
    return got;
  };
  // Windows forward, across the mapped part's end, to the file's end, and back (a resent window).
  for (std::uint64_t lo : {std::uint64_t{4096 * 3 + 5}, std::uint64_t{(8 << 20) - 100}, std::uint64_t{(17 << 20) + 3},
                           std::uint64_t{data.size() - 1000}, std::uint64_t{4096 * 3 + 5}}) {
    REQUIRE(s->ensure(lo, lo + 1000, ec));
    CHECK(sent_by_kernel(lo, 1000) == data.substr(lo, 1000));
  }
  REQUIRE(s->ensure(0, 16 << 20, ec));  // a window larger than the part usually mapped
  CHECK(sent_by_kernel((16 << 20) - 10, 10) == data.substr((16 << 20) - 10, 10));
  fs::resize_file(p, 4096);  // truncated while served
  errno = 0;
  CHECK(::write(fds[1], s->at(8192), 100) == -1);
  CHECK(errno == EFAULT);
  ::close(fds[0]);
  ::close(fds[1]);
  CHECK_FALSE(source::open(d.write("e.bin", ""), false, ec)->mapped());  // nothing to map
}

TEST_CASE("netascii both ways, with CR split across blocks", "[tftp][files]") {
  const std::string text = "a\nb\r\nc\rd";
  auto wire = netascii_encode(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
  CHECK(std::string(wire.begin(), wire.end()) == std::string("a\r\nb\r\0\r\nc\r\0d", 12));
  temp_dir d;
  sink::options o;
  o.target = d.path / "t.txt";
  o.netascii = true;
  std::error_code ec;
  auto s = sink::create(o, ec);
  REQUIRE(s);
  for (auto c : wire) REQUIRE(s->write(&c, 1, ec));  // one byte per "block": CR always pending
  REQUIRE(s->commit(ec));
  CHECK(slurp(o.target) == text);
}

TEST_CASE("source reads a window in one go and serves any offset in it", "[tftp][files]") {
  temp_dir d;
  std::string data(3 << 20, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  auto p = d.write("s.bin", data);
  std::error_code ec;
  auto s = source::open(p, false, ec);
  REQUIRE(s);
  CHECK(s->size() == data.size());
  REQUIRE(s->ensure(1000, 2000, ec));
  CHECK(*s->at(1500) == static_cast<std::uint8_t>(data[1500]));
  REQUIRE(s->ensure(data.size() - 10, data.size(), ec));
  CHECK(*s->at(data.size() - 1) == static_cast<std::uint8_t>(data.back()));
  auto n = source::open(d.write("n.txt", "x\n"), true, ec);
  REQUIRE(n);
  REQUIRE(n->ensure(0, 512, ec));  // netascii learns its size as it converts
  CHECK(n->size_known());
  CHECK(n->size() == 3);
  CHECK_FALSE(source::open(d.path / "missing", false, ec));
}

TEST_CASE("fault injection is repeatable and close to the asked rate", "[tftp][fault]") {
  fault_options o;
  o.loss = 0.1;
  o.dup = 0.05;
  o.seed = 7;
  fault_injector a(o), b(o);
  int drops = 0, dups = 0;
  for (int i = 0; i < 20000; ++i) {
    auto v = a.next();
    CHECK(v == b.next());
    drops += v == fault_injector::verdict::drop;
    dups += v == fault_injector::verdict::duplicate;
  }
  CHECK(drops > 1700);
  CHECK(drops < 2300);
  CHECK(dups > 800);
  CHECK(dups < 1200);
  CHECK(fault_injector().next() == fault_injector::verdict::send);
}

namespace {
serve_options file_serve_with(std::vector<std::string> args) {
  test::parsed_cli c;
  args.insert(args.begin(), {"udp-file", "serve"});
  c.parse(args);
  REQUIRE(c.chosen.command == "udp-file serve");
  return c.options<serve_options>();
}
fetch_options file_fetch_with(std::vector<std::string> args) {
  test::parsed_cli c;
  args.insert(args.begin(), {"udp-file", "fetch"});
  c.parse(args);
  REQUIRE(c.chosen.command == "udp-file fetch");
  return c.options<fetch_options>();
}
}  // namespace

TEST_CASE("udp-file serve command line", "[tftp][cli]") {
  auto d = file_serve_with({});
  CHECK(d.listen.port == 6969);
  CHECK(d.root == ".");
  CHECK_FALSE(d.allow_upload);
  CHECK(d.max_transfers == 64);
  CHECK(d.max_per_client == 8);
  CHECK(d.max_silence == 60s);
  CHECK(d.proto == protocol::tftp);
  auto h = file_serve_with({"--max-per-client", "2", "--max-silence", "5s"});
  CHECK(h.max_per_client == 2);
  CHECK(h.max_silence == 5s);
  CHECK_THROWS_AS(file_serve_with({"--max-per-client", "0"}), CLI::ValidationError);
  auto f = file_serve_with({"--listen", "127.0.0.1:0", "--allow-upload", "--allow-overwrite", "--max-transfers", "3",
                            "--max-blksize", "1428", "--max-windowsize", "8", "--timeout", "200ms", "--retries", "2",
                            "--simulate-loss", "0.1", "--seed", "9", "--protocol", "raw"});
  CHECK(f.allow_overwrite);
  CHECK(f.limits.max_blksize == 1428);
  CHECK(f.limits.max_windowsize == 8);
  CHECK(f.limits.default_timeout == 200ms);
  CHECK(f.limits.retries == 2);
  CHECK(f.faults.loss == Approx(0.1));
  CHECK(f.faults.seed == 9);
  CHECK(f.proto == protocol::raw);
  CHECK_THROWS_AS(file_serve_with({"--allow-overwrite"}), CLI::ValidationError);
  CHECK_THROWS_AS(file_serve_with({"--max-blksize", "70000"}), CLI::ValidationError);
  CHECK_THROWS_AS(file_serve_with({"--root", "/nonexistent/dir"}), CLI::ValidationError);
  CHECK_THROWS_AS(file_serve_with({"--simulate-loss", "0.6", "--simulate-dup", "0.6"}), CLI::ValidationError);
}

TEST_CASE("udp-file fetch command line", "[tftp][cli]") {
  auto d = file_fetch_with({"127.0.0.1:69", "dir/photo.jpg"});
  CHECK(d.server.port == 69);
  CHECK(d.output == "photo.jpg");
  CHECK(d.wish.blksize == 0);  // auto
  CHECK(d.wish.windowsize == 0);
  CHECK(d.wish.timeout == 20ms);
  CHECK(d.wish.options);
  auto f = file_fetch_with({"[::1]:6969", "x", "-o", "-", "--blksize", "512", "--windowsize", "1", "--mode", "netascii",
                            "--sha256", "--keep-partial", "-f"});
  CHECK(f.output == "-");
  CHECK(f.wish.blksize == 512);
  CHECK(f.wish.windowsize == 1);
  CHECK(f.netascii);
  CHECK(f.sha256);
  auto n = file_fetch_with({"127.0.0.1:69", "x", "--no-options"});
  CHECK_FALSE(n.wish.options);
  CHECK(n.wish.blksize == 512);
  CHECK_THROWS_AS(file_fetch_with({"127.0.0.1:69", "x", "--blksize", "big"}), CLI::ValidationError);
  CHECK_THROWS_AS(file_fetch_with({"127.0.0.1:69", "x", "--timeout", "1ms"}), CLI::ValidationError);
  CHECK_THROWS_AS(file_fetch_with({":69", "x"}), CLI::ValidationError);
  CHECK_THROWS_AS(file_fetch_with({"127.0.0.1:69", "dir/"}), CLI::ValidationError);
}

TEST_CASE("udp-file: the progress line fits the terminal, dropping the least useful parts first", "[tftp][progress]") {
  // Issue 15: at 60 columns every redraw wrapped. Never the last column either.
  const std::uint64_t total = 268435456;
  for (int cols = 1; cols <= 200; ++cols) {
    INFO("columns " << cols);
    for (std::uint64_t bytes : {std::uint64_t{0}, std::uint64_t{12345678}, total}) {
      const auto line = progress_line(cols, bytes, total, 1.234e9, 123456);
      CHECK(line.size() <= static_cast<std::size_t>(std::max(cols - 1, 1)));
      CHECK_FALSE(line.empty());
      CHECK(line.find('\n') == std::string::npos);
    }
    CHECK(progress_line(cols, 5000, std::nullopt, 1e6, 0).size() <= static_cast<std::size_t>(std::max(cols - 1, 1)));
  }
  const auto wide = progress_line(120, total / 2, total, 1.5e8, 7);
  CHECK(wide.rfind("[###############...............]", 0) == 0);  // 30 cells, half full
  CHECK(wide.find(" 50.0%") != std::string::npos);
  CHECK(wide.find("retrans 7") != std::string::npos);
  CHECK(wide.find("ETA 1s") != std::string::npos);
  const auto narrow = progress_line(60, total / 2, total, 1.5e8, 7);
  CHECK(narrow.size() <= 59);
  CHECK(narrow.find("50.0%") != std::string::npos);  // the percentage stays
  CHECK(narrow.find('[') == 0);                      // and a bar of 8+ cells
  const auto tiny = progress_line(20, total / 2, total, 1.5e8, 7);
  CHECK(tiny.find('[') == std::string::npos);
  CHECK(tiny.find("MiB") != std::string::npos);  // the amount always
}

TEST_CASE("udp-file put: the command line", "[tftp][cli]") {
  netlab::test::parsed_cli c;
  c.parse({"udp-file", "put", "127.0.0.1:6969", "dir/photo.jpg"});
  auto o = c.options<put_options>();
  CHECK(o.remote == "photo.jpg");
  CHECK(o.local == "dir/photo.jpg");
  CHECK(o.wish.blksize == 0);
  CHECK(o.wish.timeout == 20ms);
  netlab::test::parsed_cli d;
  d.parse({"udp-file", "put", "127.0.0.1:6969", "a.txt", "in/b.txt", "--mode", "netascii", "--blksize", "512",
           "--windowsize", "1"});
  auto p = d.options<put_options>();
  CHECK(p.remote == "in/b.txt");
  CHECK(p.netascii);
  CHECK(p.wish.blksize == 512);
}

TEST_CASE("udp-file sink: a device or FIFO is written in place, never renamed or removed", "[tftp][files]") {
  // Issue 15: fetch -o /dev/null --force replaced the device node with a regular file.
  struct ::stat before {};
  REQUIRE(::stat("/dev/null", &before) == 0);
  for (bool fail : {false, true}) {
    INFO("abandoned " << fail);
    sink::options o;
    o.target = "/dev/null";
    o.stream = true;
    std::error_code ec;
    auto s = sink::create(o, ec);
    REQUIRE(s);
    const std::uint8_t bytes[3] = {1, 2, 3};
    CHECK(s->write(bytes, sizeof bytes, ec));
    if (fail) s->abandon();
    else CHECK(s->commit(ec));
    s.reset();
    struct ::stat after {};
    REQUIRE(::stat("/dev/null", &after) == 0);
    CHECK(S_ISCHR(after.st_mode));
    CHECK(after.st_ino == before.st_ino);
  }
  // A FIFO: what is written comes out of it; the node stays a FIFO.
  const auto dir = fs::temp_directory_path() / ("netlab-sink-fifo-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto fifo = dir / "pipe";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);  // so the writer's open does not wait
  REQUIRE(reader >= 0);
  sink::options o;
  o.target = fifo;
  o.stream = true;
  std::error_code ec;
  auto s = sink::create(o, ec);
  REQUIRE(s);
  const std::uint8_t bytes[4] = {'a', 'b', 'c', 'd'};
  CHECK(s->write(bytes, sizeof bytes, ec));
  CHECK(s->commit(ec));
  char got[8] = {};
  CHECK(::read(reader, got, sizeof got) == 4);
  CHECK(std::string(got, 4) == "abcd");
  ::close(reader);
  struct ::stat st {};
  REQUIRE(::stat(fifo.c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
  fs::remove_all(dir);
}
