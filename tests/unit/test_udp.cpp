// udp serve / udp send: every flag through the real command line, and bad values.
#include <catch2/catch.hpp>

#include <sstream>

#include "cli.hpp"
#include "cli_fixture.hpp"
#include "netlab/udp/client.hpp"
#include "netlab/udp/server.hpp"

using namespace netlab;
using namespace std::chrono_literals;

namespace {

udp::serve_options udp_serve_with(std::vector<std::string> args) {
  test::parsed_cli c;
  args.insert(args.begin(), {"udp", "serve"});
  c.parse(args);
  REQUIRE(c.chosen.command == "udp serve");
  return c.options<udp::serve_options>();
}

udp::send_options udp_send_with(std::vector<std::string> args, unsigned* threads = nullptr) {
  test::parsed_cli c;
  args.insert(args.begin(), {"udp", "send"});
  c.parse(args);
  REQUIRE(c.chosen.command == "udp send");
  if (threads) *threads = c.chosen.threads;
  return c.options<udp::send_options>();
}

// The usage error's message, or "" if the arguments parse.
std::string udp_usage_error(std::vector<std::string> args) {
  test::parsed_cli c;
  try {
    c.parse(args);
  } catch (const CLI::ParseError& e) {
    std::ostringstream sink;
    CHECK(c.app->exit(e, sink, sink) != 0);
    return std::string(e.what()) + " " + sink.str();
  }
  return {};
}

}  // namespace

TEST_CASE("udp serve defaults", "[udp][cli]") {
  auto o = udp_serve_with({});
  CHECK(o.listen.host.empty());
  CHECK(o.listen.port == 6890);
  CHECK(o.mode == udp::serve_mode::ack);
  CHECK(o.reply == "server received: {msg}");
  CHECK(o.threads == cli::server_threads_default());
  CHECK(udp::receive_buffer == 65536);
}

TEST_CASE("udp serve flags", "[udp][cli]") {
  auto o = udp_serve_with({"--listen", "127.0.0.1:0", "--reply", "伺服器端回傳伺服器端已接收到 {msg}", "--threads", "3"});
  CHECK(o.listen.host == "127.0.0.1");
  CHECK(o.listen.port == 0);
  CHECK(o.reply == "伺服器端回傳伺服器端已接收到 {msg}");
  CHECK(o.threads == 3);
  CHECK(udp_serve_with({"-l", "[::1]:689"}).listen.host == "::1");
  CHECK(udp_serve_with({"--mode", "echo"}).mode == udp::serve_mode::echo);
  CHECK(std::string(udp::to_string(udp::serve_mode::echo)) == "echo");
}

TEST_CASE("udp serve bad values", "[udp][cli]") {
  CHECK_FALSE(udp_usage_error({"udp"}).empty());
  CHECK_THAT(udp_usage_error({"udp", "serve", "--mode", "discard"}), Catch::Contains("--mode"));
  CHECK_THAT(udp_usage_error({"udp", "serve", "--mode", "echo", "--reply", "x"}), Catch::Contains("--mode ack"));
  CHECK_THAT(udp_usage_error({"udp", "serve", "--listen", "127.0.0.1:99999"}), Catch::Contains("99999"));
  CHECK_FALSE(udp_usage_error({"udp", "serve", "--threads", "0"}).empty());
  CHECK_FALSE(udp_usage_error({"udp", "serve", "extra"}).empty());
}

TEST_CASE("udp send defaults and flags", "[udp][cli]") {
  unsigned threads = 0;
  auto o = udp_send_with({"127.0.0.1:6890", "Hello UDP!"}, &threads);
  CHECK(threads == 1);
  CHECK(o.target.host == "127.0.0.1");
  CHECK(o.target.port == 6890);
  CHECK(o.message == "Hello UDP!");
  CHECK(o.timeout == 3s);
  CHECK(o.retries == 0);
  CHECK(o.count == 1);
  CHECK_FALSE(o.wait_all);
  CHECK_FALSE(o.load.has_value());

  o = udp_send_with({"[::1]:7", "a\\tb\\x41", "-e", "--timeout", "500ms", "--retries", "4", "--count", "3", "--wait-all"});
  CHECK(o.target.host == "::1");
  CHECK(o.message == "a\tbA");
  CHECK(o.timeout == 500ms);
  CHECK(o.retries == 4);
  CHECK(o.count == 3);
  CHECK(o.wait_all);
  CHECK(udp_send_with({"h:1", "x", "--escapes"}).message == "x");
  CHECK(udp_send_with({"h:1", "a\\nb"}).message == "a\\nb");  // no -e: as typed
  CHECK(udp_send_with({"h:1", "", "--timeout", "2"}).timeout == 2s);
}

TEST_CASE("udp send load mode flags", "[udp][cli]") {
  unsigned threads = 0;
  auto o = udp_send_with({"127.0.0.1:7", "--connections", "8", "--count", "1000", "--size", "1K", "--threads", "2"}, &threads);
  REQUIRE(o.load.has_value());
  CHECK(o.load->connections == 8);
  CHECK(o.load->count == 1000);
  CHECK(o.load->duration == 0ms);
  CHECK(o.load->size == 1024);
  CHECK(o.load->threads == 2);
  CHECK(threads == 1);  // the runtime's: the load driver runs its own --threads workers (as tcp dial)
  o = udp_send_with({"127.0.0.1:7", "--duration", "5s", "--size", "65507"});
  REQUIRE(o.load.has_value());
  CHECK(o.load->duration == 5s);
  CHECK(o.load->count == 0);
  CHECK(o.load->connections == 1);
}

