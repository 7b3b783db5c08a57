#include "netlab/tftp/negotiate.hpp"

#include <algorithm>
#include <utility>

namespace netlab::tftp {
namespace {

void add(std::vector<option>& v, const char* name, std::uint64_t value) {
  v.push_back(option{name, std::to_string(value)});
}

// Timeout options: "timeout" in seconds (RFC 2349: 1..255), "utimeout" in microseconds (tftp-hpa).
constexpr std::uint64_t min_utimeout = 10'000;
constexpr std::uint64_t max_utimeout = 255'000'000;

}  // namespace

server_answer negotiate(const request& req, const server_limits& lim, std::uint64_t file_size) {
  server_answer a;
  a.settings.timeout = lim.default_timeout;
  a.settings.retries = lim.retries;
  const bool seen_utimeout = find_option(req.options, "utimeout") != nullptr;
  // A repeated option counts once, as first given: an OACK naming blksize twice (with the transfer
  // using the last) left the client free to believe either (found by fuzz_tftp_negotiate). One flag
  // per known name, not a search of the earlier options: a datagram may carry 20,000 options.
  bool seen[5] = {};
  const auto first = [&seen](int k) { return !std::exchange(seen[k], true); };
  for (const auto& o : req.options) {
    std::uint64_t v = 0;
    if (iequals(o.name, "blksize")) {
      if (!first(0)) continue;
      if (!parse_option_value(o.value, 8, UINT64_MAX, v)) continue;
      a.settings.blksize = static_cast<std::size_t>(std::min<std::uint64_t>({v, max_blksize, lim.max_blksize}));
      add(a.accepted, "blksize", a.settings.blksize);
    } else if (iequals(o.name, "windowsize")) {
      if (!first(1)) continue;
      if (!parse_option_value(o.value, 1, max_windowsize, v)) continue;
      a.settings.windowsize = static_cast<unsigned>(std::min<std::uint64_t>(v, std::max(1u, lim.max_windowsize)));
      add(a.accepted, "windowsize", a.settings.windowsize);
    } else if (iequals(o.name, "tsize")) {
      if (!first(2)) continue;
      if (!parse_option_value(o.value, 0, UINT64_MAX, v)) continue;
      if (req.op == opcode::rrq) {
        add(a.accepted, "tsize", file_size);
      } else {
        a.client_tsize = v;
        add(a.accepted, "tsize", v);
      }
    } else if (iequals(o.name, "timeout")) {
      if (!first(3)) continue;
      if (seen_utimeout || !parse_option_value(o.value, 1, 255, v)) continue;
      a.settings.timeout = std::chrono::seconds(v);
      add(a.accepted, "timeout", v);
    } else if (iequals(o.name, "utimeout")) {
      if (!first(4)) continue;
      if (!parse_option_value(o.value, min_utimeout, max_utimeout, v)) continue;
      a.settings.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::microseconds(v));
      add(a.accepted, "utimeout", v);
    }
    // Anything else: ignored (RFC 2347).
  }
  return a;
}

std::vector<option> request_options(const client_wish& w, bool is_write, std::uint64_t write_size) {
  std::vector<option> v;
  if (!w.options) return v;
  if (w.blksize != 512) add(v, "blksize", w.blksize);
  if (w.windowsize != 1) add(v, "windowsize", w.windowsize);
  if (w.tsize) add(v, "tsize", is_write ? write_size : 0);
  const auto ms = w.timeout.count();
  if (ms % 1000 == 0 && ms >= 1000 && ms <= 255000) {
    if (ms != 1000) add(v, "timeout", static_cast<std::uint64_t>(ms / 1000));
  } else {
    const auto us = std::clamp<std::uint64_t>(static_cast<std::uint64_t>(ms) * 1000, min_utimeout, max_utimeout);
    add(v, "utimeout", us);
  }
  return v;
}

client_answer accept_oack(const oack& o, const client_wish& w) {
  client_answer a;
  a.settings = rfc1350_settings(w);
  const auto asked = request_options(w);
  for (const auto& opt : o.options) {
    if (!find_option(asked, opt.name)) {
      a.error = "server accepted option '" + opt.name + "' that was not requested";
      return a;
    }
    std::uint64_t v = 0;
    if (iequals(opt.name, "blksize")) {
      if (!parse_option_value(opt.value, 8, w.blksize, v)) {
        a.error = "server's blksize " + opt.value + " is not between 8 and the requested " + std::to_string(w.blksize);
        return a;
      }
      a.settings.blksize = static_cast<std::size_t>(v);
    } else if (iequals(opt.name, "windowsize")) {
      if (!parse_option_value(opt.value, 1, w.windowsize, v)) {
        a.error = "server's windowsize " + opt.value + " is not between 1 and the requested " + std::to_string(w.windowsize);
        return a;
      }
      a.settings.windowsize = static_cast<unsigned>(v);
    } else if (iequals(opt.name, "tsize")) {
      if (!parse_option_value(opt.value, 0, UINT64_MAX, v)) {
        a.error = "server's tsize '" + opt.value + "' is not a number";
        return a;
      }
      a.tsize = v;
    } else if (iequals(opt.name, "timeout")) {
      if (!parse_option_value(opt.value, 1, 255, v)) {
        a.error = "server's timeout '" + opt.value + "' is not between 1 and 255";
        return a;
      }
      a.settings.timeout = std::chrono::seconds(v);
    } else if (iequals(opt.name, "utimeout")) {
      if (!parse_option_value(opt.value, min_utimeout, max_utimeout, v)) {
        a.error = "server's utimeout '" + opt.value + "' is out of range";
        return a;
      }
      a.settings.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::microseconds(v));
    }
  }
  return a;
}

transfer_settings rfc1350_settings(const client_wish& w) {
  transfer_settings s;
  s.blksize = 512;
  s.windowsize = 1;
  s.timeout = w.timeout;
  s.retries = w.retries;
  return s;
}

}  // namespace netlab::tftp
