#include "netlab/tcp/preview.hpp"

#include <cstdio>

namespace netlab::tcp {
namespace {

// Length of a well-formed UTF-8 sequence starting at p (2..4), or 0 (RFC 3629, no overlongs).
std::size_t utf8_length(const unsigned char* p, std::size_t left) {
  const unsigned char c = p[0];
  std::size_t len = 0;
  if (c >= 0xC2 && c <= 0xDF) len = 2;
  else if (c >= 0xE0 && c <= 0xEF) len = 3;
  else if (c >= 0xF0 && c <= 0xF4) len = 4;
  else return 0;
  if (left < len) return 0;
  for (std::size_t i = 1; i < len; ++i)
    if ((p[i] & 0xC0) != 0x80) return 0;
  if (c == 0xE0 && p[1] < 0xA0) return 0;
  if (c == 0xED && p[1] > 0x9F) return 0;  // surrogates
  if (c == 0xF0 && p[1] < 0x90) return 0;
  if (c == 0xF4 && p[1] > 0x8F) return 0;
  return len;
}

}  // namespace

std::string preview(const void* data, std::size_t n, std::size_t limit) {
  const auto* p = static_cast<const unsigned char*>(data);
  const std::size_t shown = n < limit ? n : limit;
  std::string out;
  out.reserve(shown + 8);
  out.push_back('"');
  for (std::size_t i = 0; i < shown;) {
    const unsigned char c = p[i];
    if (c >= 0x20 && c < 0x7F) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    if (std::size_t len = utf8_length(p + i, shown - i)) {
      out.append(reinterpret_cast<const char*>(p + i), len);
      i += len;
      continue;
    }
    switch (c) {
      case '\r': out += "\\r"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default: {
        char hex[5];
        std::snprintf(hex, sizeof hex, "\\x%02x", c);
        out += hex;
      }
    }
    ++i;
  }
  out.push_back('"');
  if (shown < n) out += "...";
  return out;
}

}  // namespace netlab::tcp
