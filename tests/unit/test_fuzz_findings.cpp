// Regression tests for what the libFuzzer targets (tests/fuzz/) found: each case is a minimized
// input from a target, with the invariant it broke. Each failed before its fix.
#include <catch2/catch.hpp>

#include <string>
#include <variant>

#include "netlab/core/endpoint.hpp"
#include "netlab/tftp/negotiate.hpp"
#include "netlab/tftp/packet.hpp"
#include "netlab/ws/url.hpp"

using namespace std::chrono_literals;
using namespace std::string_literals;

TEST_CASE("fuzz findings: a ws URL host holds only host name characters", "[fuzz][ws]") {
  // fuzz_ws_url: "ws://127.0.0.1\xba" "8899/echo" gave host "127.0.0.1\xba" "8899": any byte but ':',
  // '/', '?', '#' and '@' reached the Host header and the resolver, NUL and CR/LF included.
  std::string err;
  for (const std::string& bad : {"ws://127.0.0.1\xba" "8899/echo"s, "ws://a\0b/"s, "ws://a b/"s, "ws://h\r\nX: y/"s,
                                "ws://h%41/"s, "ws://h]/"s, "ws://[::1/"s}) {
    INFO(bad);
    CHECK_FALSE(netlab::ws::parse_url(bad, &err));
  }
  CHECK(err == "unterminated IPv6 literal (missing ']')");
  CHECK_FALSE(netlab::ws::parse_url("ws://a\0b/"s, &err));
  CHECK(err == "invalid character in host name");
  auto ok = netlab::ws::parse_url("ws://my-host_1.example~x:80/");
  REQUIRE(ok);
  CHECK(ok->host == "my-host_1.example~x");
}

TEST_CASE("fuzz findings: brackets in a ws URL hold an IPv6 literal only", "[fuzz][ws]") {
  // fuzz_ws_url: "wss://[fe800%%%%%]" was accepted with host "fe800%%%%%", which str() printed
  // without brackets, so the canonical form did not parse back.
  std::string err;
  CHECK_FALSE(netlab::ws::parse_url("wss://[fe800%%%%%]", &err));
  CHECK(err == "not an IPv6 literal in brackets");
  CHECK_FALSE(netlab::ws::parse_url("ws://[example.com]:80/", &err));
  auto v6 = netlab::ws::parse_url("wss://[fe80::1%25eth0]/");
  REQUIRE(v6);
  CHECK(netlab::ws::parse_url(v6->str())->host == v6->host);
}

TEST_CASE("fuzz findings: an accepted IPv6 endpoint has no NUL and no junk scope", "[fuzz][core]") {
  using netlab::core::parse_endpoint;
  // fuzz_core_parsers: Asio reads the text up to a NUL and takes anything after '%' as a scope, so
  // these were accepted with the whole text (NUL, ']', ':') as the host; to_string() then gave an
  // address that did not parse back.
  CHECK_FALSE(parse_endpoint("::%]:0", 91));
  CHECK_FALSE(parse_endpoint("[::%]:0"));
  CHECK_FALSE(parse_endpoint("[::1\0garbage]:80"s));
  CHECK_FALSE(parse_endpoint("::1\0x"s, 80));
  CHECK_FALSE(parse_endpoint("[::1%]:80"));
  CHECK_FALSE(parse_endpoint("[%lo]:80"));
  // Real scopes still work.
  auto p = parse_endpoint("[fe80::1%lo]:80");
  REQUIRE(p);
  CHECK(p.value->host == "fe80::1%lo");
  CHECK(parse_endpoint(p.value->to_string()).value == p.value);
  CHECK(parse_endpoint("[::ffff:127.0.0.1]:1"));
}

TEST_CASE("fuzz findings: format_duration prints what parse_duration reads back", "[fuzz][core]") {
  using netlab::core::format_duration;
  using netlab::core::parse_duration;
  // fuzz_core_parsers: "250250ms" printed as "250s" (%.3g), and 1234567ms as "1.23e+03s", which
  // parse_duration rejects. Durations show up in logs and --help defaults, and users paste them.
  CHECK(format_duration(250250ms) == "250.25s");
  CHECK(format_duration(1234567ms) == "1234.567s");
  CHECK(format_duration(1001ms) == "1.001s");
  CHECK(format_duration(1500ms) == "1.5s");
  CHECK(format_duration(999ms) == "999ms");
  CHECK(format_duration(2000ms) == "2s");
  for (auto ms : {1ms, 999ms, 1001ms, 1234ms, 1500ms, 250250ms, 1234567ms, 3600001ms, 86400000ms}) {
    INFO(ms.count());
    auto back = parse_duration(format_duration(ms));
    REQUIRE(back);
    CHECK(*back.value == ms);
  }
}

TEST_CASE("fuzz findings: a repeated TFTP option is answered once, as first given", "[fuzz][tftp]") {
  using namespace netlab::tftp;
  // fuzz_tftp_negotiate: "blksize 512, blksize 1024" drew an OACK naming blksize twice, with the
  // transfer using the second; a client reading the first would send or expect 512-byte blocks.
  request r;
  r.filename = "f";
  r.options = {{"blksize", "512"}, {"BLKSIZE", "1024"}, {"timeout", "1"}, {"timeout", "9"},
               {"windowsize", "4"}, {"windowsize", "8"}, {"tsize", "0"}, {"tsize", "0"}};
  const auto a = negotiate(r, server_limits{}, 1000);
  CHECK(a.accepted == std::vector<option>{{"blksize", "512"}, {"timeout", "1"}, {"windowsize", "4"}, {"tsize", "1000"}});
  CHECK(a.settings.blksize == 512);
  CHECK(a.settings.timeout == 1s);
  CHECK(a.settings.windowsize == 4);
}

TEST_CASE("fuzz findings: every 64-bit tsize netlab sends, netlab reads", "[fuzz][tftp]") {
  using namespace netlab::tftp;
  // fuzz_tftp_negotiate: a server's tsize of 17134225755870332514 (20 digits, fits 64 bits) made
  // netlab's own client reject the OACK as "not a number": values were cut off at 19 digits.
  std::uint64_t x = 0;
  CHECK(parse_option_value("17134225755870332514", 0, UINT64_MAX, x));
  CHECK(x == 17134225755870332514ull);
  CHECK(parse_option_value("18446744073709551615", 0, UINT64_MAX, x));
  CHECK(x == UINT64_MAX);
  CHECK_FALSE(parse_option_value("18446744073709551616", 0, UINT64_MAX, x));
  CHECK_FALSE(parse_option_value("000000000000000000001", 0, UINT64_MAX, x));

  client_wish w;
  request r;
  r.filename = "f";
  r.options = request_options(w);
  const auto srv = negotiate(r, server_limits{}, UINT64_MAX);
  const auto cli = accept_oack(oack{srv.accepted}, w);
  CHECK(cli.error.empty());
  REQUIRE(cli.tsize);
  CHECK(*cli.tsize == UINT64_MAX);
}
