// The load modes' shared pieces, in-process: the one exit rule (first error's class), merging
// per-thread stats, and the count limits of every load flag.
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "cli_fixture.hpp"
#include "netlab/core/load.hpp"
#include "netlab/tcp/client.hpp"
#include "netlab/udp/client.hpp"
#include "netlab/ws/client.hpp"

using namespace netlab;
using test::parsed_cli;

TEST_CASE("load verdict: no error is ok, any error is the first error's class", "[load]") {
  core::load_stats s;
  s.messages = 100;
  CHECK(core::load_verdict(s, false).ok());

  s.error(core::outcome::fail(exit_code::protocol, "handshake rejected: HTTP 503", "the server is full"));
  s.error(core::outcome::fail(exit_code::network, "connect: Connection refused"));
  CHECK(s.errors == 2);
  auto v = core::load_verdict(s, false);
  CHECK(v.code == exit_code::protocol);  // the first, although messages completed
  CHECK(v.what.find("2 error(s)") != std::string::npos);
  CHECK(v.what.find("HTTP 503") != std::string::npos);
  CHECK(v.hint == "the server is full");
}

TEST_CASE("load verdict: a signal wins over errors", "[load]") {
  core::load_stats s;
  s.error(core::outcome::fail(exit_code::timeout, "no echo"));
  CHECK(core::load_verdict(s, true).code == exit_code::interrupted);
}

TEST_CASE("load verdict: connect errors are errors and are counted apart", "[load]") {
  core::load_stats s;
  s.connect_error(core::outcome::fail(exit_code::network, "connect 127.0.0.1:1: Connection refused"));
  CHECK(s.errors == 1);
  CHECK(s.connect_errors == 1);
  auto v = core::load_verdict(s, false);
  CHECK(v.code == exit_code::network);
  CHECK(v.what.find("1 connecting") != std::string::npos);
}

TEST_CASE("load verdict: an error counted without a description is still not ok", "[load]") {
  core::load_stats s;
  s.errors = 3;  // counted by hand, no outcome
  CHECK_FALSE(core::load_verdict(s, false).ok());
}

TEST_CASE("merging keeps the earliest first error, whichever worker saw it", "[load]") {
  core::load_stats early, late;
  early.error(core::outcome::fail(exit_code::timeout, "early"));
  std::this_thread::sleep_for(std::chrono::milliseconds(2));  // distinct timestamps, not a synchronisation
  late.error(core::outcome::fail(exit_code::protocol, "late"));
  core::load_stats total;
  total += late;
  total += early;
  CHECK(total.errors == 2);
  CHECK(total.first_error.what == "early");
  CHECK(core::load_verdict(total, false).code == exit_code::timeout);
}

TEST_CASE("per-thread stats: one slot per thread, merged exactly", "[load]") {
  core::per_thread_stats stats;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&stats] {
      for (int i = 0; i < 10000; ++i) {
        auto& s = stats.local();
        ++s.messages;
        s.bytes += 10;
        s.latency.record(std::chrono::microseconds(i % 100));
      }
    });
  for (auto& t : ts) t.join();
  auto total = stats.merged();
  CHECK(total.messages == 40000);
  CHECK(total.bytes == 400000);
  CHECK(total.latency.count() == 40000);
  CHECK(total.errors == 0);
}

TEST_CASE("per-thread stats: a new object at a reused address starts empty", "[load]") {
  for (int round = 0; round < 3; ++round) {
    auto stats = std::make_unique<core::per_thread_stats>();
    ++stats->local().messages;
    CHECK(stats->merged().messages == 1);
  }
}

TEST_CASE("counts above INT64_MAX are usage errors on every load flag", "[load][cli]") {
  const std::string too_big = "9223372036854775808";  // 2^63: once wrapped to a negative budget
  const std::string max = "9223372036854775807";
  SECTION("tcp dial --count") {
    parsed_cli c;
    CHECK_THROWS_AS(c.parse({"tcp", "dial", "127.0.0.1:7", "--count", too_big}), CLI::ValidationError);
    parsed_cli ok;
    ok.parse({"tcp", "dial", "127.0.0.1:7", "--count", max});
    CHECK(ok.options<tcp::dial_options>().load->count == 9223372036854775807ull);
  }
  SECTION("udp send --count") {
    parsed_cli c;
    CHECK_THROWS_AS(c.parse({"udp", "send", "127.0.0.1:7", "--count", too_big}), CLI::ValidationError);
    parsed_cli ok;
    ok.parse({"udp", "send", "127.0.0.1:7", "--count", max, "--size", "10"});
    CHECK(ok.options<udp::send_options>().load->count == 9223372036854775807ull);
  }
  SECTION("ws-echo dial --count") {
    parsed_cli c;
    CHECK_THROWS_AS(c.parse({"ws-echo", "dial", "ws://127.0.0.1:7/", "--count", too_big}), CLI::ValidationError);
    parsed_cli ok;
    ok.parse({"ws-echo", "dial", "ws://127.0.0.1:7/", "--count", max});
    CHECK(ok.options<ws::dial_options>().load->count == 9223372036854775807ull);
  }
  SECTION("sizes") {
    parsed_cli c;
    CHECK_THROWS_AS(c.parse({"tcp", "dial", "127.0.0.1:7", "--count", "1", "--size", too_big}), CLI::ValidationError);
    parsed_cli w;
    CHECK_THROWS_AS(w.parse({"ws-echo", "dial", "ws://127.0.0.1:7/", "--max-message", "9223372036854775808"}),
                    CLI::ValidationError);
    parsed_cli g;  // 8 EiB in G units: 2^63 bytes
    CHECK_THROWS_AS(g.parse({"ws-echo", "dial", "ws://127.0.0.1:7/", "--max-message", "8589934592G"}),
                    CLI::ValidationError);
  }
  SECTION("other counts") {
    parsed_cli c;
    CHECK_THROWS_AS(c.parse({"tcp", "serve", "--max-connections", too_big}), CLI::ValidationError);
  }
}

TEST_CASE("the count validator names the limit", "[load][cli]") {
  auto v = cli::whole(1, UINT64_MAX, "N");
  std::string s = "9223372036854775808";
  CHECK(v(s).find("at most 9223372036854775807") != std::string::npos);
  s = "99999999999999999999999";
  CHECK(v(s).find("too large") != std::string::npos);
  s = "9223372036854775807";
  CHECK(v(s).empty());
}
