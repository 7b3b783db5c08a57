// core::runtime's helper threads on demand: with fewer than two connections open, only one thread
// runs handlers; from two on, a second thread runs them too; it leaves again when they close. And
// its io_context per thread mode.
#include <catch2/catch.hpp>

#include <algorithm>
#include <asio/post.hpp>
#include <atomic>
#include <mutex>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "netlab/core/runtime.hpp"

using netlab::core::runtime;
using namespace std::chrono_literals;

namespace {

/// Posts two handlers: the first waits up to `wait` for the second to start, which only happens if
/// another thread runs handlers meanwhile. When both are done, records whether they overlapped and
/// calls `next` (on an io thread).
void probe(runtime& rt, std::chrono::milliseconds wait, std::vector<bool>& results, std::function<void()> next) {
  struct state {
    std::atomic<bool> second_started{false};
    std::atomic<bool> overlapped{false};
    std::atomic<int> done{0};
  };
  auto st = std::make_shared<state>();
  auto finish = [st, &results, next] {
    if (++st->done == 2) {
      results.push_back(st->overlapped.load());
      next();
    }
  };
  asio::post(rt.ioc(), [st, wait, finish] {
    const auto until = std::chrono::steady_clock::now() + wait;
    while (!st->second_started.load() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
    st->overlapped = st->second_started.load();
    finish();
  });
  asio::post(rt.ioc(), [st, finish] {
    st->second_started = true;
    finish();
  });
}

}  // namespace

TEST_CASE("runtime: helper threads stay out while fewer than two connections are open", "[core][runtime]") {
  runtime rt(2);
  rt.helpers_on_demand();
  rt.connection_opened();
  std::vector<bool> overlapped;
  probe(rt, 300ms, overlapped, [&] { rt.release(); });
  rt.run();
  CHECK(overlapped == std::vector<bool>{false});
}

TEST_CASE("runtime: a helper joins at two open connections, leaves below, joins again", "[core][runtime]") {
  runtime rt(2);
  rt.helpers_on_demand();
  rt.connection_opened();
  rt.connection_opened();
  std::vector<bool> overlapped;
  probe(rt, 5s, overlapped, [&] {
    rt.connection_closed();
    // A helper leaves the io_context within 100 ms of the load dropping: wait that out.
    asio::post(rt.ioc(), [&] {
      std::this_thread::sleep_for(250ms);
      probe(rt, 300ms, overlapped, [&] {
        rt.connection_opened();
        probe(rt, 5s, overlapped, [&] { rt.release(); });
      });
    });
  });
  rt.run();
  CHECK(overlapped == std::vector<bool>{true, false, true});
}

TEST_CASE("runtime: without helpers_on_demand every thread runs handlers", "[core][runtime]") {
  runtime rt(2);
  std::vector<bool> overlapped;
  probe(rt, 5s, overlapped, [&] { rt.release(); });
  rt.run();
  CHECK(overlapped == std::vector<bool>{true});
}

TEST_CASE("runtime: one io_context per thread, handed out in turn, each run by one thread", "[core][runtime]") {
  runtime rt(3);
  rt.context_per_thread();
  REQUIRE(rt.contexts_per_thread());
  std::vector<asio::io_context*> ctx;
  for (int i = 0; i < 6; ++i) ctx.push_back(&rt.connection_context());
  CHECK(ctx[0] == &rt.ioc());  // the first thread's
  CHECK(ctx[1] != ctx[0]);
  CHECK(ctx[2] != ctx[0]);
  CHECK(ctx[2] != ctx[1]);
  CHECK(ctx[3] == ctx[0]);  // round robin
  CHECK(ctx[4] == ctx[1]);
  // 200 handlers per context: each context's all run on one thread, the three on three threads.
  std::mutex mu;
  std::vector<std::vector<std::thread::id>> seen(3);
  std::atomic<int> left{600};
  for (int round = 0; round < 200; ++round)
    for (int c = 0; c < 3; ++c)
      asio::post(*ctx[c], [&, c] {
        {
          std::lock_guard<std::mutex> lk(mu);
          seen[c].push_back(std::this_thread::get_id());
        }
        std::this_thread::sleep_for(50us);
        if (--left == 0) rt.stop();
      });
  rt.run();  // returns once stop() ends every thread's run
  std::vector<std::thread::id> owners;
  for (auto& s : seen) {
    REQUIRE(s.size() == 200);
    CHECK(std::all_of(s.begin(), s.end(), [&](auto id) { return id == s.front(); }));
    owners.push_back(s.front());
  }
  CHECK(owners[0] != owners[1]);
  CHECK(owners[1] != owners[2]);
  CHECK(owners[0] != owners[2]);
}

TEST_CASE("runtime: with one thread, context_per_thread hands out ioc()", "[core][runtime]") {
  runtime rt(1);
  rt.context_per_thread();
  CHECK_FALSE(rt.contexts_per_thread());
  CHECK(&rt.connection_context() == &rt.ioc());
  CHECK(&rt.connection_context() == &rt.ioc());
}
