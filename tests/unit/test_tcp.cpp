// tcp serve / tcp dial: every flag through the real command line, bad values, and the pure parts
// of lib/netlab/tcp (load pattern, log preview, error-code re-homing).
#include <catch2/catch.hpp>

#include <asio/error.hpp>
#include <cstring>
#include <set>
#include <sstream>

#include "cli.hpp"
#include "cli_fixture.hpp"
#include "netlab/core/error.hpp"
#include "netlab/tcp/client.hpp"
#include "netlab/tcp/preview.hpp"
#include "netlab/tcp/server.hpp"

using namespace netlab;
using namespace std::chrono_literals;

namespace {

struct tcp_cli : test::parsed_cli {
  tcp::serve_options serve() const { return options<tcp::serve_options>(); }
  tcp::dial_options dial() const { return options<tcp::dial_options>(); }
};

tcp::serve_options serve_with(std::vector<std::string> args) {
  tcp_cli c;
  args.insert(args.begin(), {"tcp", "serve"});
  c.parse(args);
  REQUIRE(c.chosen.command == "tcp serve");
  return c.serve();
}

tcp::dial_options dial_with(std::vector<std::string> args) {
  tcp_cli c;
  args.insert(args.begin(), {"tcp", "dial"});
  c.parse(args);
  REQUIRE(c.chosen.command == "tcp dial");
  CHECK(c.chosen.threads == 1);
  return c.dial();
}

// The usage error's message, or "" if the arguments parse.
std::string usage_error(std::vector<std::string> args) {
  tcp_cli c;
  try {
    c.parse(args);
  } catch (const CLI::ParseError& e) {
    std::ostringstream sink;
    CHECK(c.app->exit(e, sink, sink) != 0);  // a usage error, not --help
    return e.what()[0] ? e.what() : "error";
  }
  return "";
}

}  // namespace

TEST_CASE("tcp needs a subcommand", "[tcp][cli]") {
  CHECK_FALSE(usage_error({"tcp"}).empty());
  CHECK_FALSE(usage_error({"tcp", "listen"}).empty());
}

TEST_CASE("tcp serve defaults", "[tcp][cli]") {
  tcp_cli c;
  c.parse({"tcp", "serve"});
  auto o = c.serve();
  CHECK(o.listen.host.empty());
  CHECK(o.listen.port == 1450);
  CHECK(o.mode == tcp::serve_mode::ack);
  CHECK(o.reply == "server received: {msg}");
  CHECK_FALSE(o.once);
  CHECK(o.max_connections == 0);
  CHECK(o.idle_timeout == 300s);
  CHECK(o.max_message == 65536);
  CHECK(o.threads == cli::server_threads_default());
  CHECK(c.chosen.threads == cli::server_threads_default());
  CHECK(c.chosen.run);
}

TEST_CASE("tcp serve takes every flag", "[tcp][cli]") {
  tcp_cli c;
  c.parse({"tcp", "serve", "--listen", "[::1]:0", "--mode", "ack", "--reply", "伺服器端回傳伺服器端已接收到 {msg}", "--once",
           "--max-connections", "100", "--idle-timeout", "1500ms", "--max-message", "1K", "--threads", "4"});
  auto o = c.serve();
  CHECK(o.listen == core::endpoint{"::1", 0});
  CHECK(o.reply == "伺服器端回傳伺服器端已接收到 {msg}");
  CHECK(o.once);
  CHECK(o.max_connections == 100);
  CHECK(o.idle_timeout == 1500ms);
  CHECK(o.max_message == 1024);
  CHECK(o.threads == 4);
  CHECK(c.chosen.threads == 4);

  CHECK(serve_with({"-l", "127.0.0.1:7"}).listen == core::endpoint{"127.0.0.1", 7});
  CHECK(serve_with({"--listen", ":0"}).listen == core::endpoint{"", 0});
  CHECK(serve_with({"--listen", "localhost"}).listen == core::endpoint{"localhost", 1450});  // port defaults to 1450
  CHECK(serve_with({"--mode", "echo"}).mode == tcp::serve_mode::echo);
  CHECK(serve_with({"--mode", "discard"}).mode == tcp::serve_mode::discard);
  CHECK(serve_with({"--idle-timeout", "0"}).idle_timeout == 0ms);
  CHECK(serve_with({"--idle-timeout", "2"}).idle_timeout == 2000ms);
  CHECK(serve_with({"--max-message", "16MiB"}).max_message == 16u * 1024 * 1024);
  CHECK(serve_with({"--max-message", "1"}).max_message == 1);
  CHECK(serve_with({"--reply", ""}).reply.empty());
  CHECK(serve_with({"-v", "--mode", "echo", "--json"}).mode == tcp::serve_mode::echo);  // globals anywhere
}

