#include "netlab/core/runtime.hpp"

#include <asio/bind_executor.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <csignal>
#include <thread>
#include <utility>

namespace netlab::core {

runtime::runtime(unsigned threads)
    : ioc_(static_cast<int>(threads ? threads : 1)),
      strand_(asio::make_strand(ioc_)),
      signals_(strand_),
      threads_(threads ? threads : 1) {
  asio::error_code ec;
  signals_.add(SIGINT, ec);
  signals_.add(SIGTERM, ec);
  wait_signal();
}

void runtime::on_signal(std::function<void(int)> handler) { handler_ = std::move(handler); }

void runtime::wait_signal() {
  signals_.async_wait(asio::bind_executor(strand_, [this](const asio::error_code& ec, int signo) {
    if (ec) return;  // cancelled: the runtime is shutting down
    interrupted_ = true;
    signal_ = signo;
    if (handler_) {
      handler_(signo);
      // A second signal gets the handler again (it may escalate to a hard stop), unless the
      // handler released the runtime.
      if (!released_) wait_signal();
    } else {
      ioc_.stop();
    }
  }));
}

void runtime::release() {
  released_ = true;
  asio::post(strand_, [this] {
    asio::error_code ec;
    signals_.cancel(ec);
  });
}

void runtime::context_per_thread(unsigned shared_below) {
  shared_below_ = shared_below;
  own_count_ = threads_ - 1;
  own_open_.reset(new std::atomic<long>[own_count_]);
  for (std::size_t i = 0; i < own_count_; ++i) {
    own_open_[i] = 0;
    extra_.push_back(std::make_unique<asio::io_context>(1));
  }
}

runtime::placement runtime::place_connection() {
  if (extra_.empty() || open_.load(std::memory_order_relaxed) < shared_below_) return {asio::make_strand(ioc_), -1};
  const unsigned i = next_.fetch_add(1, std::memory_order_relaxed) % threads_;
  if (i == 0) return {asio::make_strand(ioc_), -1};  // the first thread's share (helpers may run ioc())
  return {extra_[i - 1]->get_executor(), static_cast<int>(i - 1)};
}

long runtime::count_connection(int slot, long delta) noexcept {
  const long now = open_.fetch_add(delta, std::memory_order_relaxed) + delta;
  if (slot >= 0 && static_cast<std::size_t>(slot) < own_count_)
    own_open_[static_cast<std::size_t>(slot)].fetch_add(delta, std::memory_order_relaxed);
  return now;
}

void runtime::connection_joined(int slot) {
  if (count_connection(slot, 1) == 2 && on_demand_) {
    { std::lock_guard<std::mutex> lk(helpers_mu_); }  // a helper between its check and its wait sees it
    helpers_cv_.notify_all();
  }
}

void runtime::connection_left(int slot) noexcept { count_connection(slot, -1); }

void runtime::busy_poll(std::chrono::microseconds budget, long max_connections) {
  spin_ = budget;
  spin_max_ = max_connections;
}

void runtime::run_first() {
  if (spin_.count() <= 0) {
    ioc_.run();
    return;
  }
  using clock = std::chrono::steady_clock;
  auto last = clock::now();
  for (;;) {
    if (polling()) {
      if (ioc_.poll() > 0) {
        last = clock::now();
        continue;
      }
      if (ioc_.stopped()) return;  // stopped, or out of work
      if (clock::now() - last < spin_) continue;
    }
    if (ioc_.run_one() == 0) return;
    last = clock::now();
  }
}

void runtime::stop() {
  ioc_.stop();
  for (auto& c : extra_) c->stop();
}

void runtime::run_own(std::size_t i) {
  auto& own = *extra_[i];
  auto guard = asio::make_work_guard(own);  // run_for waits instead of returning when idle
  while (!own.stopped()) {
    // No connection of its own: help run the shared context, one handler at a time, so a connection
    // placed here meanwhile waits at most 10 ms for its thread.
    while (own_open_[i].load(std::memory_order_relaxed) == 0 && !ioc_.stopped()) {
      if (polling())  // the first thread polls alone (see busy_poll()); wait on the own context
        own.run_for(std::chrono::milliseconds(10));
      else
        ioc_.run_one_for(std::chrono::milliseconds(10));
    }
    // Its own connections; back to the check above within 100 ms after the last one closes.
    own.run_for(std::chrono::milliseconds(100));
  }
}

template <class F>
void runtime::guarded(F&& f) noexcept {
  try {
    f();
  } catch (...) {
    {
      std::lock_guard<std::mutex> lk(failure_mu_);
      if (!failure_) failure_ = std::current_exception();
    }
    stop();  // the other threads return from their run loops; run() reports the exception
    {
      std::lock_guard<std::mutex> lk(helpers_mu_);
      finished_ = true;  // helpers waiting for connections leave too
    }
    helpers_cv_.notify_all();
  }
}

void runtime::run() {
  std::vector<std::thread> pool;
  pool.reserve(threads_ - 1);
  if (!extra_.empty()) {
    for (std::size_t i = 0; i < extra_.size(); ++i) pool.emplace_back([this, i] { guarded([this, i] { run_own(i); }); });
    guarded([this] { run_first(); });
    for (auto& c : extra_) c->stop();  // the process's run ends with the first thread's
  } else {
    for (unsigned i = 1; i < threads_; ++i) {
      if (!on_demand_) {
        pool.emplace_back([this] { guarded([this] { ioc_.run(); }); });
        continue;
      }
      pool.emplace_back([this] {
        guarded([this] {
          for (;;) {
            {
              std::unique_lock<std::mutex> lk(helpers_mu_);
              helpers_cv_.wait(lk, [this] { return finished_ || open_.load(std::memory_order_relaxed) >= 2; });
              if (finished_) return;
            }
            // Back to the check above at least every 100 ms, so a helper leaves soon after the load does.
            ioc_.run_for(std::chrono::milliseconds(100));
            if (ioc_.stopped()) return;
          }
        });
      });
    }
    guarded([this] { run_first(); });
    {
      std::lock_guard<std::mutex> lk(helpers_mu_);
      finished_ = true;
    }
    helpers_cv_.notify_all();
  }
  for (auto& t : pool) t.join();
  std::exception_ptr failure;
  {
    std::lock_guard<std::mutex> lk(failure_mu_);
    failure = std::exchange(failure_, nullptr);
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace netlab::core
