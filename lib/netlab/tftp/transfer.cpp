#include "netlab/tftp/transfer.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <asio/bind_executor.hpp>
#include <asio/dispatch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "netlab/core/log.hpp"

namespace netlab::tftp {
namespace {

using clock = std::chrono::steady_clock;

constexpr unsigned max_batch = 64;         // packets per sendmmsg / recvmmsg
constexpr unsigned max_drain_rounds = 16;  // recvmmsg calls per readiness (fairness between transfers)
constexpr std::size_t control_slot = 2048; // receive slot of a sender (ACKs, ERRORs)

std::string describe_out(const std::uint8_t* head, std::size_t head_len, std::size_t body_len) {
  if (head_len == 4 && head[1] == static_cast<std::uint8_t>(opcode::data))
    return "DATA block " + std::to_string((head[2] << 8) | head[3]) + " (" + std::to_string(body_len) + " B)";
  return describe(parse(head, head_len));
}

}  // namespace

transfer::transfer(asio::ip::udp::socket sock, strand_type strand, setup s, transfer_done done)
    : sock_(std::move(sock)), strand_(std::move(strand)), timer_(strand_), s_(std::move(s)), done_cb_(std::move(done)),
      faults_(s_.faults) {
  if (s_.sending) {
    // A netascii source learns its size as it converts: the sender learns it from execute().
    sender_.emplace(!s_.src ? 0 : s_.src->size_known() ? s_.src->size() : sender::unknown_size, s_.settings);
    slots_ = 16;
    slot_ = control_slot;
  } else {
    receiver_.emplace(s_.settings);
    // Up to a window per recvmmsg, but about 1 MiB at most: the receive area is then written to the
    // file and reused while it is still in the CPU's cache.
    const auto per_mib = static_cast<unsigned>(std::max<std::size_t>(1, (1u << 20) / s_.settings.blksize));
    slots_ = std::clamp(std::min(s_.settings.windowsize, per_mib), 8u, max_batch);
    slot_ = s_.settings.blksize + data_header + 1;  // one spare byte detects an oversized block
  }
  // A receiver with a sink takes payloads into the sink's buffer: rx_ then holds only the headers.
  rx_.resize(receiver_ && s_.dst ? data_header * slots_ : slot_ * slots_);
  headers_.resize(4 * (max_batch + 2));
  batch_.reserve(max_batch + 2);
  asio::error_code ec;
  sock_.non_blocking(true, ec);
}

transfer::~transfer() = default;

void transfer::start(const std::vector<std::uint8_t>* first) {
  asio::dispatch(strand_, [self = shared_from_this(), first_copy = first ? *first : std::vector<std::uint8_t>()] {
    auto& t = *self;
    t.stats_.started = clock::now();
    t.acts_.clear();
    if (!t.s_.preamble.empty()) t.queue(t.s_.preamble.data(), t.s_.preamble.size(), nullptr, 0);
    if (t.sender_) {
      if (t.s_.await_ack0) {
        t.arm(t.preamble_armed_ = capped_backoff(t.s_.settings.timeout, 0, {}, t.s_.settings.max_silence));
      } else {
        t.started_ = true;
        t.sender_->start(t.acts_);
        t.execute(t.acts_, nullptr);
      }
    } else {
      t.receiver_->start(t.acts_);
      t.execute(t.acts_, nullptr);
      if (!first_copy.empty()) t.handle(first_copy.data(), first_copy.size());
    }
    t.after_io();
  });
}

void transfer::abort(error_code code, std::string message, core::outcome why) {
  asio::dispatch(strand_, [self = shared_from_this(), code, message = std::move(message), why = std::move(why)]() mutable {
    if (self->closed_) return;
    self->batch_.clear();
    self->send_error(code, message);
    self->finish(std::move(why));
  });
}

void transfer::queue(const std::uint8_t* head, std::size_t head_len, const std::uint8_t* body, std::size_t body_len) {
  auto& log = core::log();
  if (log.should_log(spdlog::level::trace)) log.trace("{}: send {}", s_.label, describe_out(head, head_len, body_len));
  auto verdict = faults_.next();
  if (verdict == fault_injector::verdict::drop) {
    ++stats_.dropped;
    if (log.should_log(spdlog::level::debug))
      log.debug("{}: simulated loss of {}", s_.label, describe_out(head, head_len, body_len));
    return;
  }
  if (verdict == fault_injector::verdict::delay) {  // (--simulate-reorder only: reads a mapped body here)
    if (!held_.empty()) release_.push_back(std::move(held_));  // one held at a time: the older goes now
    held_.clear();
    held_.assign(head, head + head_len);
    if (body_len) held_.insert(held_.end(), body, body + body_len);
    return;
  }
  if (batch_.size() + 2 > max_batch) flush();
  batch_.push_back(out_packet{head, head_len, body, body_len});
  if (verdict == fault_injector::verdict::duplicate) batch_.push_back(out_packet{head, head_len, body, body_len});
}

void transfer::flush() {
  // A delayed packet goes out after whatever this batch carries (reordering), unless the batch is empty
  // and the transfer goes on (then it waits for the next batch).
  if (!held_.empty() && (!batch_.empty() || finished_)) {
    release_.push_back(std::move(held_));
    held_.clear();
  }
  for (const auto& r : release_) batch_.push_back(out_packet{r.data(), r.size(), nullptr, 0});
  std::size_t done = 0;
  mmsghdr msgs[max_batch + 2];
  iovec iov[2 * (max_batch + 2)];
  unsigned polls = 0;
  while (done < batch_.size() && !closed_) {
    const std::size_t n = std::min<std::size_t>(batch_.size() - done, max_batch + 2);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& p = batch_[done + i];
      iov[2 * i] = {const_cast<std::uint8_t*>(p.head), p.head_len};
      iov[2 * i + 1] = {const_cast<std::uint8_t*>(p.body), p.body_len};
      std::memset(&msgs[i], 0, sizeof(mmsghdr));
      msgs[i].msg_hdr.msg_iov = &iov[2 * i];
      msgs[i].msg_hdr.msg_iovlen = p.body_len ? 2 : 1;
    }
    const int r = ::sendmmsg(sock_.native_handle(), msgs, static_cast<unsigned>(n), MSG_DONTWAIT);
    if (r > 0) {
      done += static_cast<std::size_t>(r);
      stats_.packets_out += static_cast<std::uint64_t>(r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) && polls++ < 100) {
      pollfd pfd{sock_.native_handle(), POLLOUT, 0};
      ::poll(&pfd, 1, 20);  // the send buffer drains in microseconds on a LAN; bounded
      continue;
    }
    const std::error_code ec(r < 0 ? errno : EAGAIN, std::generic_category());
    batch_.clear();
    headers_used_ = 0;
    release_.clear();
    if (ec == std::errc::connection_refused)
      return finish(core::outcome::fail(exit_code::network, s_.label + ": the peer went away (ICMP port unreachable)",
                                        "the other side stopped or was killed"));
    if (ec == std::errc::bad_address && s_.src && s_.src->mapped()) {  // sent from a mapping past the file's end
      send_error(error_code::not_defined, "read error on the server");
      return finish(core::outcome::fail(exit_code::local_io, s_.label + ": the file shrank while it was being sent",
                                        "do not truncate or replace files in place while they are served"));
    }
    return finish(core::outcome::fail(ec, s_.label + ": send", core::hint_for(ec)));
  }
  batch_.clear();
  headers_used_ = 0;
  release_.clear();
}

