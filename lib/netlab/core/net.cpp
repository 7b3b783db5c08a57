#include "netlab/core/net.hpp"

namespace netlab::core {
namespace {

template <class Socket, class Endpoint>
outcome open_bound(Socket& s, const std::vector<Endpoint>& candidates, const endpoint& where, bool listen, int backlog) {
  std::error_code last;
  for (const auto& ep : candidates) {
    asio::error_code ec;
    if (s.is_open()) s.close(ec);
    s.open(ep.protocol(), ec);
    if (ec) {
      last = ec;
      continue;  // e.g. no IPv6 on this machine: try the next candidate
    }
    if (ep.address().is_v6() && ep.address().is_unspecified()) s.set_option(asio::ip::v6_only(false), ec);
    if constexpr (std::is_same_v<Socket, asio::ip::tcp::acceptor>) s.set_option(asio::socket_base::reuse_address(true), ec);
    s.bind(ep, ec);
    if (!ec && listen) {
      if constexpr (std::is_same_v<Socket, asio::ip::tcp::acceptor>) s.listen(backlog, ec);
    }
    if (!ec) return outcome::success();
    last = ec;
    // Address in use or permission denied will not get better on the other family.
    if (ec == asio::error::address_in_use || ec == asio::error::access_denied) break;
  }
  asio::error_code ignored;
  if (s.is_open()) s.close(ignored);
  std::string hint = hint_for(last);
  if (last == std::errc::permission_denied && where.port >= 1024) hint = "check the address and your permissions";
  return outcome::fail(exit_code::network, "bind " + where.to_string() + ": " + last.message(), hint);
}

}  // namespace

outcome listen_tcp(asio::ip::tcp::acceptor& acc, const endpoint& where, int backlog) {
  std::error_code ec;
  auto eps = resolve_tcp(where, true, ec);
  if (ec) return outcome::fail(exit_code::network, "resolve " + where.host + ": " + ec.message(), "check the host name");
  return open_bound(acc, eps, where, true, backlog);
}

outcome bind_udp(asio::ip::udp::socket& sock, const endpoint& where) {
  std::error_code ec;
  auto eps = resolve_udp(where, true, ec);
  if (ec) return outcome::fail(exit_code::network, "resolve " + where.host + ": " + ec.message(), "check the host name");
  return open_bound(sock, eps, where, false, 0);
}

void set_nodelay(asio::ip::tcp::socket& s) {
  asio::error_code ec;
  s.set_option(asio::ip::tcp::no_delay(true), ec);
}

std::string address_string(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).to_string();
  return a.to_string();
}

}  // namespace netlab::core
