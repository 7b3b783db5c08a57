#include "netlab/ws/client.hpp"

#include "netlab/ws/detail/client_engine.hpp"

namespace netlab::ws {
namespace detail {
core::outcome dial_tls(const dial_options& opt, core::runtime& rt, core::reporter& out);  // client_tls.cpp
}  // namespace detail

core::outcome dial(const dial_options& opt, core::runtime& rt, core::reporter& out) {
  if (opt.target.secure) return detail::dial_tls(opt, rt, out);
  if (opt.deflate) return detail::run_dial<detail::plain_deflate_client, false>(opt, rt, out);
  return detail::run_dial<detail::plain_client, false>(opt, rt, out);
}

}  // namespace netlab::ws