TEST_CASE("udp send bad values", "[udp][cli]") {
  CHECK_FALSE(udp_usage_error({"udp", "send"}).empty());
  CHECK_THAT(udp_usage_error({"udp", "send", "nohost", "x"}), Catch::Contains("nohost"));
  CHECK_THAT(udp_usage_error({"udp", "send", ":7", "x"}), Catch::Contains("no host"));
  CHECK_THAT(udp_usage_error({"udp", "send", "h:0", "x"}), Catch::Contains("port 0"));
  CHECK_THAT(udp_usage_error({"udp", "send", "h:1", "x", "--timeout", "0"}), Catch::Contains("--timeout"));
  CHECK_FALSE(udp_usage_error({"udp", "send", "h:1", "x", "--timeout", "soon"}).empty());
  CHECK_THAT(udp_usage_error({"udp", "send", "h:1", "x", "--retries", "-1"}), Catch::Contains("whole number"));
  CHECK_THAT(udp_usage_error({"udp", "send", "h:1", "x", "--retries", "1001"}), Catch::Contains("at most"));
  CHECK_THAT(udp_usage_error({"udp", "send", "h:1", "x", "--count", "0"}), Catch::Contains("at least 1"));
  CHECK_THAT(udp_usage_error({"udp", "send", "h:1", "-e", "bad\\q"}), Catch::Contains("MESSAGE"));
  CHECK_THAT(udp_usage_error({"udp", "send", "h:1", std::string(65508, 'x')}), Catch::Contains("65,507"));
  CHECK(udp_usage_error({"udp", "send", "h:1", std::string(65507, 'x')}).empty());
  // load mode
  CHECK_THAT(udp_usage_error({"udp", "send", "h:1", "--connections", "2"}), Catch::Contains("--count N or --duration"));
  CHECK_THAT(udp_usage_error({"udp", "send", "h:1", "--count", "5", "--duration", "1s", "--size", "8"}),
             Catch::Contains("exclude"));
  CHECK_THAT(udp_usage_error({"udp", "send", "h:1", "--duration", "0"}), Catch::Contains("--duration"));
  CHECK_THAT(udp_usage_error({"udp", "send", "h:1", "--count", "5", "--size", "65508"}), Catch::Contains("--size"));
  CHECK_THAT(udp_usage_error({"udp", "send", "h:1", "--count", "5", "--size", "0"}), Catch::Contains("--size"));
  CHECK_THAT(udp_usage_error({"udp", "send", "h:1", "msg", "--count", "5", "--size", "9"}), Catch::Contains("MESSAGE"));
  CHECK_THAT(udp_usage_error({"udp", "send", "h:1", "--count", "5", "--size", "9", "--wait-all"}),
             Catch::Contains("--wait-all"));
  CHECK_THAT(udp_usage_error({"udp", "send", "h:1", "--connections", "0", "--count", "1"}), Catch::Contains("at least 1"));
  CHECK_THAT(udp_usage_error({"udp", "send", "h:1", "--connections", "10001", "--count", "1"}), Catch::Contains("at most"));
  CHECK_FALSE(udp_usage_error({"udp", "send", "h:1", "--threads", "0", "--count", "1"}).empty());
}

TEST_CASE("udp serve print mode and multicast groups", "[udp][cli]") {
  auto o = udp_serve_with({"--mode", "print"});
  CHECK(o.mode == udp::serve_mode::print);
  CHECK(std::string(udp::to_string(udp::serve_mode::print)) == "print");
  o = udp_serve_with({"--listen", "0.0.0.0:0", "--join", "239.1.2.3", "--join", "ff02::1:3", "--interface", "127.0.0.1"});
  CHECK(o.join == std::vector<std::string>{"239.1.2.3", "ff02::1:3"});
  CHECK(o.interface_address == "127.0.0.1");
  CHECK_THAT(udp_usage_error({"udp", "serve", "--mode", "print", "--reply", "x"}), Catch::Contains("--mode ack"));
  CHECK_THAT(udp_usage_error({"udp", "serve", "--interface", "127.0.0.1"}), Catch::Contains("--join"));
  CHECK_FALSE(udp_usage_error({"udp", "serve", "--join", "not-an-address"}).empty());
}

TEST_CASE("udp send to a group", "[udp][cli]") {
  auto o = udp_send_with({"127.255.255.255:6890", "x", "--broadcast"});
  CHECK(o.broadcast);
  CHECK(udp::group_target(o));
  o = udp_send_with({"239.1.2.3:6890", "x", "--interface", "127.0.0.1"});
  CHECK_FALSE(o.broadcast);
  CHECK(o.interface_address == "127.0.0.1");
  CHECK(udp::group_target(o));  // a multicast address needs no flag
  CHECK_FALSE(udp::group_target(udp_send_with({"127.0.0.1:6890", "x"})));
  CHECK_THAT(udp_usage_error({"udp", "send", "127.0.0.1:6890", "x", "--interface", "127.0.0.1"}),
             Catch::Contains("multicast target"));
  CHECK_THAT(udp_usage_error({"udp", "send", "127.0.0.1:6890", "--count", "5", "--size", "8", "--broadcast"}),
             Catch::Contains("--broadcast"));
}