TEST_CASE("tcp serve rejects bad values", "[tcp][cli]") {
  const std::vector<std::vector<std::string>> bad = {
      {"--listen", "127.0.0.1:99999"},  {"--listen", "[::1"},           {"--listen", "[::1]x"},
      {"--mode", "chargen"},            {"--max-connections", "-1"},    {"--max-connections", "many"},
      {"--idle-timeout", "soon"},       {"--idle-timeout", "-1s"},      {"--max-message", "0"},
      {"--max-message", "17MiB"},       {"--max-message", "big"},       {"--threads", "0"},
      {"--threads", "257"},             {"--mode", "echo", "--reply", "x"},
      {"--mode", "echo", "--once"},     {"--mode", "discard", "--max-message", "1K"},
      {"--once", "extra-positional"},
  };
  for (auto args : bad) {
    args.insert(args.begin(), {"tcp", "serve"});
    INFO(args[2]);
    CHECK_FALSE(usage_error(args).empty());
  }
  CHECK_THAT(usage_error({"tcp", "serve", "--max-message", "0"}), Catch::Contains("--max-message"));
  CHECK_THAT(usage_error({"tcp", "serve", "--mode", "echo", "--reply", "x"}), Catch::Contains("--mode ack"));
  CHECK_THAT(usage_error({"tcp", "serve", "--listen", "127.0.0.1:99999"}), Catch::Contains("99999"));
}

TEST_CASE("tcp dial defaults and the data flags", "[tcp][cli]") {
  auto o = dial_with({"127.0.0.1:1450", "-m", "封印解除!"});
  CHECK(o.target == core::endpoint{"127.0.0.1", 1450});
  REQUIRE(o.source.messages.size() == 1);
  CHECK(o.source.messages[0] == "封印解除!");
  CHECK(o.source.fd == -1);  // -m given: stdin is not read unless '-' is given
  CHECK(o.connect_timeout == 5000ms);
  CHECK(o.idle == 2000ms);
  CHECK(o.timeout == 0ms);
  CHECK_FALSE(o.half_close);
  CHECK_FALSE(o.load.has_value());

  o = dial_with({"[::1]:7", "-m", "a", "--message", "b", "-m", "c\\n"});
  CHECK(o.target == core::endpoint{"::1", 7});
  CHECK(o.source.messages == std::vector<std::string>{"a", "b", "c\\n"});  // no -e: backslashes stay

  o = dial_with({"example.org:80", "-e", "-m", "GET / HTTP/1.0\\r\\n\\r\\n", "-m", "\\x00\\t\\\\"});
  CHECK(o.target.host == "example.org");
  CHECK(o.source.messages[0] == "GET / HTTP/1.0\r\n\r\n");
  CHECK(o.source.messages[1] == std::string("\0\t\\", 3));

  o = dial_with({"127.0.0.1:9", "-"});
  CHECK(o.source.fd == 0);
  CHECK(o.source.messages.empty());
  o = dial_with({"127.0.0.1:9", "-m", "first", "-"});
  CHECK(o.source.fd == 0);
  CHECK(o.source.messages.size() == 1);

  o = dial_with({"127.0.0.1:9", "-m", "x", "--idle", "250ms", "--timeout", "3", "--connect-timeout", "1m",
                 "--half-close"});
  CHECK(o.idle == 250ms);
  CHECK(o.timeout == 3000ms);
  CHECK(o.connect_timeout == 60000ms);
  CHECK(o.half_close);
  CHECK(dial_with({"127.0.0.1:9", "-m", "x", "--idle", "0"}).idle == 0ms);
}

