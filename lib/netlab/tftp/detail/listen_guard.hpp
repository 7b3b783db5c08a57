#pragma once
/// The rules of the TFTP listening port that keep it from being a loop or a reflector (issue 13):
/// which sources are never answered, and the token bucket of ERROR replies to malformed requests.
#include <algorithm>
#include <chrono>

#include <asio/ip/udp.hpp>

namespace netlab::tftp::detail {

/// True if `peer` may be this server's own listening endpoint `local`: the same port on the same
/// address, on a loopback address, or (when bound to a wildcard) on any address, IPv4-mapped included.
/// Nothing legitimate sends from there; answering would send to ourselves, and with the reply answered
/// in turn, loop forever (CVE-2024-2169 class). A remote client bound to a TFTP server's port is as
/// suspect: two servers answering each other loop the same way.
inline bool is_own_endpoint(const asio::ip::udp::endpoint& peer, const asio::ip::udp::endpoint& local) {
  if (peer.port() != local.port()) return false;
  auto a = peer.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  auto l = local.address();
  if (l.is_v6() && l.to_v6().is_v4_mapped()) l = asio::ip::make_address_v4(asio::ip::v4_mapped, l.to_v6());
  return a == l || a.is_loopback() || l.is_unspecified();
}

/// A token bucket: `burst` tokens, refilled at `rate` per second; take() spends one if there is one.
class token_bucket {
public:
  using clock = std::chrono::steady_clock;
  token_bucket(double rate, double burst, clock::time_point now = clock::now()) noexcept
      : rate_(rate), burst_(burst), tokens_(burst), refilled_(now) {}
  /// True if a token was available at `now` (and is now spent).
  bool take(clock::time_point now = clock::now()) noexcept {
    if (now > refilled_) {
      tokens_ = std::min(burst_, tokens_ + std::chrono::duration<double>(now - refilled_).count() * rate_);
      refilled_ = now;
    }
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

private:
  double rate_, burst_, tokens_;
  clock::time_point refilled_;
};

}  // namespace netlab::tftp::detail
