// The exchange of ws-echo dial, without websocketpp: the glue (detail/client_engine.hpp) forwards the
// connection's events here. Also the interactive mode (like wscat), the --json events (connected,
// message, ping/pong, closed), the -v/-vv logs and the TLS-mismatch diagnosis.
#include "netlab/ws/client_session.hpp"

#include <cstdio>
#include <cstdlib>

#include <asio/post.hpp>

#include "netlab/core/endpoint.hpp"
#include "netlab/core/log.hpp"
#include "netlab/core/payload.hpp"
#include "netlab/ws/trace.hpp"

namespace netlab::ws::detail {

namespace {

// stdin, one message per line, paced: the next chunk is read only when the lines already read
// are sent and fewer than max_in_flight replies (and max_buffered unsent bytes) are owed, so a
// fast producer (`yes |`) costs one chunk of memory, not all it can write. The reader thread is
// joined in finish() and the destructor, before the io_context can go.
constexpr std::uint64_t max_in_flight = 256;
constexpr std::size_t max_buffered = 1024 * 1024;
constexpr std::size_t max_line = 16 * 1024 * 1024;  ///< a longer line ends the run (exit 6)

/// How long a TLS-mismatch probe may take. It only ever delays a run that already failed (or, for
/// wss://, runs beside a connection that is still trying): generous, for sanitizer builds.
constexpr std::chrono::seconds probe_limit{3};

constexpr int close_normal = 1000;
constexpr int close_going_away = 1001;
constexpr int close_no_status = 1005;
constexpr int close_abnormal = 1006;
constexpr int close_too_big = 1009;

constexpr int op_text = 0x1, op_binary = 0x2, op_close = 0x8, op_ping = 0x9, op_pong = 0xa;

std::string hex(std::string_view p) {
  static const char* d = "0123456789abcdef";
  std::string s;
  s.reserve(p.size() * 2);
  for (unsigned char c : p) {
    s += d[c >> 4];
    s += d[c & 15];
  }
  return s;
}

/// "0a ff" or "0aff" → bytes; false on anything else.
bool unhex(std::string_view text, std::string& out) {
  auto digit = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  int high = -1;
  for (char c : text) {
    if (c == ' ' || c == ':') {
      if (high >= 0) return false;
      continue;
    }
    const int v = digit(c);
    if (v < 0) return false;
    if (high < 0) {
      high = v;
    } else {
      out += static_cast<char>(high * 16 + v);
      high = -1;
    }
  }
  return high < 0 && !out.empty();
}

/// The payload of a close frame: the code (network order) and the reason.
std::string close_payload(int code, const std::string& reason) {
  std::string p;
  p += static_cast<char>((code >> 8) & 0xff);
  p += static_cast<char>(code & 0xff);
  return p + reason;
}

/// RFC 6455 7.4: the codes an endpoint may send.
bool sendable_close_code(int code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999);
}

void trace_frame(trace::dir d, int opcode, bool masked, std::string_view payload) {
  auto& log = core::log();
  if (log.should_log(spdlog::level::trace))
    log.trace("{}", trace::frame(d, true, opcode, masked, payload.size(), payload.substr(0, trace::shown_bytes)));
}

}  // namespace

exchange_session::exchange_session(const dial_options& opt, core::runtime& rt, core::reporter& out)
    : opt_(opt),
      rt_(rt),
      out_(out),
      timer_(rt.ioc()),
      close_timer_(rt.ioc()),
      probe_timer_(rt.ioc()),
      verify_error_(std::make_shared<std::string>()) {}

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
      if (auto self = weak.lock()) self->on_signal();
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
  if (opt_.target.secure) {
    // wss:// to a plain server: it takes the ClientHello for the start of an HTTP request and waits
    // for the rest, so the handshake would only end at a timeout. A connection still not open after
    // a second asks the server in plain HTTP; only a plain "HTTP/" answer ends the run early.
    probe_timer_.expires_after(std::chrono::seconds(1));
    probe_timer_.async_wait([weak](std::error_code e) {
      auto self = weak.lock();
      if (!self || e || self->open_ || self->done_) return;
      probe_server(self->rt_.ioc(), self->opt_.target, false, probe_limit, [weak](bool plain) {
        auto self = weak.lock();
        if (self && plain && !self->open_ && !self->done_) self->finish(self->tls_mismatch(true));
      });
    });
  }
  core::log().debug("connecting to {}", opt_.target.str());
}

