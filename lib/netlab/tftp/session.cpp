#include "netlab/tftp/session.hpp"

#include <algorithm>

namespace netlab::tftp {
namespace {
constexpr std::chrono::milliseconds max_backoff{8000};

action make(action::kind k) {
  action a;
  a.what = k;
  return a;
}
}  // namespace

std::chrono::milliseconds capped_backoff(std::chrono::milliseconds base, unsigned tries, std::chrono::milliseconds spent,
                                         std::chrono::milliseconds max_silence) noexcept {
  const std::chrono::milliseconds t{base.count() << std::min(tries, 6u)};
  auto b = std::min(std::max(t, base), std::max(base, max_backoff));
  if (max_silence.count() > 0) b = std::max(std::chrono::milliseconds(1), std::min(b, max_silence - std::min(spent, max_silence)));
  return b;
}

sender::sender(std::uint64_t size, transfer_settings s) noexcept
    : size_(size), s_(s), blocks_(size == unknown_size ? unknown_size : size / s.blksize + 1),
      window_(std::clamp(s.windowsize, 1u, max_blocks_in_flight)) {}

std::chrono::milliseconds sender::backoff() const noexcept {
  return capped_backoff(s_.timeout, tries_, silent_, s_.max_silence);
}

void sender::send_window(std::uint64_t from, std::vector<action>& out) {
  const auto last = std::min(blocks_, from + window_ - 1);
  // Retransmitted blocks, one definition for every path (timeout, repeated ACK, partial ACK): the
  // blocks of this window that were sent before.
  if (from <= sent_) retransmitted_ += std::min(last, sent_) - from + 1;
  for (auto b = from; b <= last; ++b) {
    action a = make(action::kind::send_data);
    a.wire_block = static_cast<std::uint16_t>(b & 0xffff);
    a.offset = (b - 1) * s_.blksize;
    a.size = static_cast<std::size_t>(std::min<std::uint64_t>(s_.blksize, size_ - std::min(size_, a.offset)));
    out.push_back(a);
  }
  sent_ = std::max(sent_, last);
  action t = make(action::kind::arm_timer);
  t.timer = armed_ = backoff();
  out.push_back(t);
}

void sender::start(std::vector<action>& out) { send_window(1, out); }

void sender::learn_size(std::uint64_t size, std::vector<action>& pending) {
  size_ = std::max(size, acked_ * s_.blksize);  // acknowledged blocks were full: the end is after them
  blocks_ = size_ / s_.blksize + 1;
  sent_ = std::min(sent_, blocks_);
  pending.erase(std::remove_if(pending.begin(), pending.end(),
                               [&](const action& a) {
                                 return a.what == action::kind::send_data && a.offset / s_.blksize + 1 > blocks_;
                               }),
                pending.end());
  for (auto& a : pending)
    if (a.what == action::kind::send_data)
      a.size = static_cast<std::size_t>(std::min<std::uint64_t>(a.size, size_ - std::min(size_, a.offset)));
}

void sender::on_ack(std::uint16_t block, std::vector<action>& out) {
  if (finished_ || failed_) return;
  // Map the 16-bit number onto the blocks in flight: (acked_, sent_].
  const std::uint64_t ahead = static_cast<std::uint16_t>(block - static_cast<std::uint16_t>(acked_ & 0xffff));
  if (ahead == 0) {
    // A repeated ACK of the last acknowledged block. With windows it is how the receiver reports that
    // the first block of the window was lost (RFC 7440 section 4): resend the window, but once per
    // acknowledged block, so a duplicated ACK costs at most one window. In lockstep (window 1) this
    // is the Sorcerer's Apprentice trap (RFC 1123 4.2.3.1): only a timeout resends.
    if (window_ > 1 && !fast_resent_ && sent_ > acked_) {
      fast_resent_ = true;
      send_window(acked_ + 1, out);
    }
    return;
  }
  // Only blocks in flight can be acknowledged: (acked_, sent_], at most max_blocks_in_flight of them,
  // so an ACK from an earlier window (ahead >= 32769 in 16-bit arithmetic) is never taken for one.
  if (ahead > max_blocks_in_flight || acked_ + ahead > sent_) return;  // stale or bogus: never resend on it
  acked_ += ahead;
  tries_ = 0;
  silent_ = std::chrono::milliseconds(0);
  fast_resent_ = false;
  if (acked_ == blocks_) {
    finished_ = true;
    out.push_back(make(action::kind::done));
    return;
  }
  // A full window acknowledged, or a partial one (the receiver saw a gap): go on from acked_+1.
  // If blocks after acked_ are still in flight and were acked in part, RFC 7440 says resend from there.
  send_window(acked_ + 1, out);
}

void sender::on_timeout(std::vector<action>& out) {
  if (finished_ || failed_) return;
  silent_ += armed_;
  if (++tries_ > s_.retries || silence_exhausted(silent_, s_.max_silence)) {
    failed_ = true;
    out.push_back(make(action::kind::failed));
    return;
  }
  send_window(acked_ + 1, out);
}

receiver::receiver(transfer_settings s) noexcept : s_(s), window_(std::clamp(s.windowsize, 1u, max_blocks_in_flight)) {}

std::chrono::milliseconds receiver::backoff() const noexcept {
  return capped_backoff(s_.timeout, tries_, silent_, s_.max_silence);
}

void receiver::start(std::vector<action>& out) {
  action t = make(action::kind::arm_timer);
  t.timer = armed_ = backoff();
  out.push_back(t);
}

void receiver::on_data(std::uint16_t block, std::size_t size, std::vector<action>& out) {
  if (failed_) return;
  const auto expected = static_cast<std::uint16_t>(next_ & 0xffff);
  const auto ack_last = [&] {
    action a = make(action::kind::send_ack);
    a.wire_block = static_cast<std::uint16_t>((next_ - 1) & 0xffff);
    out.push_back(a);
    ++acks_repeated_;
  };
  // A block whose number was seen (or passed) before is one the sender put on the wire again: the
  // receiver's view of the sender's retransmitted blocks (a lost copy is never seen; a duplicate or
  // late copy made by the network counts too).
  const auto delta = static_cast<std::uint16_t>(block - expected);
  const std::uint64_t absolute = delta < 0x8000 ? next_ + delta : next_ - std::min<std::uint64_t>(next_, 0x10000u - delta);
  if (absolute <= highest_seen_) ++retransmitted_;
  else highest_seen_ = absolute;
  if (finished_) return ack_last();  // the final ACK was lost: the sender repeats its last block
  if (block != expected) {
    // A block from the future is a gap: ACK the last in-order block once, so the sender resumes from
    // there. A block from the past is a duplicate (a retransmission, or the network's): no ACK, or
    // each duplicate would draw a duplicate ACK and a window resent for it, over and over (the
    // Sorcerer's Apprentice again). If our ACK was lost, our timer repeats it.
    if (delta < 0x8000 && !gap_acked_) {
      ack_last();
      gap_acked_ = true;
      in_window_ = 0;
    }
    return;
  }
  gap_acked_ = false;
  tries_ = 0;
  silent_ = std::chrono::milliseconds(0);
  action d = make(action::kind::deliver);
  d.wire_block = block;
  d.offset = bytes_;
  d.size = size;
  out.push_back(d);
  bytes_ += size;
  ++next_;
  ++in_window_;
  const bool last = size < s_.blksize;
  if (last || in_window_ >= window_) {
    action a = make(action::kind::send_ack);
    a.wire_block = block;
    out.push_back(a);
    in_window_ = 0;
  }
  if (last) {
    finished_ = true;
    out.push_back(make(action::kind::done));
    return;
  }
  action t = make(action::kind::arm_timer);
  t.timer = armed_ = backoff();
  out.push_back(t);
}

void receiver::on_timeout(std::vector<action>& out) {
  if (finished_ || failed_) return;
  silent_ += armed_;
  if (++tries_ > s_.retries || silence_exhausted(silent_, s_.max_silence)) {
    failed_ = true;
    out.push_back(make(action::kind::failed));
    return;
  }
  action a = make(action::kind::send_ack);
  a.wire_block = static_cast<std::uint16_t>((next_ - 1) & 0xffff);
  out.push_back(a);
  ++acks_repeated_;
  in_window_ = 0;
  gap_acked_ = false;
  action t = make(action::kind::arm_timer);
  t.timer = armed_ = backoff();
  out.push_back(t);
}

}  // namespace netlab::tftp