void transfer::execute(std::vector<action>& acts, const std::uint8_t* payload) {
  // A window's blocks must all be readable before the first is queued: one pread covers the window.
  std::uint64_t lo = UINT64_MAX, hi = 0;
  for (const auto& a : acts)
    if (a.what == action::kind::send_data) {
      lo = std::min(lo, a.offset);
      hi = std::max(hi, a.offset + a.size);
    }
  if (lo != UINT64_MAX && s_.src) {
    if (!batch_.empty()) flush();
    std::error_code ec;
    if (!s_.src->ensure(lo, hi, ec)) {
      acts.clear();
      send_error(error_code::not_defined, "read error on the server");
      return finish(core::outcome::fail(exit_code::local_io, s_.label + ": read: " + ec.message(), "check the file"));
    }
    if (sender_ && sender_->blocks() == sender::unknown_size && s_.src->size_known())
      sender_->learn_size(s_.src->size(), acts);  // the end turned up in this window: send nothing past it
  }
  for (const auto& a : acts) {
    if (closed_) return;
    switch (a.what) {
      case action::kind::send_data: {
        if (headers_used_ + 4 > headers_.size()) flush();
        auto* h = headers_.data() + headers_used_;
        headers_used_ += 4;
        write_data_header(h, a.wire_block);
        queue(h, 4, a.size ? s_.src->at(a.offset) : nullptr, a.size);
        break;
      }
      case action::kind::send_ack: {
        if (!started_ && !s_.preamble.empty() && a.wire_block == 0) {  // the peer never answered our OACK/ACK 0
          queue(s_.preamble.data(), s_.preamble.size(), nullptr, 0);
          break;
        }
        if (headers_used_ + 4 > headers_.size()) flush();
        auto* h = headers_.data() + headers_used_;
        headers_used_ += 4;
        write_ack(h, a.wire_block);
        queue(h, 4, nullptr, 0);
        break;
      }
      case action::kind::deliver: {
        if (a.size > s_.max_bytes - stats_.bytes) {  // a peer that sends past tsize or --max-size
          batch_.clear();
          headers_used_ = 0;
          send_error(error_code::disk_full, s_.max_bytes_why);
          return finish(core::outcome::fail(exit_code::protocol, s_.label + ": " + s_.max_bytes_why,
                                            "the server sends more than agreed: the transfer was stopped there"));
        }
        std::error_code ec;
        if (!s_.dst->write(payload, a.size, ec)) return fail_write(ec);
        stats_.bytes += a.size;
        break;
      }
      case action::kind::arm_timer:
        arm(a.timer);
        break;
      case action::kind::done: {
        finished_ = true;
        timer_armed_ = false;
        if (s_.dst) {
          std::error_code ec;
          if (!s_.dst->commit(ec)) {
            batch_.clear();
            headers_used_ = 0;
            send_error(error_code::disk_full, "cannot store the file: " + ec.message());
            return finish(core::outcome::fail(exit_code::local_io, s_.label + ": store: " + ec.message(),
                                              "check free space and permissions"));
          }
        } else if (s_.src) {
          stats_.bytes = s_.src->size();
        }
        break;
      }
      case action::kind::failed: {
        ++stats_.timeouts;
        batch_.clear();
        headers_used_ = 0;
        send_error(error_code::not_defined, "timed out");
        return finish(core::outcome::fail(
            exit_code::timeout,
            s_.label + ": no answer from the peer (gave up after " + std::to_string(s_.settings.retries) +
                " retransmissions or " + std::to_string(s_.settings.max_silence.count()) + " ms of silence)",
            "the other side stopped, or the network drops everything: check it, or raise --timeout/--retries"));
      }
    }
  }
  acts.clear();
}