TEST_CASE("tcp dial load mode flags", "[tcp][cli]") {
  auto o = dial_with({"127.0.0.1:7", "--count", "1000"});
  REQUIRE(o.load.has_value());
  CHECK(o.load->count == 1000);
  CHECK(o.load->duration == 0ms);
  CHECK(o.load->connections == 1);
  CHECK(o.load->size == 64);
  CHECK(o.load->pipeline == 1);
  CHECK(o.load->threads >= 1);
  CHECK(o.load->threads <= 2);
  CHECK(o.source.empty());

  o = dial_with({"127.0.0.1:7", "--connections", "5000", "--duration", "10s", "--size", "64K", "--pipeline", "8",
                 "--threads", "3", "--timeout", "2s", "--connect-timeout", "1s"});
  REQUIRE(o.load.has_value());
  CHECK(o.load->connections == 5000);
  CHECK(o.load->count == 0);
  CHECK(o.load->duration == 10000ms);
  CHECK(o.load->size == 65536);
  CHECK(o.load->pipeline == 8);
  CHECK(o.load->threads == 3);
  CHECK(o.timeout == 2000ms);
  CHECK(o.connect_timeout == 1000ms);
}

TEST_CASE("tcp dial rejects bad values", "[tcp][cli]") {
  const std::vector<std::vector<std::string>> bad = {
      {},                                             // no target
      {"127.0.0.1"},                                  // no port
      {":80"},                                        // no host
      {"127.0.0.1:http"},
      {"127.0.0.1:1", "+"},                           // only '-' is an input
      {"127.0.0.1:1", "-e"},                          // -e without -m
      {"127.0.0.1:1", "-e", "-m", "\\q"},             // unknown escape
      {"127.0.0.1:1", "-e", "-m", "\\x4"},            // short \x
      {"127.0.0.1:1", "--idle", "x"},
      {"127.0.0.1:1", "--timeout", "-2"},
      {"127.0.0.1:1", "--connect-timeout", "1y"},
      {"127.0.0.1:1", "--count", "0"},
      {"127.0.0.1:1", "--count", "ten"},
      {"127.0.0.1:1", "--count", "5", "--duration", "1s"},
      {"127.0.0.1:1", "--duration", "0"},
      {"127.0.0.1:1", "--connections", "10"},         // load flags need --count or --duration
      {"127.0.0.1:1", "--size", "1K"},
      {"127.0.0.1:1", "--pipeline", "2"},
      {"127.0.0.1:1", "--threads", "2"},
      {"127.0.0.1:1", "--count", "5", "--connections", "0"},
      {"127.0.0.1:1", "--count", "5", "--connections", "100001"},
      {"127.0.0.1:1", "--count", "5", "--size", "0"},
      {"127.0.0.1:1", "--count", "5", "--size", "17MiB"},
      {"127.0.0.1:1", "--count", "5", "--pipeline", "0"},
      {"127.0.0.1:1", "--count", "5", "--pipeline", "1025"},
      {"127.0.0.1:1", "--count", "5", "--threads", "0"},
      {"127.0.0.1:1", "--count", "5", "-m", "x"},     // load mode generates its data
      {"127.0.0.1:1", "--count", "5", "-"},
      {"127.0.0.1:1", "--count", "5", "--half-close"},
      {"127.0.0.1:1", "--count", "5", "--idle", "1s"},
  };
  for (auto args : bad) {
    args.insert(args.begin(), {"tcp", "dial"});
    INFO((args.size() > 2 ? args[2] : "") + " " + (args.size() > 3 ? args[3] : ""));
    CHECK_FALSE(usage_error(args).empty());
  }
  CHECK_THAT(usage_error({"tcp", "dial", "127.0.0.1:1", "--count", "5", "--duration", "1s"}),
             Catch::Contains("--count") && Catch::Contains("--duration"));
  CHECK_THAT(usage_error({"tcp", "dial", "127.0.0.1:1", "--size", "1K"}), Catch::Contains("--count N or --duration S"));
  CHECK_THAT(usage_error({"tcp", "dial", "127.0.0.1:1", "-e", "-m", "\\q"}), Catch::Contains("\\q"));
  CHECK_THAT(usage_error({"tcp", "dial", ":80"}), Catch::Contains("no host"));
}