core::outcome exchange_session::tls_mismatch(bool wss_to_plain) const {
  url other = opt_.target;
  other.secure = !other.secure;
  if (wss_to_plain)
    return core::outcome::fail(exit_code::protocol,
                               "connect " + opt_.target.str() + ": the server speaks plain HTTP, not TLS (a ws:// server)",
                               "dial " + other.str());
  return core::outcome::fail(exit_code::protocol,
                             "connect " + opt_.target.str() + ": the server speaks TLS (a wss:// server), not plain HTTP",
                             "dial " + other.str());
}

void exchange_session::on_signal() {
  if (done_) return;
  // Interactive: the first Ctrl-C ends the session the normal way (close 1000, exit 0), as wscat's
  // user expects; a second one, or any signal in a scripted run, interrupts (exit 130).
  if (opt_.interactive && open_ && !closing_ && !interrupted_once_) {
    interrupted_once_ = true;
    return close_now(close_normal, "");
  }
  finish(core::outcome::fail(exit_code::interrupted, "interrupted"));
}

void exchange_session::on_open() {
  if (done_) return;
  open_ = true;
  opened_at_ = std::chrono::steady_clock::now();
  peer_ = wire_->peer_address();  // the socket may be gone by the time `closed` is printed
  timer_.cancel();
  probe_timer_.cancel();
  auto& log = core::log();
  if (log.should_log(spdlog::level::trace)) {
    log.trace("handshake request:\n{}", trace::handshake(trace::dir::out, wire_->handshake_head(true)));
    log.trace("handshake response:\n{}", trace::handshake(trace::dir::in, wire_->handshake_head(false)));
  }
  const auto sub = wire_->subprotocol();
  log.info("connected to {}{}", opt_.target.str(), sub.empty() ? std::string() : " (subprotocol " + sub + ")");
  if (out_.json()) {
    nlohmann::json j{{"event", "connected"}, {"proto", "ws"}, {"peer", peer_},
                     {"local", wire_->local_address()}};
    if (!sub.empty()) j["subprotocol"] = sub;
    out_.result(j, "");
  } else if (opt_.interactive) {
    note("Connected (press Ctrl-C to quit)");
  }
  if (opt_.timeout.count() > 0 && !opt_.interactive) {
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
  // Interactive peers need not answer each line (a chat server, a broadcaster): only the unsent
  // bytes bound the input there.
  return (opt_.interactive || sent_ - received_ < max_in_flight) && wire_->buffered() < max_buffered;
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
    line_in(line);
    if (done_ || closing_) return;
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
    std::string last;
    last.swap(pending_);
    line_in(last);
    if (done_ || closing_) return;
  }
  input_done_ = true;
  if (opt_.interactive && received_ < sent_ && opt_.timeout.count() > 0) {
    // End of input (Ctrl-D, or the end of a pipe): wait up to --timeout for replies still coming,
    // then close normally; an interactive peer need not answer at all.
    auto weak = weak_from_this();
    timer_.expires_after(opt_.timeout);
    timer_.async_wait([weak](std::error_code e) {
      auto self = weak.lock();
      if (self && !e && !self->done_ && !self->closing_) self->close_now(close_normal, "");
    });
  }
  maybe_close();
}

