// core::runtime's one server policy (serve()): with fewer than two connections open, only one thread
// runs handlers; from two on, a second thread runs them too; it leaves again when they close. Its
// io_contexts per thread, and busy polling for a lone connection. Without serve() (clients), every
// thread runs handlers.
#include <catch2/catch.hpp>

#include <algorithm>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/query.hpp>
#include <atomic>
#include <mutex>
#include <chrono>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <memory>
#include <thread>
#include <sys/resource.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <vector>

#include "netlab/core/fd_pump.hpp"
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
  rt.serve();
  rt.connection_joined();
  std::vector<bool> overlapped;
  probe(rt, 300ms, overlapped, [&] { rt.release(); });
  rt.run();
  CHECK(overlapped == std::vector<bool>{false});
}

TEST_CASE("runtime: a helper joins at two open connections, leaves below, joins again", "[core][runtime]") {
  runtime rt(2);
  rt.serve();
  rt.connection_joined();
  rt.connection_joined();
  std::vector<bool> overlapped;
  probe(rt, 5s, overlapped, [&] {
    rt.connection_left();
    // A helper leaves the io_context within 10 ms of the load dropping: wait that out.
    asio::post(rt.ioc(), [&] {
      std::this_thread::sleep_for(250ms);
      probe(rt, 300ms, overlapped, [&] {
        rt.connection_joined();
        probe(rt, 5s, overlapped, [&] { rt.release(); });
      });
    });
  });
  rt.run();
  CHECK(overlapped == std::vector<bool>{true, false, true});
}

TEST_CASE("runtime: a client's runtime (no serve()) runs handlers on every thread", "[core][runtime]") {
  runtime rt(2);
  std::vector<bool> overlapped;
  probe(rt, 5s, overlapped, [&] { rt.release(); });
  rt.run();
  CHECK(overlapped == std::vector<bool>{true});
}

namespace {
asio::execution_context* context_of(const asio::any_io_executor& ex) {
  return &asio::query(ex, asio::execution::context);
}
asio::execution_context* shared(runtime& rt) { return &rt.ioc(); }
}  // namespace

TEST_CASE("runtime: the first connections share ioc(), later ones go to the threads in turn", "[core][runtime]") {
  runtime rt(3);
  rt.serve(0us, 2);
  std::vector<runtime::placement> p;
  for (int i = 0; i < 8; ++i) {
    p.push_back(rt.place_connection());
    rt.connection_joined(p.back().slot);
  }
  CHECK(context_of(p[0].executor) == shared(rt));  // shared: below 2 open
  CHECK(context_of(p[1].executor) == shared(rt));
  CHECK(p[0].slot == -1);
  CHECK(p[1].slot == -1);
  CHECK(p[2].slot == -1);  // then in turn: the first thread's share is on ioc() too
  CHECK(context_of(p[2].executor) == shared(rt));
  CHECK(p[3].slot == 0);
  CHECK(p[4].slot == 1);
  CHECK(p[5].slot == -1);
  CHECK(context_of(p[3].executor) != shared(rt));
  CHECK(context_of(p[4].executor) != context_of(p[3].executor));
  CHECK(context_of(p[6].executor) == context_of(p[3].executor));
  // Each thread's own context is run by one thread, each by a different one.
  std::mutex mu;
  std::vector<std::vector<std::thread::id>> seen(2);
  std::atomic<int> left{400};
  for (int round = 0; round < 200; ++round)
    for (int c = 0; c < 2; ++c)
      asio::post(p[3 + c].executor, [&, c] {
        {
          std::lock_guard<std::mutex> lk(mu);
          seen[c].push_back(std::this_thread::get_id());
        }
        std::this_thread::sleep_for(50us);
        if (--left == 0) rt.stop();
      });
  rt.run();  // returns once stop() ends every thread's run
  for (auto& s : seen) {
    REQUIRE(s.size() == 200);
    CHECK(std::all_of(s.begin(), s.end(), [&](auto id) { return id == s.front(); }));
  }
  CHECK(seen[0].front() != seen[1].front());
}

