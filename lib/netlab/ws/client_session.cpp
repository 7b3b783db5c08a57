// The exchange of ws-echo dial, without websocketpp: the glue (detail/client_engine.hpp) forwards the
// connection's events here.
#include "netlab/ws/client_session.hpp"

#include <unistd.h>

#include <asio/post.hpp>

#include "netlab/core/endpoint.hpp"
#include "netlab/core/log.hpp"

namespace netlab::ws::detail {

namespace {

// stdin, one message per line, paced: the next chunk is read only when the lines already read
// are sent and fewer than max_in_flight replies (and max_buffered unsent bytes) are owed, so a
// fast producer (`yes |`) costs one chunk of memory, not all it can write. The reader thread is
// joined in finish() and the destructor, before the io_context can go.
constexpr std::uint64_t max_in_flight = 256;
constexpr std::size_t max_buffered = 1024 * 1024;
constexpr std::size_t max_line = 16 * 1024 * 1024;  ///< a longer line ends the run (exit 6)

constexpr int close_normal = 1000;
constexpr int close_going_away = 1001;
constexpr int close_too_big = 1009;

std::string hex(const std::string& p) {
  static const char* d = "0123456789abcdef";
  std::string s;
  s.reserve(p.size() * 2);
  for (unsigned char c : p) {
    s += d[c >> 4];
    s += d[c & 15];
  }
  return s;
}

}  // namespace

exchange_session::exchange_session(const dial_options& opt, core::runtime& rt, core::reporter& out)
    : opt_(opt), rt_(rt), out_(out), timer_(rt.ioc()), close_timer_(rt.ioc()) {}

exchange_session::~exchange_session() {
  if (pump_) pump_->stop();
}

void exchange_session::start(wire& w) {
  wire_ = &w;
  auto weak = weak_from_this();
  rt_.on_signal([weak](int) {
    auto self = weak.lock();
    if (!self) return;
    asio::post(self->rt_.ioc(), [weak] {
      if (auto self = weak.lock()) self->finish(core::outcome::fail(exit_code::interrupted, "interrupted"));
    });
  });
  if (opt_.connect_timeout.count() > 0) {
    timer_.expires_after(opt_.connect_timeout);
    timer_.async_wait([weak](std::error_code e) {
      auto self = weak.lock();
      if (!self || e || self->open_ || self->done_) return;
      self->finish(core::outcome::fail(exit_code::timeout,
                                       "connect to " + self->opt_.target.str() + ": no WebSocket connection within " +
                                           core::format_duration(self->opt_.connect_timeout),
                                       "is the server up and answering? raise --connect-timeout if it is slow"));
    });
  }
  core::log().debug("connecting to {}", opt_.target.str());
}

void exchange_session::on_open() {
  if (done_) return;
  open_ = true;
  timer_.cancel();
  const auto sub = wire_->subprotocol();
  core::log().info("connected to {}{}", opt_.target.str(), sub.empty() ? std::string() : " (subprotocol " + sub + ")");
  const bool interactive = opt_.stdin_fd >= 0 && ::isatty(opt_.stdin_fd);
  if (opt_.timeout.count() > 0 && !interactive) {
    auto weak = weak_from_this();
    timer_.expires_after(opt_.timeout);
    timer_.async_wait([weak](std::error_code e) {
      auto self = weak.lock();
      if (!self || e || self->done_) return;
      self->finish(core::outcome::fail(exit_code::timeout,
                                       "no reply to " + std::to_string(self->sent_ - self->received_) + " of " +
                                           std::to_string(self->sent_) + " message(s) within " +
                                           core::format_duration(self->opt_.timeout),
                                       "is it an echo server? raise --timeout if it is slow"));
    });
  }
  for (const auto& m : opt_.messages) send(m.data, m.binary);
  if (opt_.stdin_fd >= 0) {
    start_stdin();
  } else {
    input_done_ = true;
    maybe_close();
  }
}

void exchange_session::start_stdin() {
  auto weak = weak_from_this();
  pump_ = std::make_unique<core::fd_pump>(opt_.stdin_fd, rt_.ioc().get_executor(),
                                          [weak](std::string d, bool eof, std::error_code ec) {
                                            if (auto self = weak.lock()) self->on_input(std::move(d), eof, ec);
                                          });
  reading_ = true;
  pump_->next();
}

void exchange_session::on_input(std::string data, bool eof, std::error_code ec) {
  reading_ = false;
  if (done_) return;
  if (ec) return finish(core::outcome::fail(exit_code::local_io, "read stdin: " + ec.message()));
  if (eof) stdin_eof_ = true;
  else pending_.append(data);
  send_lines();
}

bool exchange_session::can_send_more() const {
  return sent_ - received_ < max_in_flight && wire_->buffered() < max_buffered;
}

// Sends the complete lines read so far while the budget allows; asks for more input when they are
// all out; on end of input, sends the rest as the last message.
void exchange_session::send_lines() {
  if (!pump_ || input_done_ || reading_ || done_ || closing_) return;
  std::size_t nl;
  while (can_send_more() && (nl = pending_.find('\n', pos_)) != std::string::npos) {
    std::string line = pending_.substr(pos_, nl - pos_);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    pos_ = nl + 1;
    send(line, opt_.stdin_binary);
    if (done_) return;
  }
  if (pending_.find('\n', pos_) != std::string::npos) return;  // over budget: on_message resumes
  pending_.erase(0, pos_);
  pos_ = 0;
  if (pending_.size() > max_line)  // newline-free input (`< /dev/zero`) would grow without end
    return finish(core::outcome::fail(exit_code::local_io, "stdin: a line longer than 16 MiB",
                                      "stdin is sent one message per line; send large data with --file"));
  if (!stdin_eof_) {
    reading_ = true;
    return pump_->next();
  }
  if (!pending_.empty()) {
    if (!can_send_more()) return;
    send(pending_, opt_.stdin_binary);
    pending_.clear();
  }
  input_done_ = true;
  maybe_close();
}

void exchange_session::send(const std::string& data, bool binary) {
  if (done_ || closing_) return;
  const std::error_code ec = wire_->send(data.data(), data.size(), binary);
  if (ec) return finish(core::outcome::fail(exit_code::network, "send: " + ec.message()));
  ++sent_;
  auto& log = core::log();
  if (log.should_log(spdlog::level::debug)) log.debug("sent {} {} B", binary ? "binary" : "text", data.size());
}

void exchange_session::on_message(bool binary, const std::string& p) {
  if (done_) return;
  ++received_;
  if (out_.json()) {
    nlohmann::json j{{"event", "message"}, {"type", binary ? "binary" : "text"}, {"size", p.size()}};
    j["data"] = binary ? hex(p) : p;
    out_.result(j, "");
  } else if (binary && opt_.raw) {
    out_.data(p.data(), p.size());
  } else if (binary) {
    const auto h = hex(p) + "\n";
    out_.data(h.data(), h.size());
  } else {
    out_.data(p.data(), p.size());
    if (p.empty() || p.back() != '\n') out_.data("\n", 1);
  }
  send_lines();
  maybe_close();
}

void exchange_session::on_ping(const std::string&) {}

void exchange_session::on_pong(const std::string&) {}

void exchange_session::maybe_close() {
  if (done_ || closing_ || !input_done_ || received_ < sent_) return;
  if (sent_ == 0 && !default_sent_ && opt_.messages.empty()) {
    // Nothing to send from any source: the classic lesson's message.
    default_sent_ = true;
    return send("hello Alvin", false);
  }
  closing_ = true;
  if (wire_->close(close_normal, "")) return finish(core::outcome::success());
  auto weak = weak_from_this();
  close_timer_.expires_after(std::chrono::seconds(3));
  close_timer_.async_wait([weak](std::error_code e) {
    auto self = weak.lock();
    if (!self) return;
    if (!e) self->finish(core::outcome::success());  // the server never answered our close: done anyway
  });
}

void exchange_session::on_fail(const failure_facts& f) {
  if (done_) return;
  finish(describe_failure(f, opt_));
}

void exchange_session::on_close(const close_facts& f) {
  if (done_) return;
  if (closing_) return finish(core::outcome::success());
  if (f.local_code == close_too_big)  // we closed it
    return finish(core::outcome::fail(exit_code::protocol,
                                      "a message from " + opt_.target.str() + " is over " + std::to_string(f.max_message) +
                                          " B" + (opt_.deflate ? " (inflated size)" : "") + ": closed with 1009",
                                      "raise --max-message if such messages are expected"));
  const std::string what = "the server closed the connection: " + close_text(f.remote_code, f.remote_reason);
  if (f.remote_code == close_normal || f.remote_code == close_going_away) {
    if (received_ >= sent_) {  // nothing owed: a normal end, even if more input could have come
      core::log().info("{}", what);
      return finish(core::outcome::success());
    }
    return finish(core::outcome::fail(exit_code::protocol,
                                      what + " before replying to " + std::to_string(sent_ - received_) + " message(s)",
                                      "the server stopped or dropped this client"));
  }
  finish(core::outcome::fail(exit_code::protocol, what, "the server ended the session with an error code"));
}

void exchange_session::finish(core::outcome o) {
  if (done_) return;
  done_ = true;
  result_ = std::move(o);
  timer_.cancel();
  close_timer_.cancel();
  if (pump_) pump_->stop();  // joins the stdin reader: nothing is posted after this
  if (!result_.ok() && open_ && !closing_)
    wire_->close(result_.code == exit_code::interrupted ? close_going_away : close_normal, "");
  core::log().debug("done: {} sent, {} received", sent_, received_);
  rt_.stop();  // websocketpp's own timers (handshake, shutdown) must not keep the process waiting
}

}  // namespace netlab::ws::detail
