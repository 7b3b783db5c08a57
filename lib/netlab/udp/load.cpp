// `udp send` load mode: closed loop against a UDP echo server, one datagram in flight per socket.
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include <asio/ip/udp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "netlab/core/log.hpp"
#include "netlab/udp/client.hpp"

namespace netlab::udp {
namespace {

using asio::ip::udp;
using steady = std::chrono::steady_clock;

/// Shared by all sockets of one run: the budget of messages, the end time and the stop flag.
struct load_run {
  core::load_options opt;
  std::chrono::milliseconds timeout;
  std::atomic<std::uint64_t> remaining{0};  // count mode: messages not yet started
  steady::time_point end;                   // duration mode
  std::atomic<bool> stopping{false};
  std::atomic<unsigned> active{0};
  std::mutex mu;
  core::load_stats total;
  core::runtime* rt = nullptr;

  bool take() {
    if (stopping.load()) return false;
    if (opt.count > 0) {
      auto r = remaining.load();
      while (r > 0)
        if (remaining.compare_exchange_weak(r, r - 1)) return true;
      return false;
    }
    return steady::now() < end;
  }
};

// Message `seq`: its first 8 bytes carry seq (as far as they fit), the rest a pattern shifted by seq.
void fill(std::vector<char>& m, std::uint64_t seq) {
  for (std::size_t i = 0; i < m.size(); ++i)
    m[i] = i < 8 ? static_cast<char>(seq >> (8 * i)) : static_cast<char>('a' + (i + seq) % 26);
}

class flow : public std::enable_shared_from_this<flow> {
 public:
  flow(std::shared_ptr<load_run> run, asio::io_context& ioc)
      : run_(std::move(run)), strand_(asio::make_strand(ioc)), sock_(strand_), timer_(strand_),
        msg_(run_->opt.size), buf_(65536) {}

  udp::socket& socket() { return sock_; }

  void start() {
    asio::post(strand_, [self = shared_from_this()] { self->next(); });
  }
  void stop() {
    asio::post(strand_, [self = shared_from_this()] { self->done(); });
  }

 private:
  void next() {
    if (closed_) return;
    if (!run_->take()) return done();
    ++seq_;
    fill(msg_, seq_);
    sent_at_ = steady::now();
    std::error_code ec;
    sock_.send(asio::buffer(msg_), 0, ec);
    if (ec) {
      ++stats_.errors;
      core::log().debug("load send: {}", ec.message());
      if (ec == asio::error::connection_refused) return next();  // ICMP from an earlier datagram; retry with the next
      return done();
    }
    waiting_ = true;
    timer_.expires_after(run_->timeout);
    timer_.async_wait([self = shared_from_this(), s = seq_](std::error_code e) {
      if (!e) self->on_timeout(s);
    });
    if (!receiving_) do_receive();
  }

  void do_receive() {
    receiving_ = true;
    sock_.async_receive(asio::buffer(buf_), [self = shared_from_this()](std::error_code ec, std::size_t n) {
      self->receiving_ = false;
      self->on_receive(ec, n);
    });
  }

  void on_receive(std::error_code ec, std::size_t n) {
    if (closed_) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      // Connection refused etc.: the message in flight is lost.
      core::log().debug("load receive: {}", ec.message());
      if (waiting_) {
        waiting_ = false;
        timer_.cancel();
        ++stats_.errors;
        if (ec == asio::error::connection_refused) {
          do_receive();
          return next();
        }
        return done();
      }
      return do_receive();
    }
    if (!waiting_) return do_receive();  // a late echo after its deadline: already counted as lost
    if (n == msg_.size() && std::memcmp(buf_.data(), msg_.data(), n) == 0) {
      waiting_ = false;
      timer_.cancel();
      ++stats_.messages;
      stats_.bytes += n;
      stats_.latency.record(steady::now() - sent_at_);
      do_receive();
      return next();
    }
    // Stale echo of an earlier (timed-out) message: ignore; anything else is a corrupted echo.
    if (n == msg_.size() && n >= 8) {
      std::uint64_t s = 0;
      for (std::size_t i = 0; i < 8; ++i) s |= static_cast<std::uint64_t>(static_cast<unsigned char>(buf_[i])) << (8 * i);
      if (s < seq_) return do_receive();
    }
    ++stats_.errors;
    waiting_ = false;
    timer_.cancel();
    core::log().debug("load: mismatched echo ({} B, expected {} B)", n, msg_.size());
    do_receive();
    next();
  }

