#pragma once
/// Every server's stop path, written once (after Asio's cpp11/http/server: do_await_stop() plus a
/// connection manager): the signals, a registry of live sessions (connections, transfers) and one
/// grace timer. A protocol supplies only "stop accepting" and, per session, "close this session".
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "netlab/core/runtime.hpp"

namespace netlab::core {

/// The stop path of one server. First SIGINT/SIGTERM (or stop()): stop accepting, ask every live
/// session to close the protocol's way (close(graceful = true)); the run ends as soon as the last
/// one is removed. When `grace` passes first, the rest are closed at once (close(false)); if some
/// still do not report removal within `force_bound` more, the run ends anyway. A second signal (or
/// stop_now()) ends the run at once: runtime::stop(), the same for every server.
class lifecycle : public std::enable_shared_from_this<lifecycle> {
 public:
  /// graceful: the protocol's close (pending replies finish, ws 1001, TFTP ERROR); false: now.
  /// Called on the lifecycle's strand: post to the session's own executor from it.
  using close_fn = std::function<void(bool graceful)>;
  using session_id = std::uint64_t;
  /// After the grace period, how long force-closed sessions get to report their removal.
  static constexpr std::chrono::milliseconds force_bound{500};

  using strand_t = asio::strand<asio::io_context::executor_type>;
  /// strand: the protocol's accept strand (its acceptor or listening socket lives there), where
  /// the lifecycle runs its own work too, so stop_accepting runs once, synchronously, on it.
  /// what: the sessions' noun for the log ("connection(s)", "transfer(s)").
  static std::shared_ptr<lifecycle> create(runtime& rt, strand_t strand, std::string what, std::chrono::milliseconds grace,
                                           std::function<void()> stop_accepting);

  /// Handles SIGINT/SIGTERM of `rt` from now on: the first begins stop(), the second stop_now().
  void watch_signals();

  /// Registers a live session. Returns 0 when the server is already stopping: the caller closes it.
  session_id add(close_fn close);
  /// The session is gone (any thread; an id not registered, or removed before, is ignored).
  void remove(session_id id) noexcept;
  /// Live sessions.
  std::size_t size() const;
  /// True once the stop began (any thread).
  bool stopping() const;

  /// Graceful stop (any thread; idempotent).
  void stop();
  /// Immediate stop (any thread): every thread returns from runtime::run().
  void stop_now();

 private:
  lifecycle(runtime& rt, strand_t strand, std::string what, std::chrono::milliseconds grace,
            std::function<void()> stop_accepting);
  void begin_stop();        // on strand_
  void on_grace_over();     // on strand_
  void finish();            // on strand_
  void close_all(bool graceful);

  runtime& rt_;
  std::string what_;
  std::chrono::milliseconds grace_;
  std::function<void()> stop_accepting_;
  strand_t strand_;
  asio::steady_timer timer_;  ///< the one grace timer (then the force bound); on strand_
  int signals_ = 0;           ///< on the runtime's signal strand
  bool forced_ = false;       ///< on strand_: the grace period is over
  bool finished_ = false;     ///< on strand_
  mutable std::mutex mu_;
  bool stopping_ = false;  ///< (mu_)
  session_id next_ = 1;    ///< (mu_)
  std::unordered_map<session_id, close_fn> live_;  ///< (mu_)
};

}  // namespace netlab::core
