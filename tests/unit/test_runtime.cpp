// core::runtime's helper threads on demand: with fewer than two connections open, only one thread
// runs handlers; from two on, a second thread runs them too; it leaves again when they close.
#include <catch2/catch.hpp>

#include <asio/post.hpp>
#include <atomic>
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
