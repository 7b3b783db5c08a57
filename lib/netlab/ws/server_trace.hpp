#pragma once
/// ws-echo serve's -vv frame trace (issue 16): turns what websocketpp reads and writes into
/// trace::frame() lines. No websocketpp here: detail/echo_engine.hpp feeds it bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace netlab::ws::detail {

/// Follows the frames of one connection's incoming byte stream, as websocketpp's frame reader
/// consumed it, and yields one trace::frame(dir::in) line per frame as soon as its first bytes (or
/// all of it, when shorter) have been seen. Payload bytes arrive already unmasked (the reader
/// unmasks in place, detail::consume_payload); the masking key is read from the header only to
/// report the mask bit.
class incoming_frame_trace {
 public:
  /// Feeds bytes in stream order; returns the lines of the frames they complete (usually 0 or 1).
  std::vector<std::string> feed(const std::uint8_t* p, std::size_t n);

 private:
  std::string line() const;

  std::uint8_t head_[14] = {};
  std::size_t head_have_ = 0;
  std::size_t head_need_ = 2;
  bool in_payload_ = false;
  std::uint64_t length_ = 0;     ///< of the current frame's payload
  std::uint64_t remaining_ = 0;  ///< payload bytes of it still to come
  std::string first_;            ///< its first payload bytes (at most trace's prefix)
  bool shown_ = false;           ///< its line was yielded
};

/// The trace line of a frame netlab or websocketpp queued for sending: its prepared header bytes
/// and its payload as it goes on the wire (compressed frames are marked so).
std::string outgoing_frame_line(std::string_view header, std::string_view payload);

}  // namespace netlab::ws::detail
