#include "netlab/udp/server.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <string_view>
#include <vector>

#include <asio/ip/udp.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>

#include "netlab/core/log.hpp"
#include "netlab/core/net.hpp"
#include "netlab/core/text.hpp"

namespace netlab::udp {

const char* to_string(serve_mode m) noexcept {
  switch (m) {
    case serve_mode::ack: return "ack";
    case serve_mode::echo: return "echo";
  }
  return "?";
}

namespace {

using asio::ip::udp;
using steady = std::chrono::steady_clock;

std::string peer_string(const udp::endpoint& ep) {
  std::string a = core::address_string(ep.address());
  if (a.find(':') != std::string::npos) return "[" + a + "]:" + std::to_string(ep.port());
  return a + ":" + std::to_string(ep.port());
}

// Printable preview of a datagram for -v logs.
std::string preview(const char* p, std::size_t n) {
  std::string s;
  const std::size_t lim = n < 80 ? n : 80;
  for (std::size_t i = 0; i < lim; ++i) {
    const unsigned char c = static_cast<unsigned char>(p[i]);
    if (c >= 0x20 && c != 0x7f) s += static_cast<char>(c);
    else if (c == '\n') s += "\\n";
    else if (c == '\r') s += "\\r";
    else { char b[8]; std::snprintf(b, sizeof b, "\\x%02x", c); s += b; }
  }
  if (lim < n) s += "...";
  return s;
}

/// The socket and the counters. Receives run on one strand; replies are sent at once with a
/// non-blocking send_to, so a slow or vanished client never holds the server up (a reply the
/// kernel cannot take at once is dropped and counted, as UDP allows).
class server : public std::enable_shared_from_this<server> {
 public:
  server(const serve_options& opt, core::runtime& rt, core::reporter& out)
      : opt_(opt), rt_(rt), report_(out), strand_(asio::make_strand(rt.ioc())), sock_(strand_), buf_(receive_buffer) {}

  core::outcome start() {
    auto r = core::bind_udp(sock_, opt_.listen);
    if (!r.ok()) return r;
    std::error_code ec;
    sock_.non_blocking(true, ec);
    auto local = sock_.local_endpoint(ec);
    if (ec) return core::outcome::fail(ec, "udp socket");
    started_ = steady::now();
    const std::string addr = opt_.listen.host.empty() ? (local.address().is_v6() ? "::" : "0.0.0.0")
                                                      : core::address_string(local.address());
    core::log().info("udp serve on {}:{} mode {} ({} thread(s))", addr, local.port(), to_string(opt_.mode), opt_.threads);
    report_.listening("udp", addr, local.port());
    do_receive();
    return core::outcome::success();
  }

  void stop() {
    asio::post(strand_, [self = shared_from_this()] {
      if (self->stopping_) return;
      self->stopping_ = true;
      std::error_code ec;
      self->sock_.close(ec);
      const double secs = std::chrono::duration<double>(steady::now() - self->started_).count();
      core::log().info("stopped: {} datagram(s) in ({} B), {} reply(ies) out ({} B), {} dropped, {} truncated, {:.3f}s",
                       self->in_, self->in_bytes_, self->out_, self->out_bytes_, self->dropped_, self->truncated_, secs);
      self->rt_.release();
    });
  }

 private:
  void do_receive() {
    sock_.async_receive_from(asio::buffer(buf_), from_,
                             [self = shared_from_this()](std::error_code ec, std::size_t n) { self->on_receive(ec, n); });
  }

  void on_receive(std::error_code ec, std::size_t n) {
    if (stopping_ || ec == asio::error::operation_aborted) return;
    if (ec) {
      // On Linux an ICMP error from an earlier reply can surface here (e.g. connection refused): not fatal.
      core::log().debug("receive: {}", ec.message());
      return do_receive();
    }
    ++in_;
    in_bytes_ += n;
    if (n == buf_.size()) ++truncated_;  // cannot tell apart exactly 65,536 bytes: counted as possibly truncated
    auto& log = core::log();
    const bool dbg = log.should_log(spdlog::level::debug);
    std::string peer = (dbg || opt_.mode == serve_mode::ack) ? peer_string(from_) : std::string();
    if (dbg) log.debug("{} sent {} B: {}", peer, n, preview(buf_.data(), n));
    if (log.should_log(spdlog::level::trace)) log.trace("rx from {}{}", peer, core::hexdump(buf_.data(), n));
    const char* p = buf_.data();
    std::size_t len = n;
    if (opt_.mode == serve_mode::ack) {
      reply_.clear();
      core::render_template_into(reply_, opt_.reply, std::string_view(buf_.data(), n), peer);
      p = reply_.data();
      len = reply_.size();
    }
    if (len > 65507) len = 65507;  // the largest datagram that fits; longer template output is cut
    std::error_code se;
    sock_.send_to(asio::buffer(p, len), from_, 0, se);
    if (se) {
      ++dropped_;
      if (dbg) log.debug("reply to {} dropped: {}", peer, se.message());
    } else {
      ++out_;
      out_bytes_ += len;
      if (dbg && opt_.mode == serve_mode::ack) log.debug("reply to {} {} B: {}", peer, len, preview(p, len));
      if (opt_.mode == serve_mode::ack && log.should_log(spdlog::level::trace)) log.trace("tx to {}{}", peer, core::hexdump(p, len));
    }
    do_receive();
  }

  serve_options opt_;
  core::runtime& rt_;
  core::reporter& report_;
  asio::strand<asio::io_context::executor_type> strand_;
  udp::socket sock_;
  std::vector<char> buf_;
  std::string reply_;
  udp::endpoint from_;
  steady::time_point started_;
  bool stopping_ = false;
  std::uint64_t in_ = 0, in_bytes_ = 0, out_ = 0, out_bytes_ = 0, dropped_ = 0, truncated_ = 0;
};

}  // namespace

core::outcome serve(const serve_options& opt, core::runtime& rt, core::reporter& out) {
  auto srv = std::make_shared<server>(opt, rt, out);
  auto started = srv->start();
  if (!started.ok()) return started;
  auto signals = std::make_shared<int>(0);
  rt.on_signal([srv, signals, &rt](int signo) {
    if ((*signals)++ == 0) {
      core::log().info("signal {}: stopping", signo);
      srv->stop();
    } else {
      rt.stop();
    }
  });
  rt.run();
  return core::outcome::success();
}

}  // namespace netlab::udp