TEST_CASE("runtime: threads without connections of their own help run ioc()", "[core][runtime]") {
  runtime rt(2);
  rt.serve(0us, 32);
  rt.connection_joined(rt.place_connection().slot);  // two shared: both threads run them
  rt.connection_joined(rt.place_connection().slot);
  std::vector<bool> overlapped;
  probe(rt, 300ms, overlapped, [&] {
    // Past the shared ones, a connection on the second thread's own context: it stops helping.
    for (int i = 2; i < 32; ++i) rt.connection_joined(rt.place_connection().slot);
    auto a = rt.place_connection();
    rt.connection_joined(a.slot);
    auto b = rt.place_connection();
    rt.connection_joined(b.slot);
    REQUIRE(((a.slot == 0) != (b.slot == 0)));
    std::this_thread::sleep_for(150ms);  // the helper's current run_one_for (10 ms) ends
    probe(rt, 300ms, overlapped, [&] { rt.release(); });
  });
  rt.run();
  CHECK(overlapped == std::vector<bool>{true, false});
}

TEST_CASE("runtime: with one thread, every connection is on ioc()", "[core][runtime]") {
  runtime rt(1);
  rt.serve();
  for (int i = 0; i < 40; ++i) {
    auto p = rt.place_connection();
    CHECK(p.slot == -1);
    CHECK(context_of(p.executor) == shared(rt));
  }
}

namespace {
/// CPU time of the calling thread.
long thread_voluntary_switches() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_nvcsw;
}

/// Posts `n` handlers to ioc(), `gap` apart, from another thread; returns how often the threads
/// running them blocked between their first and their last handler (voluntary context switches:
/// a polling thread never gives up the CPU by itself, a sleeping one does once per wake-up; unlike
/// a share of CPU time, this does not depend on how busy the rest of the machine is), and whether
/// they all ran on `caller`.
struct spin_probe {
  long blocks = -1;
  bool all_on_caller = true;
};
spin_probe run_spaced(runtime& rt, int n, std::chrono::milliseconds gap, std::thread::id caller) {
  spin_probe r;
  std::mutex mu;
  std::map<std::thread::id, std::pair<long, long>> switches;  // first, last
  std::atomic<int> done{0};
  for (int i = 0; i < n; ++i) {
    asio::post(rt.ioc(), [&] {
      const auto now = thread_voluntary_switches();  // before the lock: waiting on it is a switch
      std::lock_guard<std::mutex> lk(mu);
      const auto id = std::this_thread::get_id();
      auto it = switches.find(id);
      if (it == switches.end()) switches.emplace(id, std::make_pair(now, now));
      else it->second.second = now;
      if (id != caller) r.all_on_caller = false;
      ++done;
    });
    std::this_thread::sleep_for(gap);
  }
  for (int i = 0; i < 500 && done.load() < n; ++i) std::this_thread::sleep_for(10ms);
  std::lock_guard<std::mutex> lk(mu);
  if (done.load() < n) return r;
  r.blocks = 0;
  for (auto& [id, fl] : switches) r.blocks += fl.second - fl.first;
  return r;
}
}  // namespace

TEST_CASE("runtime: busy_poll keeps the first thread awake for one connection, alone, and sleeps from two",
          "[core][runtime]") {
  runtime rt(2);
  rt.serve(20ms, 32);
  rt.connection_joined(rt.place_connection().slot);
  const auto caller = std::this_thread::get_id();
  spin_probe one, two;
  std::thread driver([&] {
    one = run_spaced(rt, 20, 5ms, caller);  // gaps below the budget: the thread never sleeps
    rt.connection_joined(rt.place_connection().slot);
    std::this_thread::sleep_for(50ms);  // the first thread's current poll ends; it now blocks
    two = run_spaced(rt, 20, 5ms, caller);
    rt.release();
  });
  rt.run();  // returns once the work runs out, polling or not
  driver.join();
  // Polling, the thread never blocks between the 20 handlers (a rare blocking wait on Asio's own
  // lock may count); sleeping, it blocks before nearly every one.
  CHECK((one.blocks >= 0 && one.blocks <= 5));
  CHECK(one.all_on_caller);  // the other thread stays out while the first polls
  CHECK(two.blocks >= 15);
}

