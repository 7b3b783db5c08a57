#include "netlab/udp/server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include <ifaddrs.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <asio/ip/multicast.hpp>
#include <asio/ip/udp.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>

#include "netlab/core/lifecycle.hpp"
#include "netlab/core/log.hpp"
#include "netlab/core/net.hpp"
#include "netlab/core/payload.hpp"
#include "netlab/core/text.hpp"

namespace netlab::udp {

const char* to_string(serve_mode m) noexcept {
  switch (m) {
    case serve_mode::ack: return "ack";
    case serve_mode::echo: return "echo";
    case serve_mode::print: return "print";
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

// A datagram as one line of text for print mode: valid UTF-8 text stays as it is (a lesson's
// Chinese greeting is readable), control bytes and bytes that are not UTF-8 become escapes, so one
// datagram is always one line.
std::string printable(const char* p, std::size_t n) {
  std::string s;
  s.reserve(n);
  const bool utf8 = core::valid_utf8(std::string_view(p, n));
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(p[i]);
    if (c == '\\') s += "\\\\";
    else if (c == '\n') s += "\\n";
    else if (c == '\r') s += "\\r";
    else if (c == '\t') s += "\\t";
    else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) { char b[8]; std::snprintf(b, sizeof b, "\\x%02x", c); s += b; }
    else s += static_cast<char>(c);
  }
  return s;
}

// An IPv4 peer seen on a dual-stack socket as ::ffff:a.b.c.d is the IPv4 address a.b.c.d.
asio::ip::address unmapped(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  return a;
}

// The host's own addresses, for a server bound to all interfaces (its "own endpoint" is any of them).
std::vector<asio::ip::address> local_addresses() {
  std::vector<asio::ip::address> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      asio::ip::address_v4::bytes_type b;
      std::memcpy(b.data(), &reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr, 4);
      out.emplace_back(asio::ip::address_v4(b));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      asio::ip::address_v6::bytes_type b;
      std::memcpy(b.data(), &reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr, 16);
      out.emplace_back(asio::ip::address_v6(b));
    }
  }
  ::freeifaddrs(list);
  return out;
}

// A datagram's fingerprint for the loop guard: its length and the bytes, or for a long one its
// first and last 512 bytes (cheap at 64 KiB, and a bounced copy matches exactly). Never 0.
std::uint64_t fingerprint(const char* p, std::size_t n) {
  std::hash<std::string_view> h;
  std::uint64_t f = n <= 1024 ? h(std::string_view(p, n))
                              : h(std::string_view(p, 512)) * 31 + h(std::string_view(p + n - 512, 512));
  f ^= static_cast<std::uint64_t>(n) * 0x9e3779b97f4a7c15ull;
  return f | 1;
}

/// The reply-loop guard's memory of one peer (address and port): fingerprints of our last replies
/// to it. A direct-mapped table of them bounds the memory whatever the number of peers.
struct peer_memory {
  sockaddr_in6 addr{};  ///< the key (a sockaddr_in fits); len 0: empty
  socklen_t len = 0;
  std::array<std::uint64_t, 8> recent{};  ///< our last replies to it; up to 8 loops at once are seen
  unsigned next = 0;
  unsigned repeats = 0;  ///< consecutive datagrams from it that were one of `recent`
};
constexpr std::size_t peer_slots = 4096;

/// The socket and the counters. Receives run on one strand; replies are sent at once with a
/// non-blocking send_to, so a slow or vanished client never holds the server up (a reply the
/// kernel cannot take at once is dropped and counted, as UDP allows).
class server : public std::enable_shared_from_this<server> {
 public:
  server(const serve_options& opt, core::runtime& rt, core::reporter& out)
      : opt_(opt), report_(out), strand_(asio::make_strand(rt.ioc())), sock_(strand_) {}

