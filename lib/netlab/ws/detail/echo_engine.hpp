#pragma once
// ws-echo serve's websocketpp glue, a template over the websocketpp server type (plain/TLS × deflate
// or not). Private to lib/netlab/ws/echo_server.cpp and echo_server_tls.cpp (detail/: not a public
// header); websocketpp comes in through detail/wspp.hpp only. Only what needs websocketpp's types
// stays here: policy, limits, page, broadcast members, log lines and events are detail::server_core
// (server_core.cpp, compiled once instead of once per variant; issue 14).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "netlab/core/lifecycle.hpp"
#include "netlab/core/log.hpp"
#include "netlab/core/net.hpp"
#include "netlab/ws/detail/wspp.hpp"
#include "netlab/ws/echo_server.hpp"
#include "netlab/ws/server_core.hpp"
#include "netlab/ws/server_run.hpp"
#include "netlab/ws/server_trace.hpp"
#include "netlab/ws/trace.hpp"

namespace netlab::ws::detail {

using hdl_t = websocketpp::connection_hdl;
using msg_ptr = websocketpp::config::asio::message_type::ptr;
using timer_ptr = std::shared_ptr<asio::steady_timer>;
using clock = std::chrono::steady_clock;

/// Per-connection state: a base class of every websocketpp connection (detail::with_state), so
/// counters and timers live in the connection and the hot path never takes a shared lock.
struct conn_state {
  lifecycle_entry entry;  ///< set once on accept (its strand)
  // Written on the connection's strand before open, read-only afterwards.
  std::string peer = "?";
  std::uint64_t id = 0;  ///< the server's connection number, from open on
  bool trace_frames = false;  ///< -vv: log every frame sent (NETLAB_WSPP_TRACE_WRITES)
  std::string origin;
  clock::time_point opened{};
  bool counted = false;  ///< holds a --max-connections slot
  handshake_slot handshake;  ///< holds a --max-handshakes place until open (strand only)
  bool over_handshakes = false;  ///< dropped at accept for --max-handshakes: its failure is not news
  // Only touched on the connection's strand.
  std::uint64_t msgs_in = 0;
  std::uint64_t bytes_in = 0;
  bool pong_pending = false;
  bool stop_handled = false;
  bool upgrade_accepted = false;  ///< validated: its 101 is written or on the way
  bool open_counted = false;      ///< counted in runtime::connection_joined()
  timer_ptr handshake_timer, ping_timer, idle_timer;
  std::string note;  ///< why the server ended it (idle, no pong, too slow), for the close log
  std::uint16_t sent_code = 0;  ///< the close code the server sent first, if it did
  std::string sent_reason;
  // Also touched from other connections' strands (broadcast) and timers.
  std::atomic<std::uint64_t> msgs_out{0};
  std::atomic<std::uint64_t> bytes_out{0};
  std::atomic<clock::rep> last_activity{0};
  // Broadcast inbox: filled by other connections, drained on this connection's strand.
  std::mutex inbox_mu;  ///< this connection's own lock, never a global one
  std::vector<msg_ptr> inbox;
  std::uint64_t inbox_bytes = 0;
  bool laggard = false;  ///< (inbox_mu) closing for --max-queue; gets nothing more
  // Pongs netlab queued that websocketpp still holds (on the strand only): they count toward
  // --max-queue like data (see on_ping).
  std::deque<msg_ptr> pongs;
  std::uint64_t pong_bytes = 0;

  void touch() { last_activity.store(clock::now().time_since_epoch().count(), std::memory_order_relaxed); }
};

// The four server configs, each with conn_state in its connections.
using plain_state_config = with_state<plain_config, conn_state>;
using plain_deflate_state_config = with_state<deflate_config<plain_config>, conn_state>;
using tls_state_config = with_state<tls_config, conn_state>;
using tls_deflate_state_config = with_state<deflate_config<tls_config>, conn_state>;

/// -vv: websocketpp's version 13 processor that also logs every frame it reads (one line each,
/// incoming_frame_trace), for one connection. consume() is the processor's only virtual entry point
/// for received bytes; what it consumed is read back after it unmasked the payload in place.
template <typename Config>
class traced_hybi13 : public websocketpp::processor::hybi13<Config> {
  using base = websocketpp::processor::hybi13<Config>;

