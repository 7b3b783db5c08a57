#pragma once
/// `netlab ws-echo serve`: a WebSocket echo server on websocketpp (no websocketpp in this header).
#include <cstdint>
#include <string>

#include "netlab/core/endpoint.hpp"
#include "netlab/core/error.hpp"
#include "netlab/core/report.hpp"
#include "netlab/core/runtime.hpp"

namespace netlab::ws {

/// Options of `ws-echo serve` (the defaults are the command's defaults).
struct serve_options {
  core::endpoint listen{"", 8899};             ///< empty host: all interfaces
  std::string path = "/echo";                  ///< the only resource that upgrades; others get 404
  std::uint64_t max_message = 16 * 1024 * 1024;  ///< larger messages close the connection with 1009
  unsigned threads = 1;                        ///< io threads
};

/// Binds, prints the readiness line, echoes every message with its opcode until SIGINT/SIGTERM,
/// then closes every connection with 1001 and returns success. A bind failure returns the outcome.
core::outcome serve(const serve_options& opt, core::runtime& rt, core::reporter& out);

}  // namespace netlab::ws
