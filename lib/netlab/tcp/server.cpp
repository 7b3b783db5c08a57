#include "netlab/tcp/server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <asio/dispatch.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>

#include "netlab/core/lifecycle.hpp"
#include "netlab/core/log.hpp"
#include "netlab/core/net.hpp"
#include "netlab/core/report.hpp"
#include "netlab/core/server_events.hpp"
#include "netlab/core/text.hpp"
#include "netlab/tcp/limits.hpp"
#include "netlab/tcp/preview.hpp"

namespace netlab::tcp {

const char* to_string(serve_mode m) noexcept {
  switch (m) {
    case serve_mode::ack: return "ack";
    case serve_mode::echo: return "echo";
    case serve_mode::discard: return "discard";
  }
  return "?";
}

namespace {

using asio::ip::tcp;
using steady = std::chrono::steady_clock;
using strand_t = asio::strand<asio::io_context::executor_type>;

// How long a stopping server lets pending replies finish before closing the rest (core::lifecycle).
constexpr auto stop_grace = std::chrono::milliseconds(1000);
// Pause before accepting again after running out of file descriptors (else accept spins).
constexpr auto accept_retry = std::chrono::milliseconds(100);

std::string seconds_text(steady::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3fs", std::chrono::duration<double>(d).count());
  return buf;
}

std::string describe(const std::error_code& ec) {
  if (ec == asio::error::eof) return "closed by peer";
  if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe) return "reset by peer (" + ec.message() + ")";
  return ec.message();
}

// Echo mode: a connection whose reads reach this size switches to splice(2) through a pipe, so
// bulk bytes go socket -> pipe -> socket inside the kernel, never copied to user space (what Go's
// io.Copy does). Small messages stay on recv/send, which is cheaper for them.
constexpr std::size_t splice_threshold = 8 * 1024;
constexpr std::size_t splice_chunk = 64 * 1024;  // the default pipe capacity
constexpr int splice_rounds = 16;                // per readiness, so one client cannot starve the rest

// One read buffer per io thread for what does not fit in a connection's 512-byte head: a waiting
// connection holds no large buffer, so thousands of idle clients cost little memory.
std::vector<char>& scratch(std::size_t size) {
  thread_local std::vector<char> buf;
  if (buf.size() < size) buf.resize(size);
  return buf;
}

class session;

/// The listening socket and the counters; the stop path is core::lifecycle's.
class server : public std::enable_shared_from_this<server> {
 public:
  server(const serve_options& opt, core::runtime& rt, core::reporter& out)
      : opt_(opt), rt_(rt), out_(out), strand_(asio::make_strand(rt.ioc())), acceptor_(strand_), retry_(strand_) {}

  core::outcome start(std::shared_ptr<core::lifecycle> lc);
  void stop_accepting();  // the lifecycle's stop, on strand_

  const serve_options& options() const noexcept { return opt_; }
  core::reporter& out() noexcept { return out_; }
  /// The next connection number for --json events (1, 2, ...).
  std::uint64_t next_id() noexcept { return ++ids_; }
  unsigned active() const noexcept { return active_.load(); }
  core::lifecycle& lifecycle() noexcept { return *lc_; }
  strand_t strand() const { return strand_; }
  void remove(core::lifecycle::session_id id, int slot);  // from the session's destructor, on any thread

 private:
  void do_accept();
  void on_accept(std::error_code ec, tcp::socket sock, int slot);

  serve_options opt_;
  core::runtime& rt_;
  core::reporter& out_;
  std::shared_ptr<core::lifecycle> lc_;
  strand_t strand_;  // acceptor, timers and the stopping flag live here
  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
  bool stopping_ = false;  // on strand_
  bool fd_warned_ = false;
  std::atomic<unsigned> active_{0};
  std::atomic<std::uint64_t> ids_{0};
};

/// One client connection; its handlers never run concurrently (a strand, or a one-thread context).
class session : public std::enable_shared_from_this<session> {
 public:
  session(std::shared_ptr<server> srv, tcp::socket sock, std::string peer, int slot)
      : srv_(std::move(srv)), opt_(srv_->options()), sock_(std::move(sock)), idle_(sock_.get_executor()),
        peer_(std::move(peer)), slot_(slot), opened_(steady::now()), last_(opened_) {}

  ~session() {
    close_pipe();
    srv_->remove(id_, slot_);
  }

  /// Registers with the server's lifecycle (its "close this session"); a stopping server's new
  /// connection closes at once.
  void track() {
    id_ = srv_->lifecycle().add([w = weak_from_this()](bool graceful) {
      if (auto s = w.lock()) asio::post(s->executor(), [s, graceful] { graceful ? s->stop_gracefully() : s->abort(); });
    });
    if (id_ == 0) asio::post(executor(), [s = shared_from_this()] { s->stop_gracefully(); });
  }

