#pragma once
/// The ws-echo dial engine, one template over the websocketpp client type: the interactive exchange
/// and the load mode's adapter for the one load driver (core/load_driver.hpp). Included by client.cpp (ws://) and client_tls.cpp (wss://) only.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unistd.h>

#include <asio/dispatch.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>
#include <asio/ssl/host_name_verification.hpp>
#include <asio/steady_timer.hpp>

#include "netlab/core/fd_pump.hpp"
#include "netlab/core/load_driver.hpp"
#include "netlab/core/log.hpp"
#include "netlab/tcp/client.hpp"
#include "netlab/ws/client.hpp"
#include "netlab/ws/detail/wspp.hpp"

namespace netlab::ws::detail {

using ssl_context_ptr = std::shared_ptr<asio::ssl::context>;

/// The TLS context of a wss:// client: system CAs or --cacert, host name checked, or --insecure.
inline ssl_context_ptr make_client_tls(const dial_options& opt) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  std::error_code ec;
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1,
                   ec);
  if (opt.insecure) {
    ctx->set_verify_mode(asio::ssl::verify_none, ec);
    return ctx;
  }
  ctx->set_verify_mode(asio::ssl::verify_peer, ec);
  if (!opt.cacert.empty()) ctx->load_verify_file(opt.cacert, ec);
  else ctx->set_default_verify_paths(ec);
  ctx->set_verify_callback(asio::ssl::host_name_verification(opt.target.host), ec);
  return ctx;
}

/// One websocketpp or Asio error of a connection that failed before it opened, as netlab's class,
/// chosen by the error's category and code (never by its message text, which websocketpp and Asio
/// word differently from version to version).
inline core::outcome handshake_failure(std::error_code ec, const dial_options& opt) {
  namespace wserr = websocketpp::error;
  namespace werr = websocketpp::transport::error;
  const std::string where = opt.target.str();
  const std::string connect = "connect " + where;
  const char* not_ws = "is it a WebSocket server? (ws-echo serve listens on /echo)";
  const char* tls_hint = "to trust the server's certificate give --cacert FILE (or --insecure for a test server)";
  const char* slow_hint = "is the server up and answering? raise --connect-timeout if it is slow";
  const auto& cat = ec.category();
  if (cat == asio::error::get_netdb_category() || cat == asio::error::get_addrinfo_category())
    return core::outcome::fail(exit_code::network, "resolve " + opt.target.host + ": " + ec.message(),
                               "check the host name (it must resolve on this machine)");
  if (cat == asio::error::get_ssl_category() || cat == asio::ssl::error::get_stream_category())
    return core::outcome::fail(exit_code::protocol, "TLS handshake with " + where + ": " + ec.message(), tls_hint);
  if (cat == websocketpp::transport::asio::socket::get_socket_category()) {
    namespace serr = websocketpp::transport::asio::socket::error;
    if (ec.value() == serr::tls_handshake_timeout)
      return core::outcome::fail(exit_code::timeout, "TLS handshake with " + where + ": " + ec.message(), slow_hint);
    return core::outcome::fail(exit_code::protocol, "TLS handshake with " + where + ": " + ec.message(), tls_hint);
  }
  if (cat == wserr::get_category()) {
    switch (ec.value()) {
      case wserr::open_handshake_timeout:
        return core::outcome::fail(exit_code::timeout, connect + ": no WebSocket handshake answer within " +
                                                           core::format_duration(opt.connect_timeout), slow_hint);
      case wserr::invalid_uri:
      case wserr::invalid_port:
        return core::outcome::fail(exit_code::usage, "URL " + where + ": " + ec.message(), "check the URL");
      case wserr::http_connection_ended:
        return core::outcome::fail(exit_code::protocol,
                                   connect + ": the server closed the connection without answering the WebSocket handshake",
                                   not_ws);
      case wserr::general:  // the reply could not be parsed as an HTTP response
        return core::outcome::fail(exit_code::protocol,
                                   connect + ": the server did not answer the WebSocket handshake (its reply is not an "
                                             "HTTP upgrade response)",
                                   not_ws);
      default:
        return core::outcome::fail(exit_code::protocol,
                                   connect + ": the server did not answer the WebSocket handshake (" + ec.message() + ")",
                                   not_ws);
    }
  }
  if (cat == websocketpp::processor::error::get_processor_category())
    return core::outcome::fail(exit_code::protocol,
                               connect + ": the server did not answer the WebSocket handshake (" + ec.message() + ")",
                               not_ws);
  if (cat == werr::get_category()) {
    switch (ec.value()) {
      case werr::timeout: return core::outcome::fail(exit_code::timeout, connect + ": timed out", slow_hint);
      case werr::eof:
        return core::outcome::fail(exit_code::protocol,
                                   connect + ": the server closed the connection without answering the WebSocket handshake",
                                   not_ws);
      case werr::tls_short_read:
      case werr::tls_error:
        return core::outcome::fail(exit_code::protocol, "TLS with " + where + ": " + ec.message(), tls_hint);
      case werr::operation_aborted: return core::outcome::fail(exit_code::interrupted, connect + ": cancelled");
      default: return core::outcome::fail(exit_code::network, connect + ": " + ec.message());
    }
  }
  if (cat == websocketpp::transport::asio::error::get_category())
    return core::outcome::fail(exit_code::network, connect + ": " + ec.message(), "check the host, port and any proxy");
  ec = core::portable(ec);
  if (ec == asio::error::eof)
    return core::outcome::fail(exit_code::protocol,
                               connect + ": the server closed the connection without answering the WebSocket handshake",
                               not_ws);
  if (ec == std::errc::timed_out) return core::outcome::fail(exit_code::timeout, connect + ": " + ec.message(), slow_hint);
  return core::outcome::fail(ec, connect, core::hint_for(ec));
}

