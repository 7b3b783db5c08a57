// ws-echo dial over ws://: one websocketpp client type per translation unit, so the four compile in parallel
// and each costs a quarter of the instantiations.
#include "netlab/ws/detail/client_engine.hpp"

namespace netlab::ws::detail {

core::outcome dial_plain(const dial_options& opt, core::runtime& rt, core::reporter& out) {
  return run_dial<plain_client, false>(opt, rt, out);
}

}  // namespace netlab::ws::detail