void exchange_session::line_in(const std::string& line) {
  if (!opt_.interactive || line.empty() || line[0] != '/') return send(line, opt_.stdin_binary);
  if (line.size() > 1 && line[1] == '/') return send(line.substr(1), opt_.stdin_binary);  // "//x" sends "/x"
  const auto space = line.find(' ');
  const std::string cmd = line.substr(0, space);
  const std::string arg = space == std::string::npos ? std::string() : line.substr(space + 1);
  if (cmd == "/ping") {
    if (arg.size() > 125) return complain("/ping: at most 125 bytes of data (RFC 6455 5.5)");
    echo_sent("ping" + (arg.empty() ? std::string() : " " + arg));
    if (const auto ec = wire_->ping(arg)) return finish(core::outcome::fail(exit_code::network, "ping: " + ec.message()));
    trace_frame(trace::dir::out, op_ping, true, arg);
    pings_.emplace_back(arg, std::chrono::steady_clock::now());
    return;
  }
  if (cmd == "/close") {
    int code = close_normal;
    std::string reason;
    if (!arg.empty()) {
      const auto sp = arg.find(' ');
      char* end = nullptr;
      const std::string num = arg.substr(0, sp);
      const long v = std::strtol(num.c_str(), &end, 10);
      if (num.empty() || *end != '\0' || !sendable_close_code(static_cast<int>(v)))
        return complain("/close: '" + num + "' is not a close code one may send (1000-1003, 1007-1011, 3000-4999)");
      code = static_cast<int>(v);
      if (sp != std::string::npos) reason = arg.substr(sp + 1);
      if (reason.size() > 123) return complain("/close: the reason is at most 123 bytes (RFC 6455 5.5)");
    }
    echo_sent("close " + std::to_string(code) + (reason.empty() ? "" : " " + reason));
    return close_now(code, reason);
  }
  if (cmd == "/binary") {
    std::string bytes;
    if (!unhex(arg, bytes)) return complain("/binary: expected hex bytes, e.g. /binary 0a ff 10");
    return send(bytes, true);
  }
  complain("unknown command " + cmd + " (/ping [data], /close [code [reason]], /binary HEX; //text sends /text)");
}

void exchange_session::complain(const std::string& what) { core::log().warn("{}", what); }

void exchange_session::send(const std::string& data, bool binary) {
  if (done_ || closing_) return;
  if (!binary && !core::valid_utf8(data)) {
    const char* hint = "send bytes as binary messages with --binary";
    if (opt_.interactive) return complain("not sent: the line is not valid UTF-8 text (" + std::string(hint) + " or /binary HEX)");
    return finish(core::outcome::fail(exit_code::usage, "stdin: a line is not valid UTF-8, so it cannot go as a text message", hint));
  }
  const std::error_code ec = wire_->send(data.data(), data.size(), binary);
  if (ec) return finish(core::outcome::fail(exit_code::network, "send: " + ec.message()));
  ++sent_;
  bytes_out_ += data.size();
  auto& log = core::log();
  if (log.should_log(spdlog::level::debug)) log.debug("sent {} {} B", binary ? "binary" : "text", data.size());
  trace_frame(trace::dir::out, binary ? op_binary : op_text, true, data);
  if (opt_.interactive && !out_.json()) echo_sent(binary ? "[binary " + std::to_string(data.size()) + " B] " + hex(data) : data);
}

void exchange_session::echo_sent(const std::string& text) {
  if (!opt_.interactive || out_.json()) return;
  // On a terminal the line discipline already echoed what was typed: replace that line.
  std::string line = opt_.tty_echo ? "\x1b[1A\r\x1b[2K" : "";
  line += opt_.color ? "\x1b[32m>\x1b[0m " : "> ";
  line += text + "\n";
  out_.data(line.data(), line.size());
}

void exchange_session::echo_received(const std::string& text) {
  std::string line = opt_.color ? "\x1b[36m<\x1b[0m " : "< ";
  line += text;
  if (line.back() != '\n') line += '\n';
  out_.data(line.data(), line.size());
}

