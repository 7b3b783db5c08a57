#pragma once
/// The entry points of ws-echo serve's four websocketpp variants: the plain ones are built in
/// echo_server.cpp, the TLS ones in echo_server_tls.cpp (two units that compile in parallel).
#include <chrono>
#include <memory>

#include "netlab/core/error.hpp"
#include "netlab/core/report.hpp"
#include "netlab/core/runtime.hpp"
#include "netlab/ws/echo_server.hpp"

namespace asio::ssl {
class context;
}

namespace netlab::ws::detail {

using tls_context_ptr = std::shared_ptr<asio::ssl::context>;

/// Loads --tls-cert/--tls-key into a server context; a failure is a usage error naming the file.
core::outcome load_tls(const serve_options& opt, tls_context_ptr& ctx);

/// How long a stopping ws-echo server lets connections finish their close handshake (1001)
/// before closing their sockets (core::lifecycle).
inline constexpr std::chrono::milliseconds stop_grace{1500};

/// Each runs its variant until it is stopped by a signal.
core::outcome run_plain(const serve_options& opt, core::runtime& rt, core::reporter& out);
core::outcome run_plain_deflate(const serve_options& opt, core::runtime& rt, core::reporter& out);
core::outcome run_tls(const serve_options& opt, core::runtime& rt, core::reporter& out, tls_context_ptr tls);
core::outcome run_tls_deflate(const serve_options& opt, core::runtime& rt, core::reporter& out, tls_context_ptr tls);

}  // namespace netlab::ws::detail