 public:
  traced_hybi13(bool secure, typename base::msg_manager_ptr manager, typename base::rng_type& rng, std::string peer)
      : base(secure, /*server=*/true, std::move(manager), rng), peer_(std::move(peer)) {}

  std::size_t consume(std::uint8_t* buf, std::size_t len, websocketpp::lib::error_code& ec) override {
    const std::size_t n = base::consume(buf, len, ec);
    for (auto& line : trace_.feed(buf, n)) core::log().trace("ws {} {}", peer_, line);
    return n;
  }

 private:
  std::string peer_;
  incoming_frame_trace trace_;
};

/// The processor NETLAB_WSPP_STRICT_UPGRADE installs: a traced one at -vv, else none (websocketpp's own).
template <typename Config, typename Connection, typename Manager, typename Rng>
std::shared_ptr<websocketpp::processor::processor<Config>> traced_processor(const Connection& con, bool secure,
                                                                           Manager manager, Rng& rng) {
  if (!con.trace_frames) return nullptr;
  return std::make_shared<traced_hybi13<Config>>(secure, std::move(manager), rng, con.peer);
}

}  // namespace netlab::ws::detail

/// -vv: every frame a server connection queues for sending (data, ping, pong, close) is logged as
/// it enters websocketpp's write queue (connection::write_push, otherwise unchanged: websocketpp's
/// own version only adds a devel log line). websocketpp's "Header Bytes" dumps stay off.
#define NETLAB_WSPP_TRACE_WRITES(CONFIG)                                                              \
  template <>                                                                                         \
  inline void websocketpp::connection<CONFIG>::write_push(message_ptr msg) {                          \
    if (!msg) return;                                                                                 \
    m_send_buffer_size += msg->get_payload().size();                                                  \
    m_send_queue.push(msg);                                                                           \
    if (this->trace_frames)                                                                           \
      ::netlab::core::log().trace("ws {} {}", this->peer,                                             \
                                  ::netlab::ws::detail::outgoing_frame_line(msg->get_header(), msg->get_payload())); \
  }

NETLAB_WSPP_FAST_PAYLOAD(netlab::ws::detail::plain_state_config)
NETLAB_WSPP_FAST_PAYLOAD(netlab::ws::detail::plain_deflate_state_config)
NETLAB_WSPP_FAST_PAYLOAD(netlab::ws::detail::tls_state_config)
NETLAB_WSPP_FAST_PAYLOAD(netlab::ws::detail::tls_deflate_state_config)
NETLAB_WSPP_STRICT_UPGRADE(netlab::ws::detail::plain_state_config)
NETLAB_WSPP_STRICT_UPGRADE(netlab::ws::detail::plain_deflate_state_config)
NETLAB_WSPP_STRICT_UPGRADE(netlab::ws::detail::tls_state_config)
NETLAB_WSPP_STRICT_UPGRADE(netlab::ws::detail::tls_deflate_state_config)
NETLAB_WSPP_TRACE_WRITES(netlab::ws::detail::plain_state_config)
NETLAB_WSPP_TRACE_WRITES(netlab::ws::detail::plain_deflate_state_config)
NETLAB_WSPP_TRACE_WRITES(netlab::ws::detail::tls_state_config)
NETLAB_WSPP_TRACE_WRITES(netlab::ws::detail::tls_deflate_state_config)

namespace netlab::ws::detail {

using plain_state_server = websocketpp::server<plain_state_config>;
using plain_deflate_state_server = websocketpp::server<plain_deflate_state_config>;
using tls_state_server = websocketpp::server<tls_state_config>;
using tls_deflate_state_server = websocketpp::server<tls_deflate_state_config>;

inline std::string fmt_ms(std::chrono::milliseconds d) { return core::format_duration(d); }

template <typename Server>
class echo_engine : public std::enable_shared_from_this<echo_engine<Server>> {
public:
  using con_ptr = typename Server::connection_ptr;

