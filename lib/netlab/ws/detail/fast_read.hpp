#pragma once
/// Issue 17: large frames read in one call instead of 4 KiB slices (plain ws:// server configs).
///
/// websocketpp reads into a buffer embedded in each connection (config::connection_read_buffer_size),
/// 4 KiB (now 2 KiB for plain ws://) to keep 10,000 idle connections lean. A 16 KiB frame therefore
/// took 5 reads plus the speculative one that finds EAGAIN (6.1 recvfrom and 8.45 TCP segments per
/// echoed message at 16 KiB × 100: each small read hands 4 KiB of window back and the kernel
/// announces it). NETLAB_WSPP_FAST_READ(CONFIG) replaces connection::handle_read_frame (websocketpp
/// 0.8.2's, same steps and error paths) with one that, when a read filled the connection's buffer,
/// goes on reading what the socket already holds, without waiting, into one 64 KiB buffer per thread,
/// and feeds it to the same frame processor (so every limit, --max-message, deflate bounds and UTF-8
/// checks, applies unchanged). Idle connections keep their small buffer; the 64 KiB exists once per
/// io thread that met a large read. Remove the macro's uses (and set plain_config's buffer back to
/// 4096) to go back to websocketpp's loop.
///
/// Measured (alternated A/B, docs/benchmarks.md "Issue 17: changes made"): echo 16 KiB × 100,
/// recvfrom 6.0 → 3.0 per message, server CPU 30.03 → 25.89 µs per message (bench/ab.py, 3 runs);
/// callgrind, 16 KiB × 10: 39,700 → 36,540 user instructions per message.
#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
#include <memory>

#include "netlab/ws/detail/wspp.hpp"

namespace netlab::ws::detail {

/// The per-thread buffer of NETLAB_WSPP_FAST_READ: 64 KiB, allocated on a thread's first large read.
/// `busy` guards against a nested use on the same thread (a handler that reads inside another's
/// processing would otherwise overwrite bytes not yet consumed); the nested one falls back to
/// websocketpp's read.
struct fast_read_buffer {
  static constexpr std::size_t size = 64 * 1024;
  std::unique_ptr<char[]> data;
  bool busy = false;

  /// Marks the buffer in use for a scope.
  struct claim {
    explicit claim(fast_read_buffer& b) : b_(b) { b_.busy = true; }
    ~claim() { b_.busy = false; }
    claim(const claim&) = delete;
    claim& operator=(const claim&) = delete;
    fast_read_buffer& b_;
  };

  static fast_read_buffer& of_this_thread() {
    thread_local fast_read_buffer b;
    if (!b.data) b.data.reset(new char[size]);
    return b;
  }
};

/// Reads of at most this many 64 KiB slices follow one filled buffer; then the connection goes back
/// to the event loop (an asynchronous read), so one fast sender cannot hold a thread.
inline constexpr int fast_read_max_slices = 4;

}  // namespace netlab::ws::detail

/// See the top of this file. For configs whose transport socket is a plain TCP socket (not TLS: the
/// bytes on the wire are records there). Use at global scope, like NETLAB_WSPP_FAST_PAYLOAD.
#define NETLAB_WSPP_FAST_READ(CONFIG)                                                                       \
  template <>                                                                                               \
  inline void websocketpp::connection<CONFIG>::handle_read_frame(lib::error_code const& ec,                 \
                                                                 size_t bytes_transferred) {                \
    lib::error_code ecm = ec;                                                                               \
    if (!ecm && m_internal_state != istate::PROCESS_CONNECTION) ecm = error::make_error_code(error::invalid_state); \
    if (ecm) {                                                                                              \
      log::level echannel = log::elevel::rerror;                                                            \
      if (ecm == transport::error::eof) {                                                                   \
        if (m_state == session::state::closed) return;                                                      \
        if (m_state == session::state::closing && !m_is_server) {                                           \
          terminate(lib::error_code());                                                                     \
          return;                                                                                           \
        }                                                                                                   \
      } else if (ecm == error::invalid_state) {                                                             \
        if (m_state == session::state::closed) return;                                                      \
      } else if (ecm == transport::error::action_after_shutdown) {                                          \
        echannel = log::elevel::info;                                                                       \
      }                                                                                                     \
      log_err(echannel, "handle_read_frame", ecm);                                                          \
      this->terminate(ecm);                                                                                 \
      return;                                                                                               \
    }                                                                                                       \
    /* websocketpp's loop: every frame in buf[0, n) through the processor; false = connection ended. */   \
    auto consume_all = [this](char* buf, size_t n) {                                                        \
      size_t p = 0;                                                                                         \
      while (p < n) {                                                                                       \
        lib::error_code consume_ec;                                                                         \
        p += m_processor->consume(reinterpret_cast<uint8_t*>(buf) + p, n - p, consume_ec);                  \
        if (consume_ec) {                                                                                   \
          log_err(log::elevel::rerror, "consume", consume_ec);                                              \
          if (CONFIG::drop_on_protocol_error) {                                                             \
            this->terminate(consume_ec);                                                                    \
            return false;                                                                                   \
          }                                                                                                 \
          lib::error_code close_ec;                                                                         \
          this->close(processor::error::to_ws(consume_ec), consume_ec.message(), close_ec);                 \
          if (close_ec) {                                                                                   \
            log_err(log::elevel::fatal, "Protocol error close frame ", close_ec);                           \
            this->terminate(close_ec);                                                                      \
          }                                                                                                 \
          return false;                                                                                     \
        }                                                                                                   \
        if (m_processor->ready()) {                                                                         \
          message_ptr msg = m_processor->get_message();                                                     \
          if (!msg) {                                                                                       \
            m_alog->write(log::alevel::devel, "null message from m_processor");                             \
          } else if (!is_control(msg->get_opcode())) {                                                      \
            if (m_state != session::state::open) {                                                          \
              m_elog->write(log::elevel::warn, "got non-close frame while closing");                        \
            } else if (m_message_handler) {                                                                 \
              m_message_handler(m_connection_hdl, msg);                                                     \
            }                                                                                               \
          } else {                                                                                          \
            process_control_frame(msg);                                                                     \
          }                                                                                                 \
        }                                                                                                   \
      }                                                                                                     \
      return true;                                                                                          \
    };                                                                                                      \
    if (!consume_all(m_buf, bytes_transferred)) return;                                                     \
    /* The buffer came back full: the socket likely holds more. Take it now, up to 64 KiB a call. */      \
    auto& fast = ::netlab::ws::detail::fast_read_buffer::of_this_thread();                                  \
    if (bytes_transferred == CONFIG::connection_read_buffer_size && !fast.busy) {                           \
      const ::netlab::ws::detail::fast_read_buffer::claim held(fast);                                       \
      const int fd = transport_con_type::get_socket().native_handle();                                      \
      for (int i = 0; i < ::netlab::ws::detail::fast_read_max_slices; ++i) {                                \
        if (!m_read_flag || m_state != session::state::open ||                                              \
            m_internal_state != istate::PROCESS_CONNECTION)                                                 \
          break;                                                                                            \
        /* Errors and EOF are left to the asynchronous read below, which meets them again. */             \
        const ssize_t n = ::recv(fd, fast.data.get(), fast.size, MSG_DONTWAIT);                             \
        if (n <= 0) break;                                                                                  \
        if (!consume_all(fast.data.get(), static_cast<size_t>(n))) return;                                  \
        if (static_cast<size_t>(n) < fast.size) break;                                                      \
      }                                                                                                     \
    }                                                                                                       \
    read_frame();                                                                                           \
  }
