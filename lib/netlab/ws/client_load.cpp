// Load mode of ws-echo dial: the WebSocket adapter of the one load driver (core/load_driver.hpp),
// without websocketpp. Each worker thread has its own websocketpp endpoint (a load_connector made
// by the glue) on its own io_context, so a connection's handlers run on the thread that also runs
// the driver's side of it: no strands, no locks, no cross-thread close.
#include <cstring>

#include "netlab/ws/client_session.hpp"

namespace netlab::ws::detail {

namespace {

constexpr int close_normal = 1000;

class ws_load_adapter final : public core::load_adapter {
  class connection;

  /// One worker's endpoint and how many of its connections have not yet had their last callback
  /// (fail or close).
  struct endpoint {
    explicit endpoint(asio::io_context& ioc) : grace(ioc) {}
    std::unique_ptr<load_connector> connector;
    asio::steady_timer grace;
    unsigned live = 0;
    bool run_over = false;
  };

  class connection final : public core::load_connection, public wire_events {
   public:
    connection(core::load_worker& w, ws_load_adapter& a, endpoint& e) : w_(w), a_(a), e_(e) {}

    void connect() override {
      std::error_code ec;
      wire_ = e_.connector->connect(*this, ec);
      if (!wire_)
        return w_.failed(*this, core::outcome::fail(exit_code::usage, "URL " + a_.opt_.target.str() + ": " + ec.message(),
                                                    "check the URL"));
      ++e_.live;
    }

    void send(std::uint64_t from, std::uint64_t to) override {
      const std::size_t size = a_.lo_.size;
      for (std::uint64_t seq = from; seq < to && !closed_; ++seq) {
        const std::error_code ec = wire_->send(a_.pattern_.message(seq), size, true);
        if (ec)
          return w_.failed(*this, core::outcome::fail(exit_code::network, "send to " + a_.opt_.target.str() + ": " + ec.message()));
      }
    }

    void close() override {
      if (closed_) return;
      closed_ = true;
      if (!wire_) return;
      if (open_) wire_->close(close_normal, "");
      else wire_->terminate();  // still connecting: abandon the upgrade (its fail handler follows)
    }

    void on_open() override {
      open_ = true;
      if (!closed_) w_.opened(*this);
    }

    void on_message(bool, const std::string& p) override {
      if (closed_) return;
      const std::uint64_t seq = done();
      if (seq >= sent() || p.size() != a_.lo_.size || std::memcmp(p.data(), a_.pattern_.message(seq), p.size()) != 0)
        return w_.failed(*this, core::outcome::fail(exit_code::protocol,
                                                    "echo from " + a_.opt_.target.str() + ": message " + std::to_string(seq) +
                                                        " came back different",
                                                    "the peer must echo every message unchanged (netlab ws-echo serve)"));
      w_.replied(*this, 1);
    }

    void on_fail(const failure_facts& f) override {
      if (!closed_) w_.failed(*this, describe_failure(f, a_.opt_));
      last_callback();
    }

    void on_close(const close_facts& f) override {
      if (!closed_)  // the server closed on us mid-run
        w_.failed(*this, core::outcome::fail(exit_code::protocol,
                                             "the server closed a connection mid-run: " + close_text(f.remote_code, f.remote_reason),
                                             "did the server stop, or does it limit connections or message sizes?"));
      last_callback();
    }

   private:
    void last_callback() {
      if (finished_) return;
      finished_ = true;
      if (e_.live > 0 && --e_.live == 0 && e_.run_over) a_.stop_endpoint(w_, e_);
    }

    core::load_worker& w_;
    ws_load_adapter& a_;
    endpoint& e_;
    std::unique_ptr<wire> wire_;
    bool open_ = false, closed_ = false, finished_ = false;
  };

 public:
  ws_load_adapter(const dial_options& opt, const connector_factory& make)
      : opt_(opt), lo_(*opt.load), pattern_(lo_.size), make_(make) {}

  std::string_view proto() const override { return "ws"; }
  std::string target() const override { return opt_.target.str(); }

  std::unique_ptr<core::load_connection> make(core::load_worker& w) override {
    auto& state = w.state();
    if (!state) {
      auto e = std::make_shared<endpoint>(w.ioc());
      e->connector = make_(w.ioc(), opt_);
      state = e;
    }
    return std::make_unique<connection>(w, *this, *static_cast<endpoint*>(state.get()));
  }

  // Every connection of this worker is closed: once the last close handshake (or fail) completed,
  // or after a grace period, stop the worker's io_context so websocketpp's own timers (socket
  // shutdown) do not keep the run waiting.
  void worker_done(core::load_worker& w) override {
    auto* e = static_cast<endpoint*>(w.state().get());
    if (!e) return;
    e->run_over = true;
    if (e->live == 0) return stop_endpoint(w, *e);
    e->grace.expires_after(std::chrono::seconds(3));
    e->grace.async_wait([this, &w, e](std::error_code ec) {
      if (!ec) stop_endpoint(w, *e);
    });
  }

 private:
  void stop_endpoint(core::load_worker& w, endpoint& e) {
    e.grace.cancel();
    w.ioc().stop();
  }

  const dial_options& opt_;
  const core::load_options& lo_;
  tcp::load_pattern pattern_;
  const connector_factory& make_;
};

}  // namespace

core::outcome run_load(const dial_options& opt, core::runtime& rt, core::reporter& out, const connector_factory& make) {
  ws_load_adapter a(opt, make);
  core::load_settings s;
  s.load = *opt.load;
  s.reply_timeout = opt.timeout.count() > 0 ? opt.timeout : std::chrono::milliseconds(10000);
  // No driver connect deadline: websocketpp's open-handshake timeout ends a slow upgrade (exit 4).
  core::load_driver d(a, s, rt, out);
  return d.run();
}

}  // namespace netlab::ws::detail
