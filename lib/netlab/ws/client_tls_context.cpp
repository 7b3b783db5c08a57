// The TLS context of a wss:// client, outside the websocketpp templates.
#include <asio/ssl/context.hpp>
#include <asio/ssl/host_name_verification.hpp>
#include <asio/ssl/verify_context.hpp>
#include <openssl/x509_vfy.h>

#include "netlab/ws/client_session.hpp"

namespace netlab::ws::detail {

ssl_context_ptr make_client_tls(const dial_options& opt, std::shared_ptr<std::string> verify_error) {
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
  ctx->set_verify_callback(
      [check = asio::ssl::host_name_verification(opt.target.host), verify_error](bool preverified,
                                                                                  asio::ssl::verify_context& vc) mutable {
        const bool ok = check(preverified, vc);
        if (!ok && verify_error && verify_error->empty()) {
          const int err = X509_STORE_CTX_get_error(vc.native_handle());
          *verify_error = err != X509_V_OK ? X509_verify_cert_error_string(err) : "the certificate does not name this host";
        }
        return ok;
      },
      ec);
  return ctx;
}

}  // namespace netlab::ws::detail
