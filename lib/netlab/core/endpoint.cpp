#include "netlab/core/endpoint.hpp"

#include <asio/io_context.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace netlab::core {
namespace {

template <class T>
parsed<T> fail(std::string msg) {
  parsed<T> p;
  p.error = std::move(msg);
  return p;
}

// The text of an IPv6 literal, checked before Asio parses it: Asio reads a std::string up to its
// first NUL and takes anything after '%' as a scope, so "::1\0x" and "::%]:0" parsed as addresses
// and the whole text became the host (found by fuzz_core_parsers).
bool ipv6_text(std::string_view h) {
  const auto zone = h.find('%');
  if (zone == 0 || zone + 1 == h.size()) return false;
  for (std::size_t i = 0; i < h.size(); ++i) {
    const auto c = static_cast<unsigned char>(h[i]);
    const bool ok = i < zone ? (std::isxdigit(c) || c == ':' || c == '.')
                             : (i == zone || std::isalnum(c) || c == '-' || c == '_' || c == '.');
    if (!ok) return false;
  }
  return true;
}

template <class Proto>
std::vector<typename Proto::endpoint> resolve(const endpoint& e, bool passive, std::error_code& ec) {
  std::vector<typename Proto::endpoint> out;
  ec.clear();
  if (e.host.empty()) {
    // All interfaces: the dual-stack IPv6 wildcard where available, else IPv4.
    out.emplace_back(Proto::v6(), e.port);
    out.emplace_back(Proto::v4(), e.port);
    return out;
  }
  asio::error_code aec;
  auto addr = asio::ip::make_address(e.host, aec);
  if (!aec) {
    out.emplace_back(addr, e.port);
    return out;
  }
  asio::io_context ioc;
  typename Proto::resolver r(ioc);
  auto flags = passive ? Proto::resolver::passive : typename Proto::resolver::flags{};
  auto results = r.resolve(e.host, std::to_string(e.port), flags | Proto::resolver::numeric_service, aec);
  if (aec) {
    ec = aec;
    return out;
  }
  for (const auto& entry : results) out.push_back(entry.endpoint());
  return out;
}

}  // namespace

std::string endpoint::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

parsed<endpoint> parse_endpoint(std::string_view text, std::optional<std::uint16_t> default_port) {
  if (text.empty()) return fail<endpoint>("address is empty (expected HOST:PORT, :PORT or [::1]:PORT)");
  endpoint ep;
  std::string_view port_text;
  if (text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos)
      return fail<endpoint>("address '" + std::string(text) + "' has '[' without ']' (write IPv6 as [::1]:PORT)");
    ep.host = std::string(text.substr(1, close - 1));
    auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':')
        return fail<endpoint>("address '" + std::string(text) + "': expected ':PORT' after ']'");
      port_text = rest.substr(1);
      if (port_text.empty()) return fail<endpoint>("address '" + std::string(text) + "' has an empty port");
    }
    asio::error_code aec;
    if (ipv6_text(ep.host)) asio::ip::make_address_v6(ep.host, aec);
    else aec = asio::error::invalid_argument;
    if (aec) return fail<endpoint>("'" + ep.host + "' in '" + std::string(text) + "' is not an IPv6 address");
  } else {
    auto colon = text.rfind(':');
    if (colon != std::string_view::npos && text.find(':') != colon) {
      // Several colons without brackets: a bare IPv6 address; only valid without a port.
      asio::error_code aec;
      if (ipv6_text(text)) asio::ip::make_address_v6(std::string(text), aec);
      else aec = asio::error::invalid_argument;
      if (!aec && default_port) {
        ep.host = std::string(text);
        ep.port = *default_port;
        return {ep, {}};
      }
      return fail<endpoint>("address '" + std::string(text) + "' is ambiguous: write IPv6 with brackets, [::1]:PORT");
    }
    if (colon == std::string_view::npos) {
      ep.host = std::string(text);
    } else {
      ep.host = std::string(text.substr(0, colon));
      port_text = text.substr(colon + 1);
      if (port_text.empty()) return fail<endpoint>("address '" + std::string(text) + "' has an empty port");
    }
    for (unsigned char c : ep.host)
      if (!(std::isalnum(c) || c == '.' || c == '-' || c == '_'))
        return fail<endpoint>("host '" + ep.host + "' in '" + std::string(text) + "' has an invalid character");
  }
  if (port_text.empty()) {
    if (!default_port)
      return fail<endpoint>("address '" + std::string(text) + "' has no port (expected HOST:PORT)");
    ep.port = *default_port;
    return {ep, {}};
  }
  unsigned long v = 0;
  auto [p, err] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), v);
  if (err != std::errc{} || p != port_text.data() + port_text.size())
    return fail<endpoint>("port '" + std::string(port_text) + "' in '" + std::string(text) + "' is not a number");
  if (v > 65535)
    return fail<endpoint>("port '" + std::string(port_text) + "' is out of range (0-65535)");
  ep.port = static_cast<std::uint16_t>(v);
  return {ep, {}};
}

