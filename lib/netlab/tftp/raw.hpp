#pragma once
/// `--protocol raw`: the classic lesson's unreliable file streaming over UDP, kept as a contrast to
/// TFTP. The stream itself has no numbers, no acknowledgements and no end marker; the client stops
/// after a silence (or once it has the announced size) and reports what arrived.
///
/// So that the server is not an amplifier for spoofed requests, nothing larger than a request goes to
/// an address that has not proved it receives there (a round trip, as DTLS's HelloVerifyRequest or
/// QUIC's Retry), and the stream is paced:
///   client: "STAT - name" (NUL-padded to raw_min_request bytes)  server: "COOKIE <32 hex>"
///   client: "STAT <cookie> name"                                 server: "OK size sha256" | "ERR why"
///   client: "GET <cookie> name"                                  server: 512-byte datagrams at --rate
/// A request without a valid cookie gets one COOKIE reply, and only when the request is at least as
/// large as that reply; anything else gets no answer at all.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "netlab/core/error.hpp"
#include "netlab/core/report.hpp"
#include "netlab/core/runtime.hpp"

namespace netlab::tftp {

struct serve_options;
struct fetch_options;

/// Payload bytes per stream datagram (the lesson's size).
constexpr std::size_t raw_chunk = 512;
/// A request without a valid cookie is answered only if it is at least this long; the client pads to it.
constexpr std::size_t raw_min_request = 64;
/// Hex characters of a cookie.
constexpr std::size_t raw_cookie_chars = 32;
/// Size of the COOKIE reply ("COOKIE " + 32 hex): never more than an answered request.
constexpr std::size_t raw_cookie_reply = 7 + raw_cookie_chars;
/// At most this many COOKIE replies per second in total (a reflection attempt spreads no further).
constexpr unsigned raw_cookie_replies_per_second = 1000;

/// A raw-mode request: VERB SP COOKIE SP NAME, where COOKIE is "-" when the client has none yet,
/// padded with NUL bytes to raw_min_request.
std::string raw_request(std::string_view verb, std::string_view cookie, std::string_view name);

/// The parts of a raw-mode request (the name ends at the first NUL); ok is false when it has fewer
/// than three parts.
struct raw_request_parts {
  std::string verb, cookie, name;
  bool ok = false;
};
/// Splits a request datagram.
raw_request_parts parse_raw_request(const std::uint8_t* p, std::size_t n);

/// Stateless return-routability cookies: HMAC-SHA256 under a secret drawn at start, over a time
/// period number and the client's address and port, truncated to 128 bits. A cookie is valid in the
/// period it was issued in and the next (60 to 120 s).
class raw_cookies {
public:
  /// Seconds per period.
  static constexpr std::uint64_t period_s = 60;
  /// Cookies under `secret`.
  explicit raw_cookies(const std::array<std::uint8_t, 32>& secret) noexcept : secret_(secret) {}
  /// The cookie for `peer` (any bytes naming address and port) at time `now_s` (seconds, any epoch).
  std::string issue(std::string_view peer, std::uint64_t now_s) const;
  /// True if `cookie` was issued to `peer` in this period or the one before (constant-time compare).
  bool check(std::string_view cookie, std::string_view peer, std::uint64_t now_s) const;

private:
  std::string for_period(std::string_view peer, std::uint64_t period) const;
  std::array<std::uint8_t, 32> secret_;
};

/// A token bucket: `rate` bytes per second on average, bursts up to `burst` bytes.
class raw_pacer {
public:
  using clock = std::chrono::steady_clock;
  /// Starts full at time `now`.
  raw_pacer(std::uint64_t rate, std::uint64_t burst, clock::time_point now) noexcept;
  /// Takes `n` bytes if the bucket holds them at `now`.
  bool take(std::size_t n, clock::time_point now) noexcept;
  /// How long until `n` bytes are available (zero if they are).
  std::chrono::microseconds wait_for(std::size_t n, clock::time_point now) noexcept;

private:
  void refill(clock::time_point now) noexcept;
  double rate_, burst_, tokens_;
  clock::time_point last_;
};

/// The bucket size of a raw server sending at `rate` bytes per second: 5 ms of sending, at least
/// two datagrams (so pacing wakes up at most ~200 times a second, and a short burst is all it adds).
std::uint64_t raw_burst(std::uint64_t rate) noexcept;

/// Raw-mode server (called by serve() for --protocol raw).
core::outcome serve_raw(const serve_options& opt, core::runtime& rt, core::reporter& out);
/// Raw-mode client (called by fetch() for --protocol raw).
core::outcome fetch_raw(const fetch_options& opt, core::runtime& rt, core::reporter& out);

}  // namespace netlab::tftp