  core::outcome start() {
    auto r = core::bind_udp(sock_, opt_.listen);
    if (!r.ok()) return r;
    std::error_code ec;
    sock_.non_blocking(true, ec);
    auto local = sock_.local_endpoint(ec);
    if (ec) return core::outcome::fail(ec, "udp socket");
    started_ = steady::now();
    local_port_ = local.port();
    if (local.address().is_unspecified()) own_addresses_ = local_addresses();
    else own_addresses_.push_back(unmapped(local.address()));
    if (opt_.loop_limit > 0) memory_.resize(peer_slots);
    const std::string addr = opt_.listen.host.empty() ? (local.address().is_v6() ? "::" : "0.0.0.0")
                                                      : core::address_string(local.address());
    if (auto joined = join_groups(); !joined.ok()) return joined;
    // The same address form as the readiness line (IPv6 in brackets), so the two can be matched.
    core::log().info("udp serve: mode {} on {}:{} ({} thread(s))", to_string(opt_.mode),
                     addr.find(':') != std::string::npos ? "[" + addr + "]" : addr, local.port(), opt_.threads);
    report_.listening("udp", addr, local.port());
    do_receive();
    return core::outcome::success();
  }

  // --join: IP_ADD_MEMBERSHIP / IPV6_JOIN_GROUP on the bound socket, on --interface when given.
  core::outcome join_groups() {
    asio::ip::address iface;
    std::error_code ec;
    if (!opt_.interface_address.empty()) {
      iface = asio::ip::make_address(opt_.interface_address, ec);
      if (ec || !iface.is_v4())
        return core::outcome::fail(exit_code::usage, "--interface '" + opt_.interface_address + "' is not an IPv4 address",
                                   "give the address of the interface to join on, e.g. 127.0.0.1");
    }
    for (const auto& g : opt_.join) {
      auto group = asio::ip::make_address(g, ec);
      if (ec || !group.is_multicast())
        return core::outcome::fail(exit_code::usage, "--join '" + g + "' is not a multicast group address",
                                   "IPv4 groups are 224.0.0.0/4 (e.g. 239.1.2.3), IPv6 ff00::/8");
      if (group.is_v4() && !iface.is_unspecified())
        sock_.set_option(asio::ip::multicast::join_group(group.to_v4(), iface.to_v4()), ec);
      else
        sock_.set_option(asio::ip::multicast::join_group(group), ec);
      if (ec)
        return core::outcome::fail(exit_code::network, "join multicast group " + g + ": " + ec.message(),
                                   "does the interface have multicast on (ip link show) and a route for the group? "
                                   "an IPv4 group needs an IPv4 socket (--listen 0.0.0.0:PORT)");
      core::log().info("joined multicast group {}{}", g, iface.is_unspecified() ? "" : " on " + opt_.interface_address);
    }
    return core::outcome::success();
  }

  /// The lifecycle's "stop accepting" (on strand_): UDP serve has no sessions, so this is its whole stop.
  void stop_accepting() {
    if (stopping_) return;
    stopping_ = true;
    std::error_code ec;
    sock_.close(ec);
    const double secs = std::chrono::duration<double>(steady::now() - started_).count();
    core::log().info("stopped: {} datagram(s) in ({} B), {} reply(ies) out ({} B), {} dropped, {} truncated, "
                     "{} unanswered (loop guard), {:.3f}s",
                     in_, in_bytes_, out_, out_bytes_, dropped_, truncated_, unanswered_, secs);
  }

