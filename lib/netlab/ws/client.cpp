// ws-echo dial's entry point: picks the websocketpp client type. The types' instantiations live in
// client_plain.cpp (ws://) and client_tls.cpp (wss://); this file includes no websocketpp.
#include "netlab/ws/client.hpp"

#include "netlab/ws/client_session.hpp"

namespace netlab::ws {

core::outcome dial(const dial_options& opt, core::runtime& rt, core::reporter& out) {
  if (opt.target.secure) return opt.deflate ? detail::dial_tls_deflate(opt, rt, out) : detail::dial_tls(opt, rt, out);
  return opt.deflate ? detail::dial_plain_deflate(opt, rt, out) : detail::dial_plain(opt, rt, out);
}

}  // namespace netlab::ws