/// Why a connection attempt failed, as an outcome (HTTP status, resolve, refused, TLS, timeout,
/// not a WebSocket server): the HTTP status when there is one, else the transport's own error
/// (Asio's, kept by websocketpp) and then websocketpp's.
template <class Con>
core::outcome describe_failure(const Con& con, const dial_options& opt) {
  const std::string where = opt.target.str();
  const int status = static_cast<int>(con->get_response_code());
  if (status != 0) {
    std::string hint = "the server refused the upgrade";
    if (status == 404) hint = "check the URL's path, e.g. /echo";
    else if (status == 403) hint = "the server does not accept this Origin: see --origin";
    else if (status == 503) hint = "the server is full or stopping: try again later";
    else if (status == 426) hint = "the server wants another WebSocket version or a plain upgrade";
    return core::outcome::fail(exit_code::protocol,
                               "handshake rejected by " + where + ": HTTP " + std::to_string(status) + " " +
                                   con->get_response_msg(),
                               hint);
  }
  // websocketpp's own code says why it gave up; when that code only says "see the transport"
  // (pass_through, a TLS failure), the transport's code has the detail. The transport code alone
  // can mislead: after a failed resolve it holds the EBADF of shutting down a never-opened socket.
  const std::error_code ec = con->get_ec();
  const std::error_code tec = con->get_transport_ec();
  auto defers = [](std::error_code e) {
    namespace terr = websocketpp::transport::error;
    namespace serr = websocketpp::transport::asio::socket::error;
    const auto& c = e.category();
    if (c == websocketpp::transport::asio::error::get_category())
      return e.value() == websocketpp::transport::asio::error::pass_through;
    if (c == websocketpp::transport::asio::socket::get_socket_category())
      return e.value() == serr::pass_through || e.value() == serr::tls_handshake_failed || e.value() == serr::security;
    if (c == terr::get_category()) return e.value() == terr::pass_through || e.value() == terr::tls_error;
    return false;
  };
  if (ec && !(tec && defers(ec))) return handshake_failure(ec, opt);
  if (tec) return handshake_failure(tec, opt);
  if (ec) return handshake_failure(ec, opt);
  return core::outcome::fail(exit_code::network, "connect " + where + ": the connection failed", "run with -v for details");
}

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
void init_client(Client& c, const dial_options& opt, asio::io_context& ioc) {
  c.clear_access_channels(websocketpp::log::alevel::all);
  // The failure is reported once, as netlab's one-line error; websocketpp's own account only at -v.
  c.clear_error_channels(websocketpp::log::elevel::all);
  if (core::log().should_log(spdlog::level::debug))
    c.set_error_channels(websocketpp::log::elevel::warn | websocketpp::log::elevel::rerror | websocketpp::log::elevel::fatal);
  if (core::log().should_log(spdlog::level::trace))
    c.set_access_channels(websocketpp::log::alevel::connect | websocketpp::log::alevel::disconnect |
                          websocketpp::log::alevel::frame_header);
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
    auto ctx = make_client_tls(opt);
    c.set_tls_init_handler([ctx](websocketpp::connection_hdl) { return ctx; });
  }
}