TEST_CASE("help for tcp is complete and exits 0", "[tcp][cli]") {
  for (auto args : std::vector<std::vector<std::string>>{{"tcp", "--help"}, {"tcp", "serve", "--help"}, {"tcp", "dial", "--help"}}) {
    tcp_cli c;
    try {
      c.parse(args);
      FAIL("no help");
    } catch (const CLI::CallForHelp& e) {
      std::ostringstream out, err;
      CHECK(c.app->exit(e, out, err) == 0);
      const std::string help = out.str();
      if (args.size() == 2) {
        CHECK_THAT(help, Catch::Contains("serve") && Catch::Contains("dial"));
      } else if (args[1] == "serve") {
        for (const char* flag : {"--listen", "--mode", "--reply", "--once", "--max-connections", "--idle-timeout",
                                 "--max-message", "--threads", "discard", "RFC 862"})
          CHECK_THAT(help, Catch::Contains(flag));
      } else {
        for (const char* flag : {"--message", "--escapes", "--idle", "--timeout", "--connect-timeout", "--half-close",
                                 "--connections", "--count", "--duration", "--size", "--pipeline", "--threads", "stdin"})
          CHECK_THAT(help, Catch::Contains(flag));
      }
    }
  }
}

TEST_CASE("load pattern: consecutive messages differ, windows stay in bounds", "[tcp]") {
  for (std::size_t size : {1u, 7u, 64u, 1024u}) {
    tcp::load_pattern p(size);
    CHECK(p.size() == size);
    std::set<std::string> distinct;
    for (std::uint64_t seq = 0; seq < 251; ++seq) {
      CHECK(tcp::load_pattern::offset(seq) < 251);
      distinct.insert(std::string(p.message(seq), size));
    }
    if (size >= 7) {
      CHECK(distinct.size() == 251);  // a reordered or stale echo never matches
      CHECK(std::memcmp(p.message(0), p.message(1), size) != 0);
    }
    CHECK(std::memcmp(p.message(5), p.message(5 + 251), size) == 0);  // period 251
  }
}

TEST_CASE("preview escapes control bytes and keeps UTF-8", "[tcp]") {
  CHECK(tcp::preview("hi\r\n", 4) == "\"hi\\r\\n\"");
  CHECK(tcp::preview("封印解除!", std::strlen("封印解除!")) == "\"封印解除!\"");
  const char bin[] = {'\x00', '\xff', '"', '\\', '\t'};
  CHECK(tcp::preview(bin, sizeof bin) == "\"\\x00\\xff\\\"\\\\\\t\"");
  CHECK(tcp::preview("\xe5\xb0", 2) == "\"\\xe5\\xb0\"");  // a cut UTF-8 sequence is escaped
  CHECK(tcp::preview("abcdef", 6, 3) == "\"abc\"...");
}

TEST_CASE("portable(): asio socket errors compare with std::errc and get hints", "[tcp][core]") {
  std::error_code refused = asio::error::connection_refused;
  auto p = core::portable(refused);
  CHECK(p == std::errc::connection_refused);
  CHECK(p.message() == refused.message());
  CHECK_FALSE(core::hint_for(p).empty());
  // classify and hint_for see through the asio category themselves.
  CHECK(classify(asio::error::timed_out) == exit_code::timeout);
  CHECK(classify(asio::error::connection_reset) == exit_code::network);
  CHECK(core::hint_for(asio::error::address_in_use) == core::hint_for(std::make_error_code(std::errc::address_in_use)));
  CHECK_FALSE(core::hint_for(asio::error::address_in_use).empty());
  std::error_code mine = make_error_code(errc::mismatch);
  CHECK(core::portable(mine) == mine);
  CHECK_FALSE(core::portable(std::error_code()));
}

TEST_CASE("serve_mode names", "[tcp]") {
  CHECK(std::string(tcp::to_string(tcp::serve_mode::ack)) == "ack");
  CHECK(std::string(tcp::to_string(tcp::serve_mode::echo)) == "echo");
  CHECK(std::string(tcp::to_string(tcp::serve_mode::discard)) == "discard");
}
