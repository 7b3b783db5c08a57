#pragma once
/// `netlab udp-file fetch` and `put`: a TFTP client (RRQ or WRQ with options, RFC 1350 fallback). A
/// fetch writes to OUT.part and renames on success, or writes in place into stdout, a device or a FIFO.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "netlab/core/endpoint.hpp"
#include "netlab/core/error.hpp"
#include "netlab/core/report.hpp"
#include "netlab/core/runtime.hpp"
#include "netlab/tftp/fault.hpp"
#include "netlab/tftp/files.hpp"
#include "netlab/tftp/negotiate.hpp"
#include "netlab/tftp/server.hpp"

namespace netlab::tftp {

/// Options of `udp-file fetch`.
struct fetch_options {
  core::endpoint server{"127.0.0.1", 6969};
  std::string remote;                  ///< file name as the server knows it
  std::string output;                  ///< local path, "-" = stdout
  client_wish wish;                    ///< blksize 0 = from the path MTU; windowsize 0 = from the socket buffer
  bool netascii = false;               ///< mode netascii instead of octet
  bool force = false;                  ///< replace an existing output file
  bool keep_partial = false;           ///< keep OUT.part after a failure
  bool sha256 = false;                 ///< print the digest of what was received
  bool progress = false;               ///< draw a progress bar on stderr (the caller checks it is a terminal)
  fault_options faults;
  protocol proto = protocol::tftp;
  std::chrono::milliseconds raw_idle{1000};  ///< raw mode: the stream is over after this much silence
  std::optional<std::uint64_t> max_size;     ///< --max-size: most bytes accepted; unset = the announced
                                             ///< size when there is one, else default_max_size
};

/// Options of `udp-file put` (a WRQ): the same transfer options as fetch.
struct put_options {
  core::endpoint server{"127.0.0.1", 6969};
  std::string local;                   ///< the file sent (a regular file)
  std::string remote;                  ///< name on the server
  client_wish wish;                    ///< blksize 0 = from the path MTU; windowsize 0 = from the socket buffer
  bool netascii = false;               ///< mode netascii instead of octet
  bool progress = false;               ///< draw a progress bar on stderr
  fault_options faults;
};

/// Sends `local` to the server as `remote`; prints a `put` summary through `out`. Exit codes as
/// fetch: server ERROR 5 (with the server's text), timeout 4, network 3, local file 6 (missing, a
/// directory, unreadable), interrupted 130.
core::outcome put(const put_options& opt, core::runtime& rt, core::reporter& out);

/// The progress bar's text (without the leading CR) for a terminal of `columns` columns: at most
/// columns - 1 characters, the least useful parts dropped first. `total`: the size, when known.
std::string progress_line(int columns, std::uint64_t bytes, std::optional<std::uint64_t> total, double bytes_per_s,
                          std::uint64_t retransmitted);

/// The bound on what a fetch accepts when the server announces no size (no tsize: an RFC 1350 server,
/// --no-options) and no --max-size is given: 4 GiB, beyond any file a TFTP lab moves, far below a disk.
constexpr std::uint64_t default_max_size = 4ull << 30;

/// The most bytes (as they come on the wire) a fetch accepts: the announced size `tsize` (twice it in
/// netascii, whose CR LF and CR NUL can double a text), else default_max_size; `max_size` lowers either.
std::uint64_t receive_limit(std::optional<std::uint64_t> tsize, std::optional<std::uint64_t> max_size, bool netascii) noexcept;

/// Fetches the file; prints a summary (and the digest) through `out`. Exit codes: server ERROR 5,
/// timeout 4, network 3, local file 6, interrupted 130. Never leaves a partial file under OUT.
core::outcome fetch(const fetch_options& opt, core::runtime& rt, core::reporter& out);

/// The local half of every fetch, before the server is asked: checks -o (not a directory; an
/// existing OUT or a stale OUT.part only with --force) and creates `dst`, writing OUT.part (renamed
/// on commit), or in place for stdout ("-"), a character device or a FIFO (no --force needed; a
/// block device is refused). `so` brings the caller's digest/netascii choices.
core::outcome open_output(const fetch_options& opt, sink::options so, std::unique_ptr<sink>& dst);

/// `-o DIR` saves DIR/NAME (NAME = the remote file's base name): rewrites `opt.output` so. Fails
/// (exit 6) when the remote name has no base name to use.
core::outcome resolve_output(fetch_options& opt);

/// The block size for a path MTU (IPv4/IPv6 header, UDP header and TFTP header removed), clamped
/// to [512, 65464].
std::size_t blksize_for_mtu(int mtu, bool ipv6) noexcept;

/// The largest window `--windowsize auto` asks for (the server's default --max-windowsize). On
/// loopback, 256 MiB at blksize 65464 (2026-12-02, alternated medians): window 16 1,341 MB/s,
/// 32 1,828, 64 2,040; at 5% loss 251 / 321 / 472 MB/s.
constexpr unsigned auto_windowsize_cap = 64;

/// The window that fits `rcvbuf` bytes of receive buffer at `blksize` (kernel overhead included),
/// clamped to [1, cap].
unsigned windowsize_for_buffer(int rcvbuf, std::size_t blksize, unsigned cap) noexcept;

}  // namespace netlab::tftp