parsed<std::chrono::milliseconds> parse_duration(std::string_view text) {
  const std::string orig(text);
  const auto bad = [&] {
    return fail<std::chrono::milliseconds>("duration '" + orig +
                                           "' is not valid (use seconds or a suffix: 2, 2s, 500ms, 1m, 1h)");
  };
  if (text.empty()) return bad();
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  auto num = text.substr(0, i);
  auto unit = text.substr(i);
  if (num.empty() || num.find('.') != num.rfind('.')) return bad();
  char* end = nullptr;
  std::string num_s(num);
  double v = std::strtod(num_s.c_str(), &end);
  if (end != num_s.c_str() + num_s.size() || !std::isfinite(v) || v < 0) return bad();
  double scale = 0;
  if (unit.empty() || unit == "s") scale = 1000;
  else if (unit == "ms") scale = 1;
  else if (unit == "m" || unit == "min") scale = 60'000;
  else if (unit == "h") scale = 3'600'000;
  else if (unit == "us") scale = 0.001;
  else return bad();
  double ms = v * scale;
  if (ms > 1e12) return fail<std::chrono::milliseconds>("duration '" + orig + "' is too long");
  if (ms > 0 && ms < 1) ms = 1;
  return {std::chrono::milliseconds(static_cast<long long>(std::llround(ms))), {}};
}

std::string format_duration(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms % 1000 != 0) {
    if (ms < 1000 && ms > -1000) return std::to_string(ms) + "ms";
    // Exact, so parse_duration(format_duration(d)) == d: "1.5s", "1.234s", "250.25s" ("%.3g"
    // printed 250250ms as "250s" and 1234567ms as "1.23e+03s"; found by fuzz_core_parsers).
    std::string frac = std::to_string(std::abs(ms % 1000) + 1000).substr(1);
    while (frac.back() == '0') frac.pop_back();
    return (ms < 0 ? "-" : "") + std::to_string(std::abs(ms / 1000)) + "." + frac + "s";
  }
  if (ms >= 60'000 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  return std::to_string(ms / 1000) + "s";
}

std::string to_string(const asio::ip::address& a, std::uint16_t port) {
  if (a.is_v6()) {
    auto v6 = a.to_v6();
    if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string() + ":" + std::to_string(port);
    return "[" + a.to_string() + "]:" + std::to_string(port);
  }
  return a.to_string() + ":" + std::to_string(port);
}
std::string to_string(const asio::ip::tcp::endpoint& e) { return to_string(e.address(), e.port()); }
std::string to_string(const asio::ip::udp::endpoint& e) { return to_string(e.address(), e.port()); }

std::vector<asio::ip::tcp::endpoint> resolve_tcp(const endpoint& e, bool passive, std::error_code& ec) {
  return resolve<asio::ip::tcp>(e, passive, ec);
}
std::vector<asio::ip::udp::endpoint> resolve_udp(const endpoint& e, bool passive, std::error_code& ec) {
  return resolve<asio::ip::udp>(e, passive, ec);
}

}  // namespace netlab::core
