// Fuzz target: the parsers of user-typed values (lib/netlab/core/endpoint.hpp, text.hpp). The first
// byte picks the parser, the rest is the text.
// Invariants:
//  - parse_endpoint: an accepted host has no NUL, control character or space, and
//    parse_endpoint(ep.to_string()) gives ep back; a rejection always says why;
//  - parse_duration: an accepted duration is not negative and parse(format(d)) == d;
//  - parse_size: the value is exactly digits x unit, without overflow;
//  - decode_escapes: never longer than its input; decoding an escaped string gives it back;
//  - render_template: {msg} and {peer} are replaced, nothing else changes (length accounts for it).
#include <cctype>
#include <chrono>
#include <string>

#include "fuzz.hpp"
#include "netlab/core/endpoint.hpp"
#include "netlab/core/text.hpp"

using namespace netlab::core;

namespace {

void endpoint_case(std::string_view text, std::optional<std::uint16_t> def) {
  const auto r = parse_endpoint(text, def);
  if (!r) {
    FUZZ_CHECK(!r.error.empty());
    return;
  }
  const endpoint& ep = *r.value;
  for (unsigned char c : ep.host) FUZZ_CHECK(c != 0 && !std::iscntrl(c) && !std::isspace(c));
  const auto again = parse_endpoint(ep.to_string());
  FUZZ_CHECK(again && *again.value == ep);
}

void duration_case(std::string_view text) {
  const auto r = parse_duration(text);
  if (!r) {
    FUZZ_CHECK(!r.error.empty());
    return;
  }
  const auto d = *r.value;
  FUZZ_CHECK(d.count() >= 0);
  const std::string f = format_duration(d);
  const auto again = parse_duration(f);
  FUZZ_CHECK(again && *again.value == d);
}

void size_case(std::string_view text) {
  const auto r = parse_size(text);
  if (!r) {
    FUZZ_CHECK(!r.error.empty());
    return;
  }
  std::size_t i = 0;
  unsigned __int128 digits = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') digits = digits * 10 + static_cast<unsigned>(text[i++] - '0');
  const auto unit = text.substr(i);
  unsigned __int128 mult = 1;
  if (unit == "K" || unit == "k" || unit == "KiB") mult = 1024;
  else if (unit == "M" || unit == "MiB") mult = 1024 * 1024;
  else if (unit == "G" || unit == "GiB") mult = 1024ull * 1024 * 1024;
  else if (unit == "kB" || unit == "KB") mult = 1000;
  else if (unit == "MB") mult = 1000 * 1000;
  else if (unit == "GB") mult = 1000ull * 1000 * 1000;
  else FUZZ_CHECK(unit.empty() || unit == "B" || unit == "b");
  FUZZ_CHECK(i > 0 && digits * mult == *r.value);
}

std::string escape(std::string_view s) {
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c >= 0x20 && c < 0x7f) out.push_back(static_cast<char>(c));
    else out += std::string("\\x") + hex[c >> 4] + hex[c & 15];
  }
  return out;
}

void escapes_case(std::string_view text) {
  const auto r = decode_escapes(text);
  if (r) FUZZ_CHECK(r.value->size() <= text.size());
  else FUZZ_CHECK(!r.error.empty());
  const auto back = decode_escapes(escape(text));
  FUZZ_CHECK(back && *back.value == text);
}

void template_case(netlab::fuzz::reader& in) {
  const std::string msg(in.bytes(64));
  const std::string peer(in.bytes(64));
  const std::string tpl(in.rest());
  const std::string out = render_template(tpl, msg, peer);
  std::size_t n_msg = 0, n_peer = 0;
  for (std::size_t i = 0; i < tpl.size();) {
    if (tpl.compare(i, 5, "{msg}") == 0) { ++n_msg; i += 5; }
    else if (tpl.compare(i, 6, "{peer}") == 0) { ++n_peer; i += 6; }
    else ++i;
  }
  FUZZ_CHECK(out.size() == tpl.size() - 5 * n_msg - 6 * n_peer + n_msg * msg.size() + n_peer * peer.size());
  std::string appended = "x";
  render_template_into(appended, tpl, msg, peer);
  FUZZ_CHECK(appended == "x" + out);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* p, std::size_t n) {
  netlab::fuzz::reader in(p, n);
  const std::uint8_t which = in.u8();
  if (which % 6 == 5) {
    template_case(in);
    return 0;
  }
  const std::string text(in.rest());
  switch (which % 6) {
    case 0: endpoint_case(text, std::nullopt); break;
    case 1: endpoint_case(text, static_cast<std::uint16_t>(which)); break;
    case 2: duration_case(text); break;
    case 3: size_case(text); break;
    default: escapes_case(text); break;
  }
  return 0;
}
