// ws-echo serve over TLS (wss://): the websocketpp asio_tls instantiations of the engine.
#include "netlab/ws/detail/echo_engine.hpp"

namespace netlab::ws::detail {

core::outcome run_tls(const serve_options& opt, core::runtime& rt, core::reporter& out, tls_context_ptr tls) {
  return run_engine<tls_state_server>(opt, rt, out, std::move(tls));
}

core::outcome run_tls_deflate(const serve_options& opt, core::runtime& rt, core::reporter& out, tls_context_ptr tls) {
  return run_engine<tls_deflate_state_server>(opt, rt, out, std::move(tls));
}

}  // namespace netlab::ws::detail
