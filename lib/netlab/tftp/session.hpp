// Pure TFTP transfer state machines (no sockets, no clock): events in, actions out.
// sender = server side of an RRQ / client side of a WRQ; receiver = the other side.
// Block numbers are tracked as 64-bit absolute counters and put on the wire modulo 65536, so
// transfers roll over past block 65535 (RFC 1350 leaves it open; every modern stack wraps to 0).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace netlab::tftp {

/// Negotiated transfer parameters.
struct transfer_settings {
  std::size_t blksize = 512;                   ///< RFC 2348
  unsigned windowsize = 1;                     ///< RFC 7440
  std::chrono::milliseconds timeout{1000};     ///< first retransmission timeout (RFC 2349)
  unsigned retries = 5;                        ///< timeouts in a row before giving up
  /// Longest silence of the peer before giving up, whatever `timeout` and `retries` allow: the timers
  /// armed since the peer last made progress add up to at most this (0 = no cap). The server sets it
  /// (--max-silence, 60 s), so a client asking for timeout=255 cannot hold a slot for hours.
  std::chrono::milliseconds max_silence{0};
};

/// Blocks in flight are at most this many (half the 16-bit block space, less one): with more, a stale
/// ACK from an earlier window reads as one from the current window (windowsize >= 32768 would let an
/// old ACK 65534 move a sender past blocks the receiver never got). Larger windows are used as this.
constexpr unsigned max_blocks_in_flight = 32767;

/// The retransmission timer after `tries` timeouts in a row: `base` doubled per try up to 8 s (never
/// below `base`), then cut so that `spent` (time already waited without progress) plus it stays within
/// `max_silence` (0 = no cap).
std::chrono::milliseconds capped_backoff(std::chrono::milliseconds base, unsigned tries, std::chrono::milliseconds spent,
                                         std::chrono::milliseconds max_silence) noexcept;

/// Whether `spent` silence exhausts `max_silence` (0 = no cap).
inline bool silence_exhausted(std::chrono::milliseconds spent, std::chrono::milliseconds max_silence) noexcept {
  return max_silence.count() > 0 && spent >= max_silence;
}

/// One thing the wire layer must do.
struct action {
  /// What to do.
  enum class kind {
    send_data,   ///< send DATA `wire_block` carrying bytes [offset, offset+size) of the file
    send_ack,    ///< send ACK `wire_block`
    deliver,     ///< write `size` bytes of the DATA just received at `offset`
    arm_timer,   ///< (re)arm the retransmission timer for `timer`
    done,        ///< transfer complete
    failed,      ///< gave up (too many timeouts): send ERROR 0 and stop
  };
  kind what = kind::done;
  std::uint16_t wire_block = 0;
  std::uint64_t offset = 0;
  std::size_t size = 0;
  std::chrono::milliseconds timer{0};
};

/// Sends a file of known size in blocks, window by window (RFC 1350 + RFC 7440).
class sender {
public:
  /// Size of a source whose end is not known yet (netascii converted on the fly): see learn_size().
  static constexpr std::uint64_t unknown_size = UINT64_MAX;
  /// A sender for `size` bytes with settings `s`.
  sender(std::uint64_t size, transfer_settings s) noexcept;
  /// First window (call once the transfer may start: after the RRQ, OACK-ACK 0 or WRQ-ACK 0).
  void start(std::vector<action>& out);
  /// An ACK arrived. Stale ACKs are ignored; a repeated ACK resends the window once when windowsize > 1
  /// (a lost first block), never in lockstep (RFC 1123 4.2.3.1).
  void on_ack(std::uint16_t block, std::vector<action>& out);
  /// The retransmission timer expired: resend the window, or fail after `retries` or max_silence.
  void on_timeout(std::vector<action>& out);
  /// The source found its end: `size` bytes in all (at least what was already acknowledged). Fixes the
  /// DATA actions still in `pending` (drops blocks past the end, shortens the last) so nothing is sent
  /// beyond the file.
  void learn_size(std::uint64_t size, std::vector<action>& pending);
  /// Total blocks (a file that is an exact multiple of blksize ends with an empty block).
  std::uint64_t blocks() const noexcept { return blocks_; }
  /// Highest block acknowledged (absolute, counting past 65535).
  std::uint64_t acknowledged() const noexcept { return acked_; }
  /// Highest block sent (absolute).
  std::uint64_t highest_sent() const noexcept { return sent_; }
  /// Retransmitted blocks: DATA blocks sent again (after a timeout, a repeated ACK, or a partial ACK
  /// that resends the rest of a window). Every block sent more than once counts once per resend.
  std::uint64_t retransmissions() const noexcept { return retransmitted_; }
  /// True once the last block was acknowledged.
  bool finished() const noexcept { return finished_; }

private:
  void send_window(std::uint64_t from, std::vector<action>& out);
  std::chrono::milliseconds backoff() const noexcept;

