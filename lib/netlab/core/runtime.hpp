#pragma once
/// The process's one io_context, its threads, and SIGINT/SIGTERM handling.
#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/strand.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace netlab::core {

/// Owns the io_context and the signal_set; run() drives it on N threads.
class runtime {
 public:
  /// threads: how many threads call io_context::run() (>= 1).
  explicit runtime(unsigned threads = 1);
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  asio::io_context& ioc() noexcept { return ioc_; }
  unsigned threads() const noexcept { return threads_; }

  /// Registers what to do on SIGINT/SIGTERM (called on an io thread, once per signal).
  /// Without a handler, a signal stops the io_context.
  void on_signal(std::function<void(int)> handler);
  /// True once SIGINT/SIGTERM arrived.
  bool interrupted() const noexcept { return interrupted_.load(); }
  /// The signal number that arrived, or 0.
  int signal_number() const noexcept { return signal_.load(); }

  /// Runs the io_context on threads() threads until it runs out of work or is stopped.
  /// The one exception boundary of the process's handlers: an exception escaping a handler on any
  /// thread stops every context, run() joins the threads and rethrows the first such exception on
  /// the calling thread (main's catch-all then reports it as an internal error, exit 1), instead
  /// of std::terminate on a pool thread.
  void run();

  /// Call before run() in a server: the one server threading policy. Thread 1 runs ioc(); threads
  /// 2..N each own an io_context and sleep on a condition variable (no wake-ups at all while idle)
  /// until at least two connections are open (connection_joined), then help: a thread without
  /// connections of its own runs ioc(), one with some runs only its own context, and it goes back to
  /// sleep within 10 ms once fewer than two are open and none is its own. The first `shared_below`
  /// connections (place_connection()) live on ioc() with a strand each; beyond that they are handed
  /// to the threads in turn, so many connections share no scheduler queue or epoll (64 B x 1000:
  /// 1.5x); websocketpp makes its own sockets on ioc() and is helped the same way. A lone connection
  /// is served by thread 1 alone: its strand would otherwise hop between threads on every message
  /// (ws-echo 64 B x 1: 2x fewer msgs/s). With a `busy_poll` budget, while exactly one connection
  /// is open, thread 1 polls ioc() without sleeping for up to the budget after its last handler, so
  /// a request/response connection finds it awake (on a 2-vCPU VM a cross-CPU wake-up costs more
  /// than the exchange); it costs up to the budget of one CPU per message, and nothing while idle.
  /// See docs/benchmarks.md and docs/architecture.md. Without serve() (clients, load generators),
  /// every thread runs ioc() until the work ends: a client is busy for its whole run.
  void serve(std::chrono::microseconds busy_poll = std::chrono::microseconds(0), unsigned shared_below = 32);
  /// Where the next connection is to live: `executor` (a strand on ioc(), or a thread's own
  /// context), and the `slot` to pass to connection_joined() once it is accepted and to
  /// connection_left() when it closes. A pending accept is not counted as a connection.
  struct placement {
    asio::any_io_executor executor;
    int slot = -1;  ///< -1: on ioc()
  };
  placement place_connection();
  /// A connection is open: one placed by place_connection() was accepted (its `slot`), or one the
  /// server created itself on ioc() (-1; websocketpp makes its own sockets).
  void connection_joined(int slot = -1);
  /// A connection counted by connection_joined() closed.
  void connection_left(int slot = -1) noexcept;
  /// Stops the io_context at once (all threads return from run(); pending handlers are dropped).
  void stop();
  /// Stops waiting for signals, so run() returns as soon as the remaining work drains.
  /// Servers call it after a graceful stop, clients when their exchange completes.
  void release();

 private:
  void wait_signal();

  // Connection bookkeeping first: a connection still queued in a context at exit is destroyed with
  // that context and reports connection_left(), so these must outlive every context.
  std::atomic<long> open_{0};                      ///< open connections (connection_joined)
  std::unique_ptr<std::atomic<long>[]> own_open_;  ///< per own context: its open connections
  std::size_t own_count_ = 0;
  asio::io_context ioc_;
  // The signal wait, its re-arm and release() all run on this strand: with several threads calling
  // run(), a release() racing a re-arm would otherwise leave a wait that keeps run() alive forever.
  asio::strand<asio::io_context::executor_type> strand_;
  asio::signal_set signals_;
  unsigned threads_;
  std::function<void(int)> handler_;
  std::atomic<bool> interrupted_{false};
  std::atomic<bool> released_{false};
  std::atomic<int> signal_{0};
  bool serving_ = false;
  void run_own(std::size_t i);
  void run_first();
  /// Runs f (one thread's whole run loop); an exception is kept (the first one) and stops all.
  template <class F>
  void guarded(F&& f) noexcept;
  std::mutex failure_mu_;
  std::exception_ptr failure_;  ///< (failure_mu_) the first exception that escaped a handler
  long count_connection(int slot, long delta) noexcept;  ///< returns the open connections after
  /// Thread 1 busy-polls: a budget is set and exactly one connection is open (never while idle).
  bool polling() const noexcept { return spin_.count() > 0 && open_.load(std::memory_order_relaxed) == 1; }
  /// A helper thread has work: two or more connections, or one of its own.
  bool helper_wanted(std::size_t i) const noexcept {
    return open_.load(std::memory_order_relaxed) >= 2 || own_open_[i].load(std::memory_order_relaxed) > 0;
  }
  std::chrono::microseconds spin_{0};
  std::vector<std::unique_ptr<asio::io_context>> extra_;  ///< threads 2..N (serve())
  std::atomic<unsigned> next_{0};
  long shared_below_ = 0;
  std::mutex helpers_mu_;
  std::condition_variable helpers_cv_;
  bool finished_ = false;  ///< (helpers_mu_) the first thread returned from run()
};

}  // namespace netlab::core
