#pragma once
/// `--protocol raw`: the classic lesson's unreliable file streaming over UDP, kept as a contrast to
/// TFTP. The client asks "STAT name" (the server answers "OK size sha256" so the client can judge the
/// result) then "GET name"; the server streams 512-byte datagrams with no numbers, no
/// acknowledgements and no end marker; the client stops after a silence and reports what arrived.
#include "netlab/core/error.hpp"
#include "netlab/core/report.hpp"
#include "netlab/core/runtime.hpp"

namespace netlab::tftp {

struct serve_options;
struct fetch_options;

/// Raw-mode server (called by serve() for --protocol raw).
core::outcome serve_raw(const serve_options& opt, core::runtime& rt, core::reporter& out);
/// Raw-mode client (called by fetch() for --protocol raw).
core::outcome fetch_raw(const fetch_options& opt, core::runtime& rt, core::reporter& out);

}  // namespace netlab::tftp
