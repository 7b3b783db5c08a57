#pragma once
/// The one load driver of `tcp dial`, `udp send` and `ws-echo dial` in load mode, in the shape of
/// nghttp2's h2load: worker threads, each with its own io_context and a share of the connections
/// (h2load's Worker), and one connection interface that each protocol implements (h2load's
/// Session). The driver owns everything that is not protocol: the closed loop (`pipeline` messages
/// in flight, the --count quota or the --duration end), reply deadlines, latency stamps, stats,
/// the report and the exit rule. An adapter only connects, sends message `seq`, and says when
/// replies arrived (in order, verified) or what failed.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "netlab/core/error.hpp"
#include "netlab/core/load.hpp"
#include "netlab/core/report.hpp"
#include "netlab/core/runtime.hpp"

namespace netlab::core {

class load_worker;

/// One simulated connection, implemented per protocol. Every call, in both directions, happens on
/// its worker's thread: no locks, no strands.
class load_connection {
 public:
  virtual ~load_connection() = default;
  /// Starts opening; later the adapter calls worker.opened(*this) or worker.failed(*this, why).
  virtual void connect() = 0;
  /// Sends messages [from, to) in order (to - from <= pipeline). Replies are reported with
  /// worker.replied(*this, n) once verified; a failure with worker.failed(*this, why).
  virtual void send(std::uint64_t from, std::uint64_t to) = 0;
  /// Closes at once (the run ends, or this connection failed); no callbacks for it afterwards.
  virtual void close() = 0;
  /// When a reply is overdue: true to count it as lost and go on with the next message (datagrams),
  /// false to fail the connection (a byte stream is out of step after a missing reply).
  virtual bool survives_lost_reply() const { return false; }

 public:
  /// Messages handed to send() so far; replies verified (or lost) so far: the next reply expected
  /// is message done().
  std::uint64_t sent() const noexcept { return sent_; }
  std::uint64_t done() const noexcept { return done_; }

 private:
  friend class load_worker;
  std::uint64_t quota_ = 0;  // messages to complete in all
  std::uint64_t sent_ = 0;   // messages handed to send()
  std::uint64_t done_ = 0;   // replies verified (or lost, for datagrams)
  std::vector<std::chrono::steady_clock::time_point> stamps_;  // send times, ring of `pipeline`
  bool open_ = false;
  bool closed_ = false;
};

/// What a protocol supplies: its name, a preparation step and a connection factory.
class load_adapter {
 public:
  virtual ~load_adapter() = default;
  /// "tcp", "udp", "ws": the report's `proto`.
  virtual std::string_view proto() const = 0;
  /// The peer as shown in messages ("127.0.0.1:7007", "ws://...").
  virtual std::string target() const = 0;
  /// Runs once before any worker starts (resolve, TLS context): a failure ends the run with it.
  virtual outcome prepare() { return outcome::success(); }
  /// A new connection living on worker w (called before the worker's thread starts).
  virtual std::unique_ptr<load_connection> make(load_worker& w) = 0;
  /// On worker w's thread, after all its connections closed (an adapter with per-worker state, such
  /// as a websocketpp endpoint, releases it here).
  virtual void worker_done(load_worker&) {}
};

/// The driver's settings beyond the load flags.
struct load_settings {
  load_options load;
  std::chrono::milliseconds reply_timeout{10000};  ///< a reply later than this is an error
  std::chrono::milliseconds connect_timeout{0};    ///< 0: the adapter's own (or none)
};

/// A thread with its own io_context and a share of the connections.
class load_worker {
 public:
  load_worker(unsigned index, class load_driver& d);
  ~load_worker();
  load_worker(const load_worker&) = delete;
  load_worker& operator=(const load_worker&) = delete;

  asio::io_context& ioc() noexcept { return ioc_; }
  unsigned index() const noexcept { return index_; }
  const load_settings& settings() const noexcept;

  // Called by adapters, on this worker's thread.
  /// The connection is open: it takes part in the run.
  void opened(load_connection& c);
  /// The next `n` replies of c arrived and were verified, in order.
  void replied(load_connection& c, std::uint64_t n = 1);
  /// c failed (to open, or later): one error counted with `why`, c closed. A failure after the
  /// run began to stop (duration over, signal) is not an error. Safe to call more than once.
  void failed(load_connection& c, outcome why);
  /// True once the run is ending: no new messages will be asked for.
  bool stopping() const noexcept { return stopping_; }
  /// The adapter's per-worker state (e.g. a websocketpp endpoint on ioc()): kept until the
  /// connections are gone, destroyed before ioc().
  std::shared_ptr<void>& state() noexcept { return state_; }

 private:
  friend class load_driver;
  void add(std::unique_ptr<load_connection> c, std::uint64_t quota);
  void connect_all();
  void start(std::chrono::steady_clock::time_point t0, bool abort);
  void stop();
  void issue(load_connection& c);
  void close(load_connection& c);
  void maybe_finished();
  void arm_check();
  void connect_done();

  unsigned index_;
  class load_driver& d_;
  asio::io_context ioc_{1};
  asio::steady_timer timer_;  // connect deadline, then the --duration end
  asio::steady_timer check_;  // reply deadlines
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
  std::shared_ptr<void> state_;  // the adapter's per-worker state: destroyed after conns_, before ioc_
  std::vector<std::unique_ptr<load_connection>> conns_;
  load_stats stats_;
  std::chrono::steady_clock::time_point finished_at_{};
  unsigned pending_connects_ = 0;
  unsigned connected_ = 0;
  unsigned open_ = 0;
  bool connecting_ = true;
  bool running_ = false;
  bool stopping_ = false;
  bool finished_ = false;
};

/// Runs one load: workers, connections from the adapter, the run, the report and the verdict.
class load_driver {
 public:
  load_driver(load_adapter& a, load_settings s, runtime& rt, reporter& out);
  /// Blocks until the run ends; prints the report (unless no connection ever opened) and returns
  /// load_verdict() (docs/exit-codes.md, "Load modes").
  outcome run();

 private:
  friend class load_worker;
  void on_connected();  // a worker finished connecting (any thread)
  void on_finished();   // a worker finished (any thread)

  load_adapter& a_;
  load_settings s_;
  runtime& rt_;
  reporter& out_;
  asio::strand<asio::io_context::executor_type> strand_;  // the phase reports, whatever rt_'s threads
  std::vector<std::unique_ptr<load_worker>> workers_;
  std::size_t connected_reports_ = 0;  // on rt_.ioc()
  std::size_t finished_reports_ = 0;
  unsigned up_ = 0;
  bool interrupted_ = false;
  std::chrono::steady_clock::time_point start_{};
};

}  // namespace netlab::core
