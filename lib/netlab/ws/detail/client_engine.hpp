#pragma once
/// The websocketpp glue of ws-echo dial: the only part that is a template over the websocketpp client
/// type. It configures an endpoint, forwards each connection's handlers to the non-template logic in
/// client_session.hpp (exchange, load connections, failure mapping) and implements `wire` for it.
/// Included by client_plain.cpp (ws://) and client_tls.cpp (wss://) only.
#include <algorithm>
#include <memory>
#include <unordered_map>

#include "netlab/core/log.hpp"
#include "netlab/ws/client.hpp"
#include "netlab/ws/client_session.hpp"
#include "netlab/ws/detail/wspp.hpp"

namespace netlab::ws::detail {

/// "HOST:PORT" ("[::1]:PORT") of an Asio endpoint, or empty.
template <class Endpoint>
std::string address_of(const Endpoint& e) {
  const auto a = e.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(e.port());
}

/// `wire` over one websocketpp connection.
template <class Client>
class con_wire final : public wire {
 public:
  using con_ptr = typename Client::connection_ptr;
  explicit con_wire(con_ptr c) : con_(std::move(c)) {}

  std::error_code send(const void* data, std::size_t n, bool binary) override {
    return con_->send(data, n, binary ? websocketpp::frame::opcode::binary : websocketpp::frame::opcode::text);
  }
  std::error_code ping(const std::string& data) override {
    std::error_code ec;
    con_->ping(data, ec);
    return ec;
  }
  std::error_code close(int code, const std::string& reason) override {
    std::error_code ec;
    con_->close(static_cast<websocketpp::close::status::value>(code), reason, ec);
    return ec;
  }
  void terminate() override {
    std::error_code ec;
    con_->terminate(ec);
  }
  std::size_t buffered() const override { return con_->get_buffered_amount(); }
  std::string subprotocol() const override { return con_->get_subprotocol(); }
  std::string handshake_head(bool request) const override {
    return request ? con_->get_request().raw() : con_->get_response().raw();
  }
  std::string local_address() const override {
    asio::error_code ec;
    const auto e = con_->get_raw_socket().local_endpoint(ec);
    return ec ? std::string() : address_of(e);
  }
  std::string peer_address() const override {
    asio::error_code ec;
    const auto e = con_->get_raw_socket().remote_endpoint(ec);
    return ec ? std::string() : address_of(e);
  }

  const con_ptr& con() const { return con_; }

