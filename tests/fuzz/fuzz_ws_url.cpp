// Fuzz target: the ws:// / wss:// URL parser (lib/netlab/ws/url.hpp).
// Invariants, for any text parse_url() accepts:
//  - the host is not empty and has no NUL, control character, space, '/', '?', '#', '@' or
//    (outside brackets) ':' - nothing that could smuggle a second host or header into a request;
//  - the port is 1-65535; the resource starts with '/' and has no space or control character;
//  - parse_url(u.str()) gives the same URL back (the canonical form is a fixed point).
#include <cctype>
#include <string>

#include "fuzz.hpp"
#include "netlab/ws/url.hpp"

using netlab::ws::parse_url;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* p, std::size_t n) {
  const std::string text(reinterpret_cast<const char*>(p), n);
  std::string err;
  const auto u = parse_url(text, &err);
  if (!u) {
    FUZZ_CHECK(!err.empty());
    return 0;
  }
  FUZZ_CHECK(!u->host.empty());
  for (unsigned char c : u->host) {
    FUZZ_CHECK(c != 0 && !std::iscntrl(c) && !std::isspace(c) && c >= 0x21 && c < 0x7f);
    FUZZ_CHECK(c != '/' && c != '?' && c != '#' && c != '@' && c != '[' && c != ']');
  }
  FUZZ_CHECK(u->port >= 1);
  FUZZ_CHECK(!u->resource.empty() && u->resource.front() == '/');
  for (unsigned char c : u->resource) FUZZ_CHECK(!std::iscntrl(c) && !std::isspace(c) && c != '#');

  const std::string canon = u->str();
  std::string err2;
  const auto again = parse_url(canon, &err2);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->secure == u->secure && again->host == u->host && again->port == u->port &&
             again->resource == u->resource);
  FUZZ_CHECK(again->str() == canon);
  return 0;
}
