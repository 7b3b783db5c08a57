// -vv WebSocket trace lines (issue 16): the formatting both ws-echo sides use.
#include <catch2/catch.hpp>

#include <string>

#include "netlab/ws/trace.hpp"

using netlab::ws::trace::dir;
namespace trace = netlab::ws::trace;

TEST_CASE("ws trace: a text frame shows FIN, opcode, mask, length and the text", "[ws][trace]") {
  CHECK(trace::frame(dir::in, true, 1, true, 5, "hello") == "< FIN text masked len=5 \"hello\"");
  CHECK(trace::frame(dir::out, true, 1, false, 5, "hello") == "> FIN text len=5 \"hello\"");
  // Quotes, backslashes and line ends are escaped: one line per frame, always.
  CHECK(trace::frame(dir::out, true, 1, false, 6, "a\"b\\\n\t") == "> FIN text len=6 \"a\\\"b\\\\\\n\\t\"");
  // Other control bytes are no text to show: hex (a terminal escape never reaches the log).
  CHECK(trace::frame(dir::out, true, 1, false, 3, "a\x1b[") == "> FIN text len=3 61 1b 5b");
  // UTF-8 stays readable.
  CHECK(trace::frame(dir::in, true, 1, true, 6, "h\xc3\xa9llo") == "< FIN text masked len=6 \"h\xc3\xa9llo\"");
}

TEST_CASE("ws trace: binary is hex, and a long payload shows its first bytes then …", "[ws][trace]") {
  std::string bytes;
  for (int i = 0; i < 300; ++i) bytes += static_cast<char>(i & 0xff);
  const auto line = trace::frame(dir::out, true, 2, false, 300, bytes);
  CHECK(line.rfind("> FIN binary len=300 00 01 02 03", 0) == 0);
  CHECK(line.size() > 4 * 3);
  CHECK(line.substr(line.size() - 4) == " \xe2\x80\xa6");  // " …"
  CHECK(line.find(" 1f …") != std::string::npos);          // 32 bytes shown, not 300
  // Printable binary is still hex: binary is never guessed to be text.
  CHECK(trace::frame(dir::in, true, 2, true, 2, "hi") == "< FIN binary masked len=2 68 69");
  // A prefix shorter than the length (the caller passed only the start) is marked as cut.
  CHECK(trace::frame(dir::in, true, 1, true, 100, "abc") == "< FIN text masked len=100 \"abc\" …");
  // Text that is not UTF-8 (a prefix cut mid-character is still text) falls back to hex.
  CHECK(trace::frame(dir::in, true, 1, true, 3, "\xff\xfe") == "< FIN text masked len=3 ff fe …");
  CHECK(trace::frame(dir::in, true, 1, true, 10, "ab\xc3") == "< FIN text masked len=10 \"ab\\xc3\" …");
}

TEST_CASE("ws trace: fragments, control frames, empty payloads, reserved opcodes", "[ws][trace]") {
  CHECK(trace::frame(dir::in, false, 1, true, 3, "abc") == "< text masked len=3 \"abc\"");
  CHECK(trace::frame(dir::in, true, 0, true, 3, "def") == "< FIN continuation masked len=3 \"def\"");
  CHECK(trace::frame(dir::out, true, 9, false, 6, "netlab") == "> FIN ping len=6 \"netlab\"");
  CHECK(trace::frame(dir::in, true, 10, true, 0, "") == "< FIN pong masked len=0");
  CHECK(trace::frame(dir::out, true, 8, false, 5, std::string("\x03\xe8" "bye", 5)) == "> FIN close len=5 code=1000 \"bye\"");
  CHECK(trace::frame(dir::in, true, 8, true, 2, std::string("\x03\xe9", 2)) == "< FIN close masked len=2 code=1001");
  CHECK(trace::frame(dir::in, true, 8, true, 0, "") == "< FIN close masked len=0");
  CHECK(trace::frame(dir::in, true, 3, false, 0, "") == "< FIN reserved-0x3 len=0");
}

