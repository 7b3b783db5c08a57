#pragma once
/// Issue 17: a queued send starts the connection's write without a std::function on the heap.
///
/// websocketpp's connection::send(message_ptr) ends by posting write_frame to the connection's strand
/// as `transport::dispatch(std::bind(&connection::write_frame, shared_from_this()))`: a 32-byte bind in
/// a std::function (a heap allocation), copied twice more on its way (transport::dispatch takes it by
/// value, strand::wrap copies it), then Asio's strand op: 5 of the 9 allocations left per echoed
/// message at 64 B after NETLAB_WSPP_LEAN_HANDLERS. NETLAB_WSPP_LEAN_SEND(CONFIG) replaces send()
/// (websocketpp 0.8.2's, same steps and errors) with one that posts a lambda holding the connection's
/// shared_ptr straight to the strand (`strand::post`, Asio's recycled handler memory): still a post,
/// so sends made by one handler are still written together once it returns, in the same order.
/// Remove the macro's uses to go back to websocketpp's send.
///
/// Measured (docs/benchmarks.md "Issue 17: changes made"): echo 64 B × 100, allocations 9.1 → 5.0 and
/// callgrind user instructions 11,087 → 9,773 per message; at 16 KiB × 10 28,711 → 27,522.
#include "netlab/ws/detail/wspp.hpp"

/// See the top of this file. For configs with a strand (transport enable_multithreading). Use at
/// global scope, like NETLAB_WSPP_FAST_PAYLOAD.
#define NETLAB_WSPP_LEAN_SEND(CONFIG)                                                                       \
  template <>                                                                                               \
  inline websocketpp::lib::error_code websocketpp::connection<CONFIG>::send(                                \
      CONFIG::message_type::ptr msg) {                                                                      \
    static_assert(CONFIG::transport_config::enable_multithreading, "NETLAB_WSPP_LEAN_SEND needs a strand"); \
    {                                                                                                       \
      scoped_lock_type lock(m_connection_state_lock);                                                       \
      if (m_state != session::state::open) return error::make_error_code(error::invalid_state);             \
    }                                                                                                       \
    bool needs_writing = false;                                                                             \
    if (msg->get_prepared()) {                                                                              \
      scoped_lock_type lock(m_write_lock);                                                                  \
      write_push(msg);                                                                                      \
      needs_writing = !m_write_flag && !m_send_queue.empty();                                               \
    } else {                                                                                                \
      message_ptr outgoing_msg = m_msg_manager->get_message();                                              \
      if (!outgoing_msg) return error::make_error_code(error::no_outgoing_buffers);                         \
      scoped_lock_type lock(m_write_lock);                                                                  \
      if (lib::error_code ec = m_processor->prepare_data_frame(msg, outgoing_msg)) return ec;               \
      write_push(outgoing_msg);                                                                             \
      needs_writing = !m_write_flag && !m_send_queue.empty();                                               \
    }                                                                                                       \
    if (needs_writing) transport_con_type::get_strand()->post([self = type::get_shared()] { self->write_frame(); }); \
    return lib::error_code();                                                                               \
  }
