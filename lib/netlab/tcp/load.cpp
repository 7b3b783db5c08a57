// tcp dial's load mode: closed-loop echo load, one io_context per worker thread (h2load's Worker),
// per-worker stats merged by a coordinator that runs on the runtime's context (signals live there).
#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "netlab/core/log.hpp"
#include "netlab/core/net.hpp"
#include "netlab/tcp/client.hpp"
#include "netlab/tcp/limits.hpp"

namespace netlab::tcp {
namespace {

using asio::ip::tcp;
using steady = std::chrono::steady_clock;

constexpr std::size_t worker_read_buffer = 256 * 1024;
constexpr auto default_reply_timeout = std::chrono::seconds(10);

/// One load connection. Buffers are not per connection: writes come straight from the shared
/// pattern, reads go into the worker's scratch buffer, so thousands of connections stay cheap.
struct conn {
  explicit conn(asio::io_context& ioc) : sock(ioc) {}
  tcp::socket sock;
  std::uint64_t quota = 0;  // messages to send in all
  std::uint64_t sent = 0;   // messages issued (timestamped, queued for writing)
  std::uint64_t done = 0;   // echoes received and verified
  std::uint64_t wseq = 0;   // write position: message wseq, byte woff
  std::size_t woff = 0;
  std::size_t roff = 0;     // bytes of message `done` received so far
  std::vector<steady::time_point> sent_at;  // ring indexed by seq % pipeline
  bool open = false;
  bool closed = false;
  bool write_waiting = false;
};

class coordinator;

/// A thread with its own io_context and a share of the connections.
class worker {
 public:
  worker(unsigned index, coordinator& co, const dial_options& opt, const load_pattern& pattern, tcp::endpoint target)
      : index_(index), co_(co), opt_(opt), load_(*opt.load), pattern_(pattern), target_(target), timer_(ioc_),
        check_(ioc_), guard_(asio::make_work_guard(ioc_)), scratch_(worker_read_buffer) {
    reply_timeout_ = opt.timeout.count() > 0 ? std::chrono::duration_cast<steady::duration>(opt.timeout)
                                             : std::chrono::duration_cast<steady::duration>(default_reply_timeout);
  }

  void add_connection(std::uint64_t quota) {
    auto c = std::make_unique<conn>(ioc_);
    c->quota = quota;
    c->sent_at.resize(load_.pipeline);
    conns_.push_back(std::move(c));
  }

  void run_thread() {
    thread_ = std::thread([this] { ioc_.run(); });
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

  /// Phase 1 (on this worker's thread): connect everything, then report to the coordinator.
  void connect_all();
  /// Phase 2: the load, from `start` (or, if abort, just close and report finished).
  void start(steady::time_point start, bool abort);
  /// SIGINT/SIGTERM: stop issuing and close every connection.
  void stop() {
    asio::post(ioc_, [this] {
      stopping_ = true;
      for (auto& c : conns_)
        if (!c->closed) close_conn(*c);
      maybe_finished();
    });
  }

  const core::load_stats& stats() const { return stats_; }
  steady::time_point finished_at() const { return finished_at_; }
  unsigned connected() const { return connected_; }

 private:
  void on_connect(conn& c, std::error_code ec);
  void issue(conn& c);
  void flush(conn& c);
  void arm_read(conn& c);
  void on_readable(conn& c, std::error_code ec);
  void fail(conn& c, std::error_code ec, const std::string& what);
  void close_conn(conn& c);
  void maybe_finished();
  void arm_check();

  unsigned index_;
  coordinator& co_;
  const dial_options& opt_;
  const core::load_options& load_;
  const load_pattern& pattern_;
  tcp::endpoint target_;
  asio::io_context ioc_{1};
  asio::steady_timer timer_;  // connect timeout, then the --duration end
  asio::steady_timer check_;  // reply timeouts
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
  std::vector<std::unique_ptr<conn>> conns_;
  std::vector<char> scratch_;
  std::vector<asio::const_buffer> iov_;
  core::load_stats stats_;
  steady::duration reply_timeout_{};
  steady::time_point finished_at_{};
  unsigned pending_connects_ = 0;
  unsigned connected_ = 0;
  unsigned open_ = 0;
  bool connecting_ = true;
  bool running_ = false;
  bool stopping_ = false;
  bool finished_ = false;
};

/// Runs on the runtime's io_context: collects phase reports from the workers, starts the load when
/// every connection is up, merges the stats and reports when every worker has finished.
class coordinator {
 public:
  coordinator(const dial_options& opt, core::runtime& rt, core::reporter& out) : opt_(opt), rt_(rt), out_(out) {}

