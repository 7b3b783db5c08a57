#pragma once
/// The logic of `ws-echo dial` without websocketpp: the exchange session (message sources, output,
/// close rules), the load mode's connection logic and the mapping of failures to exit codes. The
/// websocketpp glue (detail/client_engine.hpp, a template over the client type) forwards its
/// handlers here and implements `wire`; everything in this header compiles once, in ordinary .cpp
/// files, instead of once per websocketpp client type.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <asio/steady_timer.hpp>

#include "netlab/core/error.hpp"
#include "netlab/core/fd_pump.hpp"
#include "netlab/core/load_driver.hpp"
#include "netlab/core/report.hpp"
#include "netlab/core/runtime.hpp"
#include "netlab/tcp/client.hpp"
#include "netlab/ws/client.hpp"

namespace asio::ssl {
class context;
}  // namespace asio::ssl

namespace netlab::ws::detail {

using ssl_context_ptr = std::shared_ptr<asio::ssl::context>;

/// The TLS context of a wss:// client: system CAs or --cacert, host name checked, or --insecure.
/// When the server's certificate fails verification, OpenSSL's reason ("self-signed certificate")
/// goes to *verify_error (if given), since the handshake's own error only says the peer shut down.
ssl_context_ptr make_client_tls(const dial_options& opt, std::shared_ptr<std::string> verify_error);

/// What the glue knows about a connection that failed before it opened.
struct failure_facts {
  int http_status = 0;          ///< the HTTP status of a refused upgrade, or 0
  std::string http_reason;      ///< its reason phrase
  std::error_code ec;           ///< websocketpp's own error
  std::error_code transport_ec; ///< the transport's (Asio's) error kept by websocketpp
  std::string tls_verify_error; ///< why the certificate was refused, or empty
};

/// How a connection closed, from the glue.
struct close_facts {
  int remote_code = 0;          ///< the peer's close code (1005: none, 1006: no close frame)
  std::string remote_reason;
  int local_code = 0;           ///< the code this side sent (1009 when a message was too big)
  std::uint64_t max_message = 0;
};

/// One open (or opening) websocketpp connection, as the session logic uses it.
class wire {
 public:
  virtual ~wire() = default;
  /// Queues one data message.
  virtual std::error_code send(const void* data, std::size_t n, bool binary) = 0;
  /// Queues a ping.
  virtual std::error_code ping(const std::string& data) = 0;
  /// Starts the close handshake.
  virtual std::error_code close(int code, const std::string& reason) = 0;
  /// Abandons a connection still in its upgrade (its fail handler follows).
  virtual void terminate() = 0;
  /// Bytes queued and not yet written.
  virtual std::size_t buffered() const = 0;
  /// The negotiated subprotocol, or empty.
  virtual std::string subprotocol() const = 0;
  /// The HTTP head of the upgrade request (request = true) or of the server's response.
  virtual std::string handshake_head(bool request) const = 0;
  /// The socket's local and remote address as "HOST:PORT" ("[::1]:PORT"), or empty.
  virtual std::string local_address() const = 0;
  virtual std::string peer_address() const = 0;
};

/// The handlers a connection's events go to (the glue calls them on the connection's thread).
class wire_events {
 public:
  virtual ~wire_events() = default;
  virtual void on_open() = 0;
  virtual void on_message(bool binary, const std::string& payload) = 0;
  /// A ping from the peer (websocketpp answers it with a pong).
  virtual void on_ping(const std::string&) {}
  virtual void on_pong(const std::string&) {}
  virtual void on_fail(const failure_facts& f) = 0;
  virtual void on_close(const close_facts& f) = 0;
};

/// Why a connection attempt failed, as an outcome (HTTP status, resolve, refused, TLS, timeout,
/// not a WebSocket server), by error category and code, never by message text (client_errors.cpp).
core::outcome describe_failure(const failure_facts& f, const dial_options& opt);

/// Asks target on a side connection whether it speaks TLS (tls = true: a TLS handshake, any
/// certificate, completes) or plain HTTP (tls = false: a GET / is answered "HTTP/..."); `done(yes)`
/// runs on ioc within `limit` (client_probe.cpp).
void probe_server(asio::io_context& ioc, const url& target, bool tls, std::chrono::milliseconds limit,
                  std::function<void(bool)> done);

/// "1011 Internal endpoint error (boom)": a close code, its name and the reason.
std::string close_text(int code, const std::string& reason);

/// The exchange of `ws-echo dial`: connect, send the messages and stdin lines, print the replies,
/// close with 1000 (client_session.cpp).
class exchange_session final : public wire_events, public std::enable_shared_from_this<exchange_session> {
 public:
  exchange_session(const dial_options& opt, core::runtime& rt, core::reporter& out);
  ~exchange_session() override;

