#include "netlab/tftp/packet.hpp"

#include <algorithm>
#include <cstring>

namespace netlab::tftp {
namespace {

std::uint16_t get16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

void put16(std::vector<std::uint8_t>& v, std::uint16_t x) {
  v.push_back(static_cast<std::uint8_t>(x >> 8));
  v.push_back(static_cast<std::uint8_t>(x & 0xff));
}

void put_str(std::vector<std::uint8_t>& v, std::string_view s) {
  v.insert(v.end(), s.begin(), s.end());
  v.push_back(0);
}

// Reads a NUL-terminated string starting at pos; false if no NUL before end.
bool get_str(const std::uint8_t* p, std::size_t n, std::size_t& pos, std::string& out) {
  const void* z = std::memchr(p + pos, 0, n - pos);
  if (!z) return false;
  auto end = static_cast<std::size_t>(static_cast<const std::uint8_t*>(z) - p);
  out.assign(reinterpret_cast<const char*>(p + pos), end - pos);
  pos = end + 1;
  return true;
}

// RFC 2347: name/value pairs, each NUL-terminated, until the end of the datagram.
bool get_options(const std::uint8_t* p, std::size_t n, std::size_t pos, std::vector<option>& opts,
                 std::string& why) {
  while (pos < n) {
    option o;
    if (!get_str(p, n, pos, o.name)) { why = "option name not NUL-terminated"; return false; }
    if (pos >= n || !get_str(p, n, pos, o.value)) { why = "option '" + o.name + "' has no value"; return false; }
    if (o.name.empty()) { why = "empty option name"; return false; }
    opts.push_back(std::move(o));
  }
  return true;
}

bool valid_mode(std::string_view m) noexcept {
  return iequals(m, "octet") || iequals(m, "netascii") || iequals(m, "mail");
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

const std::string* find_option(const std::vector<option>& opts, std::string_view name) noexcept {
  for (const auto& o : opts)
    if (iequals(o.name, name)) return &o.value;
  return nullptr;
}

bool parse_option_value(std::string_view v, std::uint64_t lo, std::uint64_t hi, std::uint64_t& out) noexcept {
  // Up to 20 digits with an overflow check: a 20-digit size (>= 10^19) that fits 64 bits is a
  // value netlab itself may encode (found by fuzz_tftp_negotiate).
  if (v.empty() || v.size() > 20) return false;
  std::uint64_t x = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (x > (UINT64_MAX - d) / 10) return false;
    x = x * 10 + d;
  }
  if (x < lo || x > hi) return false;
  out = x;
  return true;
}

packet parse(const std::uint8_t* p, std::size_t n) {
  if (!p || n < 2) return bad_packet{"datagram shorter than an opcode"};
  if (n > max_packet) return bad_packet{"datagram larger than any TFTP packet"};
  const auto op = get16(p);
  switch (op) {
    case 1:
    case 2: {
      request r;
      r.op = static_cast<opcode>(op);
      std::size_t pos = 2;
      if (!get_str(p, n, pos, r.filename)) return bad_packet{"filename not NUL-terminated"};
      if (r.filename.empty()) return bad_packet{"empty filename"};
      if (pos >= n || !get_str(p, n, pos, r.mode)) return bad_packet{"mode not NUL-terminated"};
      if (!valid_mode(r.mode)) return bad_packet{"unknown mode '" + r.mode + "'"};
      std::string why;
      if (!get_options(p, n, pos, r.options, why)) return bad_packet{why};
      return r;
    }
    case 3:
      if (n < data_header) return bad_packet{"DATA shorter than its header"};
      return data{get16(p + 2), p + data_header, n - data_header};
    case 4:
      if (n < 4) return bad_packet{"ACK shorter than 4 bytes"};
      return ack{get16(p + 2)};  // trailing bytes tolerated, as most stacks do
    case 5: {
      if (n < 4) return bad_packet{"ERROR shorter than 4 bytes"};
      error e;
      e.code = get16(p + 2);
      std::size_t pos = 4;
      // A missing NUL is tolerated: take what is there (some stacks omit it).
      if (!get_str(p, n, pos, e.message))
        e.message.assign(reinterpret_cast<const char*>(p + 4), n - 4);
      return e;
    }
    case 6: {
      oack o;
      std::string why;
      if (!get_options(p, n, 2, o.options, why)) return bad_packet{why};
      return o;
    }
    default:
      return bad_packet{"unknown opcode " + std::to_string(op)};
  }
}

std::vector<std::uint8_t> encode(const request& r) {
  std::vector<std::uint8_t> v;
  v.reserve(4 + r.filename.size() + r.mode.size() + 16 * r.options.size());
  put16(v, static_cast<std::uint16_t>(r.op));
  put_str(v, r.filename);
  put_str(v, r.mode);
  for (const auto& o : r.options) {
    put_str(v, o.name);
    put_str(v, o.value);
  }
  return v;
}

std::vector<std::uint8_t> encode(const error& e) {
  std::vector<std::uint8_t> v;
  put16(v, static_cast<std::uint16_t>(opcode::error));
  put16(v, e.code);
  std::string_view msg = e.message;
  // Keep the message short: a NUL inside would end it early, and it must fit any datagram.
  msg = msg.substr(0, std::min<std::size_t>(msg.find('\0'), 500));
  put_str(v, msg);
  return v;
}

std::vector<std::uint8_t> encode(const oack& o) {
  std::vector<std::uint8_t> v;
  put16(v, static_cast<std::uint16_t>(opcode::oack));
  for (const auto& x : o.options) {
    put_str(v, x.name);
    put_str(v, x.value);
  }
  return v;
}

std::vector<std::uint8_t> encode(const ack& a) {
  std::vector<std::uint8_t> v(4);
  write_ack(v.data(), a.block);
  return v;
}

std::vector<std::uint8_t> encode(const data& d) {
  std::vector<std::uint8_t> v(data_header + d.size);
  write_data_header(v.data(), d.block);
  if (d.size) std::memcpy(v.data() + data_header, d.payload, d.size);
  return v;
}

std::string_view to_string(opcode op) noexcept {
  switch (op) {
    case opcode::rrq: return "RRQ";
    case opcode::wrq: return "WRQ";
    case opcode::data: return "DATA";
    case opcode::ack: return "ACK";
    case opcode::error: return "ERROR";
    case opcode::oack: return "OACK";
  }
  return "?";
}

std::string describe(const packet& p) {
  struct visitor {
    std::string operator()(const bad_packet& b) const { return "malformed (" + b.reason + ")"; }
    std::string operator()(const request& r) const {
      std::string s = std::string(to_string(r.op)) + " '" + r.filename + "' " + r.mode;
      for (const auto& o : r.options) s += " " + o.name + "=" + o.value;
      return s;
    }
    std::string operator()(const data& d) const {
      return "DATA block " + std::to_string(d.block) + " (" + std::to_string(d.size) + " bytes)";
    }
    std::string operator()(const ack& a) const { return "ACK block " + std::to_string(a.block); }
    std::string operator()(const error& e) const {
      return "ERROR " + std::to_string(e.code) + " '" + e.message + "'";
    }
    std::string operator()(const oack& o) const {
      std::string s = "OACK";
      for (const auto& x : o.options) s += " " + x.name + "=" + x.value;
      return s;
    }
  };
  return std::visit(visitor{}, p);
}

}  // namespace netlab::tftp
