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

  /// Call before run(): the threads beyond the first then run the io_context only while at least
  /// two connections are open (connection_joined/left), and wait outside it otherwise: a lone
  /// connection's strand would hand its work from one thread to another on every message (ws-echo
  /// serve measured 2x fewer msgs/s at 64 B x 1 connection with an always-running second thread).
  void helpers_on_demand() { on_demand_ = true; }
  /// Call before run(): threads beyond the first get an io_context of their own. The first
  /// `shared_below` connections (place_connection()) live on ioc() with a strand each, and threads
  /// whose own context has no connection help run ioc(): a few connections get every thread (a
  /// lone one, with busy_poll(), gets the first thread polling alone). Beyond that, connections are
  /// handed to the threads in turn and a thread with connections of its own runs only its context:
  /// no scheduler queue or epoll shared between threads (64 B x 1000: 1.5x). See docs/benchmarks.md.
  void context_per_thread(unsigned shared_below = 32);
  /// Call before run(): while at most `max_connections` connections (connection_joined()) are
  /// open, the first thread polls ioc() without sleeping for up to `budget` after its last handler
  /// before it blocks, and the other threads stay out of ioc() (they would only take its wake-ups).
  /// A lone request/response connection then finds the thread awake when its next message lands,
  /// instead of paying a wake-up (on the 2-vCPU benchmark VM a cross-CPU wake-up costs more than
  /// the whole exchange). Costs at most `budget` of CPU per message, none while idle. A zero budget
  /// turns it off.
  void busy_poll(std::chrono::microseconds budget, long max_connections);
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
  /// True after context_per_thread() with more than one thread.
  bool contexts_per_thread() const noexcept { return !extra_.empty(); }
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
  bool on_demand_ = false;
  void run_own(std::size_t i);
  void run_first();
  /// Runs f (one thread's whole run loop); an exception is kept (the first one) and stops all.
  template <class F>
  void guarded(F&& f) noexcept;
  std::mutex failure_mu_;
  std::exception_ptr failure_;  ///< (failure_mu_) the first exception that escaped a handler
  long count_connection(int slot, long delta) noexcept;  ///< returns the open connections after
  bool polling() const noexcept { return spin_.count() > 0 && open_.load(std::memory_order_relaxed) <= spin_max_; }
  std::chrono::microseconds spin_{0};
  long spin_max_ = 0;
  std::vector<std::unique_ptr<asio::io_context>> extra_;  ///< threads 2..N (context_per_thread)
  std::atomic<unsigned> next_{0};
  long shared_below_ = 0;
  std::mutex helpers_mu_;
  std::condition_variable helpers_cv_;
  bool finished_ = false;  ///< (helpers_mu_) the first thread returned from run()
};

}  // namespace netlab::core
