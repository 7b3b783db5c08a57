// ws-echo serve's policy without websocketpp (detail::server_core, issue 14): upgrade verdicts,
// limits, the HTTP answers, and the NDJSON events of a connection's life.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "netlab/core/report.hpp"
#include "netlab/core/runtime.hpp"
#include "netlab/ws/server_core.hpp"

namespace ws = netlab::ws;
using ws::detail::close_info;
using ws::detail::server_core;
using ws::detail::upgrade_verdict;

namespace {

// The NDJSON lines a reporter wrote to f.
std::vector<nlohmann::json> lines_of(std::FILE* f) {
  std::vector<nlohmann::json> out;
  std::rewind(f);
  char buf[4096];
  while (std::fgets(buf, sizeof buf, f)) out.push_back(nlohmann::json::parse(buf));
  return out;
}

}  // namespace

TEST_CASE("ws server policy: path, origin, stopping and --max-connections verdicts", "[ws][server]") {
  netlab::core::runtime rt(1);
  netlab::core::reporter out(stdout, false);
  ws::serve_options opt;
  opt.allow_origins = {"http://ok.example"};
  opt.max_connections = 1;
  server_core core(opt, rt, out);
  bool counted = false;
  CHECK(core.validate("/nope", "", counted) == upgrade_verdict::not_found);
  CHECK(core.validate("/echox", "", counted) == upgrade_verdict::not_found);
  CHECK(core.validate("/echo", "http://evil.example", counted) == upgrade_verdict::forbidden);
  CHECK_FALSE(counted);
  CHECK(core.validate("/echo?room=1", "HTTP://OK.EXAMPLE", counted) == upgrade_verdict::accept);
  CHECK(counted);
  bool second = false;
  CHECK(core.validate("/echo", "", second) == upgrade_verdict::full);  // no Origin: a non-browser client
  core.release_slot(counted);
  CHECK_FALSE(counted);
  CHECK(core.validate("/echo", "", second) == upgrade_verdict::accept);
  core.set_stopping();
  bool third = false;
  CHECK(core.validate("/echo", "", third) == upgrade_verdict::stopping);
}

TEST_CASE("ws server policy: --max-handshakes places are taken and given back", "[ws][server]") {
  netlab::core::runtime rt(1);
  netlab::core::reporter out(stdout, false);
  ws::serve_options opt;
  opt.max_handshakes = 2;
  server_core core(opt, rt, out);
  ws::detail::handshake_slot a, b, c;
  CHECK(core.take_handshake(a));
  CHECK(core.take_handshake(b));
  CHECK_FALSE(core.take_handshake(c));
  core.release_handshake(a);
  CHECK(core.take_handshake(c));
  {
    ws::detail::handshake_slot gone;  // a connection destroyed while holding one gives it back
    core.release_handshake(c);
    CHECK(core.take_handshake(gone));
  }
  CHECK(core.take_handshake(a));
}

TEST_CASE("ws server policy: the HTTP answers (page, icon, 426, 404)", "[ws][server]") {
  netlab::core::runtime rt(1);
  netlab::core::reporter out(stdout, false);
  ws::serve_options opt;
  server_core core(opt, rt, out);
  auto page = core.answer_http("/");
  CHECK(page.status == 200);
  CHECK(page.body.find("new WebSocket(") != std::string::npos);
  auto icon = core.answer_http("/favicon.ico");
  CHECK(icon.status == 200);
  CHECK(icon.body.rfind("<svg ", 0) == 0);
  CHECK(icon.headers.at(0) == std::make_pair(std::string("Content-Type"), std::string("image/svg+xml")));
  CHECK(core.answer_http("/echo").status == 426);
  CHECK(core.answer_http("/other").status == 404);
  opt.page = false;
  server_core bare(opt, rt, out);
  CHECK(bare.answer_http("/").status == 404);
  CHECK(bare.answer_http("/favicon.ico").status == 404);
}

TEST_CASE("ws server events: connection and closed, with who closed and the code", "[ws][server][json]") {
  netlab::core::runtime rt(1);
  std::FILE* f = std::tmpfile();
  REQUIRE(f);
  {
    netlab::core::reporter out(f, true);
    server_core core(ws::serve_options{}, rt, out);
    core.log_open(1, "127.0.0.1:5000", "", "/echo", "");
    close_info by_peer;  // the peer closed with 1000, websocketpp echoed it
    by_peer.id = 1;
    by_peer.peer = "127.0.0.1:5000";
    by_peer.local_code = by_peer.remote_code = 1000;
    by_peer.local_reason = by_peer.remote_reason = "done";
    by_peer.bytes_in = 5;
    by_peer.bytes_out = 7;
    by_peer.duration = std::chrono::milliseconds(1500);
    core.log_close(by_peer);
    close_info idle;  // netlab closed first (idle timeout), the peer answered
    idle.id = 2;
    idle.sent_code = idle.local_code = idle.remote_code = 1001;
    idle.sent_reason = idle.local_reason = "idle timeout";
    idle.closed_by_server = true;
    core.log_close(idle);
    close_info protocol;  // websocketpp closed with 1002, no answer
    protocol.id = 3;
    protocol.local_code = 1002;
    protocol.local_reason = "Clients may not send unmasked frames";
    protocol.remote_code = 1006;
    core.log_close(protocol);
    close_info lost;  // no close frame either way
    lost.id = 4;
    lost.local_code = lost.remote_code = 1006;
    lost.local_reason = "Connection reset by peer";
    core.log_close(lost);
  }
  const auto ev = lines_of(f);
  std::fclose(f);
  REQUIRE(ev.size() == 5);
  CHECK(ev[0] == nlohmann::json({{"event", "connection"}, {"proto", "ws"}, {"id", 1}, {"peer", "127.0.0.1:5000"}}));
  CHECK(ev[1]["event"] == "closed");
  CHECK(ev[1]["proto"] == "ws");
  CHECK(ev[1]["peer"] == "127.0.0.1:5000");
  CHECK(ev[1]["code"] == 1000);
  CHECK(ev[1]["reason"] == "done");
  CHECK(ev[1]["by"] == "peer");
  CHECK(ev[1]["bytes_in"] == 5);
  CHECK(ev[1]["bytes_out"] == 7);
  CHECK(ev[1]["seconds"] == 1.5);
  CHECK((ev[2]["id"] == 2 && ev[2]["code"] == 1001 && ev[2]["reason"] == "idle timeout" && ev[2]["by"] == "local"));
  CHECK((ev[3]["id"] == 3 && ev[3]["code"] == 1002 && ev[3]["by"] == "local"));
  CHECK((ev[4]["id"] == 4 && ev[4]["code"] == 1006 && ev[4]["by"] == "peer"));
  CHECK(ev[4]["reason"] == "connection lost: Connection reset by peer");
}

TEST_CASE("ws server events: none in text mode (stdout keeps to the readiness line)", "[ws][server]") {
  netlab::core::runtime rt(1);
  std::FILE* f = std::tmpfile();
  REQUIRE(f);
  {
    netlab::core::reporter out(f, false);
    server_core core(ws::serve_options{}, rt, out);
    core.log_open(1, "127.0.0.1:5000", "", "/echo", "");
    core.log_close(close_info{});
  }
  CHECK(std::ftell(f) == 0);
  std::fclose(f);
}
