// TFTP packet codec (lib/netlab/tftp/packet): round trips, RFC 2347 options, malformed input.
#include <catch2/catch.hpp>

#include <cstring>
#include <random>

#include "netlab/tftp/packet.hpp"

using namespace netlab::tftp;

namespace {
packet parse_vec(const std::vector<std::uint8_t>& v) { return parse(v.data(), v.size()); }
std::vector<std::uint8_t> bytes(std::string_view s) { return {s.begin(), s.end()}; }
}  // namespace

TEST_CASE("tftp codec: RRQ with options round-trips", "[tftp][codec]") {
  request r{opcode::rrq, "dir/file.bin", "octet", {{"blksize", "1428"}, {"tsize", "0"}, {"windowsize", "16"}}};
  auto v = encode(r);
  REQUIRE(v == bytes(std::string_view("\0\1dir/file.bin\0octet\0blksize\0" "1428\0tsize\0" "0\0windowsize\0" "16\0", 56)));
  auto p = parse_vec(v);
  REQUIRE(std::holds_alternative<request>(p));
  const auto& q = std::get<request>(p);
  CHECK(q.op == opcode::rrq);
  CHECK(q.filename == "dir/file.bin");
  CHECK(q.mode == "octet");
  CHECK(q.options == r.options);
  CHECK(*find_option(q.options, "BLKSIZE") == "1428");
  CHECK(find_option(q.options, "timeout") == nullptr);
}

TEST_CASE("tftp codec: WRQ, mode is case-insensitive, plain RFC 1350 request has no options", "[tftp][codec]") {
  auto p = parse_vec(bytes(std::string_view("\0\2up.txt\0NetASCII\0", 18)));
  REQUIRE(std::holds_alternative<request>(p));
  CHECK(std::get<request>(p).op == opcode::wrq);
  CHECK(std::get<request>(p).options.empty());
}

TEST_CASE("tftp codec: DATA, ACK, ERROR, OACK round-trip", "[tftp][codec]") {
  std::vector<std::uint8_t> payload(512, 0xab);
  auto v = encode(data{65535, payload.data(), payload.size()});
  REQUIRE(v.size() == 516);
  auto p = parse_vec(v);
  REQUIRE(std::holds_alternative<data>(p));
  CHECK(std::get<data>(p).block == 65535);
  CHECK(std::get<data>(p).size == 512);
  CHECK(std::memcmp(std::get<data>(p).payload, payload.data(), 512) == 0);

  auto empty = parse_vec(encode(data{7, nullptr, 0}));  // final empty DATA
  REQUIRE(std::holds_alternative<data>(empty));
  CHECK(std::get<data>(empty).size == 0);

  auto a = parse_vec(encode(ack{0x1234}));
  REQUIRE(std::holds_alternative<ack>(a));
  CHECK(std::get<ack>(a).block == 0x1234);

  auto e = parse_vec(encode(error{1, "File not found"}));
  REQUIRE(std::holds_alternative<error>(e));
  CHECK(std::get<error>(e).code == 1);
  CHECK(std::get<error>(e).message == "File not found");

  auto o = parse_vec(encode(oack{{{"blksize", "1428"}}}));
  REQUIRE(std::holds_alternative<oack>(o));
  CHECK(std::get<oack>(o).options == std::vector<option>{{"blksize", "1428"}});
}

TEST_CASE("tftp codec: malformed datagrams are bad_packet", "[tftp][codec]") {
  auto bad = [](std::string_view s) {
    auto v = bytes(s);
    return std::holds_alternative<bad_packet>(parse(v.data(), v.size()));
  };
  CHECK(std::holds_alternative<bad_packet>(parse(nullptr, 0)));
  CHECK(bad(std::string_view("\0", 1)));
  CHECK(bad(std::string_view("\0\x09xx", 4)));                 // unknown opcode
  CHECK(bad(std::string_view("\0\1file", 6)));                 // filename not terminated
  CHECK(bad(std::string_view("\0\1\0octet\0", 9)));            // empty filename
  CHECK(bad(std::string_view("\0\1f\0", 4)));                  // no mode
  CHECK(bad(std::string_view("\0\1f\0octet", 9)));             // mode not terminated
  CHECK(bad(std::string_view("\0\1f\0binary\0", 11)));         // unknown mode
  CHECK(bad(std::string_view("\0\1f\0octet\0blksize\0", 18)));  // option without value
  CHECK(bad(std::string_view("\0\1f\0octet\0blksize\0" "12", 20)));  // value not terminated
  CHECK(bad(std::string_view("\0\3\0", 3)));                   // short DATA
  CHECK(bad(std::string_view("\0\4\0", 3)));                   // short ACK
  CHECK(bad(std::string_view("\0\5\0", 3)));                   // short ERROR
  CHECK(bad(std::string_view("\0\6x", 3)));                    // OACK name not terminated
  std::vector<std::uint8_t> huge(max_packet + 1, 0);
  huge[1] = 3;
  CHECK(std::holds_alternative<bad_packet>(parse(huge.data(), huge.size())));
}

TEST_CASE("tftp codec: random bytes never crash the parser", "[tftp][codec]") {
  std::mt19937 rng(42);
  std::vector<std::uint8_t> buf;
  for (int i = 0; i < 20000; ++i) {
    buf.resize(rng() % 64);
    for (auto& b : buf) b = static_cast<std::uint8_t>(rng() % 8);  // many NULs and small opcodes
    if (buf.size() >= 2) buf[0] = 0;
    auto p = parse(buf.data(), buf.size());
    (void)describe(p);
  }
  SUCCEED();
}

TEST_CASE("tftp codec: option values", "[tftp][codec]") {
  std::uint64_t x = 0;
  CHECK(parse_option_value("1428", 8, 65464, x));
  CHECK(x == 1428);
  CHECK_FALSE(parse_option_value("7", 8, 65464, x));
  CHECK_FALSE(parse_option_value("65465", 8, 65464, x));
  CHECK_FALSE(parse_option_value("-1", 0, 10, x));
  CHECK_FALSE(parse_option_value(" 1", 0, 10, x));
  CHECK_FALSE(parse_option_value("", 0, 10, x));
  CHECK_FALSE(parse_option_value("99999999999999999999", 0, ~0ull, x));
  CHECK(iequals("WindowSize", "windowsize"));
  CHECK_FALSE(iequals("windowsize", "windowsiz"));
}

TEST_CASE("tftp codec: ERROR message is bounded", "[tftp][codec]") {
  auto v = encode(error{0, std::string(5000, 'x')});
  CHECK(v.size() <= 4 + 501);
}
