// ws-echo serve: websocketpp joined to netlab's io_context (websocketpp examples/external_io_service).
// The engine is a template (detail/echo_engine.hpp) holding only the websocketpp glue; the policy is
// ordinary code (server_core.cpp). This unit builds the plain ws:// variants and echo_server_tls.cpp
// the wss:// ones. Two units, not one per variant: most of a unit's cost is websocketpp's and Asio's
// headers and the code every variant shares, so four units cost more in total (issue 14,
// docs/benchmarks.md "Compile time").
#include "netlab/ws/echo_server.hpp"

#include <openssl/ssl.h>

#include "netlab/tcp/limits.hpp"
#include "netlab/ws/detail/echo_engine.hpp"
#include "netlab/ws/detail/fast_handlers.hpp"
#include "netlab/ws/detail/fast_read.hpp"
#include "netlab/ws/detail/fast_send.hpp"

// Issue 17's contained speed-ups for the plain ws:// configs (each macro's header states its
// measured gain; removing a line here brings back websocketpp's own code for that path).
NETLAB_WSPP_FAST_READ(netlab::ws::detail::plain_state_config)
NETLAB_WSPP_LEAN_HANDLERS(netlab::ws::detail::plain_state_config)
NETLAB_WSPP_LEAN_SEND(netlab::ws::detail::plain_state_config)
NETLAB_WSPP_FAST_READ(netlab::ws::detail::plain_deflate_state_config)
NETLAB_WSPP_LEAN_HANDLERS(netlab::ws::detail::plain_deflate_state_config)
NETLAB_WSPP_LEAN_SEND(netlab::ws::detail::plain_deflate_state_config)

namespace netlab::ws {
namespace detail {

core::outcome load_tls(const serve_options& opt, tls_context_ptr& ctx) {
  const char* hint = "give a readable PEM file, e.g. openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem";
  ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  std::error_code ec;
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                       asio::ssl::context::single_dh_use,
                   ec);
  ctx->use_certificate_chain_file(opt.tls_cert, ec);
  if (ec) return core::outcome::fail(exit_code::usage, "--tls-cert " + opt.tls_cert + ": " + ec.message(), hint);
  ctx->use_private_key_file(opt.tls_key, asio::ssl::context::pem, ec);
  if (ec) return core::outcome::fail(exit_code::usage, "--tls-key " + opt.tls_key + ": " + ec.message(), hint);
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
    return core::outcome::fail(exit_code::usage, "--tls-key " + opt.tls_key + " does not match --tls-cert " + opt.tls_cert,
                               "give the key the certificate was made with");
  return core::outcome::success();
}

core::outcome run_plain(const serve_options& opt, core::runtime& rt, core::reporter& out) {
  return run_engine<plain_state_server>(opt, rt, out, nullptr);
}

core::outcome run_plain_deflate(const serve_options& opt, core::runtime& rt, core::reporter& out) {
  return run_engine<plain_deflate_state_server>(opt, rt, out, nullptr);
}

}  // namespace detail

core::outcome serve(const serve_options& opt, core::runtime& rt, core::reporter& out) {
  detail::tls_context_ptr tls;
  if (!opt.tls_cert.empty() || !opt.tls_key.empty()) {
    auto loaded = detail::load_tls(opt, tls);  // before anything binds
    if (!loaded.ok()) return loaded;
  }
  // Every connection is a file descriptor: at the usual soft limit of 1024 the server would refuse
  // everyone after ~1,015 idle clients while the hard limit allows far more.
  const auto files = tcp::raise_open_files_limit();
  if (files == UINT64_MAX)
    core::log().info("open files: no limit");
  else
    core::log().info("open files limit {}: room for about {} connections", files, files > 32 ? files - 32 : 0);
  if (tls && opt.deflate) return detail::run_tls_deflate(opt, rt, out, std::move(tls));
  if (tls) return detail::run_tls(opt, rt, out, std::move(tls));
  if (opt.deflate) return detail::run_plain_deflate(opt, rt, out);
  return detail::run_plain(opt, rt, out);
}

}  // namespace netlab::ws
