#pragma once
/// The "netlab" spdlog logger on stderr, and a hex dump for -vv traces.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace netlab::core {

/// Verbosity as chosen on the command line: -q, default, -v, -vv.
enum class verbosity { quiet, info, debug, trace };

/// Creates (once) the "netlab" logger on stderr at the given verbosity.
void init_logging(verbosity v);
/// The "netlab" logger (created at info level on first use if init_logging was not called).
spdlog::logger& log();

/// Hex dump in the classic 16-bytes-per-line layout with an ASCII column; at most `limit` bytes.
std::string hexdump(const void* data, std::size_t n, std::size_t limit = 4096);

/// Byte counts for humans: "512 B", "1.5 KiB", "256.0 MiB".
std::string human_bytes(double bytes);

}  // namespace netlab::core
