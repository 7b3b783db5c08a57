#pragma once
/// Process limits that matter for thousands of TCP connections.
#include <cstdint>

namespace netlab::tcp {

/// Raises the soft RLIMIT_NOFILE to the hard limit (once per process; later calls are no-ops) and
/// returns the soft limit now in force (0 if it cannot be read).
std::uint64_t raise_open_files_limit() noexcept;

}  // namespace netlab::tcp
