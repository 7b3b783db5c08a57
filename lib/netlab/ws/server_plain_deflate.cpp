// ws-echo serve, plain ws:// with permessage-deflate: its own translation unit (server_run.hpp).
#include "netlab/ws/detail/echo_engine.hpp"
#include "netlab/ws/detail/fast_handlers.hpp"
#include "netlab/ws/detail/fast_read.hpp"
#include "netlab/ws/detail/fast_send.hpp"

NETLAB_WSPP_FAST_READ(netlab::ws::detail::plain_deflate_state_config)  // issue 17: see fast_read.hpp
NETLAB_WSPP_LEAN_HANDLERS(netlab::ws::detail::plain_deflate_state_config)  // issue 17: see fast_handlers.hpp
NETLAB_WSPP_LEAN_SEND(netlab::ws::detail::plain_deflate_state_config)  // issue 17: see fast_send.hpp

namespace netlab::ws::detail {

core::outcome run_plain_deflate(const serve_options& opt, core::runtime& rt, core::reporter& out) {
  return run_engine<plain_deflate_state_server>(opt, rt, out, nullptr);
}

}  // namespace netlab::ws::detail
