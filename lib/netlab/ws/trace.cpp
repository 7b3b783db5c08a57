// Formatting of -vv WebSocket traces (trace.hpp): short enough for a terminal, exact enough to teach
// RFC 6455 framing from (FIN, opcode, mask bit, length and the start of the payload).
#include "netlab/ws/trace.hpp"

#include <cstdio>

#include "netlab/core/payload.hpp"

namespace netlab::ws::trace {
namespace {

const char* arrow(dir d) { return d == dir::in ? "<" : ">"; }

// RFC 6455 5.2 opcode names.
std::string opcode_name(int op) {
  switch (op) {
    case 0x0: return "continuation";
    case 0x1: return "text";
    case 0x2: return "binary";
    case 0x8: return "close";
    case 0x9: return "ping";
    case 0xa: return "pong";
    default: {
      char buf[24];
      std::snprintf(buf, sizeof buf, "reserved-0x%x", static_cast<unsigned>(op) & 0xfu);
      return buf;
    }
  }
}

// How many leading bytes are UTF-8 text, or npos. A prefix cut inside a UTF-8 sequence is still
// text: up to 3 bytes of an unfinished last character may be left over.
std::size_t text_length(std::string_view s, bool cut) {
  // Control bytes (but tab, CR, LF) mean binary data in a text frame, e.g. a compressed one: hex.
  for (unsigned char c : s)
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return std::string_view::npos;
  if (core::valid_utf8(s)) return s.size();
  if (!cut) return std::string_view::npos;
  for (std::size_t drop = 1; drop <= 3 && drop < s.size(); ++drop)
    if (core::valid_utf8(s.substr(0, s.size() - drop))) return s.size() - drop;
  return std::string_view::npos;
}

// In quotes, escaped; bytes from `text` on (an unfinished character) as \xNN.
std::string quoted(std::string_view s, std::size_t text) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (i >= text) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string hex(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    char buf[4];
    std::snprintf(buf, sizeof buf, "%02x", c);
    if (!out.empty()) out += ' ';
    out += buf;
  }
  return out;
}

// The payload prefix: as text (quoted) for text-like opcodes when it is UTF-8, else hex.
std::string payload(int op, std::uint64_t length, std::string_view bytes) {
  if (bytes.size() > shown_bytes) bytes = bytes.substr(0, shown_bytes);
  const bool cut = bytes.size() < length;
  if (bytes.empty()) return cut ? "…" : "";
  const bool textual = op != 0x2;  // binary always as hex; continuation may be either: guess
  const auto text = textual ? text_length(bytes, cut) : std::string_view::npos;
  std::string out = text != std::string_view::npos ? quoted(bytes, text) : hex(bytes);
  if (cut) out += " …";
  return out;
}

}  // namespace

std::string frame(dir d, bool fin, int opcode, bool masked, std::uint64_t length, std::string_view first_bytes) {
  std::string out = arrow(d);
  if (fin) out += " FIN";
  out += ' ';
  out += opcode_name(opcode);
  if (masked) out += " masked";
  out += " len=" + std::to_string(length);
  if (opcode == 0x8 && first_bytes.size() >= 2) {
    // RFC 6455 5.5.1: a 2-byte code in network order, then a UTF-8 reason.
    const int code = (static_cast<unsigned char>(first_bytes[0]) << 8) | static_cast<unsigned char>(first_bytes[1]);
    out += " code=" + std::to_string(code);
    if (length > 2) out += ' ' + payload(opcode, length - 2, first_bytes.substr(2));
    return out;
  }
  if (length > 0) out += ' ' + payload(opcode, length, first_bytes);
  return out;
}

std::string handshake(dir d, std::string_view head) {
  const auto end = head.find("\r\n\r\n");
  if (end != std::string_view::npos) head = head.substr(0, end);
  std::string out;
  while (!head.empty()) {
    auto nl = head.find('\n');
    auto line = head.substr(0, nl);
    head = nl == std::string_view::npos ? std::string_view() : head.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() && head.empty()) break;
    if (!out.empty()) out += '\n';
    out += arrow(d);
    out += ' ';
    for (unsigned char c : line) {
      if (c < 0x20 || c == 0x7f) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", c);
        out += buf;
      } else {
        out += static_cast<char>(c);
      }
    }
  }
  return out;
}

}  // namespace netlab::ws::trace