  core::outcome run(tcp::endpoint target);

  void on_connected(unsigned) {
    asio::post(rt_.ioc(), [this] {
      if (++connected_reports_ < workers_.size()) return;
      unsigned up = 0;
      for (auto& w : workers_) up += w->connected();
      connections_up_ = up;
      const bool abort = interrupted_ || up == 0;
      if (!abort) core::log().info("{} connection(s) up; load running", up);
      start_ = steady::now();
      for (auto& w : workers_) w->start(start_, abort);
    });
  }

  void on_finished(unsigned) {
    asio::post(rt_.ioc(), [this] {
      if (++finished_reports_ < workers_.size()) return;
      rt_.release();  // run() returns: the report is made after it
    });
  }

 private:
  const dial_options& opt_;
  core::runtime& rt_;
  core::reporter& out_;
  std::vector<std::unique_ptr<worker>> workers_;
  std::size_t connected_reports_ = 0;
  std::size_t finished_reports_ = 0;
  unsigned connections_up_ = 0;
  bool interrupted_ = false;
  steady::time_point start_{};
};

void worker::connect_all() {
  asio::post(ioc_, [this] {
    pending_connects_ = static_cast<unsigned>(conns_.size());
    if (pending_connects_ == 0) {
      connecting_ = false;
      return co_.on_connected(index_);
    }
    if (opt_.connect_timeout.count() > 0) {
      timer_.expires_after(opt_.connect_timeout);
      timer_.async_wait([this](std::error_code ec) {
        if (ec || !connecting_) return;
        for (auto& c : conns_)
          if (!c->open && !c->closed) {
            std::error_code ignored;
            c->sock.close(ignored);  // its connect completes as aborted: counted as a timeout
          }
      });
    }
    for (auto& c : conns_) {
      conn* cp = c.get();
      cp->sock.async_connect(target_, [this, cp](std::error_code ec) { on_connect(*cp, ec); });
    }
  });
}

void worker::on_connect(conn& c, std::error_code ec) {
  if (c.closed && !ec) ec = asio::error::operation_aborted;  // closed by stop() after it completed
  if (ec == asio::error::operation_aborted && !stopping_) ec = make_error_code(errc::timeout);
  if (ec) {
    c.closed = true;
    std::error_code ignored;
    c.sock.close(ignored);
    if (!stopping_) {
      ec = core::portable(ec);
      const std::string what = "connect " + core::to_string(target_);
      stats_.connect_error(ec == errc::timeout
                               ? core::outcome::fail(exit_code::timeout,
                                                     what + ": timed out after " + core::format_duration(opt_.connect_timeout),
                                                     core::hint_for(ec))
                               : core::outcome::fail(ec, what, core::hint_for(ec)));
    }
  } else {
    core::set_nodelay(c.sock);
    std::error_code nb;
    c.sock.non_blocking(true, nb);  // reads and writes are tried at once, waits only on EAGAIN
    c.open = true;
    ++connected_;
  }
  if (--pending_connects_ == 0) {
    connecting_ = false;
    timer_.cancel();
    co_.on_connected(index_);
  }
}

void worker::start(steady::time_point start, bool abort) {
  asio::post(ioc_, [this, start, abort] {
    running_ = true;
    if (abort) stopping_ = true;
    for (auto& c : conns_) {
      if (c->closed) continue;
      ++open_;
    }
    if (stopping_) {
      for (auto& c : conns_)
        if (!c->closed) close_conn(*c);
      return maybe_finished();
    }
    if (load_.duration.count() > 0) {
      timer_.expires_at(start + load_.duration);
      timer_.async_wait([this](std::error_code ec) {
        if (ec) return;
        stopping_ = true;  // in-flight messages at the end are neither counted nor errors
        for (auto& c : conns_)
          if (!c->closed) close_conn(*c);
        maybe_finished();
      });
    }
    arm_check();
    for (auto& c : conns_) {
      if (c->closed) continue;
      if (c->quota == 0) {
        close_conn(*c);
        continue;
      }
      issue(*c);
      if (!c->closed) arm_read(*c);
    }
    maybe_finished();
  });
}

// Closed loop: keep `pipeline` messages in flight, timestamped when issued.
void worker::issue(conn& c) {
  if (stopping_) return;
  const auto now = steady::now();
  bool more = false;
  while (c.sent - c.done < load_.pipeline && c.sent < c.quota) {
    c.sent_at[c.sent % load_.pipeline] = now;
    ++c.sent;
    more = true;
  }
  if (more) flush(c);
}

// Writes messages [wseq, sent) straight from the pattern; on EAGAIN waits for writability.
void worker::flush(conn& c) {
  if (c.write_waiting || c.closed) return;
  const std::size_t size = pattern_.size();
  while (c.wseq < c.sent) {
    iov_.clear();
    std::uint64_t seq = c.wseq;
    std::size_t off = c.woff;
    while (seq < c.sent && iov_.size() < 32) {
      iov_.emplace_back(pattern_.message(seq) + off, size - off);
      off = 0;
      ++seq;
    }
    std::error_code ec;
    std::size_t n = c.sock.write_some(iov_, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      c.write_waiting = true;
      c.sock.async_wait(tcp::socket::wait_write, [this, cp = &c](std::error_code e) {
        cp->write_waiting = false;
        if (cp->closed) return;
        if (e) return fail(*cp, e, "send to " + core::to_string(target_));
        flush(*cp);
      });
      return;
    }
    if (ec) return fail(c, ec, "send to " + core::to_string(target_));
    // Advance the write position by n bytes across messages.
    std::size_t left = n;
    while (left > 0) {
      std::size_t in_msg = size - c.woff;
      if (left >= in_msg) {
        left -= in_msg;
        c.woff = 0;
        ++c.wseq;
      } else {
        c.woff += left;
        left = 0;
      }
    }
  }
}

void worker::arm_read(conn& c) {
  c.sock.async_wait(tcp::socket::wait_read, [this, cp = &c](std::error_code ec) { on_readable(*cp, ec); });
}

void worker::on_readable(conn& c, std::error_code ec) {
  if (c.closed) return;
  if (ec) return fail(c, ec, "wait for the echo from " + core::to_string(target_));
  std::size_t n = c.sock.read_some(asio::buffer(scratch_), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) return arm_read(c);
  if (ec) return fail(c, ec, "read from " + core::to_string(target_));
  const std::size_t size = pattern_.size();
  const char* p = scratch_.data();
  const auto now = steady::now();
  while (n > 0) {
    if (c.done >= c.sent)
      return fail(c, make_error_code(errc::mismatch),
                  "echo from " + core::to_string(target_) + ": more bytes than were sent (is it an echo server?)");
    std::size_t take = std::min(n, size - c.roff);
    if (std::memcmp(p, pattern_.message(c.done) + c.roff, take) != 0)
      return fail(c, make_error_code(errc::mismatch),
                  "echo from " + core::to_string(target_) + ": message " + std::to_string(c.done) + " came back different (is it an echo server?)");
    c.roff += take;
    p += take;
    n -= take;
    if (c.roff == size) {
      stats_.latency.record(now - c.sent_at[c.done % load_.pipeline]);
      ++stats_.messages;
      stats_.bytes += size;
      ++c.done;
      c.roff = 0;
    }
  }
  if (c.done >= c.quota) {
    close_conn(c);
    return maybe_finished();
  }
  issue(c);
  if (c.closed) return maybe_finished();
  arm_read(c);
}

void worker::fail(conn& c, std::error_code ec, const std::string& what) {
  if (c.closed) return;
  if (ec == asio::error::operation_aborted) {  // we closed it (stop, duration end)
    close_conn(c);
    return maybe_finished();
  }
  ec = core::portable(ec);
  if (ec == asio::error::eof)
    stats_.error(core::outcome::fail(exit_code::network, what + ": the server closed the connection mid-run",
                                     "did the server stop, or does it close idle or busy connections?"));
  else if (ec.category() == netlab_category())
    stats_.error(core::outcome::fail(classify(ec), what,
                                     ec == errc::mismatch ? "the peer must echo every byte (netlab tcp serve --mode echo)"
                                                          : core::hint_for(ec)));
  else
    stats_.error(core::outcome::fail(ec, what, core::hint_for(ec)));
  core::log().debug("load connection failed: {}: {}", what, ec.message());
  close_conn(c);
  maybe_finished();
}

void worker::close_conn(conn& c) {
  if (c.closed) return;
  c.closed = true;
  std::error_code ignored;
  c.sock.close(ignored);
  if (running_ && open_ > 0) --open_;
}

void worker::maybe_finished() {
  if (finished_ || !running_ || open_ > 0) return;
  finished_ = true;
  finished_at_ = steady::now();
  timer_.cancel();
  check_.cancel();
  guard_.reset();  // run() returns once the aborted handlers have drained
  co_.on_finished(index_);
}

// Reply deadlines: one sweep over this worker's connections a few times per timeout.
void worker::arm_check() {
  auto period = std::max<steady::duration>(std::chrono::milliseconds(10),
                                           std::min<steady::duration>(reply_timeout_ / 4, std::chrono::milliseconds(250)));
  check_.expires_after(period);
  check_.async_wait([this](std::error_code ec) {
    if (ec || finished_) return;
    const auto now = steady::now();
    for (auto& c : conns_) {
      if (c->closed || c->sent == c->done) continue;
      if (now - c->sent_at[c->done % load_.pipeline] > reply_timeout_)
        fail(*c, make_error_code(errc::timeout),
             "no echo from " + core::to_string(target_) + " within " +
                 core::format_duration(std::chrono::duration_cast<std::chrono::milliseconds>(reply_timeout_)) +
                 " (--timeout)");
    }
    if (!finished_) arm_check();
  });
}

core::outcome coordinator::run(tcp::endpoint target) {
  const auto& load = *opt_.load;
  const unsigned conns = load.connections;
  const unsigned threads = std::max(1u, std::min(load.threads, conns));
  load_pattern pattern(load.size);
  for (unsigned i = 0; i < threads; ++i) workers_.push_back(std::make_unique<worker>(i, *this, opt_, pattern, target));
  for (unsigned i = 0; i < conns; ++i) {
    std::uint64_t quota = std::numeric_limits<std::uint64_t>::max();
    if (load.count > 0) quota = load.count / conns + (i < load.count % conns ? 1 : 0);
    workers_[i % threads]->add_connection(quota);
  }
  rt_.on_signal([this](int signo) {
    if (interrupted_) return;  // already stopping: every worker closes its connections at once
    core::log().info("signal {}: stopping the load run", signo);
    interrupted_ = true;
    for (auto& w : workers_) w->stop();
  });
  core::log().info("load: {} connection(s) to {} on {} thread(s), {} B messages, pipeline {}, {}", conns,
                   core::to_string(target), threads, load.size, load.pipeline,
                   load.count ? std::to_string(load.count) + " messages" : core::format_duration(load.duration));
  for (auto& w : workers_) {
    w->run_thread();
    w->connect_all();
  }
  rt_.run();  // returns when every worker has finished (count reached, duration over, or signal)
  for (auto& w : workers_) w->join();
  rt_.on_signal(nullptr);

  core::load_stats total;
  steady::time_point end = start_;
  for (auto& w : workers_) {
    total += w->stats();
    end = std::max(end, w->finished_at());
  }
  if (connections_up_ == 0 && !interrupted_) {  // nothing ran: the first failure alone says why
    if (!total.first_error.ok()) return total.first_error;
    return core::outcome::fail(exit_code::network, "no connection to " + core::to_string(target));
  }
  total.elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(end - start_);
  core::load_options shown = load;
  shown.threads = threads;
  core::report_load(out_, "tcp", shown, total);
  return core::load_verdict(total, interrupted_);
}

}  // namespace

core::outcome run_load(const dial_options& opt, core::runtime& rt, core::reporter& out) {
  const auto& load = *opt.load;
  auto limit = raise_open_files_limit();
  if (limit && limit < static_cast<std::uint64_t>(load.connections) + 32)
    core::log().warn("open files limit is {}: {} connections will not all fit (raise 'ulimit -n')", limit,
                     load.connections);
  std::error_code ec;
  auto eps = core::resolve_tcp(opt.target, false, ec);
  if (ec || eps.empty())
    return core::outcome::fail(exit_code::network, "resolve " + opt.target.host + ": " + (ec ? ec.message() : "no address"),
                               "check the host name");
  coordinator co(opt, rt, out);
  return co.run(eps.front());
}

}  // namespace netlab::tcp
