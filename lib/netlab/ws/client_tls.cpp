// The wss:// variants of ws-echo dial, in their own translation unit so they compile in parallel
// with the ws:// ones.
#include "netlab/ws/detail/client_engine.hpp"

namespace netlab::ws::detail {

ssl_context_ptr make_client_tls(const dial_options& opt) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  std::error_code ec;
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1,
                   ec);
  if (opt.insecure) {
    ctx->set_verify_mode(asio::ssl::verify_none, ec);
    return ctx;
  }
  ctx->set_verify_mode(asio::ssl::verify_peer, ec);
  if (!opt.cacert.empty()) ctx->load_verify_file(opt.cacert, ec);
  else ctx->set_default_verify_paths(ec);
  ctx->set_verify_callback(asio::ssl::host_name_verification(opt.target.host), ec);
  return ctx;
}

core::outcome dial_tls(const dial_options& opt, core::runtime& rt, core::reporter& out) {
  if (opt.deflate) return run_dial<tls_deflate_client, true>(opt, rt, out);
  return run_dial<tls_client, true>(opt, rt, out);
}

}  // namespace netlab::ws::detail
