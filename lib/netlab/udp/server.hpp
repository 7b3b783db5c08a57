#pragma once
/// `netlab udp serve`: a UDP server that acknowledges (template reply) or echoes (RFC 862) datagrams.
#include <cstddef>
#include <string>
#include <vector>

#include "netlab/core/endpoint.hpp"
#include "netlab/core/error.hpp"
#include "netlab/core/report.hpp"
#include "netlab/core/runtime.hpp"

namespace netlab::udp {

/// What the server answers to each datagram.
enum class serve_mode {
  ack,   ///< answer with the reply template
  echo,  ///< RFC 862: send the datagram back unchanged
  print, ///< answer nothing: print each datagram with its sender (a listener for lessons)
};

/// "ack", "echo", "print".
const char* to_string(serve_mode m) noexcept;

/// Largest datagram the server receives (larger ones are truncated by the kernel and logged).
inline constexpr std::size_t receive_buffer = 65536;

/// Options of `udp serve` (the defaults are the command's defaults).
struct serve_options {
  core::endpoint listen{"", 6890};               ///< empty host: all interfaces
  serve_mode mode = serve_mode::ack;
  std::string reply = "server received: {msg}";  ///< ack template: {msg} = datagram, {peer} = sender address
  unsigned threads = 1;                          ///< io threads
  /// Reply-loop guard (CVE-2024-2169 class): a peer whose datagrams are, this many times in a row,
  /// one of our own recent replies to it (another echo server bounced back to us) gets that
  /// datagram unanswered, which ends the loop. 0: off (then low source ports are answered too).
  unsigned loop_limit = 256;
  std::vector<std::string> join;   ///< multicast groups (IPv4 or IPv6 literals) to join once bound
  std::string interface_address;   ///< IPv4 address of the interface the groups are joined on; empty: the kernel's choice
};

/// Datagrams from these source ports are never answered while the loop guard is on: below 1024
/// live the servers a reply could loop with (echo 7, daytime 13, chargen 19, DNS 53, TFTP 69, NTP
/// 123...), never a client's ephemeral port. Port 0 is never answered.
inline constexpr unsigned first_answered_port = 1024;

/// Binds, prints the readiness line, answers datagrams until SIGINT/SIGTERM, then closes the socket
/// and returns success. A bind failure returns the outcome to report (exit 3).
core::outcome serve(const serve_options& opt, core::runtime& rt, core::reporter& out);

}  // namespace netlab::udp
