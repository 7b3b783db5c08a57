// ws-echo serve over TLS with permessage-deflate: its own translation unit (server_run.hpp).
#include "netlab/ws/detail/echo_engine.hpp"

namespace netlab::ws::detail {

core::outcome run_tls_deflate(const serve_options& opt, core::runtime& rt, core::reporter& out, tls_context_ptr tls) {
  return run_engine<tls_deflate_state_server>(opt, rt, out, std::move(tls));
}

}  // namespace netlab::ws::detail