/// The exchange: connect, send, print replies, close with 1000.
template <class Client, bool Tls>
class exchange : public std::enable_shared_from_this<exchange<Client, Tls>> {
  using con_ptr = typename Client::connection_ptr;
  using msg_ptr = typename Client::message_ptr;

 public:
  exchange(const dial_options& opt, core::runtime& rt, core::reporter& out)
      : opt_(opt), rt_(rt), out_(out), timer_(rt.ioc()), close_timer_(rt.ioc()) {}

  core::outcome start() {
    init_client<Client, Tls>(c_, opt_, rt_.ioc());
    c_.set_max_message_size(static_cast<std::size_t>(opt_.max_message));  // inflated size too (wspp.hpp)
    auto weak = this->weak_from_this();
    c_.set_open_handler([weak](websocketpp::connection_hdl) {
      if (auto self = weak.lock()) self->on_open();
    });
    c_.set_fail_handler([weak](websocketpp::connection_hdl) {
      if (auto self = weak.lock()) self->on_fail();
    });
    c_.set_message_handler([weak](websocketpp::connection_hdl, msg_ptr m) {
      if (auto self = weak.lock()) self->on_message(m);
    });
    c_.set_close_handler([weak](websocketpp::connection_hdl) {
      if (auto self = weak.lock()) self->on_close();
    });
    std::error_code ec;
    con_ = c_.get_connection(opt_.target.str(), ec);
    if (ec) return core::outcome::fail(exit_code::usage, "URL " + opt_.target.str() + ": " + ec.message(), "check the URL");
    prepare(con_, opt_);
    rt_.on_signal([weak](int) {
      auto self = weak.lock();
      if (!self) return;
      asio::post(self->rt_.ioc(), [weak] {
        auto self = weak.lock();
        if (!self) return;
        self->finish(core::outcome::fail(exit_code::interrupted, "interrupted"));
      });
    });
    if (opt_.connect_timeout.count() > 0) {
      timer_.expires_after(opt_.connect_timeout);
      timer_.async_wait([weak](std::error_code e) {
      auto self = weak.lock();
      if (!self) return;
        if (e || self->open_ || self->done_) return;
        self->finish(core::outcome::fail(exit_code::timeout,
                                         "connect to " + self->opt_.target.str() + ": no WebSocket connection within " +
                                             core::format_duration(self->opt_.connect_timeout),
                                         "is the server up and answering? raise --connect-timeout if it is slow"));
      });
    }
    c_.connect(con_);
    core::log().debug("connecting to {}", opt_.target.str());
    return core::outcome::success();
  }

  const core::outcome& result() const { return result_; }

 private:
  void on_open() {
    if (done_) return;
    open_ = true;
    timer_.cancel();
    core::log().info("connected to {}{}", opt_.target.str(),
                     con_->get_subprotocol().empty() ? std::string() : " (subprotocol " + con_->get_subprotocol() + ")");
    const bool interactive = opt_.stdin_fd >= 0 && ::isatty(opt_.stdin_fd);
    if (opt_.timeout.count() > 0 && !interactive) {
      auto weak = this->weak_from_this();
      timer_.expires_after(opt_.timeout);
      timer_.async_wait([weak](std::error_code e) {
      auto self = weak.lock();
      if (!self) return;
        if (e || self->done_) return;
        self->finish(core::outcome::fail(exit_code::timeout,
                                         "no reply to " + std::to_string(self->sent_ - self->received_) + " of " +
                                             std::to_string(self->sent_) + " message(s) within " +
                                             core::format_duration(self->opt_.timeout),
                                         "is it an echo server? raise --timeout if it is slow"));
      });
    }
    for (const auto& m : opt_.messages) send(m.data, m.binary);
    if (opt_.stdin_fd >= 0) {
      start_stdin();
    } else {
      input_done_ = true;
      maybe_close();
    }
  }