  /// Arms the signal handler and the connect deadline; `w` must outlive this session.
  void start(wire& w);
  /// Ends the run with `o` (the first call wins).
  void finish(core::outcome o);
  const core::outcome& result() const { return result_; }
  /// Where the TLS context records why it refused the server's certificate.
  const std::shared_ptr<std::string>& verify_error() const { return verify_error_; }

  void on_open() override;
  void on_message(bool binary, const std::string& payload) override;
  void on_ping(const std::string& data) override;
  void on_pong(const std::string& data) override;
  void on_fail(const failure_facts& f) override;
  void on_close(const close_facts& f) override;

 private:
  void on_signal();
  core::outcome tls_mismatch(bool wss_to_plain) const;
  void start_stdin();
  void on_input(std::string data, bool eof, std::error_code ec);
  bool can_send_more() const;
  void send_lines();
  void line_in(const std::string& line);
  void send(const std::string& data, bool binary);
  void maybe_close();
  void close_now(int code, const std::string& reason);
  void complain(const std::string& what);
  void echo_sent(const std::string& text);
  void echo_received(const std::string& text);
  void note(const std::string& text);

  const dial_options opt_;
  core::runtime& rt_;
  core::reporter& out_;
  wire* wire_ = nullptr;
  asio::steady_timer timer_;
  asio::steady_timer close_timer_;
  asio::steady_timer probe_timer_;
  std::shared_ptr<std::string> verify_error_;
  core::outcome result_;
  std::unique_ptr<core::fd_pump> pump_;  ///< after the timers: destroyed (joined) before them
  std::string pending_;                  ///< stdin bytes read and not yet sent, from pos_
  std::size_t pos_ = 0;
  std::uint64_t sent_ = 0, received_ = 0, bytes_in_ = 0, bytes_out_ = 0;
  std::chrono::steady_clock::time_point opened_at_;
  std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>> pings_;  ///< unanswered /ping
  int close_code_ = 0;
  std::string close_reason_, close_by_, peer_;
  bool open_ = false, closing_ = false, done_ = false, input_done_ = false, default_sent_ = false;
  bool reading_ = false, stdin_eof_ = false, interrupted_once_ = false, probing_ = false;
};

/// The load mode's per-connection logic (client_load.cpp); the glue supplies each worker's
/// websocketpp endpoint through `connector`.
class load_connector {
 public:
  virtual ~load_connector() = default;
  /// Creates a connection whose events go to `ev` and starts its upgrade; nullptr and `ec` set when
  /// the URL is refused.
  virtual std::unique_ptr<wire> connect(wire_events& ev, std::error_code& ec) = 0;
};

/// Makes one worker's connector on the worker's io_context.
using connector_factory = std::function<std::unique_ptr<load_connector>(asio::io_context&, const dial_options&)>;

/// Runs the load mode through the one load driver, with connections from `make`.
core::outcome run_load(const dial_options& opt, core::runtime& rt, core::reporter& out, const connector_factory& make);

/// The four websocketpp client types: ws:// in client_plain.cpp, wss:// in client_tls.cpp.
core::outcome dial_plain(const dial_options& opt, core::runtime& rt, core::reporter& out);
core::outcome dial_plain_deflate(const dial_options& opt, core::runtime& rt, core::reporter& out);
core::outcome dial_tls(const dial_options& opt, core::runtime& rt, core::reporter& out);
core::outcome dial_tls_deflate(const dial_options& opt, core::runtime& rt, core::reporter& out);

}  // namespace netlab::ws::detail
