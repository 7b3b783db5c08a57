// core::lifecycle, driven in-process with fake sessions: the first stop closes every session the
// protocol's way, the one grace timer forces the rest, a second signal ends the run at once, and a
// session that goes away during the stop is removed exactly once.
#include <catch2/catch.hpp>

#include <asio/post.hpp>
#include <asio/strand.hpp>
#include <atomic>
#include <chrono>
#include <csignal>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "netlab/core/lifecycle.hpp"

using netlab::core::lifecycle;
using netlab::core::runtime;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

/// A fake session: records the closes it was asked for and, as told, removes itself on a graceful
/// close, on a forced one, or never.
struct fake_session {
  enum class on { graceful, forced, never };
  on removes_on = on::graceful;
  lifecycle::session_id id = 0;
  std::atomic<int> graceful_closes{0};
  std::atomic<int> forced_closes{0};
};

struct harness {
  explicit harness(std::chrono::milliseconds grace, unsigned threads = 2) : rt(threads) {
    rt.serve();
    lc = lifecycle::create(rt, asio::make_strand(rt.ioc()), "session(s)", grace, [this] { ++stop_accepting_calls; });
  }
  std::shared_ptr<fake_session> add(fake_session::on removes_on) {
    auto s = std::make_shared<fake_session>();
    s->removes_on = removes_on;
    s->id = lc->add([this, s](bool graceful) {
      (graceful ? s->graceful_closes : s->forced_closes)++;
      // Like a real session, the close completes later, on another thread's turn.
      if ((graceful && s->removes_on == fake_session::on::graceful) ||
          (!graceful && s->removes_on == fake_session::on::forced))
        asio::post(rt.ioc(), [this, s] { lc->remove(s->id); });
    });
    REQUIRE(s->id != 0);
    rt.connection_joined();
    return s;
  }
  /// Runs until the lifecycle ends the run (or a 10 s watchdog does); returns how long it took
  /// from `from`.
  std::chrono::milliseconds run_from(steady::time_point& from) {
    std::atomic<bool> returned{false};
    std::thread watchdog([&] {
      for (int i = 0; i < 1000 && !returned; ++i) std::this_thread::sleep_for(10ms);
      if (!returned) rt.stop();
    });
    auto work = asio::make_work_guard(rt.ioc());  // a server's acceptor: the run never runs dry
    rt.run();
    returned = true;
    watchdog.join();
    return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - from);
  }
  runtime rt;
  std::shared_ptr<lifecycle> lc;
  std::atomic<int> stop_accepting_calls{0};
};

}  // namespace

TEST_CASE("lifecycle: the first stop closes every session gracefully and ends when the last is removed",
          "[core][lifecycle]") {
  harness h(10s);
  std::vector<std::shared_ptr<fake_session>> s;
  for (int i = 0; i < 5; ++i) s.push_back(h.add(fake_session::on::graceful));
  auto from = steady::now();
  h.lc->stop();
  h.lc->stop();  // idempotent
  const auto took = h.run_from(from);
  CHECK(took < 2s);  // long before the 10 s grace period
  CHECK(h.stop_accepting_calls == 1);
  CHECK(h.lc->size() == 0);
  for (auto& x : s) {
    CHECK(x->graceful_closes == 1);
    CHECK(x->forced_closes == 0);
  }
  CHECK(h.lc->add([](bool) {}) == 0);  // stopping: a late session is refused
}

TEST_CASE("lifecycle: with no session, the stop ends the run at once", "[core][lifecycle]") {
  harness h(10s);
  auto from = steady::now();
  h.lc->stop();
  CHECK(h.run_from(from) < 2s);
  CHECK(h.stop_accepting_calls == 1);
}

TEST_CASE("lifecycle: the grace timer forces the sessions that did not close", "[core][lifecycle]") {
  harness h(300ms);
  auto polite = h.add(fake_session::on::graceful);
  auto stubborn = h.add(fake_session::on::forced);
  auto from = steady::now();
  h.lc->stop();
  const auto took = h.run_from(from);
  CHECK(took >= 300ms);
  CHECK(took < 300ms + lifecycle::force_bound);  // removed when forced: no need for the bound
  CHECK(polite->graceful_closes == 1);
  CHECK(polite->forced_closes == 0);  // already gone when the grace period ended
  CHECK(stubborn->graceful_closes == 1);
  CHECK(stubborn->forced_closes == 1);
  CHECK(h.lc->size() == 0);
}

TEST_CASE("lifecycle: a session that never reports its removal cannot hold the run past the force bound",
          "[core][lifecycle]") {
  harness h(200ms);
  auto stuck = h.add(fake_session::on::never);
  auto from = steady::now();
  h.lc->stop();
  const auto took = h.run_from(from);
  CHECK(took >= 200ms + lifecycle::force_bound);
  CHECK(took < 200ms + lifecycle::force_bound + 3s);
  CHECK(stuck->forced_closes == 1);
  CHECK(h.lc->size() == 1);
}

TEST_CASE("lifecycle: a second signal ends the run at once", "[core][lifecycle]") {
  harness h(10s);
  auto stuck = h.add(fake_session::on::never);
  h.lc->watch_signals();
  steady::time_point second{};
  std::thread sender([&] {
    // The first signal: wait until it began the stop (the session was asked to close).
    std::raise(SIGINT);
    for (int i = 0; i < 500 && stuck->graceful_closes == 0; ++i) std::this_thread::sleep_for(10ms);
    second = steady::now();
    std::raise(SIGTERM);
  });
  auto from = steady::now();
  h.run_from(from);
  sender.join();
  const auto after_second = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - second);
  CHECK(stuck->graceful_closes == 1);
  CHECK(stuck->forced_closes == 0);  // the grace period never ended: the run did first
  CHECK(after_second < 1s);
  CHECK(h.rt.interrupted());
}

TEST_CASE("lifecycle: a session removed twice during the stop counts once", "[core][lifecycle]") {
  harness h(10s);
  auto a = h.add(fake_session::on::never);
  auto b = h.add(fake_session::on::never);
  std::atomic<int> finished_early{0};
  asio::post(h.rt.ioc(), [&] {
    h.lc->stop();
    // a closes during the stop, and its close path and its destructor both report it.
    h.lc->remove(a->id);
    h.lc->remove(a->id);
    h.lc->remove(0);  // a session the stopping server refused: ignored
    asio::post(h.rt.ioc(), [&] {
      if (h.lc->size() == 1) ++finished_early;  // b still open: the run must go on
      h.lc->remove(b->id);
    });
  });
  auto from = steady::now();
  const auto took = h.run_from(from);
  CHECK(finished_early == 1);
  CHECK(h.lc->size() == 0);
  CHECK(took < 2s);
}