  echo_engine(const serve_options& opt, core::runtime& rt, core::reporter& out, tls_context_ptr tls)
      : core_(opt, rt, out),
        opt_(core_.opt()),
        tls_(std::move(tls)),
        accept_strand_(asio::make_strand(rt.ioc())),
        acceptor_(accept_strand_),
        accept_retry_(accept_strand_) {}

  core::outcome start() {
    srv_.clear_access_channels(websocketpp::log::alevel::all);
    srv_.clear_error_channels(websocketpp::log::elevel::all);
    srv_.set_error_channels(websocketpp::log::elevel::warn | websocketpp::log::elevel::rerror |
                            websocketpp::log::elevel::fatal);
    // -vv logs frames and handshakes itself (NETLAB_WSPP_TRACE_WRITES, traced_hybi13, trace.hpp),
    // decoded, instead of websocketpp's raw "Header Bytes" dumps: its access channels stay off.
    trace_ = core::log().should_log(spdlog::level::trace);
    // websocketpp's _htonll() initialises a function-local static on first use, unsynchronised:
    // call it once here, before any io thread runs, so frames sent from several threads don't race
    // on it (ThreadSanitizer; the value written is always the same, but still).
    (void)websocketpp::lib::net::_htonll(1);
    std::error_code ec;
    srv_.init_asio(&core_.rt().ioc(), ec);
    if (ec) return core::outcome::fail(ec, "init", "");
    srv_.set_max_message_size(static_cast<std::size_t>(opt_.max_message));
    // No request body is ever used (the page is a GET): websocketpp would otherwise buffer up to
    // 32 MB of one per connection (Content-Length) during the handshake. Any body gets 413.
    srv_.set_max_http_body_size(0);
    // 0 turns websocketpp's own (5 s default) open-handshake timer off too.
    srv_.set_open_handshake_timeout(static_cast<long>(opt_.handshake_timeout.count()));
    // A peer that does not answer our close within 2 s is dropped (laggards, dead peers).
    srv_.set_close_handshake_timeout(2000);
    if constexpr (is_tls) {
      srv_.set_tls_init_handler([ctx = tls_](hdl_t) { return ctx; });
    }
    srv_.set_tcp_pre_init_handler([this](hdl_t h) { on_accept(h); });
    srv_.set_validate_handler([this](hdl_t h) { return on_validate(h); });
    srv_.set_http_handler([this](hdl_t h) { on_http(h); });
    srv_.set_open_handler([this](hdl_t h) { on_open(h); });
    srv_.set_close_handler([this](hdl_t h) { on_close(h); });
    srv_.set_fail_handler([this](hdl_t h) { on_fail(h); });
    srv_.set_message_handler([this](hdl_t h, msg_ptr m) { on_message(h, std::move(m)); });
    srv_.set_ping_handler([this](hdl_t h, std::string payload) { return on_ping(h, std::move(payload)); });
    srv_.set_pong_handler([this](hdl_t h, std::string) {
      if (auto con = get(h)) state(con).pong_pending = false;
    });
    srv_.set_interrupt_handler([this](hdl_t h) { on_interrupt(h); });

    // netlab owns the acceptor (websocketpp only gets accepted sockets): websocketpp's own accept
    // loop reads its listening state unsynchronised with stop_listening() from another thread
    // (ThreadSanitizer, --threads > 1). Here every acceptor call runs on accept_strand_.
    auto bound = core::listen_tcp(acceptor_, opt_.listen);
    if (!bound.ok()) return bound;
    auto local = acceptor_.local_endpoint(ec);
    asio::post(accept_strand_, [self = this->shared_from_this()] { self->do_accept(); });
    core_.listening(is_tls, local);
    return core::outcome::success();
  }

  /// The lifecycle that tracks this engine's connections (set before start()).
  void set_lifecycle(std::shared_ptr<core::lifecycle> lc) { lc_ = std::move(lc); }

  /// The strand of the acceptor, shared with the lifecycle.
  asio::strand<asio::io_context::executor_type> accept_strand() const { return accept_strand_; }

