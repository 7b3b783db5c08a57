#include "netlab/udp/server.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <string_view>
#include <vector>

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

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
      : opt_(opt), rt_(rt), report_(out), strand_(asio::make_strand(rt.ioc())), sock_(strand_) {}

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
  // One async receive into slot 0 (Asio tries it at once and waits on epoll without re-arming it),
  // then, while datagrams keep coming, up to `batch` more with one recvmmsg; all replies go out with
  // one sendmmsg. Under load two system calls serve many clients; one client in ping-pong pays no
  // extra call (a drain that finds nothing is retried only every 16th datagram).
  void do_receive() {
    sock_.async_receive_from(asio::buffer(slot(0), receive_buffer), from_,
                             [self = shared_from_this()](std::error_code ec, std::size_t n) { self->on_receive(ec, n); });
  }

  void on_receive(std::error_code ec, std::size_t n) {
    if (stopping_ || ec == asio::error::operation_aborted) return;
    if (ec) {
      // On Linux an ICMP error from an earlier reply can surface here (e.g. connection refused): not fatal.
      core::log().debug("receive: {}", ec.message());
      return do_receive();
    }
    in_msgs_[0].msg_len = static_cast<unsigned>(n);
    in_msgs_[0].msg_hdr.msg_flags = 0;
    in_msgs_[0].msg_hdr.msg_namelen = static_cast<socklen_t>(from_.size());
    std::memcpy(&peers_[0], from_.data(), from_.size());
    unsigned got = 1;
    if (draining_ || ++since_drain_ >= 16) {
      since_drain_ = 0;
      got += drain(1);
      draining_ = got > 1;
    }
    unsigned out = 0;
    for (unsigned i = 0; i < got; ++i) out += answer(i, out);
    send_replies(out);
    do_receive();
  }

  // recvmmsg into slots [first, batch); returns how many datagrams arrived.
  unsigned drain(unsigned first) {
    for (unsigned i = first; i < batch; ++i) {
      iov_in_[i] = {slot(i), receive_buffer};
      std::memset(&in_msgs_[i], 0, sizeof(mmsghdr));
      in_msgs_[i].msg_hdr.msg_name = &peers_[i];
      in_msgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      in_msgs_[i].msg_hdr.msg_iov = &iov_in_[i];
      in_msgs_[i].msg_hdr.msg_iovlen = 1;
    }
    for (;;) {
      const int n = ::recvmmsg(sock_.native_handle(), in_msgs_ + first, batch - first, MSG_DONTWAIT, nullptr);
      if (n >= 0) return static_cast<unsigned>(n);
      if (errno == EINTR) continue;
      // EAGAIN: nothing more. Anything else on Linux is an ICMP error from an earlier reply: not fatal.
      if (errno != EAGAIN && errno != EWOULDBLOCK) core::log().debug("receive: {}", std::strerror(errno));
      return 0;
    }
  }

  // Prepares the reply to datagram i as outgoing message `k`; returns 1 if there is one.
  unsigned answer(unsigned i, unsigned k) {
    const std::size_t n = in_msgs_[i].msg_len;
    char* data = slot(i);
    ++in_;
    in_bytes_ += n;
    if (in_msgs_[i].msg_hdr.msg_flags & MSG_TRUNC) ++truncated_;
    udp::endpoint from;
    const std::size_t namelen = std::min<std::size_t>(in_msgs_[i].msg_hdr.msg_namelen, from.capacity());
    std::memcpy(from.data(), &peers_[i], namelen);
    from.resize(namelen);
    auto& log = core::log();
    const bool dbg = log.should_log(spdlog::level::debug);
    std::string peer = (dbg || opt_.mode == serve_mode::ack) ? peer_string(from) : std::string();
    if (dbg) log.debug("{} sent {} B: {}", peer, n, preview(data, n));
    if (log.should_log(spdlog::level::trace)) log.trace("rx from {}{}", peer, core::hexdump(data, n));
    const char* p = data;
    std::size_t len = n;
    if (opt_.mode == serve_mode::ack) {
      auto& r = replies_[k];
      r.clear();
      core::render_template_into(r, opt_.reply, std::string_view(data, n), peer);
      p = r.data();
      len = r.size();
      if (dbg) log.debug("reply to {} {} B: {}", peer, std::min<std::size_t>(len, 65507), preview(p, std::min<std::size_t>(len, 65507)));
      if (log.should_log(spdlog::level::trace)) log.trace("tx to {}{}", peer, core::hexdump(p, std::min<std::size_t>(len, 65507)));
    }
    if (len > 65507) len = 65507;  // the largest datagram that fits; longer template output is cut
    iov_out_[k] = {const_cast<char*>(p), len};
    std::memset(&out_msgs_[k], 0, sizeof(mmsghdr));
    out_msgs_[k].msg_hdr.msg_name = &peers_[i];
    out_msgs_[k].msg_hdr.msg_namelen = in_msgs_[i].msg_hdr.msg_namelen;
    out_msgs_[k].msg_hdr.msg_iov = &iov_out_[k];
    out_msgs_[k].msg_hdr.msg_iovlen = 1;
    return 1;
  }

  // Non-blocking: a reply the kernel cannot take at once is dropped and counted, as UDP allows.
  void send_replies(unsigned count) {
    unsigned done = 0;
    while (done < count) {
      const int m = ::sendmmsg(sock_.native_handle(), out_msgs_ + done, count - done, MSG_DONTWAIT);
      if (m < 0 && errno == EINTR) continue;
      if (m <= 0) {  // this one cannot go (full buffer, unreachable peer...): drop it, try the rest
        ++dropped_;
        if (core::log().should_log(spdlog::level::debug)) core::log().debug("reply dropped: {}", std::strerror(errno));
        ++done;
        continue;
      }
      for (int j = 0; j < m; ++j) {
        ++out_;
        out_bytes_ += out_msgs_[done + static_cast<unsigned>(j)].msg_len;
      }
      done += static_cast<unsigned>(m);
    }
  }

  char* slot(unsigned i) { return slots_.get() + static_cast<std::size_t>(i) * receive_buffer; }

  static constexpr unsigned batch = 32;

  serve_options opt_;
  core::runtime& rt_;
  core::reporter& report_;
  asio::strand<asio::io_context::executor_type> strand_;
  udp::socket sock_;
  // receive_buffer bytes per slot, uninitialised: only the pages datagrams land in are touched.
  std::unique_ptr<char[]> slots_{new char[batch * receive_buffer]};
  mmsghdr in_msgs_[batch];
  mmsghdr out_msgs_[batch];
  iovec iov_in_[batch];
  iovec iov_out_[batch];
  sockaddr_storage peers_[batch];
  std::string replies_[batch];
  udp::endpoint from_;
  unsigned since_drain_ = 0;
  bool draining_ = false;
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
