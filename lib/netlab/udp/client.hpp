#pragma once
/// `netlab udp send`: send datagrams over a connected UDP socket and print the replies byte-exact;
/// with load options, a closed-loop load generator against a UDP echo server.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "netlab/core/endpoint.hpp"
#include "netlab/core/error.hpp"
#include "netlab/core/load.hpp"
#include "netlab/core/report.hpp"
#include "netlab/core/runtime.hpp"

namespace netlab::udp {

/// Largest UDP payload over IPv4 (65,535 - 20 IP - 8 UDP header bytes); larger is a usage error.
inline constexpr std::size_t max_datagram = 65507;

/// Options of `udp send` (the defaults are the command's defaults).
struct send_options {
  core::endpoint target;
  std::string message;                        ///< the datagram (may be empty)
  std::chrono::milliseconds timeout{3000};    ///< wait for a reply this long (exit 4 when nothing comes); load: per echo
  unsigned retries = 0;                       ///< resend after each timeout this many times
  std::uint64_t count = 1;                    ///< datagrams to send (each waits for its reply unless wait_all)
  bool wait_all = false;                      ///< send all, then collect every reply until the timeout
  std::optional<core::load_options> load;     ///< set: load mode instead of the exchange
  bool terminal_newline = false;              ///< stdout is a terminal: end a reply lacking a newline with one
  bool broadcast = false;                     ///< SO_BROADCAST: the target may be a broadcast address
  std::string interface_address;              ///< multicast target: IPv4 address of the interface to send on
};

/// True when the exchange goes to a group (a multicast target, or --broadcast): the socket is not
/// connected, replies from any sender are printed until the timeout, and one or more is success.
bool group_target(const send_options& opt);

/// Sends and prints replies (reporter::data, byte-exact; on a terminal a newline is added when the
/// reply lacks one; NDJSON {"event":"reply",...} objects with --json). ICMP port unreachable: exit 3;
/// no reply: exit 4.
core::outcome send(const send_options& opt, core::runtime& rt, core::reporter& out);

/// Load mode: opt.load->connections sockets on the runtime's threads, each sending `size`-byte
/// datagrams and verifying the echo; a datagram not echoed within opt.timeout counts as an error.
core::outcome run_load(const send_options& opt, core::runtime& rt, core::reporter& out);

}  // namespace netlab::udp