  // stdin, one message per line, paced: the next chunk is read only when the lines already read
  // are sent and fewer than max_in_flight replies (and max_buffered unsent bytes) are owed, so a
  // fast producer (`yes |`) costs one chunk of memory, not all it can write. The reader thread is
  // joined in finish() and the destructor, before the io_context can go.
  static constexpr std::uint64_t max_in_flight = 256;
  static constexpr std::size_t max_buffered = 1024 * 1024;
  static constexpr std::size_t max_line = 16 * 1024 * 1024;  ///< a longer line ends the run (exit 6)

  void start_stdin() {
    auto weak = this->weak_from_this();
    pump_ = std::make_unique<core::fd_pump>(opt_.stdin_fd, rt_.ioc().get_executor(),
                                            [weak](std::string d, bool eof, std::error_code ec) {
                                              if (auto self = weak.lock()) self->on_input(std::move(d), eof, ec);
                                            });
    reading_ = true;
    pump_->next();
  }

  void on_input(std::string data, bool eof, std::error_code ec) {
    reading_ = false;
    if (done_) return;
    if (ec) return finish(core::outcome::fail(exit_code::local_io, "read stdin: " + ec.message()));
    if (eof) stdin_eof_ = true;
    else pending_.append(data);
    send_lines();
  }

  bool can_send_more() const {
    return sent_ - received_ < max_in_flight && con_->get_buffered_amount() < max_buffered;
  }

  // Sends the complete lines read so far while the budget allows; asks for more input when they are
  // all out; on end of input, sends the rest as the last message.
  void send_lines() {
    if (!pump_ || input_done_ || reading_ || done_ || closing_) return;
    std::size_t nl;
    while (can_send_more() && (nl = pending_.find('\n', pos_)) != std::string::npos) {
      std::string line = pending_.substr(pos_, nl - pos_);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      pos_ = nl + 1;
      send(line, opt_.stdin_binary);
      if (done_) return;
    }
    if (pending_.find('\n', pos_) != std::string::npos) return;  // over budget: on_message resumes
    pending_.erase(0, pos_);
    pos_ = 0;
    if (pending_.size() > max_line)  // newline-free input (`< /dev/zero`) would grow without end
      return finish(core::outcome::fail(exit_code::local_io, "stdin: a line longer than 16 MiB",
                                        "stdin is sent one message per line; send large data with --file"));
    if (!stdin_eof_) {
      reading_ = true;
      return pump_->next();
    }
    if (!pending_.empty()) {
      if (!can_send_more()) return;
      send(pending_, opt_.stdin_binary);
      pending_.clear();
    }
    input_done_ = true;
    maybe_close();
  }

  void send(const std::string& data, bool binary) {
    if (done_ || closing_) return;
    const std::error_code ec = con_->send(data, binary ? websocketpp::frame::opcode::binary : websocketpp::frame::opcode::text);
    if (ec) return finish(core::outcome::fail(exit_code::network, "send: " + ec.message()));
    ++sent_;
    auto& log = core::log();
    if (log.should_log(spdlog::level::debug)) log.debug("sent {} {} B", binary ? "binary" : "text", data.size());
  }

  void on_message(const msg_ptr& m) {
    if (done_) return;
    ++received_;
    const auto& p = m->get_payload();
    const bool binary = m->get_opcode() == websocketpp::frame::opcode::binary;
    if (out_.json()) {
      nlohmann::json j{{"event", "message"}, {"type", binary ? "binary" : "text"}, {"size", p.size()}};
      j["data"] = binary ? hex(p) : p;
      out_.result(j, "");
    } else if (binary && opt_.raw) {
      out_.data(p.data(), p.size());
    } else if (binary) {
      const auto h = hex(p) + "\n";
      out_.data(h.data(), h.size());
    } else {
      out_.data(p.data(), p.size());
      if (p.empty() || p.back() != '\n') out_.data("\n", 1);
    }
    send_lines();
    maybe_close();
  }

