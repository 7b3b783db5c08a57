// ws-echo dial over ws://, with and without permessage-deflate. Two websocketpp client types per
// translation unit, not one: most of a type's cost is shared (measured, -O2 -g1: one type 23.6 s of
// CPU, two 25.2 s), so on two cores two files of two types build sooner than four of one.
#include "netlab/ws/detail/client_engine.hpp"

namespace netlab::ws::detail {

core::outcome dial_plain(const dial_options& opt, core::runtime& rt, core::reporter& out) {
  return run_dial<plain_client, false>(opt, rt, out);
}

core::outcome dial_plain_deflate(const dial_options& opt, core::runtime& rt, core::reporter& out) {
  return run_dial<plain_deflate_client, false>(opt, rt, out);
}

}  // namespace netlab::ws::detail