TEST_CASE("runtime: busy_poll with a zero budget never spins", "[core][runtime]") {
  runtime rt(1);
  rt.serve(0us);
  rt.connection_joined(rt.place_connection().slot);
  spin_probe one;
  std::thread driver([&] {
    one = run_spaced(rt, 20, 5ms, {});
    rt.release();
  });
  rt.run();
  driver.join();
  CHECK(one.blocks >= 15);
}

TEST_CASE("runtime: busy_poll for connections made outside place_connection() (ws-echo)", "[core][runtime]") {
  runtime rt(2);
  rt.serve(20ms);
  rt.connection_joined();
  const auto caller = std::this_thread::get_id();
  spin_probe one, two;
  std::thread driver([&] {
    one = run_spaced(rt, 20, 5ms, caller);
    rt.connection_joined();  // two open: the helper joins and nobody polls
    std::this_thread::sleep_for(50ms);
    two = run_spaced(rt, 20, 5ms, caller);
    rt.release();
  });
  rt.run();
  driver.join();
  CHECK((one.blocks >= 0 && one.blocks <= 5));
  CHECK(one.all_on_caller);
  CHECK(two.blocks >= 15);
}

// Issue 13 item 11: an exception escaping a handler on a pool thread used to reach std::terminate.
// run() is the one exception boundary: it stops everything, joins, and rethrows it on the caller.
TEST_CASE("runtime: an exception escaping a handler on any thread comes out of run()", "[core][runtime]") {
  enum class mode { client, serve_shared, serve_per_thread };
  for (unsigned threads : {2u, 4u}) {
    for (mode m : {mode::client, mode::serve_shared, mode::serve_per_thread}) {
      CAPTURE(threads, static_cast<int>(m));
      runtime rt(threads);
      if (m == mode::serve_shared) rt.serve();
      if (m == mode::serve_per_thread) rt.serve(0us, 0);
      // Two connections: serving, the helpers run handlers too; per thread, each context has one.
      std::vector<runtime::placement> places;
      for (int i = 0; i < 2; ++i) places.push_back(rt.place_connection());
      for (auto& p : places) rt.connection_joined(p.slot);
      // Throw from a thread other than the caller's: the caller's thread is held in a handler until
      // another thread has thrown, so another thread must run one (no reliance on scheduling).
      const auto caller = std::this_thread::get_id();
      std::atomic<int> thrown{0};
      auto work = asio::make_work_guard(rt.ioc());
      for (int i = 0; i < 8; ++i)
        asio::post(rt.ioc(), [&thrown, caller] {
          if (std::this_thread::get_id() != caller) {
            if (thrown.fetch_add(1) == 0) throw std::runtime_error("handler bug");
            return;
          }
          for (int n = 0; n < 1000 && thrown.load() == 0; ++n) std::this_thread::sleep_for(10ms);
        });
      for (auto& p : places)
        if (p.slot >= 0)
          asio::post(p.executor, [&thrown] {
            if (thrown.fetch_add(1) == 0) throw std::runtime_error("handler bug");
          });
      bool reported = false;
      std::atomic<bool> returned{false};
      std::thread watchdog([&] {  // a failing run() must fail the test, not hang it
        for (int i = 0; i < 1000 && !returned; ++i) std::this_thread::sleep_for(10ms);
        if (!returned) rt.stop();
      });
      try {
        rt.run();
      } catch (const std::runtime_error& e) {
        reported = std::string(e.what()) == "handler bug";
      }
      returned = true;
      watchdog.join();
      CHECK(reported);
      for (auto& p : places) rt.connection_left(p.slot);
    }
  }
}