  static std::string hex(const std::string& p) {
    static const char* d = "0123456789abcdef";
    std::string s;
    s.reserve(p.size() * 2);
    for (unsigned char c : p) {
      s += d[c >> 4];
      s += d[c & 15];
    }
    return s;
  }

  void maybe_close() {
    if (done_ || closing_ || !input_done_ || received_ < sent_) return;
    if (sent_ == 0 && !default_sent_ && opt_.messages.empty()) {
      // Nothing to send from any source: the classic lesson's message.
      default_sent_ = true;
      return send("hello Alvin", false);
    }
    closing_ = true;
    std::error_code ec;
    con_->close(websocketpp::close::status::normal, "", ec);
    if (ec) return finish(core::outcome::success());
    auto weak = this->weak_from_this();
    close_timer_.expires_after(std::chrono::seconds(3));
    close_timer_.async_wait([weak](std::error_code e) {
      auto self = weak.lock();
      if (!self) return;
      if (!e) self->finish(core::outcome::success());  // the server never answered our close: done anyway
    });
  }

  void on_fail() {
    if (done_) return;
    finish(describe_failure(con_, opt_));
  }

  void on_close() {
    if (done_) return;
    const auto code = con_->get_remote_close_code();
    const auto reason = con_->get_remote_close_reason();
    if (closing_) return finish(core::outcome::success());
    if (con_->get_local_close_code() == websocketpp::close::status::message_too_big)  // we closed it
      return finish(core::outcome::fail(exit_code::protocol,
                                        "a message from " + opt_.target.str() + " is over " +
                                            std::to_string(con_->get_max_message_size()) + " B" +
                                            (opt_.deflate ? " (inflated size)" : "") + ": closed with 1009",
                                        "raise --max-message if such messages are expected"));
    const std::string what = "the server closed the connection: " + std::to_string(code) + " " +
                             websocketpp::close::status::get_string(code) + (reason.empty() ? "" : " (" + reason + ")");
    if (code == websocketpp::close::status::normal || code == websocketpp::close::status::going_away) {
      if (received_ >= sent_) {  // nothing owed: a normal end, even if more input could have come
        core::log().info("{}", what);
        return finish(core::outcome::success());
      }
      return finish(core::outcome::fail(exit_code::protocol,
                                        what + " before replying to " + std::to_string(sent_ - received_) + " message(s)",
                                        "the server stopped or dropped this client"));
    }
    finish(core::outcome::fail(exit_code::protocol, what, "the server ended the session with an error code"));
  }

  void finish(core::outcome o) {
    if (done_) return;
    done_ = true;
    result_ = std::move(o);
    timer_.cancel();
    close_timer_.cancel();
    if (pump_) pump_->stop();  // joins the stdin reader: nothing is posted after this
    if (!result_.ok() && con_ && open_ && !closing_) {
      std::error_code ec;
      con_->close(result_.code == exit_code::interrupted ? websocketpp::close::status::going_away
                                                         : websocketpp::close::status::normal,
                  "", ec);
    }
    core::log().debug("done: {} sent, {} received", sent_, received_);
    rt_.stop();  // websocketpp's own timers (handshake, shutdown) must not keep the process waiting
  }

  dial_options opt_;
  core::runtime& rt_;
  core::reporter& out_;
  Client c_;
  con_ptr con_;
  asio::steady_timer timer_;
  asio::steady_timer close_timer_;
  core::outcome result_;
  std::unique_ptr<core::fd_pump> pump_;  ///< after c_ and the timers: destroyed (joined) before them
  std::string pending_;                  ///< stdin bytes read and not yet sent, from pos_
  std::size_t pos_ = 0;
  std::uint64_t sent_ = 0, received_ = 0;
  bool open_ = false, closing_ = false, done_ = false, input_done_ = false, default_sent_ = false;
  bool reading_ = false, stdin_eof_ = false;
};

