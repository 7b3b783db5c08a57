// The client side of udp-file against hostile servers, and raw mode's anti-amplification pieces:
// the receive bound (tsize / --max-size), raw requests, cookies, the pacer, and their flags.
#include <catch2/catch.hpp>

#include <array>
#include <chrono>
#include <cstring>

#include "cli_fixture.hpp"
#include "netlab/tftp/client.hpp"
#include "netlab/tftp/raw.hpp"
#include "netlab/tftp/server.hpp"

using namespace netlab::tftp;
using namespace std::chrono_literals;

namespace {

serve_options serve_with(std::vector<std::string> args) {
  netlab::test::parsed_cli c;
  args.insert(args.begin(), {"udp-file", "serve"});
  c.parse(args);
  return c.options<serve_options>();
}

fetch_options fetch_with(std::vector<std::string> args) {
  netlab::test::parsed_cli c;
  args.insert(args.begin(), {"udp-file", "fetch", "127.0.0.1:69", "x"});
  c.parse(args);
  return c.options<fetch_options>();
}

std::array<std::uint8_t, 32> secret(std::uint8_t fill) {
  std::array<std::uint8_t, 32> s{};
  s.fill(fill);
  return s;
}

}  // namespace

TEST_CASE("fetch accepts at most the announced size, else --max-size, else 4 GiB", "[tftp][client][security]") {
  CHECK(receive_limit(1000, std::nullopt, false) == 1000);           // tsize known: exactly it
  CHECK(receive_limit(1000, std::nullopt, true) == 2000);            // netascii may double a text
  CHECK(receive_limit(std::nullopt, std::nullopt, false) == default_max_size);
  CHECK(default_max_size == 4ull << 30);
  CHECK(receive_limit(std::nullopt, 1u << 20, false) == 1u << 20);   // --max-size without tsize
  CHECK(receive_limit(1000, 500, false) == 500);                     // --max-size lowers tsize
  CHECK(receive_limit(1000, 5000, false) == 1000);                   // ... never raises it
  CHECK(receive_limit(0, std::nullopt, false) == 0);                 // an empty file: not one byte
  CHECK(receive_limit(UINT64_MAX, std::nullopt, true) == UINT64_MAX);  // no overflow
}

TEST_CASE("udp-file fetch --max-size", "[tftp][client][cli]") {
  CHECK_FALSE(fetch_with({}).max_size.has_value());
  CHECK(fetch_with({"--max-size", "1MiB"}).max_size == std::optional<std::uint64_t>(1u << 20));
  CHECK(fetch_with({"--max-size", "4G"}).max_size == std::optional<std::uint64_t>(4ull << 30));
  CHECK_THROWS_AS(fetch_with({"--max-size", "0"}), CLI::ValidationError);
  CHECK_THROWS_AS(fetch_with({"--max-size", "lots"}), CLI::ValidationError);
}

TEST_CASE("raw requests are padded, split, and bounded by the first NUL", "[tftp][raw]") {
  const auto r = raw_request("STAT", "-", "a b.bin");
  CHECK(r.size() == raw_min_request);
  auto p = parse_raw_request(reinterpret_cast<const std::uint8_t*>(r.data()), r.size());
  REQUIRE(p.ok);
  CHECK(p.verb == "STAT");
  CHECK(p.cookie == "-");
  CHECK(p.name == "a b.bin");  // a name may hold spaces
  const std::string longname(100, 'n');
  CHECK(raw_request("GET", std::string(32, 'c'), longname).size() == 3 + 1 + 32 + 1 + 100);
  const std::string old = "GET big.bin";  // the former protocol: no cookie part
  CHECK_FALSE(parse_raw_request(reinterpret_cast<const std::uint8_t*>(old.data()), old.size()).ok);
  CHECK_FALSE(parse_raw_request(nullptr, 0).ok);
  // The cookie reply is never larger than a request the server answers.
  CHECK(raw_cookie_reply == 39);
  CHECK(raw_cookie_reply <= raw_min_request);
}

