#pragma once
/// Servers' per-connection NDJSON events (connection, closed, transfer) without ever stalling the
/// server on its stdout.
#include <cstdint>

#include <nlohmann/json.hpp>

#include "netlab/core/report.hpp"

namespace netlab::core {

/// Prints a server's event when stdout has room for it now, else drops it: a server never waits
/// for whoever reads its --json output (a script that only wanted the readiness line, a full pipe),
/// so serving never stops on a full stdout. The first drop is logged as a warning; dropped()
/// counts them. Call only in --json mode.
void server_event(reporter& out, const nlohmann::json& ev);

/// Events dropped so far by server_event() in this process.
std::uint64_t server_events_dropped() noexcept;

}  // namespace netlab::core