/// Load mode: the WebSocket adapter of the one load driver (core/load_driver.hpp). Each worker
/// thread has its own websocketpp endpoint on its own io_context, so a connection's handlers run on
/// the thread that also runs the driver's side of it: no strands, no locks, no cross-thread close.
template <class Client, bool Tls>
class ws_load_adapter final : public core::load_adapter {
  using con_ptr = typename Client::connection_ptr;
  using msg_ptr = typename Client::message_ptr;

  class connection;

  /// One worker's endpoint, its connections by websocketpp connection, and how many of them have
  /// not yet had their last callback (fail or close).
  struct endpoint {
    explicit endpoint(asio::io_context& ioc) : grace(ioc) {}
    Client client;
    std::unordered_map<const void*, connection*> by_con;
    asio::steady_timer grace;
    unsigned live = 0;
    bool run_over = false;
  };

  class connection final : public core::load_connection {
   public:
    connection(core::load_worker& w, ws_load_adapter& a, endpoint& e) : w_(w), a_(a), e_(e) {}

    void connect() override {
      std::error_code ec;
      con_ = e_.client.get_connection(a_.opt_.target.str(), ec);
      if (ec)
        return w_.failed(*this, core::outcome::fail(exit_code::usage, "URL " + a_.opt_.target.str() + ": " + ec.message(),
                                                    "check the URL"));
      detail::prepare(con_, a_.opt_);
      // Thousands of upgrades queue behind each other: each gets at least 10 s.
      con_->set_open_handshake_timeout(static_cast<long>(std::max<std::int64_t>(a_.opt_.connect_timeout.count(), 10000)));
      e_.by_con.emplace(con_.get(), this);
      ++e_.live;
      e_.client.connect(con_);
    }

    void send(std::uint64_t from, std::uint64_t to) override {
      const std::size_t size = a_.lo_.size;
      for (std::uint64_t seq = from; seq < to && !closed_; ++seq) {
        const std::error_code ec = con_->send(a_.pattern_.message(seq), size, websocketpp::frame::opcode::binary);
        if (ec)
          return w_.failed(*this, core::outcome::fail(exit_code::network, "send to " + a_.opt_.target.str() + ": " + ec.message()));
      }
    }

    void close() override {
      if (closed_) return;
      closed_ = true;
      if (!con_) return;
      std::error_code ec;
      if (open_) con_->close(websocketpp::close::status::normal, "", ec);
      else con_->terminate(ec);  // still connecting: abandon the upgrade (its fail handler follows)
    }

    void on_open() {
      open_ = true;
      if (!closed_) w_.opened(*this);
    }

    void on_message(const msg_ptr& m) {
      if (closed_) return;
      const auto& p = m->get_payload();
      const std::uint64_t seq = done();
      if (seq >= sent() || p.size() != a_.lo_.size || std::memcmp(p.data(), a_.pattern_.message(seq), p.size()) != 0)
        return w_.failed(*this, core::outcome::fail(exit_code::protocol,
                                                    "echo from " + a_.opt_.target.str() + ": message " + std::to_string(seq) +
                                                        " came back different",
                                                    "the peer must echo every message unchanged (netlab ws-echo serve)"));
      w_.replied(*this, 1);
    }

    void on_fail() {
      if (!closed_) w_.failed(*this, describe_failure(con_, a_.opt_));
      last_callback();
    }

    void on_close() {
      if (!closed_) {  // the server closed on us mid-run
        const auto code = con_->get_remote_close_code();
        const auto reason = con_->get_remote_close_reason();
        w_.failed(*this, core::outcome::fail(exit_code::protocol,
                                             "the server closed a connection mid-run: " + std::to_string(code) + " " +
                                                 websocketpp::close::status::get_string(code) +
                                                 (reason.empty() ? "" : " (" + reason + ")"),
                                             "did the server stop, or does it limit connections or message sizes?"));
      }
      last_callback();
    }

   private:
    void last_callback() {
      if (finished_) return;
      finished_ = true;
      if (e_.live > 0 && --e_.live == 0 && e_.run_over) a_.stop_endpoint(w_, e_);
    }

