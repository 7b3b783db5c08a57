// Pure TFTP option negotiation (RFC 2347 OACK, 2348 blksize, 2349 timeout/tsize, 7440 windowsize,
// and tftp-hpa's "utimeout" in microseconds): what a server accepts, what a client asks for, and
// whether an OACK is a valid answer to what was asked.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "netlab/tftp/packet.hpp"
#include "netlab/tftp/session.hpp"

namespace netlab::tftp {

/// Largest block RFC 2348 allows.
constexpr std::size_t max_blksize = 65464;
/// Largest window RFC 7440 allows.
constexpr unsigned max_windowsize = 65535;

/// What a server is willing to accept.
struct server_limits {
  std::size_t max_blksize = tftp::max_blksize;
  unsigned max_windowsize = 64;
  std::chrono::milliseconds default_timeout{1000};
  unsigned retries = 5;
};

/// A server's answer to a request's options.
struct server_answer {
  transfer_settings settings;     ///< what the transfer uses
  std::vector<option> accepted;   ///< the OACK's options (empty: no OACK, plain RFC 1350)
  std::optional<std::uint64_t> client_tsize;  ///< WRQ: the size the client announced
};

/// Negotiates `req`'s options. `file_size` is the size an RRQ will send (tsize); ignored for a WRQ.
/// Unknown or malformed options are ignored (RFC 2347), never an error.
server_answer negotiate(const request& req, const server_limits& lim, std::uint64_t file_size);

/// What a client asks for. An option is sent only when it differs from RFC 1350's behaviour.
struct client_wish {
  std::size_t blksize = 1428;
  unsigned windowsize = 16;
  std::chrono::milliseconds timeout{1000};
  unsigned retries = 5;
  bool tsize = true;     ///< ask for the size (progress, percent)
  bool options = true;   ///< false: send no option at all
};

/// The options of a request for `w`.
std::vector<option> request_options(const client_wish& w, bool is_write = false, std::uint64_t write_size = 0);

/// Settings and tsize from a server's OACK, or an error text when the OACK is not a valid answer
/// (an option that was not asked, a larger blksize/windowsize than asked, a malformed value).
struct client_answer {
  transfer_settings settings;
  std::optional<std::uint64_t> tsize;
  std::string error;  ///< non-empty: reject with ERROR 8
};
client_answer accept_oack(const oack& o, const client_wish& w);

/// Settings for a server that ignored the options (plain RFC 1350: 512-byte blocks, window 1).
transfer_settings rfc1350_settings(const client_wish& w);

}  // namespace netlab::tftp
