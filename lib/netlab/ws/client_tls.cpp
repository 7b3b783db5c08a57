// The wss:// variants of ws-echo dial, in their own translation unit so they compile in parallel
// with the ws:// ones.
#include "netlab/ws/detail/client_engine.hpp"

namespace netlab::ws::detail {

core::outcome dial_tls(const dial_options& opt, core::runtime& rt, core::reporter& out) {
  if (opt.deflate) return run_dial<tls_deflate_client, true>(opt, rt, out);
  return run_dial<tls_client, true>(opt, rt, out);
}

}  // namespace netlab::ws::detail
