// One TFTP transfer on its own connected UDP socket: drives a pure sender or receiver state machine
// with batched system calls (recvmmsg/sendmmsg), one pread per window, and a single deadline timer.
// Used by both `udp-file serve` (one per request) and `udp-file fetch`.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio/ip/udp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "netlab/core/error.hpp"
#include "netlab/tftp/fault.hpp"
#include "netlab/tftp/files.hpp"
#include "netlab/tftp/packet.hpp"
#include "netlab/tftp/session.hpp"

namespace netlab::tftp {

/// Counters of one transfer.
struct transfer_stats {
  std::uint64_t bytes = 0;            ///< file bytes delivered (receiver), acknowledged (sender)
  std::uint64_t bytes_sent = 0;       ///< sender: file bytes put on the wire at least once (up to the
                                      ///< highest block sent; set when the transfer ends)
  std::uint64_t packets_out = 0;
  std::uint64_t packets_in = 0;
  /// Retransmitted blocks, one meaning on both sides (docs/udp-file.md): DATA blocks the sender put on
  /// the wire again (timeout, repeated ACK, partial ACK resending the rest of a window). The sender
  /// counts what it resends; the receiver counts the resent blocks that arrive (a block number it has
  /// already seen or passed), so its figure is at most the sender's, plus the network's duplicates.
  std::uint64_t retransmissions = 0;
  std::uint64_t acks_repeated = 0;    ///< receiver: ACKs sent again (timeout, gap, repeated last block)
  std::uint64_t timeouts = 0;
  std::uint64_t dropped = 0;          ///< simulated losses
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point finished = started;
  double seconds() const { return std::chrono::duration<double>(finished - started).count(); }
};

/// How a transfer ended: success, or the outcome to report (timeout 4, peer ERROR 5, local I/O 6...).
using transfer_done = std::function<void(const core::outcome&, const transfer_stats&)>;

/// A transfer in progress. Create with make_shared, then start(); everything runs on `strand`.
class transfer : public std::enable_shared_from_this<transfer> {
public:
  using strand_type = asio::strand<asio::io_context::executor_type>;
  /// What the transfer does.
  struct setup {
    transfer_settings settings;
    bool sending = true;                 ///< sender (RRQ on the server) or receiver
    std::unique_ptr<source> src;         ///< sending: the bytes
    std::unique_ptr<sink> dst;           ///< receiving: where they go
    std::vector<std::uint8_t> preamble;  ///< sent first and again on timeout until the peer answers
                                         ///< (OACK, or ACK 0 of a WRQ); empty: none
    bool await_ack0 = false;             ///< sending: wait for ACK 0 (after an OACK) before DATA 1
    std::chrono::milliseconds dally{0};  ///< receiving: keep answering a repeated last DATA this long
    fault_options faults;
    std::string label;                   ///< log prefix, e.g. "127.0.0.1:5000 RRQ big.bin"
    std::uint64_t max_bytes = UINT64_MAX;  ///< receiving: DATA past this many bytes ends the transfer
    std::string max_bytes_why;           ///< receiving: the failure then, e.g. "more than the announced tsize 1000"
  };

  /// `sock` must be open and connected to the peer's transfer ID (address and port).
  transfer(asio::ip::udp::socket sock, strand_type strand, setup s, transfer_done done);
  ~transfer();

  /// Starts sending (or arms the receiver). `first` is a DATA packet already received (a client whose
  /// server ignored the options and answered the RRQ with DATA 1 directly).
  void start(const std::vector<std::uint8_t>* first = nullptr);
  /// Ends the transfer now with ERROR `code` "message" to the peer, reporting `why` (from any thread).
  void abort(error_code code, std::string message, core::outcome why);
  /// Live counters (call on the strand).
  const transfer_stats& stats() const noexcept { return stats_; }
  /// File bytes done so far, for a progress bar: delivered (receiver) or acknowledged (sender).
  std::uint64_t progress_bytes() const noexcept;
  /// The negotiated settings.
  const transfer_settings& settings() const noexcept { return s_.settings; }
  /// The sink (receiving transfers), e.g. for the digest after success.
  sink* destination() noexcept { return s_.dst.get(); }

private:
  struct out_packet {
    const std::uint8_t* head;  // 4-byte header (or whole small packet)
    std::size_t head_len;
    const std::uint8_t* body;  // DATA payload (may be null)
    std::size_t body_len;
  };

  void execute(std::vector<action>& acts, const std::uint8_t* payload);
  void queue(const std::uint8_t* head, std::size_t head_len, const std::uint8_t* body, std::size_t body_len);
  void flush();
  void after_io();
  void wait_readable();
  void on_readable();
  void handle(const std::uint8_t* p, std::size_t n);
  void on_data(std::uint16_t block, const std::uint8_t* payload, std::size_t size);
  void arm(std::chrono::milliseconds t);
  void wait_timer();
  void on_deadline();
  void send_error(error_code code, const std::string& message);
  void fail_write(const std::error_code& ec);
  /// A receiver writes its buffer to the file once its ACKs are out; false if that failed (finished).
  bool drain_sink();
  void finish(core::outcome o);
  /// Copies the state machine's end-of-transfer figures (bytes_sent, acks_repeated) into stats_.
  void sync_stats();
  void trace_out(const std::uint8_t* head, std::size_t head_len, std::size_t body_len);

  asio::ip::udp::socket sock_;
  strand_type strand_;
  asio::steady_timer timer_;
  setup s_;
  transfer_done done_cb_;
  std::optional<sender> sender_;
  std::optional<receiver> receiver_;
  fault_injector faults_;
  transfer_stats stats_;

  // receive slots for recvmmsg
  std::vector<std::uint8_t> rx_;
  std::size_t slot_ = 0;
  unsigned slots_ = 0;
  // send batch
  std::vector<out_packet> batch_;
  std::vector<std::uint8_t> headers_;     // 4 bytes per DATA/ACK in the batch
  std::size_t headers_used_ = 0;
  std::vector<std::uint8_t> held_;        // a packet delayed by --simulate-reorder (copied)
  std::vector<std::vector<std::uint8_t>> release_;  // delayed packets going out in this batch
  std::vector<action> acts_;
  bool reading_ = false;
  bool timer_waiting_ = false;
  std::chrono::steady_clock::time_point deadline_{};
  bool timer_armed_ = false;
  bool started_ = false;      // the peer answered the preamble
  bool finished_ = false;     // the state machine completed
  bool closed_ = false;       // done_ reported
  unsigned preamble_tries_ = 0;
  std::chrono::milliseconds preamble_armed_{0};   // the OACK's timer last armed
  std::chrono::milliseconds preamble_silent_{0};  // OACK timers expired so far
};

}  // namespace netlab::tftp