    core::load_worker& w_;
    ws_load_adapter& a_;
    endpoint& e_;
    con_ptr con_;
    bool open_ = false, closed_ = false, finished_ = false;
  };

 public:
  ws_load_adapter(const dial_options& opt) : opt_(opt), lo_(*opt.load), pattern_(lo_.size) {}

  std::string_view proto() const override { return "ws"; }
  std::string target() const override { return opt_.target.str(); }

  std::unique_ptr<core::load_connection> make(core::load_worker& w) override {
    auto& state = w.state();
    if (!state) state = make_endpoint(w);
    return std::make_unique<connection>(w, *this, *static_cast<endpoint*>(state.get()));
  }

  // Every connection of this worker is closed: once the last close handshake (or fail) completed,
  // or after a grace period, stop the worker's io_context so websocketpp's own timers (socket
  // shutdown) do not keep the run waiting.
  void worker_done(core::load_worker& w) override {
    auto* e = static_cast<endpoint*>(w.state().get());
    if (!e) return;
    e->run_over = true;
    if (e->live == 0) return stop_endpoint(w, *e);
    e->grace.expires_after(std::chrono::seconds(3));
    e->grace.async_wait([this, &w, e](std::error_code ec) {
      if (!ec) stop_endpoint(w, *e);
    });
  }

 private:
  std::shared_ptr<void> make_endpoint(core::load_worker& w) {
    auto e = std::make_shared<endpoint>(w.ioc());
    auto& c = e->client;
    init_client<Client, Tls>(c, opt_, w.ioc());
    c.set_max_message_size(lo_.size + 1024);
    endpoint* ep = e.get();
    auto find = [ep](websocketpp::connection_hdl h) -> connection* {
      auto sp = h.lock();
      if (!sp) return nullptr;
      auto it = ep->by_con.find(sp.get());
      return it == ep->by_con.end() ? nullptr : it->second;
    };
    c.set_open_handler([find](websocketpp::connection_hdl h) {
      if (auto* k = find(h)) k->on_open();
    });
    c.set_fail_handler([find](websocketpp::connection_hdl h) {
      if (auto* k = find(h)) k->on_fail();
    });
    c.set_message_handler([find](websocketpp::connection_hdl h, msg_ptr m) {
      if (auto* k = find(h)) k->on_message(m);
    });
    c.set_close_handler([find](websocketpp::connection_hdl h) {
      if (auto* k = find(h)) k->on_close();
    });
    return e;
  }

  void stop_endpoint(core::load_worker& w, endpoint& e) {
    e.grace.cancel();
    w.ioc().stop();
  }

  const dial_options& opt_;
  const core::load_options& lo_;
  tcp::load_pattern pattern_;
};

/// Runs the load mode through the one load driver.
template <class Client, bool Tls>
core::outcome run_load(const dial_options& opt, core::runtime& rt, core::reporter& out) {
  // websocketpp's _htonll (every frame header) initialises a function-local static on its first
  // call, unsynchronised: make that first call here, before the workers' threads exist
  // (ThreadSanitizer reported two threads' first frames racing on it).
  [[maybe_unused]] volatile auto warm = websocketpp::lib::net::_htonll(1);
  ws_load_adapter<Client, Tls> a(opt);
  core::load_settings s;
  s.load = *opt.load;
  s.reply_timeout = opt.timeout.count() > 0 ? opt.timeout : std::chrono::milliseconds(10000);
  // No driver connect deadline: websocketpp's open-handshake timeout ends a slow upgrade (exit 4).
  core::load_driver d(a, s, rt, out);
  return d.run();
}

/// Runs the exchange or the load mode with client type `Client`.
template <class Client, bool Tls>
core::outcome run_dial(const dial_options& opt, core::runtime& rt, core::reporter& out) {
  if (opt.load) return run_load<Client, Tls>(opt, rt, out);
  auto e = std::make_shared<exchange<Client, Tls>>(opt, rt, out);
  auto r = e->start();
  if (!r.ok()) return r;
  rt.run();
  return e->result();
}

}  // namespace netlab::ws::detail
