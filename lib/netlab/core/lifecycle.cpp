#include "netlab/core/lifecycle.hpp"

#include <asio/dispatch.hpp>
#include <asio/post.hpp>
#include <utility>
#include <vector>

#include "netlab/core/log.hpp"
#include "netlab/core/endpoint.hpp"

namespace netlab::core {

std::shared_ptr<lifecycle> lifecycle::create(runtime& rt, strand_t strand, std::string what,
                                             std::chrono::milliseconds grace, std::function<void()> stop_accepting) {
  return std::shared_ptr<lifecycle>(new lifecycle(rt, std::move(strand), std::move(what), grace, std::move(stop_accepting)));
}

lifecycle::lifecycle(runtime& rt, strand_t strand, std::string what, std::chrono::milliseconds grace,
                     std::function<void()> stop_accepting)
    : rt_(rt),
      what_(std::move(what)),
      grace_(grace),
      stop_accepting_(std::move(stop_accepting)),
      strand_(std::move(strand)),
      timer_(strand_) {}

void lifecycle::watch_signals() {
  // The handler runs on the runtime's signal strand, once per signal; the runtime keeps waiting
  // for signals until the process ends, so a second one always arrives here.
  rt_.on_signal([self = shared_from_this()](int signo) {
    if (self->signals_++ == 0) {
      log().info("signal {}: stopping (a second signal stops at once)", signo);
      self->stop();
    } else {
      log().info("signal {}: stopping at once", signo);
      self->stop_now();
    }
  });
}

lifecycle::session_id lifecycle::add(close_fn close) {
  std::lock_guard<std::mutex> lk(mu_);
  if (stopping_) return 0;
  const session_id id = next_++;
  live_.emplace(id, std::move(close));
  return id;
}

void lifecycle::remove(session_id id) noexcept {
  if (id == 0) return;
  bool last = false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (live_.erase(id) == 0) return;
    last = stopping_ && live_.empty();
  }
  // The last session of a stopping server: no need to wait for the grace period.
  if (last) asio::post(strand_, [self = shared_from_this()] { self->finish(); });
}

std::size_t lifecycle::size() const {
  std::lock_guard<std::mutex> lk(mu_);
  return live_.size();
}

bool lifecycle::stopping() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stopping_;
}

void lifecycle::stop() {
  asio::dispatch(strand_, [self = shared_from_this()] { self->begin_stop(); });
}

void lifecycle::stop_now() { rt_.stop(); }

void lifecycle::begin_stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (stop_accepting_) stop_accepting_();
  log().info("stopping: {} {} open", size(), what_);
  if (size() == 0) return finish();
  close_all(true);
  timer_.expires_after(grace_);
  timer_.async_wait([self = shared_from_this()](std::error_code e) {
    if (!e) self->on_grace_over();
  });
}

void lifecycle::close_all(bool graceful) {
  std::vector<close_fn> open;
  {
    std::lock_guard<std::mutex> lk(mu_);
    open.reserve(live_.size());
    for (auto& [id, close] : live_) open.push_back(close);
  }
  // Outside the lock: a close may remove its session at once.
  for (auto& close : open) close(graceful);
}

void lifecycle::on_grace_over() {
  if (finished_) return;
  if (!forced_) {
    forced_ = true;
    log().info("stopping: grace period {} over, closing {} {} at once", format_duration(grace_), size(), what_);
    close_all(false);
    timer_.expires_after(force_bound);
    timer_.async_wait([self = shared_from_this()](std::error_code e) {
      if (!e) self->on_grace_over();
    });
    return;
  }
  log().warn("stopping: {} {} still open {} after the grace period; stopping anyway", size(), what_,
             format_duration(force_bound));
  finish();
}

// Every session is closed and logged (or the bound is over): end run() on all threads now. Nothing
// left is worth draining, and stopping does not depend on when a signal wait is re-armed.
void lifecycle::finish() {
  if (finished_) return;
  finished_ = true;
  timer_.cancel();
  rt_.stop();
}

}  // namespace netlab::core
