#pragma once
/// `netlab tcp dial`: a netcat-like client (send data, print what comes back byte-exact) and, with
/// load options, a closed-loop load generator against an echo server.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "netlab/core/endpoint.hpp"
#include "netlab/core/error.hpp"
#include "netlab/core/load.hpp"
#include "netlab/core/report.hpp"
#include "netlab/core/runtime.hpp"

namespace netlab::tcp {

/// Where the bytes dial sends come from: the messages in order (one write each), then, if fd >= 0,
/// that file descriptor read until end of file (the command passes 0 for stdin).
struct dial_source {
  std::vector<std::string> messages;
  int fd = -1;
  bool empty() const noexcept { return messages.empty() && fd < 0; }
};

/// Options of `tcp dial` (the defaults are the command's defaults).
struct dial_options {
  core::endpoint target;
  dial_source source;
  std::chrono::milliseconds connect_timeout{5000};  ///< resolve + connect; exit 4 when it passes
  std::chrono::milliseconds idle{2000};             ///< after the last send, stop after this much silence (exit 0); 0: never
  std::chrono::milliseconds timeout{0};             ///< overall deadline (exit 4); 0: none. Load mode: per echo (0: 10 s)
  bool half_close = false;                          ///< shutdown(SHUT_WR) once everything is sent
  std::optional<core::load_options> load;           ///< set: load mode instead of the data exchange
};

/// Connects, sends the source, prints what comes back (reporter::data, or NDJSON events with
/// --json) until the peer closes, --idle or --timeout; or runs the load mode when opt.load is set.
core::outcome dial(const dial_options& opt, core::runtime& rt, core::reporter& out);

/// Load mode: opt.load->connections connections on opt.load->threads threads (one io_context each),
/// each sending `size`-byte messages and verifying their echo; prints the core::report_load report.
core::outcome run_load(const dial_options& opt, core::runtime& rt, core::reporter& out);

/// The bytes of message number `seq` in load mode: a window into a fixed pseudo-random pattern, so
/// consecutive messages differ and a misplaced or corrupted echo is detected without copies.
class load_pattern {
 public:
  /// size: bytes per message.
  explicit load_pattern(std::size_t size);
  /// Start of message `seq` (size() bytes are valid from there).
  const char* message(std::uint64_t seq) const noexcept { return data_.data() + offset(seq); }
  std::size_t size() const noexcept { return size_; }
  /// Offset of message `seq` in the pattern (period: 251 messages).
  static std::size_t offset(std::uint64_t seq) noexcept { return static_cast<std::size_t>((seq * 97) % 251); }

 private:
  std::size_t size_;
  std::vector<char> data_;
};

}  // namespace netlab::tcp
