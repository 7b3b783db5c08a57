// -vv frame lines for ws-echo serve: RFC 6455 5.2 frame headers read back from the byte stream.
#include "netlab/ws/server_trace.hpp"

#include <algorithm>

#include "netlab/ws/trace.hpp"

namespace netlab::ws::detail {
namespace {

constexpr std::size_t prefix = 32;  // payload bytes a trace line shows (trace::frame cuts there too)

// Header length implied by its first two bytes: 2, + 2 or 8 for an extended length, + 4 for a key.
std::size_t header_length(std::uint8_t b1) {
  const auto len7 = b1 & 0x7f;
  return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((b1 & 0x80) ? 4 : 0);
}

std::uint64_t payload_length(const std::uint8_t* h) {
  const auto len7 = h[1] & 0x7f;
  if (len7 < 126) return len7;
  const int n = len7 == 126 ? 2 : 8;
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | h[2 + i];
  return v;
}

}  // namespace

std::string incoming_frame_trace::line() const {
  auto s = trace::frame(trace::dir::in, (head_[0] & 0x80) != 0, head_[0] & 0x0f, (head_[1] & 0x80) != 0, length_, first_);
  if (head_[0] & 0x40) s += " compressed";  // RSV1: permessage-deflate (RFC 7692 6)
  return s;
}

std::vector<std::string> incoming_frame_trace::feed(const std::uint8_t* p, std::size_t n) {
  std::vector<std::string> lines;
  while (n > 0) {
    if (!in_payload_) {
      const std::size_t take = std::min(n, head_need_ - head_have_);
      std::copy(p, p + take, head_ + head_have_);
      head_have_ += take;
      p += take;
      n -= take;
      if (head_have_ == 2) head_need_ = header_length(head_[1]);
      if (head_have_ < head_need_) continue;
      length_ = remaining_ = payload_length(head_);
      first_.clear();
      shown_ = false;
      in_payload_ = true;
    } else {
      const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(n, remaining_));
      if (first_.size() < prefix)
        first_.append(reinterpret_cast<const char*>(p), std::min(take, prefix - first_.size()));
      remaining_ -= take;
      p += take;
      n -= take;
    }
    if (in_payload_ && !shown_ && (remaining_ == 0 || first_.size() >= prefix)) {
      lines.push_back(line());
      shown_ = true;
    }
    if (in_payload_ && remaining_ == 0) {
      in_payload_ = false;
      head_have_ = 0;
      head_need_ = 2;
    }
  }
  return lines;
}

std::string outgoing_frame_line(std::string_view header, std::string_view payload) {
  if (header.size() < 2) return "> (no frame header)";
  const auto b0 = static_cast<std::uint8_t>(header[0]);
  const auto b1 = static_cast<std::uint8_t>(header[1]);
  auto s = trace::frame(trace::dir::out, (b0 & 0x80) != 0, b0 & 0x0f, (b1 & 0x80) != 0, payload.size(),
                        payload.substr(0, prefix));
  if (b0 & 0x40) s += " compressed";  // RSV1: permessage-deflate (RFC 7692 6)
  return s;
}

}  // namespace netlab::ws::detail
