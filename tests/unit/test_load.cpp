// The load modes' shared pieces, in-process: the one exit rule (first error's class), merging
// worker stats, the count limits of every load flag, and the one load driver with a fake
// protocol adapter (stats, pacing, count/duration stop, error classes).
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <asio/post.hpp>
#include <catch2/catch.hpp>

#include "cli_fixture.hpp"
#include "netlab/core/load.hpp"
#include "netlab/core/load_driver.hpp"
#include "netlab/core/runtime.hpp"
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

// ---- The one load driver, driven in-process with a fake protocol adapter ----

namespace {

/// How the fake peer behaves.
struct fake_peer {
  core::outcome connect_failure;  ///< for connection `fail_index` (ok: every connection opens)
  unsigned fail_index = 0;
  bool silent = false;            ///< never replies (reply deadlines)
  bool lossy = false;             ///< connections survive a lost reply (datagram semantics)
  std::atomic<unsigned> max_in_flight{0};
  std::atomic<std::uint64_t> sends{0};
};

class fake_connection final : public core::load_connection {
 public:
  fake_connection(core::load_worker& w, fake_peer& p, unsigned index) : w_(w), p_(p), index_(index) {}
  void connect() override {
    asio::post(w_.ioc(), [this] {
      if (closed_) return;
      if (!p_.connect_failure.ok() && index_ == p_.fail_index) return w_.failed(*this, p_.connect_failure);
      w_.opened(*this);
    });
  }
  void send(std::uint64_t from, std::uint64_t to) override {
    p_.sends += to - from;
    const auto in_flight = static_cast<unsigned>(to - done());
    unsigned seen = p_.max_in_flight.load();
    while (in_flight > seen && !p_.max_in_flight.compare_exchange_weak(seen, in_flight)) {
    }
    if (p_.silent) return;
    asio::post(w_.ioc(), [this, n = to - from] {
      if (!closed_) w_.replied(*this, n);
    });
  }
  void close() override { closed_ = true; }
  bool survives_lost_reply() const override { return p_.lossy; }

 private:
  core::load_worker& w_;
  fake_peer& p_;
  unsigned index_;
  bool closed_ = false;
};

class fake_adapter final : public core::load_adapter {
 public:
  explicit fake_adapter(fake_peer& p) : p_(p) {}
  std::string_view proto() const override { return "fake"; }
  std::string target() const override { return "fake:1"; }
  std::unique_ptr<core::load_connection> make(core::load_worker& w) override {
    return std::make_unique<fake_connection>(w, p_, made_++);
  }

 private:
  fake_peer& p_;
  unsigned made_ = 0;
};

struct driver_run {
  core::outcome verdict;
  nlohmann::json report;  ///< null when none was printed
};

driver_run drive(fake_peer& peer, core::load_settings s) {
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  driver_run r;
  {
    core::runtime rt(1);
    core::reporter out(f, true);
    fake_adapter a(peer);
    core::load_driver d(a, s, rt, out);
    r.verdict = d.run();
  }
  std::rewind(f);
  std::string text;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  std::fclose(f);
  if (!text.empty()) r.report = nlohmann::json::parse(text);
  return r;
}

core::load_settings settings(unsigned connections, std::uint64_t count, unsigned pipeline = 1, unsigned threads = 2) {
  core::load_settings s;
  s.load.connections = connections;
  s.load.count = count;
  s.load.pipeline = pipeline;
  s.load.threads = threads;
  s.load.size = 10;
  s.reply_timeout = std::chrono::milliseconds(5000);
  return s;
}

}  // namespace

TEST_CASE("driver: --count completes exactly that many messages and stops", "[load][driver]") {
  fake_peer peer;
  auto r = drive(peer, settings(3, 1000, 4, 2));
  CHECK(r.verdict.ok());
  REQUIRE(r.report.is_object());
  CHECK(r.report["proto"] == "fake");
  CHECK(r.report["messages"] == 1000);
  CHECK(r.report["bytes"] == 10000);
  CHECK(r.report["errors"] == 0);
  CHECK(peer.sends == 1000);  // nothing sent beyond the quota
}

TEST_CASE("driver: pacing keeps exactly --pipeline messages in flight", "[load][driver]") {
  fake_peer peer;
  auto r = drive(peer, settings(2, 400, 8, 1));
  CHECK(r.verdict.ok());
  CHECK(peer.max_in_flight == 8);
  fake_peer one;
  drive(one, settings(2, 400, 1, 1));
  CHECK(one.max_in_flight == 1);
}

TEST_CASE("driver: --duration stops the run at the deadline", "[load][driver]") {
  fake_peer peer;
  auto s = settings(2, 0, 1, 2);
  s.load.duration = std::chrono::milliseconds(200);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = drive(peer, s);
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(r.verdict.ok());
  CHECK(r.report["messages"].get<std::uint64_t>() > 0);
  CHECK(r.report["seconds"].get<double>() >= 0.19);
  CHECK(took < std::chrono::seconds(5));
}

TEST_CASE("driver: a failed connection among good ones gives its class, with a report", "[load][driver]") {
  fake_peer peer;
  peer.connect_failure = core::outcome::fail(exit_code::protocol, "handshake rejected by fake:1: HTTP 503", "full");
  peer.fail_index = 1;
  auto r = drive(peer, settings(3, 300, 1, 2));
  CHECK(r.verdict.code == exit_code::protocol);
  CHECK(r.verdict.what.find("HTTP 503") != std::string::npos);
  REQUIRE(r.report.is_object());
  CHECK(r.report["errors"] == 1);
  CHECK(r.report["connect_errors"] == 1);
  CHECK(r.report["messages"] == 200);  // the failed connection's share is not run by the others
}

TEST_CASE("driver: when no connection opens, the first failure is the result, no report", "[load][driver]") {
  fake_peer peer;
  peer.connect_failure = core::outcome::fail(exit_code::network, "connect fake:1: Connection refused");
  peer.fail_index = 0;
  auto r = drive(peer, settings(1, 10, 1, 1));
  CHECK(r.verdict.code == exit_code::network);
  CHECK(r.verdict.what == "connect fake:1: Connection refused");
  CHECK(r.report.is_null());
}

TEST_CASE("driver: an overdue reply fails a stream connection with a timeout", "[load][driver]") {
  fake_peer peer;
  peer.silent = true;
  auto s = settings(2, 10, 1, 1);
  s.reply_timeout = std::chrono::milliseconds(50);
  auto r = drive(peer, s);
  CHECK(r.verdict.code == exit_code::timeout);
  CHECK(r.report["errors"] == 2);
  CHECK(r.report["messages"] == 0);
  CHECK(peer.sends == 2);  // one each, then the connection was closed
}

TEST_CASE("driver: a lost datagram is an error and the next message goes out", "[load][driver]") {
  fake_peer peer;
  peer.silent = true;
  peer.lossy = true;
  auto s = settings(1, 3, 1, 1);
  s.reply_timeout = std::chrono::milliseconds(30);
  auto r = drive(peer, s);
  CHECK(r.verdict.code == exit_code::timeout);
  CHECK(r.report["errors"] == 3);
  CHECK(peer.sends == 3);
}