 private:
  con_ptr con_;
};

/// Applies -H, --origin, --subprotocol, --connect-timeout to a new connection.
template <class Con>
void prepare(const Con& con, const dial_options& opt) {
  for (const auto& [name, value] : opt.headers) con->replace_header(name, value);
  if (!opt.origin.empty()) con->replace_header("Origin", opt.origin);
  for (const auto& p : opt.subprotocols) {
    std::error_code ec;
    con->add_subprotocol(p, ec);
  }
  if (opt.connect_timeout.count() > 0) con->set_open_handshake_timeout(static_cast<long>(opt.connect_timeout.count()));
  con->set_close_handshake_timeout(2000);
}

template <class Client, bool Tls>
void init_client(Client& c, const dial_options& opt, asio::io_context& ioc, std::shared_ptr<std::string> verify_error = {}) {
  c.clear_access_channels(websocketpp::log::alevel::all);
  // The failure is reported once, as netlab's one-line error; websocketpp's own account only at -v.
  c.clear_error_channels(websocketpp::log::elevel::all);
  if (core::log().should_log(spdlog::level::debug))
    c.set_error_channels(websocketpp::log::elevel::warn | websocketpp::log::elevel::rerror | websocketpp::log::elevel::fatal);
  // -vv: websocketpp's connect/disconnect lines; the frames and the handshake are traced decoded by
  // the session (trace.hpp), not as websocketpp's raw "Header Bytes" dumps (frame_header channel).
  if (core::log().should_log(spdlog::level::trace))
    c.set_access_channels(websocketpp::log::alevel::connect | websocketpp::log::alevel::disconnect);
  c.init_asio(&ioc);
  c.set_tcp_pre_init_handler([&c](websocketpp::connection_hdl h) {
    std::error_code ec;
    auto con = c.get_con_from_hdl(h, ec);
    if (!ec && con) {
      asio::error_code e;
      con->get_raw_socket().set_option(asio::ip::tcp::no_delay(true), e);
    }
  });
  if constexpr (Tls) {
    auto ctx = make_client_tls(opt, std::move(verify_error));
    c.set_tls_init_handler([ctx](websocketpp::connection_hdl) { return ctx; });
  }
}

/// Routes an endpoint's handlers to the wire_events that `find(hdl)` returns (nullptr: ignored).
template <class Client, class Find>
void forward_handlers(Client& c, Find find) {
  using msg_ptr = typename Client::message_ptr;
  c.set_open_handler([find](websocketpp::connection_hdl h) {
    if (auto* ev = find(h)) ev->on_open();
  });
  c.set_fail_handler([&c, find](websocketpp::connection_hdl h) {
    auto* ev = find(h);
    if (!ev) return;
    std::error_code e;
    auto con = c.get_con_from_hdl(h, e);
    failure_facts f;
    if (con) {
      f.http_status = static_cast<int>(con->get_response_code());
      f.http_reason = con->get_response_msg();
      f.ec = con->get_ec();
      f.transport_ec = con->get_transport_ec();
    }
    ev->on_fail(f);
  });
  c.set_message_handler([find](websocketpp::connection_hdl h, msg_ptr m) {
    if (auto* ev = find(h)) ev->on_message(m->get_opcode() == websocketpp::frame::opcode::binary, m->get_payload());
  });
  c.set_ping_handler([find](websocketpp::connection_hdl h, std::string data) {
    if (auto* ev = find(h)) ev->on_ping(data);
    return true;  // answer with a pong
  });
  c.set_pong_handler([find](websocketpp::connection_hdl h, std::string data) {
    if (auto* ev = find(h)) ev->on_pong(data);
  });
  c.set_close_handler([&c, find](websocketpp::connection_hdl h) {
    auto* ev = find(h);
    if (!ev) return;
    std::error_code e;
    auto con = c.get_con_from_hdl(h, e);
    close_facts f;
    if (con) {
      f.remote_code = con->get_remote_close_code();
      f.remote_reason = con->get_remote_close_reason();
      f.local_code = con->get_local_close_code();
      f.max_message = con->get_max_message_size();
    }
    ev->on_close(f);
  });
}

/// The exchange: one endpoint, one connection, events to an exchange_session.
template <class Client, bool Tls>
core::outcome run_exchange(const dial_options& opt, core::runtime& rt, core::reporter& out) {
  // Destroyed in reverse: the wire, the session (joins the stdin reader, cancels its timers), then
  // the endpoint. Handlers still queued in the io_context hold only weak references.
  Client c;
  auto s = std::make_shared<exchange_session>(opt, rt, out);
  init_client<Client, Tls>(c, opt, rt.ioc(), s->verify_error());
  c.set_max_message_size(static_cast<std::size_t>(opt.max_message));  // inflated size too (wspp.hpp)
  std::weak_ptr<exchange_session> weak = s;
  // Before get_connection(): a connection copies the endpoint's handlers when it is created.
  forward_handlers(c, [weak](websocketpp::connection_hdl) -> wire_events* { return weak.lock().get(); });
  std::error_code ec;
  auto con = c.get_connection(opt.target.str(), ec);
  if (ec) return core::outcome::fail(exit_code::usage, "URL " + opt.target.str() + ": " + ec.message(), "check the URL");
  prepare(con, opt);
  con_wire<Client> w(con);
  s->start(w);
  c.connect(con);
  rt.run();
  return s->result();
}

/// One load worker's websocketpp endpoint: connections by websocketpp connection.
template <class Client, bool Tls>
class wspp_connector final : public load_connector {
 public:
  wspp_connector(asio::io_context& ioc, const dial_options& opt) : opt_(opt) {
    init_client<Client, Tls>(c_, opt, ioc);
    c_.set_max_message_size(opt.load->size + 1024);
    forward_handlers(c_, [this](websocketpp::connection_hdl h) -> wire_events* {
      auto sp = h.lock();
      if (!sp) return nullptr;
      auto it = by_con_.find(sp.get());
      return it == by_con_.end() ? nullptr : it->second;
    });
  }

  std::unique_ptr<wire> connect(wire_events& ev, std::error_code& ec) override {
    auto con = c_.get_connection(opt_.target.str(), ec);
    if (ec) return nullptr;
    prepare(con, opt_);
    // Thousands of upgrades queue behind each other: each gets at least 10 s.
    con->set_open_handshake_timeout(static_cast<long>(std::max<std::int64_t>(opt_.connect_timeout.count(), 10000)));
    by_con_.emplace(con.get(), &ev);
    c_.connect(con);
    return std::make_unique<con_wire<Client>>(con);
  }

 private:
  const dial_options& opt_;
  Client c_;
  std::unordered_map<const void*, wire_events*> by_con_;
};

/// Runs the exchange or the load mode with client type `Client`.
template <class Client, bool Tls>
core::outcome run_dial(const dial_options& opt, core::runtime& rt, core::reporter& out) {
  if (!opt.load) return run_exchange<Client, Tls>(opt, rt, out);
  // websocketpp's _htonll (every frame header) initialises a function-local static on its first
  // call, unsynchronised: make that first call here, before the workers' threads exist
  // (ThreadSanitizer reported two threads' first frames racing on it).
  [[maybe_unused]] volatile auto warm = websocketpp::lib::net::_htonll(1);
  return run_load(opt, rt, out, [](asio::io_context& ioc, const dial_options& o) -> std::unique_ptr<load_connector> {
    return std::make_unique<wspp_connector<Client, Tls>>(ioc, o);
  });
}

}  // namespace netlab::ws::detail
