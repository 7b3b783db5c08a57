#include "netlab/core/text.hpp"

namespace netlab::core {

void render_template_into(std::string& out, std::string_view tpl, std::string_view msg, std::string_view peer) {
  std::size_t i = 0;
  while (i < tpl.size()) {
    auto brace = tpl.find('{', i);
    if (brace == std::string_view::npos) {
      out.append(tpl.substr(i));
      break;
    }
    out.append(tpl.substr(i, brace - i));
    auto rest = tpl.substr(brace);
    if (rest.substr(0, 5) == "{msg}") {
      out.append(msg);
      i = brace + 5;
    } else if (rest.substr(0, 6) == "{peer}") {
      out.append(peer);
      i = brace + 6;
    } else {
      out.push_back('{');
      i = brace + 1;
    }
  }
}

std::string render_template(std::string_view tpl, std::string_view msg, std::string_view peer) {
  std::string out;
  out.reserve(tpl.size() + msg.size());
  render_template_into(out, tpl, msg, peer);
  return out;
}

parsed<std::string> decode_escapes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  auto hexval = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (i + 1 >= text.size()) return {{}, "message ends with a lone '\\' (write \\\\ for a backslash)"};
    char e = text[++i];
    switch (e) {
      case 'r': out.push_back('\r'); break;
      case 'n': out.push_back('\n'); break;
      case 't': out.push_back('\t'); break;
      case '0': out.push_back('\0'); break;
      case '\\': out.push_back('\\'); break;
      case 'x': {
        int hi = i + 1 < text.size() ? hexval(text[i + 1]) : -1;
        int lo = i + 2 < text.size() ? hexval(text[i + 2]) : -1;
        if (hi < 0 || lo < 0) return {{}, "escape '\\x' needs two hex digits (e.g. \\x41)"};
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        break;
      }
      default:
        return {{}, std::string("unknown escape '\\") + e + "' (known: \\r \\n \\t \\0 \\\\ \\xNN)"};
    }
  }
  return {std::move(out), {}};
}

parsed<std::uint64_t> parse_size(std::string_view text) {
  const std::string orig(text);
  auto bad = [&] {
    return parsed<std::uint64_t>{{}, "size '" + orig + "' is not valid (use bytes or a suffix: 512, 16K, 16KiB, 1M, 1MB)"};
  };
  std::size_t i = 0;
  std::uint64_t v = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (v > (UINT64_MAX - 9) / 10) return bad();
    v = v * 10 + static_cast<std::uint64_t>(text[i] - '0');
    ++i;
  }
  if (i == 0) return bad();
  auto unit = text.substr(i);
  std::uint64_t mult = 1;
  if (unit.empty() || unit == "B" || unit == "b") mult = 1;
  else if (unit == "K" || unit == "k" || unit == "KiB") mult = 1024;
  else if (unit == "M" || unit == "MiB") mult = 1024 * 1024;
  else if (unit == "G" || unit == "GiB") mult = 1024ull * 1024 * 1024;
  else if (unit == "kB" || unit == "KB") mult = 1000;
  else if (unit == "MB") mult = 1000 * 1000;
  else if (unit == "GB") mult = 1000ull * 1000 * 1000;
  else return bad();
  if (v != 0 && mult > UINT64_MAX / v) return bad();
  return {v * mult, {}};
}

}  // namespace netlab::core
