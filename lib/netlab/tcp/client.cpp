#include "netlab/tcp/client.hpp"

#include <memory>

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include "netlab/core/fd_pump.hpp"
#include "netlab/core/log.hpp"
#include "netlab/core/net.hpp"
#include "netlab/core/payload.hpp"
#include "netlab/tcp/preview.hpp"

namespace netlab::tcp {
namespace {

using asio::ip::tcp;
using steady = std::chrono::steady_clock;

constexpr std::size_t read_chunk = 64 * 1024;
// With no --timeout, how long the first reply is awaited once everything is sent: --idle only
// starts after it, so a server that thinks for 3 s is still heard (issue 15), and a silent one ends
// the run with exit 4 instead of hanging.
constexpr std::chrono::seconds first_reply_default{10};

using core::fd_pump;

// A socket error as an outcome: exit code from the error (refused/reset 3, ETIMEDOUT 4) and a hint.
core::outcome network_failure(std::error_code ec, const std::string& what) {
  ec = core::portable(ec);
  return core::outcome::fail(ec, what, core::hint_for(ec));
}

std::string seconds_text(steady::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3fs", std::chrono::duration<double>(d).count());
  return buf;
}

/// One dial exchange: connect, send the source, print what comes back, stop on the first end.
class dialer : public std::enable_shared_from_this<dialer> {
 public:
  dialer(const dial_options& opt, core::runtime& rt, core::reporter& out)
      : opt_(opt), rt_(rt), out_(out), resolver_(rt.ioc()), sock_(rt.ioc()), connect_timer_(rt.ioc()),
        overall_(rt.ioc()), idle_(rt.ioc()), buf_(read_chunk), target_(opt.target.to_string()) {}

  void start() {
    started_ = steady::now();
    if (opt_.timeout.count() > 0) {
      overall_.expires_after(opt_.timeout);
      overall_.async_wait([self = shared_from_this()](std::error_code ec) {
        if (ec) return;
        if (self->received_ == 0 && self->connected_)
          return self->finish(core::outcome::fail(exit_code::timeout,
                                                  "no reply from " + self->target_ + " within " +
                                                      core::format_duration(self->opt_.timeout) + " (--timeout)",
                                                  "is the server slow or does it answer nothing? raise --timeout"),
                              "timeout");
        self->finish(core::outcome::fail(exit_code::timeout,
                                         "no end from " + self->target_ + " within " +
                                             core::format_duration(self->opt_.timeout) + " (--timeout)",
                                         "raise --timeout, or use --idle to stop after a silence"),
                     "timeout");
      });
    }
    if (opt_.connect_timeout.count() > 0) {
      connect_timer_.expires_after(opt_.connect_timeout);
      connect_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
        if (ec || self->connected_) return;
        self->connect_timed_out_ = true;
        self->resolver_.cancel();
        std::error_code ignored;
        self->sock_.close(ignored);
      });
    }
    resolver_.async_resolve(opt_.target.host, std::to_string(opt_.target.port), tcp::resolver::numeric_service,
                            [self = shared_from_this()](std::error_code ec, tcp::resolver::results_type r) {
                              self->on_resolved(ec, std::move(r));
                            });
  }

  void interrupt(int signo) {
    finish(core::outcome::fail(exit_code::interrupted, "interrupted by signal " + std::to_string(signo)), "interrupted");
  }

  const core::outcome& result() const { return result_; }

 private:
  void on_resolved(std::error_code ec, tcp::resolver::results_type results) {
    if (done_) return;
    if (connect_timed_out_) return connect_timeout();
    if (ec)
      return finish(core::outcome::fail(exit_code::network, "resolve " + opt_.target.host + ": " + ec.message(),
                                        "check the host name"),
                    "error");
    asio::async_connect(sock_, results, [self = shared_from_this()](std::error_code e, const tcp::endpoint& ep) {
      self->on_connected(e, ep);
    });
  }