  /// The lifecycle's "stop accepting" (on accept_strand_): refuse new upgrades, close the listening socket.
  void stop_accepting() {
    core_.set_stopping();
    std::error_code ec;
    acceptor_.close(ec);
    accept_retry_.cancel();
  }

  /// The lifecycle's "close this session": gracefully, 1001 on the connection's strand
  /// (on_interrupt); at once, its raw socket closed on its strand (websocketpp may never call the
  /// close handler of a TLS connection after close_notify, NOTES.md).
  void close_session(hdl_t h, bool graceful) {
    auto con = get(h);
    if (!con) return;
    if (graceful) {
      con->interrupt();
    } else {
      con->set_timer(0, [con](const std::error_code&) {
        std::error_code ec;
        con->get_raw_socket().close(ec);
      });
    }
  }

private:
  static constexpr bool is_tls = std::is_same_v<Server, tls_state_server> || std::is_same_v<Server, tls_deflate_state_server>;

  static conn_state& state(const con_ptr& con) { return *con; }

  con_ptr get(hdl_t h) {
    std::error_code ec;
    auto con = srv_.get_con_from_hdl(h, ec);
    return ec ? nullptr : con;
  }

  // --- accept and handshake ----------------------------------------------------------------------
  /// One pending accept at a time, on accept_strand_ (websocketpp's server::start_accept, by hand).
  void do_accept() {
    if (!acceptor_.is_open()) return;
    con_ptr con = srv_.get_connection();
    if (!con) {
      core::log().warn("ws: cannot create a connection, accepting again in 100ms");
      return retry_accept();
    }
    acceptor_.async_accept(con->get_raw_socket(), [self = this->shared_from_this(), con](const std::error_code& ec) {
      self->on_accepted(con, ec);
    });
  }

