#pragma once
/// Opening listening sockets the same way everywhere: resolve, dual-stack wildcard, clear errors.
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>
#include <asio/ip/v6_only.hpp>

#include "netlab/core/endpoint.hpp"
#include "netlab/core/error.hpp"

namespace netlab::core {

/// Opens, binds and listens `acc` on `where` (empty host: all interfaces, IPv6 dual-stack when the
/// machine has IPv6, else IPv4). On failure returns the outcome to report ("bind :689: Permission
/// denied (ports below 1024 need root...)"), with the exit code for a network error.
outcome listen_tcp(asio::ip::tcp::acceptor& acc, const endpoint& where, int backlog = asio::socket_base::max_listen_connections);

/// Opens and binds a UDP socket on `where`, like listen_tcp.
outcome bind_udp(asio::ip::udp::socket& sock, const endpoint& where);

/// Sets TCP_NODELAY, ignoring errors (a closed socket is reported by the next operation).
void set_nodelay(asio::ip::tcp::socket& s);

/// "127.0.0.1" for an address, unmapping IPv4-mapped IPv6 addresses.
std::string address_string(const asio::ip::address& a);

}  // namespace netlab::core
