#include "netlab/ws/url.hpp"

#include <cctype>

namespace netlab::ws {

namespace {

std::optional<url> fail(std::string* error, std::string why) {
  if (error) *error = std::move(why);
  return std::nullopt;
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  return true;
}

}  // namespace

std::string url::authority() const {
  std::string h = ipv6() ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

std::string url::str() const { return std::string(secure ? "wss://" : "ws://") + authority() + resource; }

std::optional<url> parse_url(std::string_view text, std::string* error) {
  url u;
  if (iequals_prefix(text, "ws://")) {
    text.remove_prefix(5);
  } else if (iequals_prefix(text, "wss://")) {
    u.secure = true;
    text.remove_prefix(6);
  } else {
    return fail(error, "scheme must be ws:// or wss://");
  }
  if (auto hash = text.find('#'); hash != std::string_view::npos) text = text.substr(0, hash);
  std::size_t end = text.find_first_of("/?");
  std::string_view auth = text.substr(0, end);
  std::string_view rest = end == std::string_view::npos ? std::string_view{} : text.substr(end);
  if (auth.find('@') != std::string_view::npos) return fail(error, "user info in URL is not supported");
  std::string_view port_text;
  if (!auth.empty() && auth.front() == '[') {
    auto close = auth.find(']');
    if (close == std::string_view::npos) return fail(error, "unterminated IPv6 literal (missing ']')");
    u.host = std::string(auth.substr(1, close - 1));
    if (u.host.empty()) return fail(error, "empty IPv6 literal");
    // Brackets hold IPv6 only: "[example]" would print back without them (found by fuzz_ws_url).
    if (u.host.find(':') == std::string::npos) return fail(error, "not an IPv6 literal in brackets");
    auto zone = u.host.find('%');  // scope id (RFC 6874 "%25eth0") may hold any alnum
    for (std::size_t i = 0; i < u.host.size(); ++i) {
      auto c = static_cast<unsigned char>(u.host[i]);
      bool ok = i < zone ? (std::isxdigit(c) || c == ':' || c == '.')
                         : (std::isalnum(c) || c == '%' || c == '-' || c == '_' || c == '.');
      if (!ok) return fail(error, "invalid character in IPv6 literal");
    }
    std::string_view after = auth.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail(error, "unexpected text after IPv6 literal");
      port_text = after.substr(1);
      if (port_text.empty()) return fail(error, "empty port");
    }
  } else {
    auto colon = auth.find(':');
    if (colon != std::string_view::npos) {
      if (auth.find(':', colon + 1) != std::string_view::npos)
        return fail(error, "IPv6 literals must be in brackets, e.g. ws://[::1]:8899/");
      port_text = auth.substr(colon + 1);
      if (port_text.empty()) return fail(error, "empty port");
      auth = auth.substr(0, colon);
    }
    u.host = std::string(auth);
    // RFC 3986 reg-name, minus what no resolver takes: letters, digits, '-', '.', '_', '~'. Anything
    // else (a NUL, a space, CR/LF, a non-ASCII byte) would travel into the Host header or the
    // resolver as is (found by fuzz_ws_url).
    for (unsigned char c : u.host)
      if (!(std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~'))
        return fail(error, "invalid character in host name");
  }
  if (u.host.empty()) return fail(error, "missing host");
  if (!port_text.empty()) {
    unsigned long p = 0;
    for (char c : port_text) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return fail(error, "port is not a number");
      p = p * 10 + static_cast<unsigned long>(c - '0');
      if (p > 65535) return fail(error, "port out of range (1-65535)");
    }
    if (p == 0) return fail(error, "port out of range (1-65535)");
    u.port = static_cast<std::uint16_t>(p);
  } else {
    u.port = u.secure ? 443 : 80;
  }
  if (rest.empty()) {
    u.resource = "/";
  } else if (rest.front() == '?') {
    u.resource = "/" + std::string(rest);
  } else {
    u.resource = std::string(rest);
  }
  for (char c : u.resource)
    if (std::isspace(static_cast<unsigned char>(c)) || std::iscntrl(static_cast<unsigned char>(c)))
      return fail(error, "whitespace or control character in path");
  return u;
}

}  // namespace netlab::ws