  std::uint64_t size_;
  transfer_settings s_;
  std::uint64_t blocks_;
  std::uint64_t acked_ = 0;      // highest absolute block acknowledged
  std::uint64_t sent_ = 0;       // highest absolute block sent
  unsigned window_;             // blocks per window: windowsize, at most max_blocks_in_flight
  unsigned tries_ = 0;
  std::chrono::milliseconds armed_{0};   // the timer last armed
  std::chrono::milliseconds silent_{0};  // timers expired since the peer last made progress
  std::uint64_t retransmitted_ = 0;
  bool finished_ = false;
  bool failed_ = false;
  bool fast_resent_ = false;     // the window after acked_ was already resent for a repeated ACK
};

/// Receives blocks in order, acknowledging each window (RFC 1350 + RFC 7440).
class receiver {
public:
  /// A receiver with settings `s` (its block 1 is the next expected DATA).
  explicit receiver(transfer_settings s) noexcept;
  /// Arms the first timer (the request or ACK 0 was just sent by the caller).
  void start(std::vector<action>& out);
  /// A DATA packet with `size` payload bytes arrived. A gap draws one ACK of the last in-order block;
  /// duplicates of past blocks draw nothing (the timer re-acknowledges), except after the last block.
  void on_data(std::uint16_t block, std::size_t size, std::vector<action>& out);
  /// The timer expired: re-acknowledge the last in-order block, or fail after `retries` or max_silence.
  void on_timeout(std::vector<action>& out);
  /// Bytes delivered so far.
  std::uint64_t bytes() const noexcept { return bytes_; }
  /// Retransmitted blocks as the receiver sees them: DATA blocks whose number arrived (or was passed)
  /// before. The sender's count less the resent copies that were lost; network duplicates count too.
  std::uint64_t retransmissions() const noexcept { return retransmitted_; }
  /// ACKs sent again (after a timeout, a gap, or a repeated last block).
  std::uint64_t acks_repeated() const noexcept { return acks_repeated_; }
  /// True once the short final block was received.
  bool finished() const noexcept { return finished_; }

private:
  std::chrono::milliseconds backoff() const noexcept;

  transfer_settings s_;
  unsigned window_;              // blocks per ACK: windowsize, at most max_blocks_in_flight
  std::uint64_t next_ = 1;       // next absolute block expected
  std::uint64_t bytes_ = 0;
  unsigned in_window_ = 0;
  unsigned tries_ = 0;
  std::chrono::milliseconds armed_{0};
  std::chrono::milliseconds silent_{0};
  std::uint64_t retransmitted_ = 0;
  std::uint64_t acks_repeated_ = 0;
  std::uint64_t highest_seen_ = 0;  // highest absolute block number that arrived
  bool finished_ = false;
  bool failed_ = false;
  bool gap_acked_ = false;       // one ACK per gap, not one per out-of-order packet
};

}  // namespace netlab::tftp
