#pragma once
/// Pure ws:// / wss:// URL parsing (no I/O), shared by ws-echo dial and its tests.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace netlab::ws {

/// A parsed WebSocket URL; host has no brackets (IPv6 literals are bare).
struct url {
  bool secure = false;        ///< wss
  std::string host;           ///< hostname, IPv4 or bare IPv6 literal
  std::uint16_t port = 0;     ///< explicit port or 80 (ws) / 443 (wss)
  std::string resource = "/"; ///< path plus "?query", never empty; fragment dropped
  bool ipv6() const { return host.find(':') != std::string::npos; }
  /// host:port with brackets around IPv6 literals.
  std::string authority() const;
  /// Canonical text form, e.g. "ws://[::1]:8899/echo?x=1".
  std::string str() const;
};

/// Parses `text`; on failure returns nullopt and sets *error (if given) to a one-line reason.
std::optional<url> parse_url(std::string_view text, std::string* error = nullptr);

}  // namespace netlab::ws
