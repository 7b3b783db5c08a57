#pragma once
/// Issue 17: websocketpp's read and write completion handlers without a heap allocation per copy.
///
/// websocketpp's connection keeps its frame read and write handlers as std::function members bound
/// with std::bind(&connection::handle_read_frame, this, _1, _2): 24 bytes, over libstdc++'s 16-byte
/// small-object buffer, so each of the 7 copies the asio transport makes per read (and per write:
/// the by-value parameter, the bind into handle_async_read, custom_alloc_handler, the strand's
/// wrapper and Asio's moves of a copy) allocates and frees (16 of the 22.5 allocations per echoed
/// message at 64 B). NETLAB_WSPP_LEAN_HANDLERS(CONFIG) replaces connection::start() (websocketpp
/// 0.8.2's, same steps) with one that first swaps both members for lambdas capturing `this` alone
/// (8 bytes, trivially copyable: libstdc++ keeps them inside the std::function, so copies are
/// plain copies). The raw `this` is what websocketpp's own binds hold; the transport's bind keeps
/// its shared_ptr to the connection alive while a read or write is pending, as before.
/// Remove the macro's uses to go back to websocketpp's handlers.
///
/// Measured (alternated A/B, docs/benchmarks.md "Issue 17: changes made"): echo 64 B × 100,
/// allocations 23.2 → 9.1 and callgrind user instructions 13,533 → 10,988 per message; server user
/// CPU 5.62 → 3.74 µs per message (bench/ab.py, 5 runs; the total's kernel part is noisier).
#include "netlab/ws/detail/wspp.hpp"

/// See the top of this file. Use at global scope, like NETLAB_WSPP_FAST_PAYLOAD.
#define NETLAB_WSPP_LEAN_HANDLERS(CONFIG)                                                                   \
  template <>                                                                                               \
  inline void websocketpp::connection<CONFIG>::start() {                                                    \
    m_handle_read_frame = [this](lib::error_code const& ec, size_t n) { this->handle_read_frame(ec, n); };  \
    m_write_frame_handler = [this](lib::error_code const& ec) { this->handle_write_frame(ec); };            \
    if (m_internal_state != istate::USER_INIT) {                                                            \
      m_alog->write(log::alevel::devel, "Start called in invalid state");                                   \
      this->terminate(error::make_error_code(error::invalid_state));                                        \
      return;                                                                                               \
    }                                                                                                       \
    m_internal_state = istate::TRANSPORT_INIT;                                                              \
    transport_con_type::init(lib::bind(&type::handle_transport_init, type::get_shared(), lib::placeholders::_1)); \
  }