  void start() {
    core::set_nodelay(sock_);
    std::error_code ec;
    sock_.non_blocking(true, ec);  // reads and first write attempts are synchronous and non-blocking
    if (ec) return finish(ec.message());
    core::log().info("open {} ({} active)", peer_, srv_->active());
    if (srv_->out().json()) {
      number_ = srv_->next_id();
      core::server_event(srv_->out(), {{"event", "connection"}, {"proto", "tcp"}, {"id", number_}, {"peer", peer_}});
    }
    if (opt_.idle_timeout.count() > 0) arm_idle();
    do_wait_read();
  }

  /// Server stopping: close now, or once the pending reply is written.
  void stop_gracefully() {
    draining_ = true;
    if (!writing_) finish("server stopping");
  }

  /// Grace period over: close whatever state the connection is in.
  void abort() { finish("server stopping (grace period over)"); }

  /// The connection's executor.
  tcp::socket::executor_type executor() { return sock_.get_executor(); }

 private:
  // Reads into the connection's small head_ buffer; what does not fit there is read at once into
  // the thread's scratch buffer. An async read (unlike async_wait, which re-arms epoll with
  // EPOLL_CTL_MOD on every call) stays registered with the reactor: a message costs a speculative
  // recv that finds nothing, the recv on readiness and the send.
  void do_wait_read() {
    if (pipe_[0] >= 0) {  // bulk: wait, then splice socket -> pipe -> socket
      sock_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](std::error_code ec) { self->on_readable(ec); });
      return;
    }
    sock_.async_read_some(asio::buffer(head_.data(), std::min(head_.size(), read_cap())),
                          [self = shared_from_this()](std::error_code ec, std::size_t n) { self->on_head(ec, n); });
  }

  std::size_t read_cap() const { return opt_.mode == serve_mode::ack ? opt_.max_message : stream_chunk; }

  void on_readable(std::error_code ec) {
    if (closed_) return;
    if (ec) return finish(describe(ec));
    splice_readable();
  }

  void on_head(std::error_code ec, std::size_t n) {
    if (closed_) return;
    if (ec == asio::error::eof) {
      peer_eof_ = true;  // RFC 862: the echo of everything read so far is still owed
      if (!writing_) finish("closed by peer");
      return;
    }
    if (ec) return finish(describe(ec));
    const std::size_t cap = read_cap();
    if (n < head_.size() || n >= cap) return consume(head_.data(), n);
    // The head is full: more may be waiting. Read the rest of what is there, up to the cap.
    auto& buf = scratch(cap);
    std::memcpy(buf.data(), head_.data(), n);
    const std::size_t more = sock_.read_some(asio::buffer(buf.data() + n, cap - n), ec);
    if (ec == asio::error::eof) peer_eof_ = true;  // after echoing what came before it
    else if (ec && ec != asio::error::would_block && ec != asio::error::try_again) return finish(describe(ec));
    consume(buf.data(), n + more);
  }

  void consume(const char* data, std::size_t n) {
    in_ += n;
    last_ = steady::now();
    auto& log = core::log();
    if (log.should_log(spdlog::level::debug)) log.debug("{} sent {} B: {}", peer_, n, preview(data, n));
    if (log.should_log(spdlog::level::trace)) log.trace("rx from {}{}", peer_, core::hexdump(data, n));
    handle(data, n);
    if (closed_ || writing_) return;  // on_written resumes reading (or closes after a peer's EOF): backpressure
    if (peer_eof_) return finish("closed by peer");
    if (opt_.mode == serve_mode::echo && n >= splice_threshold && !log.should_log(spdlog::level::debug)) open_pipe();
    if (once_done_) return finish("closed after the reply (--once)");
    do_wait_read();
  }

  void handle(const char* p, std::size_t n) {
    switch (opt_.mode) {
      case serve_mode::discard: return;
      case serve_mode::echo: return send(p, n);
      case serve_mode::ack: {
        thread_local std::string reply;
        reply.clear();
        core::render_template_into(reply, opt_.reply, std::string_view(p, n), peer_);
        if (opt_.once) once_done_ = true;
        return send(reply.data(), reply.size());
      }
    }
  }

  // Writes at once if the socket takes it; the rest is copied and written asynchronously, and
  // reading pauses until it is out (so a client that does not read cannot make us buffer).
  void send(const char* p, std::size_t n) {
    auto& log = core::log();
    if (opt_.mode == serve_mode::ack && log.should_log(spdlog::level::debug))
      log.debug("reply to {} {} B: {}", peer_, n, preview(p, n));
    if (opt_.mode == serve_mode::ack && log.should_log(spdlog::level::trace))
      log.trace("tx to {}{}", peer_, core::hexdump(p, n));
    if (n == 0) return;
    std::error_code ec;
    std::size_t w = sock_.write_some(asio::buffer(p, n), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      w = 0;
      ec.clear();
    }
    if (ec) return finish(describe(ec));
    out_ += w;
    if (w == n) return;
    pending_.assign(p + w, n - w);
    writing_ = true;
    asio::async_write(sock_, asio::buffer(pending_),
                      [self = shared_from_this()](std::error_code e, std::size_t m) { self->on_written(e, m); });
  }

  void on_written(std::error_code ec, std::size_t n) {
    writing_ = false;
    out_ += n;
    if (closed_) return;
    if (ec) return finish(describe(ec));
    last_ = steady::now();
    if (pending_.capacity() > 64 * 1024) std::string().swap(pending_);  // idle connections stay small
    if (peer_eof_) return finish("closed by peer");
    if (once_done_) return finish("closed after the reply (--once)");
    if (draining_) return finish("server stopping");
    do_wait_read();
  }

  void open_pipe() {
    if (::pipe2(pipe_, O_NONBLOCK | O_CLOEXEC) != 0) pipe_[0] = pipe_[1] = -1;  // out of fds: keep copying
  }

  void close_pipe() {
    if (pipe_[0] < 0) return;
    ::close(pipe_[0]);
    ::close(pipe_[1]);
    pipe_[0] = pipe_[1] = -1;
  }

  // Moves what the pipe holds to the socket; false when the socket is full (then waits) or failed.
  bool drain_pipe() {
    while (in_pipe_ > 0) {
      const auto w = ::splice(pipe_[0], nullptr, sock_.native_handle(), nullptr, in_pipe_, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (w > 0) {
        in_pipe_ -= static_cast<std::size_t>(w);
        out_ += static_cast<std::uint64_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        writing_ = true;
        sock_.async_wait(tcp::socket::wait_write, [self = shared_from_this()](std::error_code e) { self->on_pipe_writable(e); });
        return false;
      }
      finish(describe(std::error_code(w < 0 ? errno : EPIPE, std::generic_category())));
      return false;
    }
    return true;
  }

  void splice_readable() {
    for (int round = 0; round < splice_rounds; ++round) {
      if (!drain_pipe()) return;
      const auto r = ::splice(sock_.native_handle(), nullptr, pipe_[1], nullptr, splice_chunk, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (r > 0) {
        in_ += static_cast<std::uint64_t>(r);
        in_pipe_ = static_cast<std::size_t>(r);
        last_ = steady::now();
        // Splice again even after a short splice, until EAGAIN. Going straight to waiting after
        // a short one saves that failing splice (strace: 3 -> 2 splices per 16 KiB message) but
        // measured 4-16% slower (16 KiB x 1 and x 10, 64 KiB x 1, alternated A/B): the rest of a
        // message often arrives while the first part is echoed.
        continue;
      }
      if (r == 0) return finish("closed by peer");  // the pipe is empty here: every byte was echoed
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return do_wait_read();
      return finish(describe(std::error_code(errno, std::generic_category())));
    }
    if (!drain_pipe()) return;
    asio::post(sock_.get_executor(), [self = shared_from_this()] { self->on_readable({}); });  // let others run
  }

  void on_pipe_writable(std::error_code ec) {
    writing_ = false;
    if (closed_) return;
    if (ec) return finish(describe(ec));
    if (!drain_pipe()) return;
    if (draining_) return finish("server stopping");
    do_wait_read();
  }

  // The timer fires at last activity + timeout; activity in between only moves last_, which is
  // cheaper than re-arming a timer on every read.
  void arm_idle() {
    idle_.expires_at(last_ + opt_.idle_timeout);
    idle_.async_wait([self = shared_from_this()](std::error_code ec) { self->on_idle(ec); });
  }

  void on_idle(std::error_code ec) {
    if (ec || closed_) return;
    if (steady::now() - last_ >= opt_.idle_timeout)
      return finish("idle for " + core::format_duration(opt_.idle_timeout) + " (--idle-timeout)");
    arm_idle();
  }

  // Closes once and logs the connection's summary; pending operations complete as aborted.
  void finish(const std::string& reason) {
    if (closed_) return;
    closed_ = true;
    std::error_code ec;
    idle_.cancel();
    sock_.shutdown(tcp::socket::shutdown_both, ec);
    sock_.close(ec);
    close_pipe();
    const auto elapsed = steady::now() - opened_;
    core::log().info("close {}: {}; in {} B, out {} B, {}", peer_, reason, in_, out_, seconds_text(elapsed));
    if (number_)
      core::server_event(srv_->out(), {{"event", "closed"},
                          {"proto", "tcp"},
                          {"id", number_},
                          {"peer", peer_},
                          {"by", reason.rfind("closed by peer", 0) == 0 || reason.rfind("reset by peer", 0) == 0 ? "peer" : "local"},
                          {"reason", reason},
                          {"bytes_in", in_},
                          {"bytes_out", out_},
                          {"seconds", std::chrono::duration<double>(elapsed).count()}});
  }

  std::shared_ptr<server> srv_;
  const serve_options& opt_;
  tcp::socket sock_;
  asio::steady_timer idle_;
  std::string peer_;
  int slot_;  // runtime::place_connection()'s, joined on accept, left in server::remove()
  core::lifecycle::session_id id_ = 0;
  std::uint64_t number_ = 0;  // --json: this connection's number in the events; 0 when not reporting
  std::string pending_;
  std::array<char, 512> head_;  // a message's first bytes (a 64 B echo never leaves it)
  int pipe_[2] = {-1, -1};     // echo mode, bulk: socket -> pipe -> socket (splice)
  std::size_t in_pipe_ = 0;    // bytes read into the pipe and not yet written back
  steady::time_point opened_;
  steady::time_point last_;
  std::uint64_t in_ = 0;
  std::uint64_t out_ = 0;
  bool writing_ = false;
  bool closed_ = false;
  bool peer_eof_ = false;
  bool once_done_ = false;
  bool draining_ = false;
};

core::outcome server::start(std::shared_ptr<core::lifecycle> lc) {
  lc_ = std::move(lc);
  auto result = core::listen_tcp(acceptor_, opt_.listen);
  if (!result.ok()) return result;
  std::error_code ec;
  auto local = acceptor_.local_endpoint(ec);
  if (ec) return core::outcome::fail(ec, "listen " + opt_.listen.to_string());
  core::log().info("tcp serve: mode {} on {} ({} thread(s){})", to_string(opt_.mode), core::to_string(local),
                   rt_.threads(),
                   opt_.max_connections ? ", at most " + std::to_string(opt_.max_connections) + " connections" : "");
  out_.listening("tcp", core::address_string(local.address()), local.port());
  asio::dispatch(strand_, [self = shared_from_this()] { self->do_accept(); });
  return core::outcome::success();
}

void server::do_accept() {
  // Each connection lives on a strand of the shared context or on one thread's own context
  // (runtime::serve()): its handlers never run concurrently, at any --threads.
  auto place = rt_.place_connection();
  acceptor_.async_accept(place.executor, [self = shared_from_this(), slot = place.slot](std::error_code ec, tcp::socket s) {
    self->on_accept(ec, std::move(s), slot);
  });
}

void server::on_accept(std::error_code ec, tcp::socket sock, int slot) {
  if (stopping_ || ec == asio::error::operation_aborted) return;
  if (ec) {
    if (ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system ||
        ec == std::errc::no_buffer_space || ec == std::errc::not_enough_memory) {
      if (!fd_warned_) core::log().warn("accept: {} (waiting for connections to close)", ec.message());
      fd_warned_ = true;
      retry_.expires_after(accept_retry);
      retry_.async_wait([self = shared_from_this()](std::error_code e) {
        if (!e && !self->stopping_) self->do_accept();
      });
      return;
    }
    core::log().warn("accept: {}", ec.message());  // e.g. a client reset before we accepted: keep going
    return do_accept();
  }
  fd_warned_ = false;
  std::error_code pe;
  auto remote = sock.remote_endpoint(pe);
  std::string peer = pe ? std::string("?") : core::to_string(remote);
  if (opt_.max_connections && active_.load() >= opt_.max_connections) {
    core::log().info("refuse {}: {} connections open (--max-connections)", peer, opt_.max_connections);
    sock.close(pe);
    return do_accept();
  }
  ++active_;
  rt_.connection_joined(slot);
  auto s = std::make_shared<session>(shared_from_this(), std::move(sock), std::move(peer), slot);
  s->track();
  asio::dispatch(s->executor(), [s] { s->start(); });
  do_accept();
}

void server::remove(core::lifecycle::session_id id, int slot) {
  rt_.connection_left(slot);
  --active_;
  lc_->remove(id);
}

void server::stop_accepting() {  // on strand_ (the lifecycle's)
  stopping_ = true;
  std::error_code ec;
  acceptor_.close(ec);
  retry_.cancel();
}

}  // namespace

core::outcome serve(const serve_options& opt, core::runtime& rt, core::reporter& out) {
  raise_open_files_limit();
  rt.serve(opt.busy_poll);
  auto srv = std::make_shared<server>(opt, rt, out);
  auto lc = core::lifecycle::create(rt, srv->strand(), "connection(s)", stop_grace, [w = std::weak_ptr<server>(srv)] {
    if (auto s = w.lock()) s->stop_accepting();
  });
  auto started = srv->start(lc);
  if (!started.ok()) return started;
  lc->watch_signals();
  rt.run();
  return core::outcome::success();
}

}  // namespace netlab::tcp