TEST_CASE("runtime: an exception on the only thread comes out of run() too", "[core][runtime]") {
  runtime rt(1);
  asio::post(rt.ioc(), [] { throw std::logic_error("bug"); });
  CHECK_THROWS_AS(rt.run(), std::logic_error);
}

// core::fd_pump (tcp dial's and ws-echo dial's stdin reader): one chunk per next(), never read ahead,
// and stop() joins a reader blocked on an empty pipe (issue 13 item 10: ws-echo dial's reader read
// everything at once and, detached, posted into a destroyed io_context).
TEST_CASE("fd_pump: reads one chunk per next() and stop() joins a blocked reader", "[core][fd_pump]") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  ::fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
  const std::string data(200 * 1024, 'p');
  REQUIRE(::write(fds[1], data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  asio::io_context ioc;
  auto work = asio::make_work_guard(ioc);  // run_one_for waits for the reader's posts
  std::vector<std::size_t> chunks;
  bool eof = false;
  {
    netlab::core::fd_pump pump(fds[0], ioc.get_executor(), [&](std::string d, bool e, std::error_code) {
      if (e) eof = true;
      else chunks.push_back(d.size());
    });
    pump.next();
    const auto give_up = std::chrono::steady_clock::now() + 10s;  // a failure must not hang the run
    while (chunks.empty() && std::chrono::steady_clock::now() < give_up) ioc.run_one_for(1s);
    REQUIRE(chunks.size() == 1);
    std::this_thread::sleep_for(50ms);  // a reader that read ahead would have emptied the pipe by now
    ioc.poll();
    CHECK(chunks.size() == 1);
    CHECK(chunks[0] <= netlab::core::fd_pump::chunk);
    int left = 0;
    REQUIRE(::ioctl(fds[0], FIONREAD, &left) == 0);
    CHECK(static_cast<std::size_t>(left) == data.size() - chunks[0]);
    while (!eof && chunks.size() < 4) {  // drain the rest, one next() per chunk
      pump.next();
      const auto n = chunks.size();
      while (chunks.size() == n && std::chrono::steady_clock::now() < give_up) ioc.run_one_for(1s);
    }
    std::size_t total = 0;
    for (auto c : chunks) total += c;
    CHECK(total == data.size());
    pump.next();  // the pipe is empty and still open: the reader blocks in poll()
    const auto t0 = std::chrono::steady_clock::now();
    pump.stop();
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
    CHECK_FALSE(eof);
  }
  work.reset();
  CHECK(ioc.poll() == 0);  // nothing was posted after stop()
  ::close(fds[0]);
  ::close(fds[1]);
}

// Issue 14 item 4: udp send reads its datagram from stdin through the same fd_pump (read_all), not a
// reader of its own: everything up to EOF, and no more than just past the limit from an endless
// producer.
TEST_CASE("fd_pump::read_all: reads to EOF, or stops just past the limit", "[core][fd_pump]") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const std::string data(3000, 'q');
  std::thread writer([&] {
    REQUIRE(::write(fds[1], data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    ::close(fds[1]);
  });
  std::error_code ec;
  CHECK(netlab::core::fd_pump::read_all(fds[0], 65507, ec) == data);
  CHECK_FALSE(ec);
  writer.join();
  ::close(fds[0]);

  REQUIRE(::pipe(fds) == 0);
  std::atomic<bool> done{false};
  ::fcntl(fds[1], F_SETFL, O_NONBLOCK);  // the producer can always see `done`
  std::thread endless([&] {              // like `yes |`: never ends by itself
    const std::string block(4096, 'y');
    while (!done)
      if (::write(fds[1], block.data(), block.size()) < 0) std::this_thread::sleep_for(1ms);
  });
  const auto got = netlab::core::fd_pump::read_all(fds[0], 10000, ec);
  CHECK_FALSE(ec);
  CHECK(got.size() > 10000);
  CHECK(got.size() <= 10000 + netlab::core::fd_pump::chunk);
  done = true;
  endless.join();
  ::close(fds[0]);
  ::close(fds[1]);
}