TEST_CASE("raw cookies are bound to the address and port, and expire", "[tftp][raw][security]") {
  const raw_cookies jar(secret(7));
  const std::string peer_a = std::string("\x7f\x00\x00\x01", 4) + "\x12\x34";
  const std::string peer_b = std::string("\x7f\x00\x00\x01", 4) + "\x12\x35";  // same host, other port
  const std::uint64_t t = 1'000'000;
  const auto c = jar.issue(peer_a, t);
  CHECK(c.size() == raw_cookie_chars);
  CHECK(c.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(jar.check(c, peer_a, t));
  CHECK(jar.check(c, peer_a, t + raw_cookies::period_s));        // the next period still takes it
  CHECK_FALSE(jar.check(c, peer_a, t + 2 * raw_cookies::period_s + raw_cookies::period_s));
  CHECK_FALSE(jar.check(c, peer_b, t));                          // another sender cannot reuse it
  CHECK_FALSE(raw_cookies(secret(8)).check(c, peer_a, t));       // another server's secret
  CHECK_FALSE(jar.check("-", peer_a, t));
  CHECK_FALSE(jar.check(c.substr(0, 31), peer_a, t));
  CHECK_FALSE(jar.check(std::string(32, '0'), peer_a, t));
  CHECK(jar.check(jar.issue(peer_a, 5), peer_a, 5));             // period 0 has no predecessor: no wrap
}

TEST_CASE("the raw pacer never lets more than burst + rate x time through", "[tftp][raw][security]") {
  using clock = raw_pacer::clock;
  const std::uint64_t rate = 1 << 20;
  const auto burst = raw_burst(rate);
  CHECK(burst == rate / 200);
  CHECK(raw_burst(1024) == 2 * raw_chunk);  // at least two datagrams
  const auto t0 = clock::time_point{} + 1h;
  raw_pacer p(rate, burst, t0);
  // A sender that tries every 100 us for 3 simulated seconds.
  std::uint64_t sent = 0;
  auto t = t0;
  for (int i = 0; i < 30000; ++i, t += 100us)
    while (p.take(raw_chunk, t)) sent += raw_chunk;
  const double secs = std::chrono::duration<double>(t - t0).count();
  CHECK(static_cast<double>(sent) <= static_cast<double>(burst) + static_cast<double>(rate) * secs);
  CHECK(static_cast<double>(sent) >= 0.95 * static_cast<double>(rate) * secs);  // and it does let the rate through
  // wait_for says when the next datagram fits.
  raw_pacer q(rate, burst, t0);
  while (q.take(raw_chunk, t0)) {
  }
  const auto w = q.wait_for(raw_chunk, t0);
  CHECK(w > 0us);
  CHECK(w <= std::chrono::microseconds(raw_chunk * 1'000'000 / rate + 1));
  CHECK(q.take(raw_chunk, t0 + w));
}

TEST_CASE("udp-file serve --protocol raw binds loopback by default and takes --rate", "[tftp][raw][cli]") {
  const auto d = serve_with({"--protocol", "raw"});
  CHECK(d.listen.host == "127.0.0.1");
  CHECK(d.listen.port == 6969);
  CHECK(d.raw_rate == 10u << 20);
  CHECK(serve_with({}).listen.host.empty());  // TFTP keeps its default (all interfaces)
  const auto wide = serve_with({"--protocol", "raw", "--listen", ":7000"});
  CHECK(wide.listen.host.empty());            // an explicit --listen widens it (with a warning at start)
  CHECK(serve_with({"--protocol", "raw", "--rate", "1MiB/s"}).raw_rate == 1u << 20);
  CHECK(serve_with({"--protocol", "raw", "--rate", "64K"}).raw_rate == 64u << 10);
  CHECK_THROWS_AS(serve_with({"--protocol", "raw", "--rate", "100"}), CLI::ValidationError);   // below 1 KiB/s
  CHECK_THROWS_AS(serve_with({"--protocol", "raw", "--rate", "2GiB"}), CLI::ValidationError);  // above 1 GiB/s
  CHECK_THROWS_AS(serve_with({"--protocol", "raw", "--rate", "fast"}), CLI::ValidationError);
  CHECK_THROWS_AS(serve_with({"--rate", "1MiB"}), CLI::ValidationError);  // TFTP is paced by its ACKs
}
