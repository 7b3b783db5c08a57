#include "netlab/core/load_driver.hpp"

#include <algorithm>
#include <limits>

#include <asio/post.hpp>

#include "netlab/core/endpoint.hpp"
#include "netlab/core/log.hpp"

namespace netlab::core {

using steady = std::chrono::steady_clock;

load_worker::load_worker(unsigned index, load_driver& d)
    : index_(index), d_(d), timer_(ioc_), check_(ioc_), guard_(asio::make_work_guard(ioc_)) {}

load_worker::~load_worker() {
  guard_.reset();
  if (thread_.joinable()) thread_.join();
}

const load_settings& load_worker::settings() const noexcept { return d_.s_; }

void load_worker::add(std::unique_ptr<load_connection> c, std::uint64_t quota) {
  c->quota_ = quota;
  c->stamps_.resize(d_.s_.load.pipeline);
  conns_.push_back(std::move(c));
}

// Phase 1, on this worker's thread: open every connection, then tell the driver.
void load_worker::connect_all() {
  asio::post(ioc_, [this] {
    pending_connects_ = static_cast<unsigned>(conns_.size());
    if (pending_connects_ == 0) {
      connecting_ = false;
      return d_.on_connected();
    }
    const auto limit = d_.s_.connect_timeout;
    if (limit.count() > 0) {
      timer_.expires_after(limit);
      timer_.async_wait([this, limit](std::error_code ec) {
        if (ec || !connecting_) return;
        for (auto& c : conns_)
          if (!c->open_ && !c->closed_)
            failed(*c, outcome::fail(exit_code::timeout,
                                     "connect " + d_.a_.target() + ": timed out after " + format_duration(limit),
                                     "is the peer up? raise --connect-timeout"));
      });
    }
    // A connection may fail inside connect() (worker.failed): the list itself never changes here.
    for (auto& c : conns_) c->connect();
  });
}

void load_worker::connect_done() {
  if (--pending_connects_ == 0) {
    connecting_ = false;
    timer_.cancel();
    d_.on_connected();
  }
}

void load_worker::opened(load_connection& c) {
  if (c.closed_ || c.open_) return;
  c.open_ = true;
  ++connected_;
  if (connecting_) connect_done();
}

// Phase 2: the load, from t0 (or, on abort, close everything and report finished).
void load_worker::start(steady::time_point t0, bool abort) {
  asio::post(ioc_, [this, t0, abort] {
    running_ = true;
    if (abort) stopping_ = true;
    for (auto& c : conns_)
      if (!c->closed_) ++open_;
    if (stopping_) {
      for (auto& c : conns_) close(*c);
      return maybe_finished();
    }
    const auto& load = d_.s_.load;
    if (load.duration.count() > 0) {
      timer_.expires_at(t0 + load.duration);
      timer_.async_wait([this](std::error_code ec) {
        if (ec) return;
        stopping_ = true;  // messages in flight at the end are neither counted nor errors
        for (auto& c : conns_) close(*c);
        maybe_finished();
      });
    }
    arm_check();
    for (auto& c : conns_) {
      if (c->closed_) continue;
      if (c->quota_ == 0) {
        close(*c);
        continue;
      }
      issue(*c);
    }
    maybe_finished();
  });
}

void load_worker::stop() {
  asio::post(ioc_, [this] {
    stopping_ = true;
    for (auto& c : conns_) close(*c);
    if (connecting_) {  // a signal while connecting: the driver still waits for this phase
      connecting_ = false;
      timer_.cancel();
      d_.on_connected();
    }
    maybe_finished();
  });
}

// Closed loop: keep `pipeline` messages in flight, each stamped when issued.
void load_worker::issue(load_connection& c) {
  if (stopping_ || c.closed_) return;
  const unsigned pipeline = d_.s_.load.pipeline;
  const std::uint64_t from = c.sent_;
  const auto now = steady::now();
  while (c.sent_ - c.done_ < pipeline && c.sent_ < c.quota_) {
    c.stamps_[c.sent_ % pipeline] = now;
    ++c.sent_;
  }
  if (c.sent_ > from) c.send(from, c.sent_);
}

void load_worker::replied(load_connection& c, std::uint64_t n) {
  if (c.closed_) return;
  const unsigned pipeline = d_.s_.load.pipeline;
  const auto now = steady::now();
  if (n > c.sent_ - c.done_)
    return failed(c, outcome::fail(exit_code::protocol,
                                   "reply from " + d_.a_.target() + ": more replies than messages sent (is it an echo server?)"));
  const std::size_t size = d_.s_.load.size;
  for (std::uint64_t i = 0; i < n; ++i) {
    stats_.latency.record(now - c.stamps_[c.done_ % pipeline]);
    ++c.done_;
  }
  stats_.messages += n;
  stats_.bytes += n * size;
  if (c.done_ >= c.quota_) {
    close(c);
    return maybe_finished();
  }
  issue(c);
}

void load_worker::failed(load_connection& c, outcome why) {
  if (c.closed_) return;
  const bool was_connecting = !c.open_;
  if (!stopping_) {
    if (was_connecting) stats_.connect_error(std::move(why));
    else stats_.error(std::move(why));
    log().debug("load connection failed: {}", stats_.first_error.what);
  }
  close(c);
  if (was_connecting && connecting_) connect_done();
  maybe_finished();
}

void load_worker::close(load_connection& c) {
  if (c.closed_) return;
  c.closed_ = true;
  c.close();
  if (running_ && open_ > 0) --open_;
}

void load_worker::maybe_finished() {
  if (finished_ || !running_ || open_ > 0) return;
  finished_ = true;
  finished_at_ = steady::now();
  timer_.cancel();
  check_.cancel();
  d_.a_.worker_done(*this);
  guard_.reset();  // run() returns once the aborted handlers have drained
  d_.on_finished();
}

// Reply deadlines: one sweep over this worker's connections a few times per timeout.
void load_worker::arm_check() {
  const auto timeout = std::chrono::duration_cast<steady::duration>(d_.s_.reply_timeout);
  const auto period = std::max<steady::duration>(std::chrono::milliseconds(10),
                                                 std::min<steady::duration>(timeout / 4, std::chrono::milliseconds(250)));
  check_.expires_after(period);
  check_.async_wait([this, timeout](std::error_code ec) {
    if (ec || finished_) return;
    const auto now = steady::now();
    const unsigned pipeline = d_.s_.load.pipeline;
    for (auto& cp : conns_) {
      auto& c = *cp;
      if (c.closed_ || c.sent_ == c.done_) continue;
      if (now - c.stamps_[c.done_ % pipeline] <= timeout) continue;
      outcome late = outcome::fail(exit_code::timeout,
                                   "no reply from " + d_.a_.target() + " within " + format_duration(d_.s_.reply_timeout) +
                                       " (--timeout)",
                                   "is the peer up and an echo server? replies may be lost: raise --timeout");
      if (!c.survives_lost_reply()) {
        failed(c, std::move(late));
        continue;
      }
      stats_.error(std::move(late));  // lost: count it and go on with the next message
      ++c.done_;
      if (c.done_ >= c.quota_) {
        close(c);
        continue;
      }
      issue(c);
    }
    maybe_finished();
    if (!finished_) arm_check();
  });
}

load_driver::load_driver(load_adapter& a, load_settings s, runtime& rt, reporter& out)
    : a_(a), s_(std::move(s)), rt_(rt), out_(out), strand_(asio::make_strand(rt.ioc())) {}

void load_driver::on_connected() {
  asio::post(strand_, [this] {
    if (++connected_reports_ < workers_.size()) return;
    unsigned up = 0;
    for (auto& w : workers_) up += w->connected_;
    up_ = up;
    const bool abort = interrupted_ || up == 0;
    if (!abort) log().info("{} connection(s) up; load running", up);
    start_ = steady::now();
    for (auto& w : workers_) w->start(start_, abort);
  });
}

void load_driver::on_finished() {
  asio::post(strand_, [this] {
    if (++finished_reports_ < workers_.size()) return;
    rt_.release();  // run() returns: the report is made after it
  });
}

outcome load_driver::run() {
  auto ready = a_.prepare();
  if (!ready.ok()) return ready;
  const auto& load = s_.load;
  const unsigned conns = std::max(1u, load.connections);
  const unsigned threads = std::max(1u, std::min(load.threads, conns));
  for (unsigned i = 0; i < threads; ++i) workers_.push_back(std::make_unique<load_worker>(i, *this));
  for (unsigned i = 0; i < conns; ++i) {
    std::uint64_t quota = std::numeric_limits<std::uint64_t>::max();
    if (load.count > 0) quota = load.count / conns + (i < load.count % conns ? 1 : 0);
    auto& w = *workers_[i % threads];
    w.add(a_.make(w), quota);
  }
  rt_.on_signal([this](int signo) {
    asio::post(strand_, [this, signo] {
      if (interrupted_) return;  // already stopping: every worker closes its connections at once
      log().info("signal {}: stopping the load run", signo);
      interrupted_ = true;
      for (auto& w : workers_) w->stop();
    });
  });
  log().info("load: {} connection(s) to {} on {} thread(s), {} B messages, pipeline {}, {}", conns, a_.target(), threads,
             load.size, load.pipeline, load.count ? std::to_string(load.count) + " messages" : format_duration(load.duration));
  for (auto& w : workers_) {
    load_worker* wp = w.get();
    wp->thread_ = std::thread([wp] { wp->ioc_.run(); });
    wp->connect_all();
  }
  rt_.run();  // returns when every worker has finished (count reached, duration over, or signal)
  for (auto& w : workers_)
    if (w->thread_.joinable()) w->thread_.join();
  rt_.on_signal(nullptr);

  load_stats total;
  steady::time_point end = start_;
  for (auto& w : workers_) {
    total += w->stats_;
    end = std::max(end, w->finished_at_);
  }
  if (up_ == 0 && !interrupted_) {  // nothing ran: the first failure alone says why
    if (!total.first_error.ok()) return total.first_error;
    return outcome::fail(exit_code::network, "no connection to " + a_.target());
  }
  total.elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(end - start_);
  load_options shown = load;
  shown.threads = threads;
  report_load(out_, a_.proto(), shown, total);
  return load_verdict(total, interrupted_);
}

}  // namespace netlab::core