  void connect_timeout() {
    finish(core::outcome::fail(exit_code::timeout,
                               "connect " + target_ + ": timed out after " + core::format_duration(opt_.connect_timeout),
                               "is the host up and the port open? raise --connect-timeout"),
           "timeout");
  }

  void on_connected(std::error_code ec, const tcp::endpoint& ep) {
    if (done_) return;
    if (connect_timed_out_) return connect_timeout();
    if (ec) return finish(network_failure(ec, "connect " + target_), "error");
    connected_ = true;
    connect_timer_.cancel();
    core::set_nodelay(sock_);
    std::error_code le;
    auto local = sock_.local_endpoint(le);
    peer_ = core::to_string(ep);
    core::log().info("connected to {} from {}", peer_, le ? std::string("?") : core::to_string(local));
    if (out_.json())
      out_.result({{"event", "connected"},
                   {"proto", "tcp"},
                   {"peer", peer_},
                   {"local", le ? std::string() : core::to_string(local)}},
                  "");
    last_ = steady::now();
    do_read();
    send_next();
  }

  void do_read() {
    sock_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](std::error_code ec, std::size_t n) {
      self->on_read(ec, n);
    });
  }

  void on_read(std::error_code ec, std::size_t n) {
    if (done_) return;
    if (ec == asio::error::eof) return finish(core::outcome::success(), "peer closed");
    if (ec) return finish(network_failure(ec, "read from " + peer_), "error");
    const bool first = received_ == 0;
    received_ += n;
    last_ = steady::now();
    auto& log = core::log();
    if (log.should_log(spdlog::level::debug)) log.debug("received {} B: {}", n, preview(buf_.data(), n));
    if (log.should_log(spdlog::level::trace)) log.trace("rx{}", core::hexdump(buf_.data(), n));
    if (out_.json()) {
      nlohmann::json ev{{"event", "data"}, {"bytes", n}};
      core::add_payload(ev, std::string_view(buf_.data(), n));
      out_.result(ev, "");
    } else {
      out_.data(buf_.data(), n);
    }
    if (first && all_sent_ && opt_.idle.count() > 0) arm_idle();  // the first reply came: now --idle counts
    do_read();
  }

  // The messages in order, one write each, then the file descriptor until its end.
  void send_next() {
    if (done_) return;
    if (next_message_ < opt_.source.messages.size()) {
      const std::string& m = opt_.source.messages[next_message_++];
      return write(m.data(), m.size());
    }
    if (opt_.source.fd >= 0 && !fd_done_) {
      if (!pump_)
        pump_ = std::make_unique<fd_pump>(opt_.source.fd, rt_.ioc().get_executor(),
                                          // weak: the dialer owns the pump, a strong capture would be a cycle
                                          [weak = weak_from_this()](std::string d, bool eof, std::error_code ec) {
                                            if (auto self = weak.lock()) self->on_input(std::move(d), eof, ec);
                                          });
      return pump_->next();
    }
    all_sent();
  }

  void on_input(std::string data, bool eof, std::error_code ec) {
    if (done_) return;
    if (ec) return finish(core::outcome::fail(exit_code::local_io, "read stdin: " + ec.message()), "error");
    if (eof) {
      fd_done_ = true;
      return all_sent();
    }
    chunk_ = std::move(data);
    write(chunk_.data(), chunk_.size());
  }

  void write(const char* p, std::size_t n) {
    auto& log = core::log();
    if (log.should_log(spdlog::level::debug)) log.debug("send {} B: {}", n, preview(p, n));
    if (log.should_log(spdlog::level::trace)) log.trace("tx{}", core::hexdump(p, n));
    asio::async_write(sock_, asio::buffer(p, n), [self = shared_from_this()](std::error_code ec, std::size_t m) {
      self->on_written(ec, m);
    });
  }

  void on_written(std::error_code ec, std::size_t n) {
    sent_ += n;
    if (done_) return;
    if (ec) return finish(network_failure(ec, "send to " + peer_), "error");
    last_ = steady::now();
    send_next();
  }

  void all_sent() {
    last_ = steady::now();
    all_sent_ = true;
    if (opt_.half_close) {
      std::error_code ec;
      sock_.shutdown(tcp::socket::shutdown_send, ec);
      core::log().debug("half-closed: sent {} B, still reading", sent_);
    }
    if (opt_.idle.count() == 0) return;
    if (received_ > 0) return arm_idle();
    // Nothing came back yet: --idle starts at the first reply. --timeout (when set) bounds the wait;
    // else first_reply_default does.
    if (opt_.timeout.count() > 0) return;
    idle_.expires_after(first_reply_default);
    idle_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (ec || self->done_ || self->received_ > 0) return;
      self->finish(core::outcome::fail(exit_code::timeout,
                                       "no reply from " + self->peer_ + " within " +
                                           core::format_duration(first_reply_default) + " of the last send",
                                       "is the server slow or does it answer nothing? set --timeout to wait longer, "
                                       "or --idle 0 to wait for the peer to close"),
                   "timeout");
    });
  }

  // Silence = nothing sent or received since last_; moving last_ is cheaper than re-arming.
  void arm_idle() {
    idle_.expires_at(last_ + opt_.idle);
    idle_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (ec || self->done_) return;
      if (steady::now() - self->last_ >= self->opt_.idle)
        return self->finish(core::outcome::success(), "idle for " + core::format_duration(self->opt_.idle));
      self->arm_idle();
    });
  }

  void finish(core::outcome o, const std::string& reason) {
    if (done_) return;
    done_ = true;
    result_ = std::move(o);
    std::error_code ec;
    resolver_.cancel();
    connect_timer_.cancel();
    overall_.cancel();
    idle_.cancel();
    sock_.close(ec);
    if (pump_) pump_->stop();  // joins the reader thread; nothing is posted after this
    if (connected_) {
      auto elapsed = steady::now() - started_;
      core::log().info("closed {}: {}; sent {} B, received {} B, {}", peer_, reason, sent_, received_,
                       seconds_text(elapsed));
      if (out_.json())
        out_.result({{"event", "closed"},
                     {"proto", "tcp"},
                     {"peer", peer_},
                     {"by", reason == "peer closed" ? "peer" : "local"},
                     {"reason", reason},
                     {"bytes_in", received_},
                     {"bytes_out", sent_},
                     {"seconds", std::chrono::duration<double>(elapsed).count()},
                     {"exit", static_cast<int>(result_.code)}},
                    "");
    }
    rt_.release();
  }

  const dial_options& opt_;
  core::runtime& rt_;
  core::reporter& out_;
  tcp::resolver resolver_;
  tcp::socket sock_;
  asio::steady_timer connect_timer_;
  asio::steady_timer overall_;
  asio::steady_timer idle_;
  std::vector<char> buf_;
  std::string target_;
  std::string peer_;
  std::string chunk_;
  std::unique_ptr<fd_pump> pump_;
  std::size_t next_message_ = 0;
  steady::time_point started_;
  steady::time_point last_;
  std::uint64_t sent_ = 0;
  std::uint64_t received_ = 0;
  bool connected_ = false;
  bool connect_timed_out_ = false;
  bool fd_done_ = false;
  bool all_sent_ = false;
  bool done_ = false;
  core::outcome result_;
};

}  // namespace

load_pattern::load_pattern(std::size_t size) : size_(size), data_(size + 256) {
  // xorshift: cheap, deterministic, no period shorter than the pattern.
  std::uint32_t x = 2463534242u;
  for (auto& c : data_) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x & 0xff);
  }
}

core::outcome dial(const dial_options& opt, core::runtime& rt, core::reporter& out) {
  if (opt.load) return run_load(opt, rt, out);
  auto d = std::make_shared<dialer>(opt, rt, out);
  rt.on_signal([d](int signo) { d->interrupt(signo); });
  d->start();
  rt.run();
  rt.on_signal(nullptr);  // drop the handler's reference to the dialer
  return d->result();
}

}  // namespace netlab::tcp
