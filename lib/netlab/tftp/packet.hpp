// TFTP packet codec (RFC 1350, 2347 OACK and options): pure, no sockets, no allocation on the
// DATA/ACK hot path. Malformed input yields a bad_packet value, never undefined behaviour.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace netlab::tftp {

/// TFTP opcodes (RFC 1350 section 5, RFC 2347 OACK).
enum class opcode : std::uint16_t { rrq = 1, wrq = 2, data = 3, ack = 4, error = 5, oack = 6 };

/// TFTP error codes carried in ERROR packets (RFC 1350 appendix, RFC 2347 code 8).
enum class error_code : std::uint16_t {
  not_defined = 0,
  file_not_found = 1,
  access_violation = 2,
  disk_full = 3,
  illegal_operation = 4,
  unknown_tid = 5,
  file_exists = 6,
  no_such_user = 7,
  option_refused = 8,
};

/// Largest datagram netlab builds or accepts: 4-byte header + RFC 2348's 65464-byte block.
constexpr std::size_t max_packet = 4 + 65464;
/// Header size of DATA and ACK packets.
constexpr std::size_t data_header = 4;

/// One negotiated option (RFC 2347): name as received (compare case-insensitively) and value.
struct option {
  std::string name;
  std::string value;
  friend bool operator==(const option& a, const option& b) { return a.name == b.name && a.value == b.value; }
};

/// RRQ or WRQ: filename, mode ("octet", "netascii", "mail"; case-insensitive) and options.
struct request {
  opcode op = opcode::rrq;
  std::string filename;
  std::string mode = "octet";
  std::vector<option> options;
};

/// DATA: block number and a view of the payload inside the parsed buffer (valid while it lives).
struct data {
  std::uint16_t block = 0;
  const std::uint8_t* payload = nullptr;
  std::size_t size = 0;
};

/// ACK of one block (block 0 acknowledges a WRQ or an OACK).
struct ack {
  std::uint16_t block = 0;
};

/// ERROR: code and human-readable message.
struct error {
  std::uint16_t code = 0;
  std::string message;
};

/// OACK: the options the server accepted (RFC 2347).
struct oack {
  std::vector<option> options;
};

/// A datagram that is not valid TFTP, with the reason (for ERROR 4 and logs).
struct bad_packet {
  std::string reason;
};

/// Any parsed datagram.
using packet = std::variant<bad_packet, request, data, ack, error, oack>;

/// Parses one datagram; never reads outside [p, p+n).
packet parse(const std::uint8_t* p, std::size_t n);

/// Writes a DATA header (opcode + block) at buf; the payload follows at buf + data_header.
inline void write_data_header(std::uint8_t* buf, std::uint16_t block) noexcept {
  buf[0] = 0;
  buf[1] = static_cast<std::uint8_t>(opcode::data);
  buf[2] = static_cast<std::uint8_t>(block >> 8);
  buf[3] = static_cast<std::uint8_t>(block & 0xff);
}

/// Writes a 4-byte ACK at buf.
inline void write_ack(std::uint8_t* buf, std::uint16_t block) noexcept {
  buf[0] = 0;
  buf[1] = static_cast<std::uint8_t>(opcode::ack);
  buf[2] = static_cast<std::uint8_t>(block >> 8);
  buf[3] = static_cast<std::uint8_t>(block & 0xff);
}

/// Encodes an RRQ/WRQ (with options, if any).
std::vector<std::uint8_t> encode(const request& r);
/// Encodes an ERROR packet; the message is truncated so the packet fits max_packet.
std::vector<std::uint8_t> encode(const error& e);
/// Encodes an OACK.
std::vector<std::uint8_t> encode(const oack& o);
/// Encodes an ACK.
std::vector<std::uint8_t> encode(const ack& a);
/// Encodes a DATA packet (copies the payload; tests and rare paths only).
std::vector<std::uint8_t> encode(const data& d);

/// Case-insensitive ASCII comparison (option names and modes, RFC 2347).
bool iequals(std::string_view a, std::string_view b) noexcept;
/// The value of option `name` (case-insensitive), or nullptr.
const std::string* find_option(const std::vector<option>& opts, std::string_view name) noexcept;
/// Parses a decimal option value in [lo, hi]; false for anything else (sign, spaces, overflow).
bool parse_option_value(std::string_view v, std::uint64_t lo, std::uint64_t hi, std::uint64_t& out) noexcept;
/// Short name of an opcode for logs ("RRQ", "DATA"...).
std::string_view to_string(opcode op) noexcept;
/// One-line description of a packet for -vv traces.
std::string describe(const packet& p);

}  // namespace netlab::tftp
