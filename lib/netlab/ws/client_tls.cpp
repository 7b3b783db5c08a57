// ws-echo dial over wss://, with and without permessage-deflate. Two websocketpp client types per
// translation unit, not one: most of a type's cost is shared (measured, -O2 -g1: one type 23.6 s of
// CPU, two 25.2 s), so on two cores two files of two types build sooner than four of one.
#include "netlab/ws/detail/client_engine.hpp"

namespace netlab::ws::detail {

core::outcome dial_tls(const dial_options& opt, core::runtime& rt, core::reporter& out) {
  return run_dial<tls_client, true>(opt, rt, out);
}

core::outcome dial_tls_deflate(const dial_options& opt, core::runtime& rt, core::reporter& out) {
  return run_dial<tls_deflate_client, true>(opt, rt, out);
}

}  // namespace netlab::ws::detail
