// ws-echo dial's session logic driven without websocketpp or a socket: a fake `wire` records what the
// session asks of the connection, the test plays the connection's events (client_session.hpp).
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include <asio/error.hpp>

#include "netlab/ws/client_session.hpp"

using namespace netlab;
using ws::detail::close_facts;
using ws::detail::exchange_session;
using ws::detail::failure_facts;

namespace {

struct fake_wire final : ws::detail::wire {
  std::vector<std::pair<std::string, bool>> sent;
  std::vector<std::string> pings;
  int close_code = 0;
  std::string close_reason;
  std::error_code send(const void* d, std::size_t n, bool binary) override {
    sent.emplace_back(std::string(static_cast<const char*>(d), n), binary);
    return {};
  }
  std::error_code ping(const std::string& d) override {
    pings.push_back(d);
    return {};
  }
  std::error_code close(int code, const std::string& reason) override {
    close_code = code;
    close_reason = reason;
    return {};
  }
  void terminate() override {}
  std::size_t buffered() const override { return 0; }
  std::string subprotocol() const override { return {}; }
  std::string handshake_head(bool request) const override { return request ? "GET / HTTP/1.1\r\n\r\n" : "HTTP/1.1 101 x\r\n\r\n"; }
  std::string local_address() const override { return "127.0.0.1:5000"; }
  std::string peer_address() const override { return "127.0.0.1:8899"; }
};

/// Everything a reporter wrote to its FILE*.
std::string contents(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string s;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  return s;
}

ws::dial_options options() {
  ws::dial_options o;
  o.target = *ws::parse_url("ws://127.0.0.1:8899/echo");
  o.connect_timeout = std::chrono::milliseconds(0);
  o.timeout = std::chrono::milliseconds(0);
  return o;
}

}  // namespace

TEST_CASE("ws dial session: messages out, replies printed, close 1000 once all are in", "[ws][ws_client]") {
  core::runtime rt(1);
  std::FILE* f = std::tmpfile();
  REQUIRE(f);
  {
    core::reporter out(f, false);
    auto o = options();
    o.messages = {{"one", false}, {"\x01\xff", true}};
    auto s = std::make_shared<exchange_session>(o, rt, out);
    fake_wire w;
    s->start(w);
    s->on_open();
    REQUIRE(w.sent.size() == 2);
    CHECK(w.sent[0] == std::make_pair(std::string("one"), false));
    CHECK(w.sent[1] == std::make_pair(std::string("\x01\xff"), true));
    s->on_message(false, "one");
    CHECK(w.close_code == 0);  // a reply still owed
    s->on_message(true, "\x01\xff");
    CHECK(w.close_code == 1000);
    close_facts c;
    c.remote_code = 1000;
    s->on_close(c);
    CHECK(s->result().ok());
  }
  CHECK(contents(f) == "one\n01ff\n");
  std::fclose(f);
}

TEST_CASE("ws dial session: --json events and a server's error close", "[ws][ws_client]") {
  core::runtime rt(1);
  std::FILE* f = std::tmpfile();
  REQUIRE(f);
  {
    core::reporter out(f, true);
    auto o = options();
    o.messages = {{"x", false}, {"y", false}};
    auto s = std::make_shared<exchange_session>(o, rt, out);
    fake_wire w;
    s->start(w);
    s->on_open();
    s->on_message(true, std::string("\x00\xff", 2));  // one reply of two: the server closes before the second
    close_facts c;
    c.remote_code = 1011;
    c.remote_reason = "boom";
    s->on_close(c);
    CHECK(s->result().code == exit_code::protocol);
    CHECK(s->result().what.find("1011") != std::string::npos);
    CHECK(s->result().what.find("boom") != std::string::npos);
  }
  const auto text = contents(f);
  CHECK(text.find(R"("event":"connected")") != std::string::npos);
  CHECK(text.find(R"("base64":"AP8=")") != std::string::npos);
  CHECK(text.find(R"("by":"peer")") != std::string::npos);
  CHECK(text.find(R"("code":1011)") != std::string::npos);
  CHECK(text.find(R"("reason":"boom")") != std::string::npos);
  std::fclose(f);
}

TEST_CASE("ws dial session: a text message that is not UTF-8 is a usage error", "[ws][ws_client]") {
  core::runtime rt(1);
  std::FILE* f = std::tmpfile();
  REQUIRE(f);
  {
    core::reporter out(f, false);
    auto o = options();
    o.messages = {{"\xff", false}};
    auto s = std::make_shared<exchange_session>(o, rt, out);
    fake_wire w;
    s->start(w);
    s->on_open();
    CHECK(w.sent.empty());
    CHECK(s->result().code == exit_code::usage);
    CHECK(s->result().hint.find("--binary") != std::string::npos);
  }
  std::fclose(f);
}

TEST_CASE("ws dial failures map by category and code", "[ws][ws_client]") {
  const auto o = options();
  failure_facts f;
  f.http_status = 404;
  f.http_reason = "Not Found";
  auto r = ws::detail::describe_failure(f, o);
  CHECK(r.code == exit_code::protocol);
  CHECK(r.what.find("HTTP 404 Not Found") != std::string::npos);

  failure_facts refused;
  refused.transport_ec = asio::error::make_error_code(asio::error::connection_refused);
  CHECK(ws::detail::describe_failure(refused, o).code == exit_code::network);

  failure_facts cert;
  cert.tls_verify_error = "self-signed certificate";
  r = ws::detail::describe_failure(cert, o);
  CHECK(r.code == exit_code::protocol);
  CHECK(r.what.find("certificate verify failed (self-signed certificate)") != std::string::npos);
  CHECK(r.hint.find("--cacert") != std::string::npos);

  CHECK(ws::detail::close_text(1011, "boom") == "1011 Internal endpoint error (boom)");
  CHECK(ws::detail::close_text(1000, "") == "1000 Normal close");
}