  asio::strand<asio::io_context::executor_type> strand() const { return strand_; }

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
    std::string peer = (dbg || opt_.mode != serve_mode::echo) ? peer_string(from) : std::string();
    if (dbg) log.debug("{} sent {} B: {}", peer, n, preview(data, n));
    if (log.should_log(spdlog::level::trace)) log.trace("rx from {}{}", peer, core::hexdump(data, n));
    if (opt_.mode == serve_mode::print) {
      if (report_.json()) {
        nlohmann::json ev{{"event", "datagram"}, {"proto", "udp"}, {"peer", peer}, {"bytes", n}};
        core::add_payload(ev, std::string_view(data, n));
        report_.result(ev, "");
      } else {
        report_.result({}, peer + " " + std::to_string(n) + " B: " + printable(data, n));
      }
      return 0;  // a listener: nothing is answered, so no loop guard either
    }
    peer_memory* mem = nullptr;
    std::uint64_t print = 0;
    if (!may_answer(from, i, data, n, mem, print)) return 0;
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
    if (mem) {
      mem->recent[mem->next] = p == data && len == n ? print : fingerprint(p, len);  // echo: the same bytes
      mem->next = (mem->next + 1) % mem->recent.size();
    }
    iov_out_[k] = {const_cast<char*>(p), len};
    std::memset(&out_msgs_[k], 0, sizeof(mmsghdr));
    out_msgs_[k].msg_hdr.msg_name = &peers_[i];
    out_msgs_[k].msg_hdr.msg_namelen = in_msgs_[i].msg_hdr.msg_namelen;
    out_msgs_[k].msg_hdr.msg_iov = &iov_out_[k];
    out_msgs_[k].msg_hdr.msg_iovlen = 1;
    return 1;
  }

  bool own_endpoint(const udp::endpoint& from) const {
    if (from.port() != local_port_) return false;
    const auto a = unmapped(from.address());
    if (a.is_loopback() && (own_addresses_.size() != 1 || own_addresses_[0].is_loopback())) return true;
    return std::find(own_addresses_.begin(), own_addresses_.end(), a) != own_addresses_.end();
  }

  // The reply-loop guard (CVE-2024-2169 class). Never answer our own address and port (one spoofed
  // datagram would make the server talk to itself forever), nor port 0; with the guard on, nor a
  // privileged source port (the servers we could loop with live there), nor a peer bouncing our own
  // replies back loop_limit times in a row: that unanswered datagram ends the loop, as nobody
  // resends it. `mem` is set to the peer's memory, where the reply is then recorded; `print` to the
  // datagram's fingerprint.
  bool may_answer(const udp::endpoint& from, unsigned i, const char* data, std::size_t n, peer_memory*& mem,
                  std::uint64_t& print) {
    if (from.port() == 0 || own_endpoint(from)) {
      if (unanswered_++ == 0 || core::log().should_log(spdlog::level::debug))
        core::log().warn("not answering a datagram from {}: {} (a spoofed source; a reply would loop)",
                         peer_string(from), from.port() == 0 ? "port 0" : "this server's own address");
      return false;
    }
    if (opt_.loop_limit == 0) return true;
    if (from.port() < first_answered_port) {
      if (unanswered_++ == 0 || core::log().should_log(spdlog::level::debug))
        core::log().info("not answering {}: a privileged source port is a server's, and a reply could loop with it "
                         "(--loop-limit 0 answers it)", peer_string(from));
      return false;
    }
    const auto* key = reinterpret_cast<const unsigned char*>(&peers_[i]);
    const socklen_t len = std::min<socklen_t>(in_msgs_[i].msg_hdr.msg_namelen, sizeof(sockaddr_in6));
    const std::size_t slot = std::hash<std::string_view>()(std::string_view(reinterpret_cast<const char*>(key), len)) % peer_slots;
    mem = &memory_[slot];
    print = fingerprint(data, n);
    if (mem->len != len || std::memcmp(&mem->addr, key, len) != 0) {
      *mem = peer_memory{};  // a new peer (or one evicted earlier): no history
      std::memcpy(&mem->addr, key, len);
      mem->len = len;
      return true;
    }
    if (std::find(mem->recent.begin(), mem->recent.end(), print) == mem->recent.end()) {
      mem->repeats = 0;
      return true;
    }
    if (++mem->repeats < opt_.loop_limit) return true;
    mem->repeats = 0;
    if (loops_++ == 0 || core::log().should_log(spdlog::level::debug))
      core::log().info("not answering {}: it sent our own replies back {} times in a row (a reply loop with another "
                       "server? see --loop-limit)", peer_string(from), opt_.loop_limit);
    ++unanswered_;
    mem = nullptr;
    return false;
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
  std::uint16_t local_port_ = 0;
  std::vector<asio::ip::address> own_addresses_;  ///< this server's address(es): never answered on local_port_
  std::vector<peer_memory> memory_;               ///< loop guard, peer_slots entries (empty when off)
  std::uint64_t in_ = 0, in_bytes_ = 0, out_ = 0, out_bytes_ = 0, dropped_ = 0, truncated_ = 0;
  std::uint64_t unanswered_ = 0, loops_ = 0;
};

}  // namespace

core::outcome serve(const serve_options& opt, core::runtime& rt, core::reporter& out) {
  auto srv = std::make_shared<server>(opt, rt, out);
  auto lc = core::lifecycle::create(rt, srv->strand(), "session(s)", std::chrono::milliseconds(0),
                                    [w = std::weak_ptr<server>(srv)] {
                                      if (auto s = w.lock()) s->stop_accepting();
                                    });
  auto started = srv->start();
  if (!started.ok()) return started;
  lc->watch_signals();
  rt.run();
  return core::outcome::success();
}

}  // namespace netlab::udp
