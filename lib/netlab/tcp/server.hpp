#pragma once
/// `netlab tcp serve`: a TCP server that acknowledges (template reply), echoes (RFC 862) or
/// discards (RFC 863) what its clients send.
#include <chrono>
#include <cstddef>
#include <string>

#include "netlab/core/endpoint.hpp"
#include "netlab/core/error.hpp"
#include "netlab/core/report.hpp"
#include "netlab/core/runtime.hpp"

namespace netlab::tcp {

/// What the server does with the bytes a client sends.
enum class serve_mode {
  ack,      ///< answer each chunk read with the reply template
  echo,     ///< RFC 862: send every byte back until the client closes
  discard,  ///< RFC 863: read and drop
};

/// "ack", "echo", "discard".
const char* to_string(serve_mode m) noexcept;

/// Options of `tcp serve` (the defaults are the command's defaults).
struct serve_options {
  core::endpoint listen{"", 1450};               ///< empty host: all interfaces
  serve_mode mode = serve_mode::ack;
  std::string reply = "server received: {msg}";  ///< ack template: {msg} = chunk, {peer} = client address
  bool once = false;                             ///< ack: close the connection after the first reply
  unsigned max_connections = 0;                  ///< 0: unlimited; beyond it a client is accepted and closed at once
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};  ///< close a client silent this long; 0: never
  std::size_t max_message = 64 * 1024;           ///< ack: largest chunk read at once (one chunk, one reply)
  unsigned threads = 1;                          ///< io threads (informational; the runtime owns them)
  /// While one connection is open, poll this long for its next message before sleeping
  /// (core::runtime::serve()); 0: off.
  std::chrono::microseconds busy_poll{50};
};

/// Default read size for echo and discard (one read per readiness event, reused per thread).
inline constexpr std::size_t stream_chunk = 64 * 1024;

/// Binds, prints the readiness line, serves until SIGINT/SIGTERM (then stops gracefully through
/// core::lifecycle: stop accepting, let pending replies finish within a 1 s grace period, close the
/// rest; a second signal stops at once) and returns success. A bind failure returns the outcome to
/// report (exit 3).
core::outcome serve(const serve_options& opt, core::runtime& rt, core::reporter& out);

}  // namespace netlab::tcp