TEST_CASE("ws trace: a handshake head is one prefixed line per header line", "[ws][trace]") {
  const std::string req = "GET /echo HTTP/1.1\r\nHost: 127.0.0.1:9\r\nUpgrade: websocket\r\n\r\nbody";
  CHECK(trace::handshake(dir::in, req) == "< GET /echo HTTP/1.1\n< Host: 127.0.0.1:9\n< Upgrade: websocket");
  const std::string res = "HTTP/1.1 101 Switching Protocols\r\nX-Evil: a\x1b[2Jb\r\n\r\n";
  CHECK(trace::handshake(dir::out, res) == "> HTTP/1.1 101 Switching Protocols\n> X-Evil: a\\x1b[2Jb");
  CHECK(trace::handshake(dir::out, "") == "");
}

#include <vector>

#include "netlab/ws/server_trace.hpp"

namespace {

// A frame as the server's reader leaves it: header with its masking key, payload already unmasked.
std::string wire(std::uint8_t b0, bool masked, const std::string& payload) {
  std::string f(1, static_cast<char>(b0));
  const auto m = masked ? 0x80 : 0;
  const auto n = payload.size();
  if (n < 126) {
    f += static_cast<char>(m | n);
  } else if (n < 65536) {
    f += static_cast<char>(m | 126);
    f += static_cast<char>(n >> 8);
    f += static_cast<char>(n & 0xff);
  } else {
    f += static_cast<char>(m | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((n >> (8 * i)) & 0xff);
  }
  if (masked) f += "\x11\x22\x33\x44";
  return f + payload;
}

std::vector<std::string> feed_in_pieces(const std::string& stream, std::size_t piece) {
  netlab::ws::detail::incoming_frame_trace t;
  std::vector<std::string> lines;
  for (std::size_t at = 0; at < stream.size(); at += piece) {
    const auto n = std::min(piece, stream.size() - at);
    for (auto& l : t.feed(reinterpret_cast<const std::uint8_t*>(stream.data() + at), n)) lines.push_back(l);
  }
  return lines;
}

}  // namespace

TEST_CASE("ws trace: the server's reader yields one line per frame, however the bytes arrive", "[ws][trace]") {
  const std::string big(70000, 'x');
  const std::string stream = wire(0x01, true, "frag") + wire(0x80, true, "ment") + wire(0x89, true, "") +
                             wire(0x82, true, big) + wire(0xc1, true, "zz") + wire(0x88, true, std::string("\x03\xe8", 2));
  const std::vector<std::string> want = {
      "< text masked len=4 \"frag\"",
      "< FIN continuation masked len=4 \"ment\"",
      "< FIN ping masked len=0",
      "< FIN binary masked len=70000 " + [] {
        std::string h;
        for (int i = 0; i < 32; ++i) h += i ? " 78" : "78";
        return h;
      }() + " \xe2\x80\xa6",
      "< FIN text masked len=2 \"zz\" compressed",
      "< FIN close masked len=2 code=1000",
  };
  for (std::size_t piece : {std::size_t(1), std::size_t(3), std::size_t(13), std::size_t(4096), stream.size()}) {
    INFO("pieces of " << piece);
    CHECK(feed_in_pieces(stream, piece) == want);
  }
}

TEST_CASE("ws trace: a sent frame's line comes from its prepared header", "[ws][trace]") {
  using netlab::ws::detail::outgoing_frame_line;
  CHECK(outgoing_frame_line(std::string("\x81\x05", 2), "hello") == "> FIN text len=5 \"hello\"");
  CHECK(outgoing_frame_line(std::string("\xc1\x02", 2), "\x01\x02") == "> FIN text len=2 01 02 compressed");
  CHECK(outgoing_frame_line(std::string("\x8a\x00", 2), "") == "> FIN pong len=0");
}