void exchange_session::note(const std::string& text) {
  const std::string line = opt_.color ? "\x1b[33m" + text + "\x1b[0m\n" : text + "\n";
  out_.data(line.data(), line.size());
}

void exchange_session::on_message(bool binary, const std::string& p) {
  if (done_) return;
  ++received_;
  bytes_in_ += p.size();
  auto& log = core::log();
  if (log.should_log(spdlog::level::debug)) log.debug("received {} {} B", binary ? "binary" : "text", p.size());
  trace_frame(trace::dir::in, binary ? op_binary : op_text, false, p);
  if (out_.json()) {
    nlohmann::json j{{"event", "message"}, {"type", binary ? "binary" : "text"}, {"bytes", p.size()}};
    core::add_payload(j, p, binary);
    out_.result(j, "");
  } else if (opt_.interactive) {
    echo_received(binary ? "[binary " + std::to_string(p.size()) + " B] " + hex(p) : p);
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

void exchange_session::on_ping(const std::string& data) {
  if (done_) return;
  trace_frame(trace::dir::in, op_ping, false, data);
  trace_frame(trace::dir::out, op_pong, true, data);  // websocketpp answers every ping
  core::log().debug("ping from the server ({} B), answered", data.size());
  if (out_.json()) {
    nlohmann::json j{{"event", "ping"}, {"type", "ping"}, {"bytes", data.size()}};
    if (!data.empty()) core::add_payload(j, data, false);
    out_.result(j, "");
  } else if (opt_.interactive) {
    echo_received("ping" + (data.empty() ? std::string() : " " + data));
  }
}

void exchange_session::on_pong(const std::string& data) {
  if (done_) return;
  trace_frame(trace::dir::in, op_pong, false, data);
  // The RTT of the ping this pong answers: the oldest one with the same data (RFC 6455 5.5.3 lets
  // a peer answer only the latest ping: older ones are dropped then).
  double rtt_ms = -1;
  for (auto it = pings_.begin(); it != pings_.end(); ++it) {
    if (it->first != data) continue;
    rtt_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - it->second).count();
    pings_.erase(pings_.begin(), it + 1);
    break;
  }
  core::log().debug("pong ({} B){}", data.size(), rtt_ms >= 0 ? fmt::format(", rtt {:.2f} ms", rtt_ms) : std::string());
  if (out_.json()) {
    nlohmann::json j{{"event", "pong"}, {"type", "pong"}, {"bytes", data.size()}};
    if (rtt_ms >= 0) j["rtt_ms"] = std::round(rtt_ms * 1000) / 1000;
    if (!data.empty()) core::add_payload(j, data, false);
    out_.result(j, "");
  } else if (opt_.interactive) {
    echo_received("pong" + (data.empty() ? std::string() : " " + data) +
                  (rtt_ms >= 0 ? fmt::format(" (rtt {:.2f} ms)", rtt_ms) : std::string()));
  }
}

void exchange_session::maybe_close() {
  if (done_ || closing_ || !input_done_ || received_ < sent_) return;
  if (sent_ == 0 && !default_sent_ && opt_.messages.empty() && !opt_.interactive) {
    // Nothing to send from any source: the classic lesson's message.
    default_sent_ = true;
    return send("hello Alvin", false);
  }
  close_now(close_normal, "");
}

void exchange_session::close_now(int code, const std::string& reason) {
  if (done_ || closing_) return;
  closing_ = true;
  close_code_ = code;
  close_reason_ = reason;
  close_by_ = "local";
  timer_.cancel();
  if (pump_) pump_->stop();  // no more input once closing
  trace_frame(trace::dir::out, op_close, true, close_payload(code, reason));
  if (wire_->close(code, reason)) return finish(core::outcome::success());
  auto weak = weak_from_this();
  close_timer_.expires_after(std::chrono::seconds(3));
  close_timer_.async_wait([weak](std::error_code e) {
    auto self = weak.lock();
    if (!self) return;
    if (!e) self->finish(core::outcome::success());  // the server never answered our close: done anyway
  });
}

void exchange_session::on_fail(const failure_facts& facts) {
  if (done_ || probing_) return;
  failure_facts f = facts;
  f.tls_verify_error = *verify_error_;
  auto o = describe_failure(f, opt_);
  auto& log = core::log();
  if (f.http_status != 0 && log.should_log(spdlog::level::trace))
    log.trace("handshake response:\n{}", trace::handshake(trace::dir::in, wire_->handshake_head(false)));
  // No HTTP answer at all, or a TLS failure that is not about the certificate: is the other side
  // speaking the other protocol? Ask it once on a side connection before reporting.
  if (o.code == exit_code::protocol && f.http_status == 0 && f.tls_verify_error.empty()) {
    probing_ = true;
    auto weak = weak_from_this();
    const bool secure = opt_.target.secure;
    probe_server(rt_.ioc(), opt_.target, !secure, probe_limit, [weak, o, secure](bool other) {
      auto self = weak.lock();
      if (!self) return;
      self->finish(other ? self->tls_mismatch(secure) : o);
    });
    return;
  }
  finish(std::move(o));
}

void exchange_session::on_close(const close_facts& f) {
  if (done_) return;
  if (f.remote_code != close_no_status && f.remote_code != close_abnormal)
    trace_frame(trace::dir::in, op_close, false, close_payload(f.remote_code, f.remote_reason));
  if (!closing_) {
    close_code_ = f.remote_code;
    close_reason_ = f.remote_reason;
    close_by_ = "peer";
  }
  if (opt_.interactive && !out_.json())
    note("Disconnected (code: " + std::to_string(f.remote_code) + ", reason: \"" + f.remote_reason + "\")");
  if (closing_) return finish(core::outcome::success());
  if (f.local_code == close_too_big)  // we closed it
    return finish(core::outcome::fail(exit_code::protocol,
                                      "a message from " + opt_.target.str() + " is over " + std::to_string(f.max_message) +
                                          " B" + (opt_.deflate ? " (inflated size)" : "") + ": closed with 1009",
                                      "raise --max-message if such messages are expected"));
  const std::string what = "the server closed the connection: " + close_text(f.remote_code, f.remote_reason);
  if (f.remote_code == close_normal || f.remote_code == close_going_away ||
      (opt_.interactive && f.remote_code == close_no_status)) {
    // Nothing owed (or an interactive peer, which owes nothing): a normal end, even if more input
    // could have come.
    if (opt_.interactive || received_ >= sent_) {
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
  probe_timer_.cancel();
  if (pump_) pump_->stop();  // joins the stdin reader: nothing is posted after this
  if (open_ && !closing_ && close_by_.empty()) {
    // Ending without a close handshake (a failure, an interrupt): say goodbye anyway.
    close_code_ = result_.code == exit_code::interrupted ? close_going_away : close_normal;
    close_by_ = "local";
    trace_frame(trace::dir::out, op_close, true, close_payload(close_code_, ""));
    wire_->close(close_code_, "");
  }
  if (open_ && out_.json()) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - opened_at_).count();
    nlohmann::json j{{"event", "closed"},    {"proto", "ws"},         {"peer", peer_},
                     {"bytes_in", bytes_in_}, {"bytes_out", bytes_out_}, {"seconds", std::round(seconds * 1e6) / 1e6},
                     {"code", close_code_},  {"reason", close_reason_}, {"by", close_by_}};
    out_.result(j, "");
  }
  core::log().debug("done: {} sent, {} received", sent_, received_);
  rt_.stop();  // websocketpp's own timers (handshake, shutdown) must not keep the process waiting
}

}  // namespace netlab::ws::detail
