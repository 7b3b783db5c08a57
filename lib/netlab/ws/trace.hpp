#pragma once
/// -vv traces of WebSocket traffic, for both ws-echo serve and dial (issue 16): one line per decoded
/// frame and the handshake's HTTP head, instead of websocketpp's raw "Header Bytes" dumps. Pure
/// formatting (no websocketpp, no I/O): the callers hook websocketpp's frame reader and writer.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace netlab::ws::trace {

/// Which way a frame or handshake went, as seen by the side that logs it: `<` received, `>` sent.
enum class dir { in, out };

/// The longest payload prefix frame() shows; callers need not pass more.
inline constexpr std::size_t shown_bytes = 32;

/// One frame: direction, FIN (absent on a non-final fragment), opcode name, `masked` if it was,
/// the payload length, then its first bytes: text in quotes (escaped) when they are UTF-8 text,
/// otherwise hex, with `…` when the payload goes on; a close frame shows its code and reason.
/// E.g. `< FIN text masked len=5 "hello"`, `> FIN binary len=300 00 01 02 …`,
/// `> FIN close len=7 code=1000 "bye"`. first_bytes may be shorter than length (a prefix).
std::string frame(dir d, bool fin, int opcode, bool masked, std::uint64_t length, std::string_view first_bytes);

/// A handshake request or response head, one `< ` or `> ` prefixed line per header line (CR/LF
/// stripped, control bytes escaped, anything after the blank line left out).
std::string handshake(dir d, std::string_view raw_http_head);

}  // namespace netlab::ws::trace