void transfer::wait_readable() {
  if (reading_ || closed_) return;
  reading_ = true;
  sock_.async_wait(asio::socket_base::wait_read, asio::bind_executor(strand_, [self = shared_from_this()](std::error_code ec) {
                     self->reading_ = false;
                     if (self->closed_) return;
                     if (ec) {
                       if (ec == asio::error::operation_aborted) return;
                       return self->finish(core::outcome::fail(ec, self->s_.label + ": receive", core::hint_for(ec)));
                     }
                     self->on_readable();
                   }));
}

void transfer::on_readable() {
  mmsghdr msgs[max_batch];
  iovec iov[2 * max_batch];
  const bool in_place = receiver_ && s_.dst;
  const std::size_t blk = s_.settings.blksize;
  for (unsigned round = 0; round < max_drain_rounds && !closed_; ++round) {
    // A receiver reads each DATA payload straight into the sink's buffer, slot i at i * blksize, so
    // the in-order blocks of a batch lie end to end where the file write takes them (no copy). Each
    // slot has one spare byte (overlapping the next slot) so an oversized block is seen.
    std::uint8_t* area = in_place ? s_.dst->receive_area(slots_ * blk + 1) : nullptr;
    for (unsigned i = 0; i < slots_; ++i) {
      std::memset(&msgs[i], 0, sizeof(mmsghdr));
      if (in_place) {
        iov[2 * i] = {rx_.data() + i * data_header, data_header};
        iov[2 * i + 1] = {area + i * blk, blk + 1};
        msgs[i].msg_hdr.msg_iovlen = 2;
      } else {
        iov[2 * i] = {rx_.data() + i * slot_, slot_};
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      msgs[i].msg_hdr.msg_iov = &iov[2 * i];
    }
    const int r = ::recvmmsg(sock_.native_handle(), msgs, slots_, MSG_DONTWAIT, nullptr);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      const std::error_code ec(errno, std::generic_category());
      if (ec == std::errc::connection_refused) {
        if (finished_) break;  // dallying after success: the peer is gone, as it should be
        return finish(core::outcome::fail(exit_code::network, s_.label + ": the peer went away (ICMP port unreachable)",
                                          "the other side stopped or was killed"));
      }
      return finish(core::outcome::fail(ec, s_.label + ": receive", core::hint_for(ec)));
    }
    for (int i = 0; i < r && !closed_; ++i) {
      ++stats_.packets_in;
      const std::size_t n = msgs[i].msg_len;
      if (!in_place) {
        handle(rx_.data() + static_cast<std::size_t>(i) * slot_, n);
        continue;
      }
      const std::uint8_t* head = rx_.data() + static_cast<std::size_t>(i) * data_header;
      const std::uint8_t* body = area + static_cast<std::size_t>(i) * blk;
      if (n >= data_header && head[0] == 0 && head[1] == static_cast<std::uint8_t>(opcode::data)) {
        on_data(static_cast<std::uint16_t>((head[2] << 8) | head[3]), body, n - data_header);
      } else {  // anything else (ERROR, a stray packet) is small: parse it from a contiguous copy
        std::uint8_t whole[control_slot];
        const std::size_t k = std::min(n, sizeof whole);
        std::memcpy(whole, head, std::min(k, data_header));
        if (k > data_header) std::memcpy(whole + data_header, body, k - data_header);
        handle(whole, k);
      }
    }
    if (closed_) return;
    flush();
    if (closed_ || !drain_sink()) return;
    if (static_cast<unsigned>(r) < slots_) break;
  }
  after_io();
}

