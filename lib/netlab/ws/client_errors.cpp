// Failures of ws-echo dial mapped to netlab's exit codes by error category and code. Only
// websocketpp's small error headers are needed here, not its endpoint templates.
#include <websocketpp/close.hpp>
#include <websocketpp/error.hpp>
#include <websocketpp/processors/base.hpp>
#include <websocketpp/transport/asio/base.hpp>
#include <websocketpp/transport/asio/security/base.hpp>
#include <websocketpp/transport/base/connection.hpp>

#include <asio/error.hpp>
#include <asio/ssl/error.hpp>

#include "netlab/core/text.hpp"
#include "netlab/ws/client_session.hpp"

namespace netlab::ws::detail {

namespace {

/// One websocketpp or Asio error of a connection that failed before it opened, as netlab's class,
/// chosen by the error's category and code (never by its message text, which websocketpp and Asio
/// word differently from version to version).
core::outcome handshake_failure(std::error_code ec, const dial_options& opt) {
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

}  // namespace

core::outcome describe_failure(const failure_facts& f, const dial_options& opt) {
  const std::string where = opt.target.str();
  // The handshake's own error after a refused certificate is only "shutdown while in init".
  if (!f.tls_verify_error.empty())
    return core::outcome::fail(exit_code::protocol,
                               "TLS handshake with " + where + ": certificate verify failed (" + f.tls_verify_error + ")",
                               "to trust the server's certificate give --cacert FILE (or --insecure for a test server)");
  const int status = f.http_status;
  if (status != 0) {
    std::string hint = "the server refused the upgrade";
    if (status == 404) hint = "check the URL's path, e.g. /echo";
    else if (status == 403) hint = "the server does not accept this Origin: see --origin";
    else if (status == 503) hint = "the server is full or stopping: try again later";
    else if (status == 426) hint = "the server wants another WebSocket version or a plain upgrade";
    return core::outcome::fail(exit_code::protocol,
                               "handshake rejected by " + where + ": HTTP " + std::to_string(status) + " " +
                                   f.http_reason,
                               hint);
  }
  // websocketpp's own code says why it gave up; when that code only says "see the transport"
  // (pass_through, a TLS failure), the transport's code has the detail. The transport code alone
  // can mislead: after a failed resolve it holds the EBADF of shutting down a never-opened socket.
  const std::error_code ec = f.ec;
  const std::error_code tec = f.transport_ec;
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

std::string close_text(int code, const std::string& reason) {
  return std::to_string(code) + " " + websocketpp::close::status::get_string(static_cast<websocketpp::close::status::value>(code)) +
         (reason.empty() ? "" : " (" + reason + ")");
}

}  // namespace netlab::ws::detail