  void on_accepted(const con_ptr& con, const std::error_code& ec) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;  // stopping
      core::log().warn("ws accept: {} (accepting again in 100ms)", ec.message());
      return retry_accept();  // e.g. out of file descriptors: do not spin
    }
    // start() on the connection's own strand, as websocketpp's accept handler does.
    con->set_timer(0, [con](const std::error_code& e) {
      if (!e) con->start();
    });
    do_accept();
  }

  void retry_accept() {
    accept_retry_.expires_after(std::chrono::milliseconds(100));
    accept_retry_.async_wait([self = this->shared_from_this()](const std::error_code& e) {
      if (!e) self->do_accept();
    });
  }

  void on_accept(hdl_t h) {
    auto con = get(h);
    if (!con) return;
    auto& st = state(con);
    std::error_code ec;
    auto& sock = con->get_raw_socket();
    // websocketpp never sets TCP_NODELAY; the socket is open only from tcp_pre_init on (NOTES.md).
    sock.set_option(asio::ip::tcp::no_delay(true), ec);
    auto ep = sock.remote_endpoint(ec);
    if (!ec) st.peer = core::to_string(ep);
    st.trace_frames = trace_;
    // Every accepted socket is a session of the lifecycle until the connection is destroyed.
    st.entry.id = lc_->add([w = this->weak_from_this(), h](bool graceful) {
      if (auto self = w.lock()) self->close_session(h, graceful);
    });
    if (st.entry.id != 0) st.entry.lc = lc_;
    if (core_.stopping() || st.entry.id == 0) {
      con->interrupt();
      return;
    }
    if (!core_.take_handshake(st.handshake)) {
      st.over_handshakes = true;
      std::error_code se;
      sock.shutdown(asio::socket_base::shutdown_both, se);  // websocketpp's first read fails
      return;
    }
    // Covers the TLS handshake too (websocketpp's own open timeout starts only after it).
    if (opt_.handshake_timeout.count() > 0) {
      st.handshake_timer = con->set_timer(static_cast<long>(opt_.handshake_timeout.count()), [this, h](const std::error_code& e) {
        if (e) return;
        auto c = get(h);
        if (!c || c->get_state() != websocketpp::session::state::connecting) return;
        core::log().info("ws {}: no upgrade within --handshake-timeout {}, dropped", state(c).peer,
                         fmt_ms(opt_.handshake_timeout));
        // Shut the TCP socket down rather than terminate(): a pending TLS handshake read then fails
        // at once (EOF) and websocketpp fails the connection; a cancel would be ignored until its
        // own 5 s post-init timer.
        std::error_code se;
        c->get_raw_socket().shutdown(asio::socket_base::shutdown_both, se);
      });
    }
  }

  bool on_validate(hdl_t h) {
    auto con = get(h);
    if (!con) return false;
    auto& st = state(con);
    const std::string& origin = con->get_request_header("Origin");
    st.origin = loggable(origin);  // for log lines only
    if (trace_) core::log().trace("ws {} handshake request:\n{}", st.peer, trace::handshake(trace::dir::in, con->get_request().raw()));
    using status = websocketpp::http::status_code::value;
    switch (core_.validate(con->get_resource(), origin, st.counted)) {
      case upgrade_verdict::accept: break;
      case upgrade_verdict::stopping: con->set_status(status::service_unavailable); return false;
      case upgrade_verdict::not_found: con->set_status(status::not_found); return false;
      case upgrade_verdict::forbidden: con->set_status(status::forbidden); return false;
      case upgrade_verdict::full:
        con->set_status(status::service_unavailable);
        con->append_header("Retry-After", "1");
        return false;
    }
    // A broadcast member from the moment its 101 is decided: a client that has read the 101 may
    // rightly expect every later message. What arrives before on_open waits in its inbox.
    if (opt_.broadcast) core_.add_member(h);
    st.upgrade_accepted = true;
    return true;
  }

  void on_http(hdl_t h) {
    auto con = get(h);
    if (!con) return;
    auto& st = state(con);
    if (st.handshake_timer) st.handshake_timer->cancel();
    release_handshake(st);
    auto res = con->get_resource();  // safe here (and in on_validate/on_open): websocketpp calls them
                                     // only once it has built a valid URI; on_fail may come before
    auto answer = core_.answer_http(res);
    con->set_status(static_cast<websocketpp::http::status_code::value>(answer.status));
    for (auto& [name, value] : answer.headers) con->append_header(name, value);
    con->set_body(std::move(answer.body));
    core_.log_http(st.peer, con->get_request().get_method(), res, answer.status);
  }

  void on_fail(hdl_t h) {
    auto con = get(h);
    if (!con) return;
    auto& st = state(con);
    release_slot(st);
    release_handshake(st);
    if (opt_.broadcast) core_.remove_member(h);
    cancel_timers(st);
    if (st.over_handshakes) return;  // logged once, at the cap
    auto status = static_cast<int>(con->get_response_code());
    if (status >= 400) {
      // Not con->get_resource(): websocketpp's URI is still null when the request never parsed or
      // failed its checks before the URI was built (garbage, no Host, bad version/key: SIGSEGV).
      // The raw request line's target is always there (empty if unparsed).
      // Why: the body netlab's upgrade checks wrote (detail::check_upgrade), else websocketpp's error
      // unless it is our own validate handler's refusal.
      std::string why = con->get_response().get_body();
      while (!why.empty() && why.back() == '\n') why.pop_back();
      const auto ec = con->get_ec();
      if (why.empty() && ec != websocketpp::error::rejected) why = ec.message();
      core_.log_refused(st.peer, con->get_request().get_uri(), st.origin, status, why);
    } else {
      core_.log_failed(st.peer, con->get_ec().message());
    }
  }

  // --- open connections --------------------------------------------------------------------------
  void on_open(hdl_t h) {
    auto con = get(h);
    if (!con) return;
    auto& st = state(con);
    if (st.handshake_timer) st.handshake_timer->cancel();
    release_handshake(st);
    st.opened = clock::now();
    st.touch();
    core_.rt().connection_joined();
    st.open_counted = true;
    auto ext = con->get_response_header("Sec-WebSocket-Extensions");
    st.id = core_.next_id();
    core_.log_open(st.id, st.peer, st.origin, con->get_resource(), ext);
    if (trace_)
      core::log().trace("ws {} handshake response:\n{}", st.peer, trace::handshake(trace::dir::out, con->get_response().raw()));
    drain(con, st);  // broadcasts that arrived between the 101 and now
    if (opt_.ping_interval.count() > 0) arm_ping(con, h);
    if (opt_.idle_timeout.count() > 0) arm_idle(con, h, opt_.idle_timeout);
    if (core_.stopping()) con->interrupt();
  }

  void on_close(hdl_t h) {
    auto con = get(h);
    if (!con) return;
    auto& st = state(con);
    release_slot(st);
    cancel_timers(st);
    if (st.open_counted) {
      st.open_counted = false;
      core_.rt().connection_left();
    }
    if (opt_.broadcast) core_.remove_member(h);
    {
      std::lock_guard<std::mutex> lk(st.inbox_mu);
      st.laggard = true;  // nothing more for it
      st.inbox.clear();
      st.inbox_bytes = 0;
    }
    st.pongs.clear();
    st.pong_bytes = 0;
    close_info c;
    c.peer = st.peer;
    c.origin = st.origin;
    c.id = st.id;
    c.local_code = con->get_local_close_code();
    c.local_reason = con->get_local_close_reason();
    c.remote_code = con->get_remote_close_code();
    c.remote_reason = con->get_remote_close_reason();
    c.sent_code = st.sent_code;
    c.sent_reason = st.sent_reason;
    c.note = st.note;
    c.msgs_in = st.msgs_in;
    c.bytes_in = st.bytes_in;
    c.msgs_out = st.msgs_out.load();
    c.bytes_out = st.bytes_out.load();
    c.duration = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - st.opened);
    c.closed_by_server = st.sent_code != 0 || !st.note.empty();
    core_.log_close(c);
  }

  void release_handshake(conn_state& st) { core_.release_handshake(st.handshake); }

  void release_slot(conn_state& st) { core_.release_slot(st.counted); }

  static void cancel_timers(conn_state& st) {
    // A pending websocketpp timer holds its connection: cancel them so it can be freed.
    for (auto* t : {&st.handshake_timer, &st.ping_timer, &st.idle_timer})
      if (*t) (*t)->cancel();
  }

  // --- timers --------------------------------------------------------------------------------------
  void arm_ping(const con_ptr& con, hdl_t h) {
    state(con).ping_timer = con->set_timer(static_cast<long>(opt_.ping_interval.count()), [this, h](const std::error_code& e) {
      if (e) return;
      auto c = get(h);
      if (!c || c->get_state() != websocketpp::session::state::open) return;
      auto& st = state(c);
      if (st.pong_pending) {
        st.note = "no pong within --ping-interval " + fmt_ms(opt_.ping_interval) + ", dropped";
        core::log().info("ws {}: {}", st.peer, st.note);
        c->terminate(websocketpp::error::make_error_code(websocketpp::error::operation_canceled));
        return;
      }
      st.pong_pending = true;
      std::error_code ec;
      c->ping("netlab", ec);
      arm_ping(c, h);
    });
  }

  void arm_idle(const con_ptr& con, hdl_t h, std::chrono::milliseconds wait) {
    // One timer per connection: the message path only stores a timestamp, the timer re-arms for
    // whatever is left when it fires.
    state(con).idle_timer = con->set_timer(static_cast<long>(std::max<long long>(1, wait.count())), [this, h](const std::error_code& e) {
      if (e) return;
      auto c = get(h);
      if (!c || c->get_state() != websocketpp::session::state::open) return;
      auto& st = state(c);
      auto last = clock::time_point(clock::duration(st.last_activity.load(std::memory_order_relaxed)));
      auto quiet = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - last);
      if (quiet < opt_.idle_timeout) return arm_idle(c, h, opt_.idle_timeout - quiet);
      st.note = "idle for --idle-timeout " + fmt_ms(opt_.idle_timeout);
      core::log().info("ws {}: {}, closing", st.peer, st.note);
      close_by_server(c, st, websocketpp::close::status::going_away, "idle timeout");
    });
  }

  // --- messages ------------------------------------------------------------------------------------
  void on_message(hdl_t h, msg_ptr msg) {
    auto con = get(h);
    if (!con) return;
    auto& st = state(con);
    const auto n = msg->get_payload().size();
    ++st.msgs_in;
    st.bytes_in += n;
    st.touch();
    st.pong_pending = false;  // a message proves the peer alive as well as a pong (which may be
                              // queued behind its data)
    if (core::log().should_log(spdlog::level::debug))
      core::log().debug("ws {} → {} {} B", st.peer,
                        msg->get_opcode() == websocketpp::frame::opcode::text ? "text" : "binary", n);
    // Replies are compressed when the receiving connection negotiated permessage-deflate. Otherwise
    // the received message goes back out as it is, framed once (for every broadcast member too).
    if (opt_.deflate)
      msg->set_compressed(true);
    else
      prepare_unmasked_frame(msg);
    if (!opt_.broadcast) return deliver(con, st, msg);  // already on this connection's strand
    auto targets = core_.members();
    if (!targets) return;
    for (auto& t : *targets)
      if (auto c = get(t)) post_to(c, msg);
  }

  /// Broadcast: hands msg to another connection, whose strand sends it (see on_interrupt).
  void post_to(const con_ptr& con, const msg_ptr& msg) {
    auto& st = state(con);
    const auto n = msg->get_payload().size();
    bool kick = false;
    {
      std::lock_guard<std::mutex> lk(st.inbox_mu);
      if (st.laggard) return;
      if (st.inbox_bytes > opt_.max_queue) {
        st.laggard = true;  // its strand is not even keeping up with the inbox
        kick = true;
      } else {
        kick = st.inbox.empty();
        st.inbox.push_back(msg);
        st.inbox_bytes += n;
      }
    }
    if (kick) con->interrupt();
  }

  void on_interrupt(hdl_t h) {
    auto con = get(h);
    if (!con) return;
    auto& st = state(con);
    if (core_.stopping() && !st.stop_handled) {
      auto s = con->get_state();
      // A client may already hold its 101 while the response write has not completed here (the
      // connection is still "connecting"): terminating it would look like a crash to the client
      // (1006). on_open interrupts it again once open, and it is closed with 1001 like the others.
      if (s == websocketpp::session::state::connecting && st.upgrade_accepted) return;
      st.stop_handled = true;
      if (s == websocketpp::session::state::open) {
        close_by_server(con, st, websocketpp::close::status::going_away, "server shutting down");
      } else if (s == websocketpp::session::state::connecting) {
        con->terminate(websocketpp::error::make_error_code(websocketpp::error::operation_canceled));
      }
      return;
    }
    drain(con, st);
  }

  /// Sends what other connections left in con's inbox (on con's strand; not before it is open).
  void drain(const con_ptr& con, conn_state& st) {
    if (con->get_state() != websocketpp::session::state::open) return;  // on_open drains it
    std::vector<msg_ptr> batch;
    bool lag;
    std::uint64_t queued;
    {
      std::lock_guard<std::mutex> lk(st.inbox_mu);
      batch.swap(st.inbox);
      queued = st.inbox_bytes;
      st.inbox_bytes = 0;
      lag = st.laggard;
    }
    if (lag) return too_slow(con, st, queued + backlog_of(con, st));
    for (auto& m : batch) deliver(con, st, m);
  }

  /// Bytes con has yet to send: websocketpp's queue (payloads only) plus the pongs it still holds.
  static std::uint64_t backlog_of(const con_ptr& con, conn_state& st) {
    // websocketpp drops its reference once a pong is written: the oldest go first.
    while (!st.pongs.empty() && st.pongs.front().use_count() == 1) {
      st.pong_bytes -= pong_cost(st.pongs.front()->get_payload().size());
      st.pongs.pop_front();
    }
    return con->get_buffered_amount() + st.pong_bytes;
  }

  /// What a queued pong costs: its payload, header and websocketpp's message object around them
  /// (roughly; an empty pong is not free, and get_buffered_amount() would count it as 0 B).
  static std::uint64_t pong_cost(std::size_t payload) { return payload + 192; }

  /// A ping: answered with a pong that counts toward --max-queue like any reply. websocketpp would
  /// queue a pong for every ping, unbounded, for a client that pings and never reads (RSS 8 MB →
  /// 961 MB for 400 MB of pings); here such a client is closed with 1008 as for data.
  bool on_ping(hdl_t h, std::string payload) {
    auto con = get(h);
    if (!con || con->get_state() != websocketpp::session::state::open) return false;
    auto& st = state(con);
    const auto backlog = backlog_of(con, st);
    if (backlog > opt_.max_queue) {
      too_slow(con, st, backlog);
      return false;
    }
    const auto n = payload.size();
    auto pong = std::make_shared<typename msg_ptr::element_type>(nullptr, websocketpp::frame::opcode::pong, n);
    pong->set_payload(std::move(payload));
    prepare_unmasked_frame(pong);  // server frames are unmasked; a control frame is never compressed
    if (con->send(pong)) return false;
    st.pongs.push_back(std::move(pong));
    st.pong_bytes += pong_cost(n);
    return false;  // answered here
  }

  /// Sends msg on con (on con's strand) unless con is already more than --max-queue behind.
  void deliver(const con_ptr& con, conn_state& st, const msg_ptr& msg) {
    if (con->get_state() != websocketpp::session::state::open) return;
    const auto n = msg->get_payload().size();
    const auto backlog = backlog_of(con, st);
    // Behind = bytes still unsent when the next message comes; the new message itself does not
    // count, so any message fits a client that keeps up (a queued 6-byte ping must not doom a
    // 70 KB echo), and memory stays within --max-queue + --max-message per client.
    if (backlog > opt_.max_queue) {
      {
        std::lock_guard<std::mutex> lk(st.inbox_mu);
        st.laggard = true;
        st.inbox.clear();
        st.inbox_bytes = 0;
      }
      return too_slow(con, st, backlog);
    }
    auto ec = con->send(msg);
    if (ec) return;
    st.msgs_out.fetch_add(1, std::memory_order_relaxed);
    st.bytes_out.fetch_add(n, std::memory_order_relaxed);
    st.touch();
  }

  void too_slow(const con_ptr& con, conn_state& st, std::uint64_t backlog) {
    if (!st.note.empty() || con->get_state() != websocketpp::session::state::open) return;
    st.note = core_.too_slow_note(backlog);
    core::log().info("ws {}: {}, closing with 1008", st.peer, st.note);
    close_by_server(con, st, websocketpp::close::status::policy_violation, "too slow: send queue over --max-queue");
  }

  static void close_by_server(const con_ptr& con, conn_state& st, websocketpp::close::status::value code,
                              const std::string& reason) {
    st.sent_code = code;
    st.sent_reason = reason;
    std::error_code ec;
    con->close(code, reason, ec);
  }

  server_core core_;
  const serve_options& opt_;  ///< core_'s
  tls_context_ptr tls_;
  Server srv_;
  bool trace_ = false;  ///< -vv: frames and handshakes are logged (set in start())
  std::shared_ptr<core::lifecycle> lc_;
  asio::strand<asio::io_context::executor_type> accept_strand_;
  asio::ip::tcp::acceptor acceptor_;  ///< used on accept_strand_ only
  asio::steady_timer accept_retry_;   ///< on accept_strand_
};

/// Runs one engine until it is stopped by a signal.
template <typename Server>
core::outcome run_engine(const serve_options& opt, core::runtime& rt, core::reporter& out, tls_context_ptr tls) {
  rt.serve(opt.busy_poll);
  auto engine = std::make_shared<echo_engine<Server>>(opt, rt, out, std::move(tls));
  auto lc = core::lifecycle::create(rt, engine->accept_strand(), "connection(s)", stop_grace,
                                    [w = std::weak_ptr<echo_engine<Server>>(engine)] {
    if (auto e = w.lock()) e->stop_accepting();
  });
  engine->set_lifecycle(lc);
  auto started = engine->start();
  if (!started.ok()) return started;
  lc->watch_signals();
  rt.run();
  return core::outcome::success();
}

}  // namespace netlab::ws::detail
