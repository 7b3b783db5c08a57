#pragma once
/// `netlab udp-file serve`: a TFTP server (RFC 1350, 2347-2349, 7440) with a new port per transfer,
/// or, with --protocol raw, the classic lesson's unacknowledged 512-byte stream.
#include <chrono>
#include <cstdint>
#include <string>

#include "netlab/core/endpoint.hpp"
#include "netlab/core/error.hpp"
#include "netlab/core/report.hpp"
#include "netlab/core/runtime.hpp"
#include "netlab/tftp/fault.hpp"
#include "netlab/tftp/negotiate.hpp"

namespace netlab::tftp {

/// The wire protocol of udp-file.
enum class protocol {
  tftp,  ///< standard TFTP with options
  raw,   ///< the lesson's stream: 512-byte datagrams, no numbers, no acknowledgements
};

/// Options of `udp-file serve` (the defaults are the command's defaults).
struct serve_options {
  core::endpoint listen{"", 6969};   ///< empty host: all interfaces
  std::string root = ".";            ///< directory served
  bool allow_upload = false;         ///< accept WRQ (new files only)
  bool allow_overwrite = false;      ///< WRQ may replace existing files
  unsigned max_transfers = 64;       ///< concurrent transfers; more get ERROR 0 "busy"
  unsigned max_per_client = 8;       ///< concurrent transfers from one client address (any port)
  std::chrono::milliseconds max_silence{60000};  ///< a transfer whose peer is silent this long is dropped
  server_limits limits;              ///< blksize/windowsize caps, default timeout and retries
  fault_options faults;              ///< --simulate-loss/dup/reorder on outgoing packets
  protocol proto = protocol::tftp;
  std::uint64_t raw_rate = 10ull << 20;   ///< --protocol raw: bytes per second sent, all streams together
  std::chrono::milliseconds grace{3000};  ///< on SIGTERM, time left to running transfers
  unsigned threads = 1;
};

/// Binds, prints the readiness line, serves until SIGINT/SIGTERM, lets running transfers finish
/// within `grace` (then aborts them with an ERROR), returns success. A bind failure returns the outcome.
core::outcome serve(const serve_options& opt, core::runtime& rt, core::reporter& out);

}  // namespace netlab::tftp
