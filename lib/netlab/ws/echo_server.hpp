#pragma once
/// `netlab ws-echo serve`: a WebSocket echo server on websocketpp (no websocketpp in this header).
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "netlab/core/endpoint.hpp"
#include "netlab/core/error.hpp"
#include "netlab/core/report.hpp"
#include "netlab/core/runtime.hpp"

namespace netlab::ws {

/// Options of `ws-echo serve` (the defaults are the command's defaults; 0 durations/counts = off).
struct serve_options {
  core::endpoint listen{"", 8899};             ///< empty host: all interfaces
  std::string path = "/echo";                  ///< the only resource that upgrades; others get 404
  std::uint64_t max_message = 16 * 1024 * 1024;  ///< larger messages close the connection with 1009
  unsigned threads = 1;                        ///< io threads
  /// While one connection is open, poll this long for its next message before sleeping
  /// (core::runtime::serve()); 0: off.
  std::chrono::microseconds busy_poll{50};
  std::size_t max_connections = 0;             ///< open WebSocket connections; beyond it HTTP 503
  std::size_t max_handshakes = 1024;           ///< TCP connections not yet upgraded; beyond it new ones are dropped
  std::chrono::milliseconds handshake_timeout{5000};  ///< TCP accept → upgrade done (TLS included)
  std::chrono::milliseconds idle_timeout{0};   ///< no message either way for this long → close 1001
  std::chrono::milliseconds ping_interval{0};  ///< server pings; a ping unanswered by the next → drop
  std::vector<std::string> allow_origins;      ///< empty: any Origin; otherwise others get HTTP 403
  std::string tls_cert;                        ///< PEM certificate chain: serve wss:// (with tls_key)
  std::string tls_key;                         ///< PEM private key
  bool deflate = false;                        ///< permessage-deflate (RFC 7692) when offered
  bool broadcast = false;                      ///< every message to every client instead of echo
  std::uint64_t max_queue = 16 * 1024 * 1024;  ///< unsent bytes per client before it is closed 1008
  bool page = true;                            ///< GET / serves the built-in HTML client
};

/// Binds, prints the readiness line, echoes (or broadcasts) every message with its opcode until
/// SIGINT/SIGTERM, then closes every connection with 1001 and returns success. A bind failure or an
/// unusable TLS certificate/key returns the failed outcome before anything listens.
core::outcome serve(const serve_options& opt, core::runtime& rt, core::reporter& out);

}  // namespace netlab::ws
