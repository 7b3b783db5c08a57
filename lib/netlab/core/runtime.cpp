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

void runtime::serve(std::chrono::microseconds busy_poll, unsigned shared_below) {
  serving_ = true;
  spin_ = busy_poll;
  shared_below_ = shared_below;
  own_count_ = threads_ - 1;
  own_open_.reset(new std::atomic<long>[own_count_ ? own_count_ : 1]);
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
  const long now = count_connection(slot, 1);
  if (!extra_.empty() && (now == 2 || slot >= 0)) {
    { std::lock_guard<std::mutex> lk(helpers_mu_); }  // a helper between its check and its wait sees it
    helpers_cv_.notify_all();
  }
}

void runtime::connection_left(int slot) noexcept { count_connection(slot, -1); }

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
  for (;;) {
    {
      // Idle: sleep without a timeout until there is work for a second thread (connection_joined
      // notifies), so an idle server makes no wake-ups.
      std::unique_lock<std::mutex> lk(helpers_mu_);
      helpers_cv_.wait(lk, [this, i] { return finished_ || helper_wanted(i); });
      if (finished_) return;
    }
    if (own_open_[i].load(std::memory_order_relaxed) > 0)
      own.run_for(std::chrono::milliseconds(100));  // its own connections
    else if (polling())
      own.run_for(std::chrono::milliseconds(10));  // thread 1 polls alone (see serve())
    else
      ioc_.run_for(std::chrono::milliseconds(10));  // help ioc(); a connection placed here waits <= 10 ms
    if (own.stopped() || ioc_.stopped()) return;
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
  // One threading model, two shapes of work. A server is idle most of its life and its connections
  // come and go: serve() parks threads 2..N on a condition variable until two connections are open
  // (no wake-ups while idle, no strand hopping for a lone connection; tested by
  // tests/e2e/test_lifecycle.py and test_ws_echo.py). A client (dial, send, fetch, a load run) is
  // busy from its first connection to its last and ends with them: there is no idle time to save,
  // so every thread simply runs ioc() until the work is done (a load run's workers each own a
  // context of their own, core/load).
  if (serving_) {
    for (std::size_t i = 0; i < extra_.size(); ++i) pool.emplace_back([this, i] { guarded([this, i] { run_own(i); }); });
  } else {
    for (unsigned i = 1; i < threads_; ++i) pool.emplace_back([this] { guarded([this] { ioc_.run(); }); });
  }
  guarded([this] { run_first(); });
  // The process's run ends with the first thread's.
  for (auto& c : extra_) c->stop();
  {
    std::lock_guard<std::mutex> lk(helpers_mu_);
    finished_ = true;
  }
  helpers_cv_.notify_all();
  for (auto& t : pool) t.join();
  std::exception_ptr failure;
  {
    std::lock_guard<std::mutex> lk(failure_mu_);
    failure = std::exchange(failure_, nullptr);
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace netlab::core
