// ws-echo serve: websocketpp joined to netlab's io_context (websocketpp examples/external_io_service).
#include "netlab/ws/echo_server.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <mutex>

#include "netlab/core/log.hpp"
#include "netlab/core/net.hpp"
#include "netlab/ws/detail/wspp.hpp"

namespace netlab::ws {
namespace {

using server_t = detail::plain_server;
using hdl_t = websocketpp::connection_hdl;

struct conn_stats {
  std::string peer;
  std::string origin;
  std::chrono::steady_clock::time_point opened = std::chrono::steady_clock::now();
  std::uint64_t msgs_in = 0, bytes_in = 0, msgs_out = 0, bytes_out = 0;
};

class echo_server {
public:
  echo_server(const serve_options& opt, core::runtime& rt, core::reporter& out) : opt_(opt), rt_(rt), out_(out) {}

  core::outcome start() {
    srv_.clear_access_channels(websocketpp::log::alevel::all);
    srv_.clear_error_channels(websocketpp::log::elevel::all);
    srv_.set_error_channels(websocketpp::log::elevel::warn | websocketpp::log::elevel::rerror |
                            websocketpp::log::elevel::fatal);
    std::error_code ec;
    srv_.init_asio(&rt_.ioc(), ec);
    if (ec) return core::outcome::fail(ec, "init", "");
    srv_.set_reuse_addr(true);
    srv_.set_max_message_size(static_cast<std::size_t>(opt_.max_message));
    // websocketpp never sets TCP_NODELAY; the socket is open only from tcp_pre_init on (NOTES.md).
    srv_.set_tcp_pre_init_handler([this](hdl_t h) {
      std::error_code e;
      auto con = srv_.get_con_from_hdl(h, e);
      if (!e) core::set_nodelay(con->get_raw_socket());
    });
    srv_.set_validate_handler([this](hdl_t h) {
      auto con = srv_.get_con_from_hdl(h);
      if (con->get_resource() != opt_.path && con->get_uri()->get_resource() != opt_.path) {
        auto res = con->get_uri()->get_resource();
        if (res.compare(0, opt_.path.size(), opt_.path) != 0 ||
            (res.size() > opt_.path.size() && res[opt_.path.size()] != '?')) {
          con->set_status(websocketpp::http::status_code::not_found);
          return false;
        }
      }
      return true;
    });
    srv_.set_http_handler([this](hdl_t h) {
      auto con = srv_.get_con_from_hdl(h);
      con->set_status(websocketpp::http::status_code::not_found);
      con->set_body("not found\n");
    });
    srv_.set_open_handler([this](hdl_t h) { on_open(h); });
    srv_.set_close_handler([this](hdl_t h) { on_close(h); });
    srv_.set_fail_handler([this](hdl_t h) {
      auto con = srv_.get_con_from_hdl(h);
      core::log().info("ws handshake from {} failed: {}", peer_of(con), con->get_ec().message());
    });
    srv_.set_message_handler([this](hdl_t h, server_t::message_ptr msg) { on_message(h, msg); });

    std::vector<asio::ip::tcp::endpoint> eps;
    if (opt_.listen.host.empty()) {
      eps.emplace_back(asio::ip::tcp::v6(), opt_.listen.port);
    } else {
      eps = core::resolve_tcp(opt_.listen, true, ec);
      if (ec || eps.empty()) return core::outcome::fail(ec, "resolve " + opt_.listen.to_string(), core::hint_for(ec));
    }
    srv_.listen(eps.front(), ec);
    if (ec) return core::outcome::fail(ec, "listen on " + opt_.listen.to_string(), core::hint_for(ec));
    auto local = srv_.get_local_endpoint(ec);
    srv_.start_accept(ec);
    if (ec) return core::outcome::fail(ec, "accept", "");
    auto addr = opt_.listen.host.empty() ? std::string("::") : core::address_string(local.address());
    core::log().info("ws-echo serve on {} path {} ({} thread(s))", core::to_string(local), opt_.path, opt_.threads);
    out_.listening("ws", addr, local.port());
    return core::outcome::success();
  }

  void stop() {
    asio::post(rt_.ioc(), [this] {
      std::error_code ec;
      srv_.stop_listening(ec);
      std::lock_guard<std::mutex> lk(mu_);
      for (auto& [h, st] : conns_) {
        srv_.close(h, websocketpp::close::status::going_away, "server shutting down", ec);
      }
      rt_.release();
    });
  }

private:
  template <typename Con>
  static std::string peer_of(const Con& con) {
    std::error_code ec;
    auto ep = con->get_raw_socket().remote_endpoint(ec);
    return ec ? std::string("?") : core::to_string(ep);
  }

  void on_open(hdl_t h) {
    auto con = srv_.get_con_from_hdl(h);
    conn_stats st;
    st.peer = peer_of(con);
    st.origin = con->get_request_header("Origin");
    core::log().info("ws open {} origin '{}' resource {}", st.peer, st.origin, con->get_resource());
    std::lock_guard<std::mutex> lk(mu_);
    conns_.emplace(h, std::move(st));
  }

  void on_close(hdl_t h) {
    auto con = srv_.get_con_from_hdl(h);
    conn_stats st;
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto it = conns_.find(h);
      if (it == conns_.end()) return;
      st = std::move(it->second);
      conns_.erase(it);
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - st.opened);
    core::log().info("ws close {} code {} '{}' (remote {} '{}'): in {} msgs/{} B, out {} msgs/{} B, {}", st.peer,
                     con->get_local_close_code(), con->get_local_close_reason(), con->get_remote_close_code(),
                     con->get_remote_close_reason(), st.msgs_in, st.bytes_in, st.msgs_out, st.bytes_out,
                     core::format_duration(ms));
  }

  void on_message(hdl_t h, server_t::message_ptr msg) {
    const auto n = msg->get_payload().size();
    if (core::log().should_log(spdlog::level::debug))
      core::log().debug("ws message {} B opcode {}", n, static_cast<int>(msg->get_opcode()));
    std::error_code ec;
    srv_.send(h, msg, ec);  // runs on the connection's strand (config::asio is multi-thread safe)
    std::lock_guard<std::mutex> lk(mu_);
    auto it = conns_.find(h);
    if (it == conns_.end()) return;
    ++it->second.msgs_in;
    it->second.bytes_in += n;
    if (!ec) {
      ++it->second.msgs_out;
      it->second.bytes_out += n;
    }
  }

  serve_options opt_;
  core::runtime& rt_;
  core::reporter& out_;
  server_t srv_;
  std::mutex mu_;
  std::map<hdl_t, conn_stats, std::owner_less<hdl_t>> conns_;
};

}  // namespace

core::outcome serve(const serve_options& opt, core::runtime& rt, core::reporter& out) {
  auto srv = std::make_shared<echo_server>(opt, rt, out);
  auto started = srv->start();
  if (!started.ok()) return started;
  auto signals = std::make_shared<int>(0);
  rt.on_signal([srv, signals, &rt](int signo) {
    if ((*signals)++ == 0) {
      core::log().info("signal {}: closing every connection with 1001", signo);
      srv->stop();
    } else {
      rt.stop();
    }
  });
  rt.run();
  return core::outcome::success();
}

}  // namespace netlab::ws
