#pragma once
/// The one exit-code table for every netlab command (mirrored in docs/exit-codes.md).
#include <array>
#include <string_view>

namespace netlab {

/// Process exit status; the same meaning for every subcommand.
enum class exit_code : int {
  ok = 0,             ///< success (a server stopped by a signal has finished normally)
  internal = 1,       ///< a bug in netlab
  usage = 2,          ///< bad flags, arguments or addresses
  network = 3,        ///< resolve, connect, bind, reset, refused
  timeout = 4,        ///< a deadline passed
  protocol = 5,       ///< the peer broke the protocol or answered with an error
  local_io = 6,       ///< file, permission, disk
  interrupted = 130,  ///< a client stopped by SIGINT/SIGTERM before it finished
};

/// One row of the table: code, name used in docs and JSON, meaning.
struct exit_code_info {
  exit_code code;
  std::string_view name;
  std::string_view meaning;
};

/// Every exit code, in order; the unit test checks docs/exit-codes.md against this.
inline constexpr std::array<exit_code_info, 8> exit_codes{{
    {exit_code::ok, "ok", "success; a server stopped by SIGINT/SIGTERM also exits 0"},
    {exit_code::internal, "internal", "internal error (a bug in netlab)"},
    {exit_code::usage, "usage", "usage error: bad flag, argument, address or duration"},
    {exit_code::network, "network", "network error: resolve, connect, bind, reset, refused"},
    {exit_code::timeout, "timeout", "a timeout expired"},
    {exit_code::protocol, "protocol", "protocol error: the peer broke the protocol or sent an error"},
    {exit_code::local_io, "local_io", "local I/O error: file, permission, disk"},
    {exit_code::interrupted, "interrupted", "a client was interrupted by SIGINT/SIGTERM"},
}};

/// The name of an exit code ("timeout").
constexpr std::string_view name_of(exit_code c) {
  for (const auto& row : exit_codes)
    if (row.code == c) return row.name;
  return "internal";
}

}  // namespace netlab
