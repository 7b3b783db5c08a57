#pragma once
/// Addresses as users type them (HOST:PORT, :PORT, [::1]:PORT) and durations (2, 2s, 500ms, 1m).
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>

namespace netlab::core {

/// A host (name, IPv4 or IPv6 literal without brackets; empty = all interfaces) and a port.
struct endpoint {
  std::string host;
  std::uint16_t port = 0;

  /// "127.0.0.1:80", "[::1]:80", ":80" for all interfaces.
  std::string to_string() const;
  bool operator==(const endpoint& o) const { return host == o.host && port == o.port; }
};

/// Result of parsing user input: a value, or an error message naming the bad part.
template <class T>
struct parsed {
  std::optional<T> value;
  std::string error;  ///< "port '99999' is out of range 0-65535"
  explicit operator bool() const { return value.has_value(); }
};

/// Parses HOST:PORT, :PORT, [V6]:PORT. A missing port is an error unless default_port is given.
parsed<endpoint> parse_endpoint(std::string_view text, std::optional<std::uint16_t> default_port = {});

/// Parses 2, 2s, 1.5s, 500ms, 1m, 1h (plain numbers are seconds). Negative values are errors.
parsed<std::chrono::milliseconds> parse_duration(std::string_view text);

/// Formats a duration the way users type it: "500ms", "2s", "1.5s".
std::string format_duration(std::chrono::milliseconds d);

/// Formats an Asio address and port: "127.0.0.1:80" or "[::1]:80".
std::string to_string(const asio::ip::address& a, std::uint16_t port);
std::string to_string(const asio::ip::tcp::endpoint& e);
std::string to_string(const asio::ip::udp::endpoint& e);

/// Resolves for listening: an empty host means all interfaces (IPv6 any, dual-stack, else IPv4 any).
std::vector<asio::ip::tcp::endpoint> resolve_tcp(const endpoint& e, bool passive, std::error_code& ec);
/// Same for UDP.
std::vector<asio::ip::udp::endpoint> resolve_udp(const endpoint& e, bool passive, std::error_code& ec);

}  // namespace netlab::core
