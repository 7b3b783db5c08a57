#include "netlab/udp/client.hpp"

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include <asio/ip/multicast.hpp>
#include <asio/ip/udp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "netlab/core/log.hpp"
#include "netlab/core/payload.hpp"

namespace netlab::udp {
namespace {

using asio::ip::udp;
using steady = std::chrono::steady_clock;

const char* refused_hint = "nothing listens on that UDP port (ICMP port unreachable): is the server running?";

// Resolves the target and connects a UDP socket of the right family (no packet is sent).
core::outcome open_connected(udp::socket& sock, const core::endpoint& target, udp::endpoint& peer) {
  std::error_code ec;
  auto eps = core::resolve_udp(target, false, ec);
  const std::string name = target.host + ":" + std::to_string(target.port);
  if (ec) return core::outcome::fail(ec, "resolve " + name, core::hint_for(ec));
  if (eps.empty()) return core::outcome::fail(exit_code::network, "resolve " + name + ": no address");
  for (const auto& ep : eps) {
    std::error_code e;
    if (sock.is_open()) sock.close(e);
    sock.open(ep.protocol(), e);
    if (!e) sock.connect(ep, e);
    if (!e) {
      peer = ep;
      return core::outcome::success();
    }
    ec = e;
  }
  // EACCES from connect(): a broadcast address without SO_BROADCAST (not a privileged port: UDP
  // clients bind none).
  if (ec == asio::error::access_denied)
    return core::outcome::fail(ec, "connect " + name, "is it a broadcast address? add --broadcast");
  return core::outcome::fail(ec, "connect " + name, core::hint_for(ec));
}

// A group target (broadcast or multicast): the socket stays unconnected, since the replies come
// from the members' own addresses, never from the group's. SO_BROADCAST when asked; for a
// multicast group, the sending interface (--interface) and loopback delivery, so a member on this
// host (a lesson on one machine) hears it too.
core::outcome open_group(udp::socket& sock, const send_options& opt, udp::endpoint& peer) {
  std::error_code ec;
  auto eps = core::resolve_udp(opt.target, false, ec);
  const std::string name = opt.target.host + ":" + std::to_string(opt.target.port);
  if (ec) return core::outcome::fail(ec, "resolve " + name, core::hint_for(ec));
  if (eps.empty()) return core::outcome::fail(exit_code::network, "resolve " + name + ": no address");
  peer = eps.front();
  sock.open(peer.protocol(), ec);
  if (!ec && opt.broadcast) sock.set_option(asio::socket_base::broadcast(true), ec);
  if (!ec && peer.address().is_multicast()) {
    sock.set_option(asio::ip::multicast::enable_loopback(true), ec);
    if (!ec && !opt.interface_address.empty()) {
      auto iface = asio::ip::make_address(opt.interface_address, ec);
      if (ec || !iface.is_v4() || !peer.address().is_v4())
        return core::outcome::fail(exit_code::usage, "--interface '" + opt.interface_address + "' is not an IPv4 address",
                                   "give the address of the interface to send on, e.g. 127.0.0.1 (IPv4 groups only)");
      sock.set_option(asio::ip::multicast::outbound_interface(iface.to_v4()), ec);
    }
  }
  if (ec) return core::outcome::fail(ec, "socket for " + name, core::hint_for(ec));
  return core::outcome::success();
}

/// The exchange: send, wait for the reply with a deadline, resend on timeout, print replies.
class exchange : public std::enable_shared_from_this<exchange> {
 public:
  exchange(const send_options& opt, core::runtime& rt, core::reporter& out)
      : opt_(opt), rt_(rt), out_(out), strand_(asio::make_strand(rt.ioc())), sock_(strand_), timer_(strand_),
        buf_(65536), group_(group_target(opt)) {}

  core::outcome start() {
    auto r = group_ ? open_group(sock_, opt_, peer_) : open_connected(sock_, opt_.target, peer_);
    if (!r.ok()) return r;
    peer_text_ = core::to_string(peer_);
    asio::post(strand_, [self = shared_from_this()] {
      if (self->opt_.wait_all || self->group_) {  // a group: all at once, then every member's replies
        for (std::uint64_t i = 0; i < self->opt_.count && self->result_.ok() && !self->done_; ++i) self->send_one();
        if (self->done_) return;
      } else {
        self->send_one();
        if (self->done_) return;
      }
      self->arm_timer();
      self->do_receive();
    });
    return core::outcome::success();
  }

  void interrupt() {
    asio::post(strand_, [self = shared_from_this()] {
      self->finish(core::outcome::fail(exit_code::interrupted, "interrupted"));
    });
  }

  const core::outcome& result() const { return result_; }

 private:
  void send_one() {
    std::error_code ec;
    if (group_) sock_.send_to(asio::buffer(opt_.message), peer_, 0, ec);
    else sock_.send(asio::buffer(opt_.message), 0, ec);
    ++sent_;
    auto& log = core::log();
    if (log.should_log(spdlog::level::debug)) log.debug("sent {} B to {}", opt_.message.size(), peer_text_);
    if (log.should_log(spdlog::level::trace)) log.trace("tx{}", core::hexdump(opt_.message.data(), opt_.message.size()));
    if (ec) failed(ec, "send to " + peer_text_);
  }

