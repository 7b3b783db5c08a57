// ws-echo: the pure parts of lib/netlab/ws (URL parsing).
#include <catch2/catch.hpp>

#include "netlab/ws/url.hpp"

using namespace netlab;

TEST_CASE("ws url: defaults and explicit ports", "[ws]") {
  auto u = ws::parse_url("ws://127.0.0.1:8899/echo");
  REQUIRE(u);
  CHECK_FALSE(u->secure);
  CHECK(u->host == "127.0.0.1");
  CHECK(u->port == 8899);
  CHECK(u->resource == "/echo");
  CHECK(u->str() == "ws://127.0.0.1:8899/echo");

  auto d = ws::parse_url("ws://example.com");
  REQUIRE(d);
  CHECK(d->port == 80);
  CHECK(d->resource == "/");

  auto s = ws::parse_url("WSS://example.com/a/b");
  REQUIRE(s);
  CHECK(s->secure);
  CHECK(s->port == 443);
  CHECK(s->resource == "/a/b");
}

TEST_CASE("ws url: IPv6 literals", "[ws]") {
  auto u = ws::parse_url("ws://[::1]:9000/echo");
  REQUIRE(u);
  CHECK(u->host == "::1");
  CHECK(u->ipv6());
  CHECK(u->port == 9000);
  CHECK(u->authority() == "[::1]:9000");
  auto d = ws::parse_url("wss://[fe80::1%25eth0]/");
  REQUIRE(d);
  CHECK(d->port == 443);
  std::string err;
  CHECK_FALSE(ws::parse_url("ws://::1:80/", &err));
  CHECK(err.find("brackets") != std::string::npos);
  CHECK_FALSE(ws::parse_url("ws://[::1/", &err));
  CHECK_FALSE(ws::parse_url("ws://[]:80/", &err));
  CHECK_FALSE(ws::parse_url("ws://[::1]x/", &err));
}

TEST_CASE("ws url: path, query and fragment", "[ws]") {
  auto u = ws::parse_url("ws://h:1/p/q?x=1&y=%20#frag");
  REQUIRE(u);
  CHECK(u->resource == "/p/q?x=1&y=%20");
  auto q = ws::parse_url("ws://h?x=1");
  REQUIRE(q);
  CHECK(q->host == "h");
  CHECK(q->resource == "/?x=1");
}

TEST_CASE("ws url: rejects bad input", "[ws]") {
  std::string err;
  for (const char* bad : {"http://h/", "h:80", "ws://", "ws://:80/", "ws://h:/", "ws://h:0/",
                          "ws://h:65536/", "ws://h:8a/", "ws://u@h/", "ws://h/a b"}) {
    INFO(bad);
    err.clear();
    CHECK_FALSE(ws::parse_url(bad, &err));
    CHECK_FALSE(err.empty());
  }
  CHECK(ws::parse_url("ws://h:65535/"));
}

// ws-echo serve's command line (tests/unit/cli_fixture.hpp).
#include <sstream>

#include "cli_fixture.hpp"
#include "netlab/ws/echo_server.hpp"

