// `udp send` load mode: closed loop against a UDP echo server, one datagram in flight per socket.
//
// Memory per simulated connection (socket): the flow object with its socket, strand handle and
// timer (~0.5 KB) plus the outgoing datagram (--size bytes). Received datagrams go into one 64 KiB
// buffer per io thread (a wait for readability, then a non-blocking receive), and the stats with
// their ~60 KB latency histogram exist once per thread. Before, every socket had its own 64 KiB
// buffer and its own histogram: 10,000 sockets used 1.24 GB.
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
#include "netlab/tcp/limits.hpp"
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
  core::per_thread_stats stats;
  std::string peer;  // "127.0.0.1:7007", for error lines
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

const char* const refused_hint = "nothing listens on that UDP port (ICMP port unreachable): is the server running?";

/// The receive buffer of the calling io thread: large enough for any datagram, one per thread.
char* receive_buffer() {
  thread_local std::vector<char> buf(max_datagram + 1);
  return buf.data();
}

class flow : public std::enable_shared_from_this<flow> {
 public:
  flow(std::shared_ptr<load_run> run, asio::io_context& ioc)
      : run_(std::move(run)), strand_(asio::make_strand(ioc)), sock_(strand_), timer_(strand_),
        msg_(run_->opt.size) {}

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
      core::log().debug("load send: {}", ec.message());
      failed(ec, "send to " + run_->peer);
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

  // Waits for readability, then receives into the thread's buffer: no buffer per socket.
  void do_receive() {
    receiving_ = true;
    sock_.async_wait(udp::socket::wait_read, [self = shared_from_this()](std::error_code ec) {
      self->receiving_ = false;
      if (ec) return self->on_receive(ec, 0, nullptr);
      char* buf = receive_buffer();
      std::size_t n = self->sock_.receive(asio::buffer(buf, max_datagram + 1), 0, ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        if (!self->closed_) self->do_receive();
        return;
      }
      self->on_receive(ec, n, buf);
    });
  }

  void failed(std::error_code ec, const std::string& what) {
    ec = core::portable(ec);
    if (ec == std::errc::connection_refused)
      run_->stats.local().error(core::outcome::fail(exit_code::network, what + ": " + ec.message(), refused_hint));
    else
      run_->stats.local().error(core::outcome::fail(ec, what, core::hint_for(ec)));
  }

  void on_receive(std::error_code ec, std::size_t n, const char* buf) {
    if (closed_) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      // Connection refused etc.: the message in flight is lost.
      core::log().debug("load receive: {}", ec.message());
      if (waiting_) {
        waiting_ = false;
        timer_.cancel();
        failed(ec, "receive from " + run_->peer);
        if (ec == asio::error::connection_refused) {
          do_receive();
          return next();
        }
        return done();
      }
      return do_receive();
    }
    if (!waiting_) return do_receive();  // a late echo after its deadline: already counted as lost
    if (n == msg_.size() && std::memcmp(buf, msg_.data(), n) == 0) {
      waiting_ = false;
      timer_.cancel();
      auto& st = run_->stats.local();
      ++st.messages;
      st.bytes += n;
      st.latency.record(steady::now() - sent_at_);
      do_receive();
      return next();
    }
    // Stale echo of an earlier (timed-out) message: ignore; anything else is a corrupted echo.
    if (n == msg_.size() && n >= 8) {
      std::uint64_t s = 0;
      for (std::size_t i = 0; i < 8; ++i) s |= static_cast<std::uint64_t>(static_cast<unsigned char>(buf[i])) << (8 * i);
      if (s < seq_) return do_receive();
    }
    run_->stats.local().error(core::outcome::fail(
        exit_code::protocol,
        "echo from " + run_->peer + ": a " + std::to_string(n) + " B datagram where the " + std::to_string(msg_.size()) +
            " B message " + std::to_string(seq_) + " was expected (is it an echo server?)",
        "the peer must echo every datagram unchanged (netlab udp serve --mode echo)"));
    waiting_ = false;
    timer_.cancel();
    core::log().debug("load: mismatched echo ({} B, expected {} B)", n, msg_.size());
    do_receive();
    next();
  }

  void on_timeout(std::uint64_t s) {
    if (closed_ || !waiting_ || s != seq_) return;
    waiting_ = false;
    run_->stats.local().error(core::outcome::fail(
        exit_code::timeout, "no echo from " + run_->peer + " within " + core::format_duration(run_->timeout) + " (--timeout)",
        "is a UDP echo server running there (netlab udp serve --mode echo)? datagrams may be lost: raise --timeout"));
    core::log().debug("load: datagram {} not echoed within {}", s, core::format_duration(run_->timeout));
    next();
  }

  void done() {
    if (closed_) return;
    closed_ = true;
    // A datagram still in flight when the run ends (count reached elsewhere, duration over, signal)
    // is neither a message nor an error, as in tcp and ws load.
    waiting_ = false;
    std::error_code ec;
    timer_.cancel();
    sock_.close(ec);
    if (--run_->active == 0) run_->rt->release();
  }

  std::shared_ptr<load_run> run_;
  asio::strand<asio::io_context::executor_type> strand_;
  udp::socket sock_;
  asio::steady_timer timer_;
  std::vector<char> msg_;
  steady::time_point sent_at_;
  std::uint64_t seq_ = 0;
  bool waiting_ = false;
  bool receiving_ = false;
  bool closed_ = false;
};

}  // namespace

core::outcome run_load(const send_options& opt, core::runtime& rt, core::reporter& out) {
  auto limit = tcp::raise_open_files_limit();  // one descriptor per socket
  if (limit && limit < static_cast<std::uint64_t>(opt.load->connections) + 32)
    core::log().warn("open files limit is {}: {} sockets will not all fit (raise 'ulimit -n')", limit,
                     opt.load->connections);
  auto run = std::make_shared<load_run>();
  run->opt = *opt.load;
  run->timeout = opt.timeout;
  run->remaining = run->opt.count;
  run->rt = &rt;
  run->peer = opt.target.host + ":" + std::to_string(opt.target.port);
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
    if (!ec) f->socket().non_blocking(true, ec);
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
  rt.on_signal(nullptr);
  auto total = run->stats.merged();
  total.elapsed = steady::now() - t0;
  core::report_load(out, "udp", run->opt, total);
  return core::load_verdict(total, rt.interrupted());
}

}  // namespace netlab::udp