  void failed(std::error_code ec, const std::string& what) {
    if (ec == asio::error::connection_refused)
      return finish(core::outcome::fail(exit_code::network, what + ": " + ec.message(), refused_hint));
    if (ec == asio::error::access_denied && !opt_.broadcast)  // EACCES: a broadcast address without SO_BROADCAST
      return finish(core::outcome::fail(exit_code::network, what + ": " + ec.message(),
                                        "is it a broadcast address? add --broadcast"));
    if (ec == asio::error::network_unreachable && group_ && peer_.address().is_multicast())
      return finish(core::outcome::fail(exit_code::network, what + ": " + ec.message(),
                                        "no route for the multicast group: name the interface to send on with "
                                        "--interface ADDRESS"));
    finish(core::outcome::fail(ec, what, core::hint_for(ec)));
  }

  void arm_timer() {
    timer_.expires_after(opt_.timeout);
    timer_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (!ec) self->on_timeout();
    });
  }

  void do_receive() {
    if (group_) {
      sock_.async_receive_from(asio::buffer(buf_), from_, [self = shared_from_this()](std::error_code ec, std::size_t n) {
        self->on_receive(ec, n);
      });
      return;
    }
    sock_.async_receive(asio::buffer(buf_), [self = shared_from_this()](std::error_code ec, std::size_t n) {
      self->on_receive(ec, n);
    });
  }

  void on_receive(std::error_code ec, std::size_t n) {
    if (done_) return;
    if (ec && group_) return do_receive();  // an ICMP error about one member: the others may answer
    if (ec) return failed(ec, "receive from " + peer_text_);
    ++received_;
    const std::string sender = group_ ? core::to_string(from_) : peer_text_;
    auto& log = core::log();
    if (group_) log.info("reply from {}: {} B", sender, n);
    else if (log.should_log(spdlog::level::debug)) log.debug("received {} B from {}", n, sender);
    if (log.should_log(spdlog::level::trace)) log.trace("rx{}", core::hexdump(buf_.data(), n));
    if (out_.json()) {
      nlohmann::json ev{{"event", "reply"}, {"proto", "udp"}, {"peer", sender}, {"bytes", n}};
      core::add_payload(ev, std::string_view(buf_.data(), n));
      out_.result(ev, "");
    } else {
      // Byte-exact for pipes and files (a 65,507-byte echo is 65,507 bytes); on a terminal a reply
      // without a final newline gets one, so the prompt does not run into it.
      out_.data(buf_.data(), n);
      if (opt_.terminal_newline && (n == 0 || buf_[n - 1] != '\n')) out_.data("\n", 1);
    }
    if (group_) return do_receive();  // every member's reply, until the timeout
    if (!opt_.wait_all) {
      ++answered_;
      attempts_ = 0;
      if (answered_ >= opt_.count) return finish(core::outcome::success());
      send_one();
      if (done_) return;
      arm_timer();
    }
    do_receive();
  }

  void on_timeout() {
    if (done_) return;
    if (opt_.wait_all || group_) {
      if (received_ > 0) return finish(core::outcome::success());
      if (attempts_ < opt_.retries) {
        ++attempts_;
        core::log().info("no reply within {}: resending {} datagram(s) (retry {}/{})", core::format_duration(opt_.timeout),
                         opt_.count, attempts_, opt_.retries);
        for (std::uint64_t i = 0; i < opt_.count && !done_; ++i) send_one();
        if (!done_) arm_timer();
        return;
      }
    } else if (attempts_ < opt_.retries) {
      ++attempts_;
      core::log().info("no reply within {}: resending (retry {}/{})", core::format_duration(opt_.timeout), attempts_,
                       opt_.retries);
      send_one();
      if (!done_) arm_timer();
      return;
    }
    const unsigned tries = attempts_ + 1;
    finish(core::outcome::fail(exit_code::timeout,
                               "no reply from " + peer_text_ + " within " + core::format_duration(opt_.timeout) +
                                   (tries > 1 ? " (" + std::to_string(tries) + " attempts)" : std::string()),
                               "is a UDP server running there? the datagram or its reply may be lost or filtered; "
                               "try --timeout or --retries"));
  }

  void finish(core::outcome r) {
    if (done_) return;
    done_ = true;
    result_ = std::move(r);
    std::error_code ec;
    timer_.cancel();
    sock_.close(ec);
    core::log().debug("sent {} datagram(s), received {}", sent_, received_);
    rt_.release();
  }

  send_options opt_;
  core::runtime& rt_;
  core::reporter& out_;
  asio::strand<asio::io_context::executor_type> strand_;
  udp::socket sock_;
  asio::steady_timer timer_;
  std::vector<char> buf_;
  udp::endpoint peer_;
  udp::endpoint from_;  ///< group mode: the sender of the reply being received
  std::string peer_text_;
  core::outcome result_;
  bool done_ = false;
  unsigned attempts_ = 0;
  std::uint64_t sent_ = 0, received_ = 0, answered_ = 0;
  bool group_;
};

}  // namespace

bool group_target(const send_options& opt) {
  if (opt.broadcast) return true;
  std::error_code ec;
  auto a = asio::ip::make_address(opt.target.host, ec);
  return !ec && a.is_multicast();
}

core::outcome send(const send_options& opt, core::runtime& rt, core::reporter& out) {
  if (opt.load) return run_load(opt, rt, out);
  auto ex = std::make_shared<exchange>(opt, rt, out);
  auto started = ex->start();
  if (!started.ok()) return started;
  rt.on_signal([ex](int) { ex->interrupt(); });
  rt.run();
  return ex->result();
}

}  // namespace netlab::udp
