#pragma once
/// `netlab ws-echo dial`: a WebSocket client (send messages, print the replies) and, with load
/// options, a closed-loop load generator against an echo server. No websocketpp in this header.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "netlab/core/error.hpp"
#include "netlab/core/load.hpp"
#include "netlab/core/report.hpp"
#include "netlab/core/runtime.hpp"
#include "netlab/ws/url.hpp"

namespace netlab::ws {

/// One message to send.
struct outgoing {
  std::string data;
  bool binary = false;
};

/// Options of `ws-echo dial` (the defaults are the command's defaults).
struct dial_options {
  url target;                                       ///< parsed ws:// or wss:// URL
  std::vector<outgoing> messages;                   ///< sent in order, one reply awaited for each
  int stdin_fd = -1;                                ///< >= 0: then one message per line from it
  bool stdin_binary = false;                        ///< lines from stdin go as binary messages
  std::vector<std::pair<std::string, std::string>> headers;  ///< extra handshake headers (-H)
  std::string origin;                               ///< Origin header (empty: none)
  std::vector<std::string> subprotocols;            ///< Sec-WebSocket-Protocol offers
  std::string cacert;                               ///< wss: trust this CA file instead of the system's
  bool insecure = false;                            ///< wss: do not verify the certificate
  bool deflate = false;                             ///< offer permessage-deflate
  std::uint64_t max_message = 16 * 1024 * 1024;     ///< larger replies (inflated size too) → close 1009, exit 5
  bool raw = false;                                 ///< print binary replies as raw bytes, not hex
  bool interactive = false;  ///< like wscat: `>`/`<` transcript, slash commands, Ctrl-C closes with 1000 (exit 0)
  bool color = false;        ///< interactive: colour the transcript (stdout is a terminal)
  bool tty_echo = false;     ///< interactive: the terminal already echoed each typed line (rewrite it as `> line`)
  std::chrono::milliseconds timeout{10000};         ///< whole exchange (0: none); exit 4
  std::chrono::milliseconds connect_timeout{5000};  ///< TCP + TLS + upgrade (0: none); exit 4
  std::optional<core::load_options> load;           ///< set: load mode instead of the exchange
};

/// Connects, sends the messages (and stdin lines), prints each reply, closes with 1000 and waits for
/// the close reply. Exit codes: refused 3, timeout 4, handshake rejected, TLS mismatch or error
/// close 5, a text line that is not UTF-8 2, unreadable stdin 6.
core::outcome dial(const dial_options& opt, core::runtime& rt, core::reporter& out);

}  // namespace netlab::ws