  void on_timeout(std::uint64_t s) {
    if (closed_ || !waiting_ || s != seq_) return;
    waiting_ = false;
    ++stats_.errors;
    core::log().debug("load: datagram {} not echoed within {}", s, core::format_duration(run_->timeout));
    next();
  }

  void done() {
    if (closed_) return;
    closed_ = true;
    if (waiting_) {
      waiting_ = false;
      ++stats_.errors;  // interrupted while waiting: the message did not complete
    }
    std::error_code ec;
    timer_.cancel();
    sock_.close(ec);
    {
      std::lock_guard<std::mutex> lock(run_->mu);
      run_->total += stats_;
    }
    if (--run_->active == 0) run_->rt->release();
  }

  std::shared_ptr<load_run> run_;
  asio::strand<asio::io_context::executor_type> strand_;
  udp::socket sock_;
  asio::steady_timer timer_;
  std::vector<char> msg_;
  std::vector<char> buf_;
  core::load_stats stats_;
  steady::time_point sent_at_;
  std::uint64_t seq_ = 0;
  bool waiting_ = false;
  bool receiving_ = false;
  bool closed_ = false;
};

}  // namespace

core::outcome run_load(const send_options& opt, core::runtime& rt, core::reporter& out) {
  auto run = std::make_shared<load_run>();
  run->opt = *opt.load;
  run->timeout = opt.timeout;
  run->remaining = run->opt.count;
  run->rt = &rt;
  std::vector<std::shared_ptr<flow>> flows;
  std::error_code ec;
  auto eps = core::resolve_udp(opt.target, false, ec);
  const std::string name = opt.target.host + ":" + std::to_string(opt.target.port);
  if (ec) return core::outcome::fail(ec, "resolve " + name, core::hint_for(ec));
  if (eps.empty()) return core::outcome::fail(exit_code::network, "resolve " + name + ": no address");
  for (unsigned i = 0; i < run->opt.connections; ++i) {
    auto f = std::make_shared<flow>(run, rt.ioc());
    f->socket().open(eps.front().protocol(), ec);
    if (!ec) f->socket().connect(eps.front(), ec);
    if (ec) return core::outcome::fail(ec, "socket " + std::to_string(i + 1) + " to " + name, core::hint_for(ec));
    flows.push_back(std::move(f));
  }
  core::log().info("load: {} socket(s) to {}, {} B datagrams, {}", run->opt.connections, core::to_string(eps.front()),
                   run->opt.size,
                   run->opt.count ? std::to_string(run->opt.count) + " messages" : core::format_duration(run->opt.duration));
  run->active = run->opt.connections;
  const auto t0 = steady::now();
  run->end = t0 + run->opt.duration;
  rt.on_signal([run, &flows](int) {
    run->stopping = true;
    for (auto& f : flows) f->stop();
  });
  for (auto& f : flows) f->start();
  rt.run();
  run->total.elapsed = steady::now() - t0;
  core::report_load(out, "udp", run->opt, run->total);
  if (rt.interrupted()) return core::outcome::fail(exit_code::interrupted, "interrupted");
  if (run->total.messages == 0)
    return core::outcome::fail(exit_code::timeout, "no datagram was echoed by " + name,
                               "is a UDP echo server running there (netlab udp serve --mode echo)?");
  return core::outcome::success();
}

}  // namespace netlab::udp