void transfer::after_io() {
  if (closed_) return;
  flush();
  if (closed_ || !drain_sink()) return;
  if (finished_ && s_.dally.count() == 0) return finish(core::outcome::success());
  wait_readable();
}

void transfer::handle(const std::uint8_t* p, std::size_t n) {
  auto& log = core::log();
  auto pk = parse(p, n);
  if (log.should_log(spdlog::level::trace) && !std::holds_alternative<data>(pk))  // on_data() traces DATA
    log.trace("{}: recv {}", s_.label, describe(pk));
  if (auto* e = std::get_if<error>(&pk)) {
    batch_.clear();
    headers_used_ = 0;
    return finish(core::outcome::fail(exit_code::protocol,
                                      s_.label + ": the peer sent ERROR " + std::to_string(e->code) +
                                          (e->message.empty() ? std::string() : " (" + e->message + ")"),
                                      "the other side gave up on this transfer"));
  }
  if (auto* bad = std::get_if<bad_packet>(&pk)) {
    if (log.should_log(spdlog::level::debug)) log.debug("{}: dropped a malformed packet: {}", s_.label, bad->reason);
    return;
  }
  if (sender_) {
    auto* a = std::get_if<ack>(&pk);
    if (!a) return;
    if (!started_) {
      if (a->block != 0) return;
      started_ = true;
      sender_->start(acts_);
      return execute(acts_, nullptr);
    }
    const auto before = sender_->retransmissions();
    sender_->on_ack(a->block, acts_);
    stats_.retransmissions += sender_->retransmissions() - before;
    return execute(acts_, nullptr);
  }
  if (auto* d = std::get_if<data>(&pk)) on_data(d->block, d->payload, d->size);
}

void transfer::on_data(std::uint16_t block, const std::uint8_t* payload, std::size_t size) {
  if (size > s_.settings.blksize) {
    batch_.clear();
    headers_used_ = 0;
    const std::string why = "DATA block of " + std::to_string(size) + " bytes exceeds the negotiated blksize " +
                            std::to_string(s_.settings.blksize);
    send_error(error_code::illegal_operation, why);
    return finish(core::outcome::fail(exit_code::protocol, s_.label + ": " + why, "the peer breaks RFC 2348"));
  }
  auto& log = core::log();
  if (log.should_log(spdlog::level::trace)) log.trace("{}: recv DATA block {} ({} bytes)", s_.label, block, size);
  started_ = true;
  const auto before = receiver_->retransmissions();
  receiver_->on_data(block, size, acts_);
  stats_.retransmissions += receiver_->retransmissions() - before;
  execute(acts_, payload);
  if (finished_ && !closed_ && s_.dally.count() > 0 && !timer_armed_) {
    // Report success now; keep the socket a little longer to re-ACK a repeated last block.
    stats_.finished = clock::now();
    sync_stats();
    auto cb = std::move(done_cb_);
    done_cb_ = nullptr;
    if (cb) cb(core::outcome::success(), stats_);
    arm(s_.dally);
  }
}

void transfer::arm(std::chrono::milliseconds t) {
  deadline_ = clock::now() + t;
  timer_armed_ = true;
  if (!timer_waiting_) wait_timer();
  else if (deadline_ < timer_.expiry()) timer_.cancel();  // the handler waits again for the new deadline
}