namespace {
std::string ws_usage_error(std::vector<std::string> args) {
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

TEST_CASE("ws-echo serve: defaults are the classic lesson's", "[ws][cli]") {
  test::parsed_cli c;
  c.parse({"ws-echo", "serve"});
  CHECK(c.chosen.command == "ws-echo serve");
  auto o = c.options<ws::serve_options>();
  CHECK(o.listen.host.empty());
  CHECK(o.listen.port == 8899);
  CHECK(o.path == "/echo");
  CHECK(o.max_message == 16u * 1024 * 1024);
  CHECK(o.threads == cli::server_threads_default());
}

TEST_CASE("ws-echo serve: flags reach the options", "[ws][cli]") {
  test::parsed_cli c;
  c.parse({"ws-echo", "serve", "--listen", "[::1]:0", "--path", "/ws", "--max-message", "1MiB", "--threads", "2"});
  auto o = c.options<ws::serve_options>();
  CHECK(o.listen.host == "::1");
  CHECK(o.listen.port == 0);
  CHECK(o.path == "/ws");
  CHECK(o.max_message == 1024u * 1024);
  CHECK(o.threads == 2);
}

TEST_CASE("ws-echo serve: bad values are usage errors naming the flag", "[ws][cli]") {
  CHECK_THAT(ws_usage_error({"ws-echo", "serve", "--path", "echo"}), Catch::Contains("--path"));
  CHECK_THAT(ws_usage_error({"ws-echo", "serve", "--max-message", "0"}), Catch::Contains("--max-message"));
  CHECK_FALSE(ws_usage_error({"ws-echo", "serve", "--listen", "127.0.0.1:99999"}).empty());
  CHECK_FALSE(ws_usage_error({"ws-echo"}).empty());
}

TEST_CASE("ws-echo serve: limits, timeouts, origins, modes", "[ws][cli]") {
  test::parsed_cli c;
  c.parse({"ws-echo", "serve", "--max-connections", "3", "--handshake-timeout", "250ms", "--idle-timeout", "1m",
           "--ping-interval", "2s", "--allow-origin", "http://a.example", "--allow-origin", "https://b.example:8443",
           "--deflate", "--broadcast", "--max-queue", "1MiB", "--no-page"});
  auto o = c.options<ws::serve_options>();
  CHECK(o.max_connections == 3);
  CHECK(o.handshake_timeout == std::chrono::milliseconds(250));
  CHECK(o.idle_timeout == std::chrono::minutes(1));
  CHECK(o.ping_interval == std::chrono::seconds(2));
  CHECK(o.allow_origins == std::vector<std::string>{"http://a.example", "https://b.example:8443"});
  CHECK(o.deflate);
  CHECK(o.broadcast);
  CHECK(o.max_queue == 1024u * 1024);
  CHECK_FALSE(o.page);
}

TEST_CASE("ws-echo serve: optional features are off by default", "[ws][cli]") {
  test::parsed_cli c;
  c.parse({"ws-echo", "serve"});
  auto o = c.options<ws::serve_options>();
  CHECK(o.max_connections == 0);
  CHECK(o.handshake_timeout == std::chrono::seconds(5));
  CHECK(o.idle_timeout.count() == 0);
  CHECK(o.ping_interval.count() == 0);
  CHECK(o.allow_origins.empty());
  CHECK(o.tls_cert.empty());
  CHECK_FALSE(o.deflate);
  CHECK_FALSE(o.broadcast);
  CHECK(o.max_queue == 16u * 1024 * 1024);
  CHECK(o.page);
}

TEST_CASE("ws-echo serve: TLS files are checked at parse time", "[ws][cli]") {
  CHECK_THAT(ws_usage_error({"ws-echo", "serve", "--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/k.pem"}),
             Catch::Contains("--tls-cert /nonexistent/cert.pem"));
  CHECK_THAT(ws_usage_error({"ws-echo", "serve", "--tls-cert", "/etc/hostname"}), Catch::Contains("--tls-key"));
  CHECK_THAT(ws_usage_error({"ws-echo", "serve", "--tls-key", "/etc/hostname"}), Catch::Contains("--tls-cert"));
  CHECK_THAT(ws_usage_error({"ws-echo", "serve", "--max-queue", "0"}), Catch::Contains("--max-queue"));
  CHECK_THAT(ws_usage_error({"ws-echo", "serve", "--idle-timeout", "soon"}), Catch::Contains("--idle-timeout"));
  CHECK_FALSE(ws_usage_error({"ws-echo", "serve", "--max-connections", "-1"}).empty());
}

#include "netlab/ws/page.hpp"

TEST_CASE("ws-echo serve: the built-in page targets --path and escapes it", "[ws]") {
  auto html = ws::page_html("/echo");
  CHECK_THAT(html, Catch::Contains("location.host + \"/echo\""));
  CHECK_THAT(html, Catch::Contains("new WebSocket("));
  CHECK_THAT(html, !Catch::Contains("http://") && !Catch::Contains("https://"));  // no CDN, nothing external
  auto evil = ws::page_html("/x\"</script><script>alert(1)//");
  CHECK_THAT(evil, Catch::Contains("/x\\u0022\\u003c/script\\u003e"));
  CHECK(evil.find("</script><script>alert") == std::string::npos);
}

#include "netlab/ws/client.hpp"

namespace {
ws::dial_options dial_with(std::vector<std::string> args, unsigned* threads = nullptr) {
  test::parsed_cli c;
  args.insert(args.begin(), {"ws-echo", "dial"});
  c.parse(args);
  REQUIRE(c.chosen.command == "ws-echo dial");
  if (threads) *threads = c.chosen.threads;
  return c.options<ws::dial_options>();
}
}  // namespace

TEST_CASE("ws-echo dial: defaults are the classic lesson's", "[ws][cli]") {
  auto o = dial_with({"-m", "x"});
  CHECK(o.target.str() == "ws://127.0.0.1:8899/echo");
  REQUIRE(o.messages.size() == 1);
  CHECK(o.messages[0].data == "x");
  CHECK_FALSE(o.messages[0].binary);
  CHECK_FALSE(o.load);
  CHECK(o.timeout == std::chrono::seconds(10));
}

TEST_CASE("ws-echo dial: flags reach the options", "[ws][cli]") {
  unsigned threads = 0;
  auto o = dial_with({"wss://[::1]:8443/chat?room=1", "-m", "a", "--binary", "-H", "X-A:  b c", "--origin", "https://o",
                      "--subprotocol", "chat", "--insecure", "--deflate", "--raw", "--timeout", "2s"});
  CHECK(o.target.secure);
  CHECK(o.target.host == "::1");
  CHECK(o.target.resource == "/chat?room=1");
  CHECK(o.messages[0].binary);
  REQUIRE(o.headers.size() == 1);
  CHECK(o.headers[0] == std::make_pair(std::string("X-A"), std::string("b c")));
  CHECK(o.origin == "https://o");
  CHECK(o.insecure);
  CHECK(o.deflate);
  CHECK(o.raw);
  CHECK(o.timeout == std::chrono::seconds(2));
  auto l = dial_with({"ws://127.0.0.1:1/echo", "--connections", "10", "--duration", "3s", "--size", "16K",
                      "--pipeline", "4", "--threads", "2"},
                     &threads);
  REQUIRE(l.load);
  CHECK(l.load->connections == 10);
  CHECK(l.load->duration == std::chrono::seconds(3));
  CHECK(l.load->size == 16384);
  CHECK(l.load->pipeline == 4);
  CHECK(l.load->threads == 2);
  CHECK(threads == 1);  // the runtime's: the load driver runs its own --threads workers (as tcp dial)
}

TEST_CASE("ws-echo dial: bad values are usage errors", "[ws][cli]") {
  CHECK_THROWS_AS(dial_with({"http://x/"}), CLI::ValidationError);
  CHECK_THROWS_AS(dial_with({"ws://h:1/", "--insecure"}), CLI::ValidationError);
  CHECK_THROWS_AS(dial_with({"wss://h:1/", "--insecure", "--cacert", "/etc/hostname"}), CLI::ValidationError);
  CHECK_THROWS_AS(dial_with({"wss://h:1/", "--cacert", "/nonexistent"}), CLI::ValidationError);
  CHECK_THROWS_AS(dial_with({"ws://h:1/", "-H", "novalue"}), CLI::ValidationError);
  CHECK_THROWS_AS(dial_with({"ws://h:1/", "--count", "5", "--duration", "1s"}), CLI::ValidationError);
  CHECK_THROWS_AS(dial_with({"ws://h:1/", "--count", "5", "-m", "x"}), CLI::ValidationError);
  CHECK_THROWS_AS(dial_with({"ws://h:1/", "--size", "1K"}), CLI::ValidationError);
  CHECK_THROWS_AS(dial_with({"ws://h:1/", "--count", "5", "--size", "17MiB"}), CLI::ValidationError);
}