void transfer::wait_timer() {
  timer_waiting_ = true;
  timer_.expires_at(deadline_);
  timer_.async_wait(asio::bind_executor(strand_, [self = shared_from_this()](std::error_code ec) {
    (void)ec;  // cancelled by arm() for an earlier deadline, or by finish(): the flags tell which
    self->timer_waiting_ = false;
    if (self->closed_ || !self->timer_armed_) return;
    if (clock::now() < self->deadline_) return self->wait_timer();  // re-armed meanwhile: wait the rest
    self->timer_armed_ = false;
    self->on_deadline();
  }));
}

void transfer::on_deadline() {
  if (finished_) return finish(core::outcome::success());  // end of the dally period
  ++stats_.timeouts;
  auto& log = core::log();
  if (log.should_log(spdlog::level::debug)) log.debug("{}: timeout, retransmitting", s_.label);
  if (sender_ && !started_) {  // the OACK went unanswered
    // Bounded like the state machines: --retries timeouts, and max_silence in all (a client asking for
    // timeout=255 would otherwise hold the slot for hours of doubling timers).
    preamble_silent_ += preamble_armed_;
    if (++preamble_tries_ > s_.settings.retries || silence_exhausted(preamble_silent_, s_.settings.max_silence)) {
      send_error(error_code::not_defined, "timed out");
      return finish(core::outcome::fail(exit_code::timeout,
                                        s_.label + ": the peer never acknowledged the OACK (" +
                                            std::to_string(preamble_tries_ - 1) + " retransmission(s) in " +
                                            std::to_string(preamble_silent_.count()) + " ms)",
                                        "the client stopped, or a firewall drops the transfer port"));
    }
    queue(s_.preamble.data(), s_.preamble.size(), nullptr, 0);  // an OACK, not a block: counted in timeouts
    arm(preamble_armed_ = capped_backoff(s_.settings.timeout, std::min(preamble_tries_, 3u), preamble_silent_,
                                         s_.settings.max_silence));
  } else if (sender_) {
    const auto before = sender_->retransmissions();
    sender_->on_timeout(acts_);
    stats_.retransmissions += sender_->retransmissions() - before;
    execute(acts_, nullptr);
  } else {
    const auto before = receiver_->retransmissions();
    receiver_->on_timeout(acts_);
    stats_.retransmissions += receiver_->retransmissions() - before;
    execute(acts_, nullptr);
  }
  after_io();
}

bool transfer::drain_sink() {
  if (!s_.dst || finished_) return true;  // commit() writes the rest
  std::error_code ec;
  if (s_.dst->drain(ec)) return true;
  fail_write(ec);
  return false;
}

void transfer::fail_write(const std::error_code& ec) {
  batch_.clear();
  headers_used_ = 0;
  send_error(error_code::disk_full, "write error: " + ec.message());
  finish(core::outcome::fail(exit_code::local_io, s_.label + ": write: " + ec.message(),
                             "check free space and permissions"));
}

void transfer::send_error(error_code code, const std::string& message) {
  auto bytes = encode(error{static_cast<std::uint16_t>(code), message});
  asio::error_code ec;
  sock_.send(asio::buffer(bytes), 0, ec);  // best effort: the peer may be gone
  auto& log = core::log();
  if (log.should_log(spdlog::level::trace)) log.trace("{}: send ERROR {} ({})", s_.label, static_cast<int>(code), message);
}

std::uint64_t transfer::progress_bytes() const noexcept {
  if (!sender_) return stats_.bytes;
  if (finished_) return stats_.bytes;
  const std::uint64_t acked = sender_->acknowledged() * s_.settings.blksize;
  return s_.src && s_.src->size_known() ? std::min(acked, s_.src->size()) : acked;
}

void transfer::sync_stats() {
  if (sender_) {
    // Blocks 1..highest_sent went out; the last may be short (or the file's size still unknown).
    const std::uint64_t wire = sender_->highest_sent() * s_.settings.blksize;
    const std::uint64_t size = s_.src && s_.src->size_known() ? s_.src->size() : wire;
    stats_.bytes_sent = std::min(wire, size);
    if (!finished_) stats_.bytes = std::min(sender_->acknowledged() * s_.settings.blksize, size);
  } else if (receiver_) {
    stats_.acks_repeated = receiver_->acks_repeated();
  }
}

void transfer::finish(core::outcome o) {
  if (closed_) return;
  closed_ = true;
  timer_armed_ = false;
  stats_.finished = clock::now();
  sync_stats();
  if (!o.ok() && s_.dst) s_.dst->abandon();
  asio::error_code ec;
  timer_.cancel();
  sock_.close(ec);
  auto cb = std::move(done_cb_);
  done_cb_ = nullptr;
  if (cb) cb(o, stats_);
}

}  // namespace netlab::tftp
