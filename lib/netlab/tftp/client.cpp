#include "netlab/tftp/client.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/ip/udp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "netlab/core/log.hpp"
#include "netlab/core/net.hpp"
#include "netlab/tftp/raw.hpp"
#include "netlab/tftp/transfer.hpp"

namespace netlab::tftp {
namespace {

using asio::ip::udp;
namespace fs = std::filesystem;
using clock = std::chrono::steady_clock;

// Room for two full windows of the largest blocks (~8.1 MiB): windowsize_for_buffer keeps a window
// within half the buffer.
constexpr int receive_buffer = 2 * auto_windowsize_cap * static_cast<int>(max_blksize + 1024);

// Asks for a large receive buffer: SO_RCVBUFFORCE when privileged, else up to net.core.rmem_max.
// Returns what the kernel granted (Linux reports twice the payload it accounts).
int grow_receive_buffer(udp::socket& s) {
  const int fd = s.native_handle();
  int want = receive_buffer;
#ifdef SO_RCVBUFFORCE
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0)
#endif
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
  int got = 0;
  socklen_t len = sizeof got;
  ::getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len);
  return got;
}

// The path MTU towards `to` (from the route: no packet is sent), or 0 when the system cannot tell.
int path_mtu(const udp::endpoint& to) {
  asio::io_context io;
  udp::socket s(io);
  std::error_code ec;
  s.open(to.protocol(), ec);
  if (!ec) s.connect(to, ec);
  if (ec) return 0;
  int mtu = 0;
  socklen_t len = sizeof mtu;
#if defined(IP_MTU) && defined(IPV6_MTU)
  if (to.address().is_v6()) ::getsockopt(s.native_handle(), IPPROTO_IPV6, IPV6_MTU, &mtu, &len);
  else ::getsockopt(s.native_handle(), IPPROTO_IP, IP_MTU, &mtu, &len);
#endif
  return mtu;
}

std::string hint_for_error(std::uint16_t code) {
  switch (static_cast<error_code>(code)) {
    case error_code::file_not_found: return "check the name: it is relative to the server's root directory";
    case error_code::access_violation: return "the server refuses this path (outside its root, unreadable, or not a regular file)";
    case error_code::disk_full: return "the server's disk is full";
    case error_code::illegal_operation: return "the server rejected the request as malformed";
    case error_code::file_exists: return "the file exists on the server";
    case error_code::option_refused: return "the server refused the options: try --no-options";
    default: return "the server gave up on this transfer";
  }
}

// Why a transfer stopped at receive_limit(): names the bound that was hit, for the error line.
std::string limit_reason(std::optional<std::uint64_t> tsize, std::optional<std::uint64_t> max_size, bool netascii) {
  const auto limit = receive_limit(tsize, max_size, netascii);
  if (max_size && limit == *max_size) return "the server sent more than --max-size " + std::to_string(*max_size) + " bytes";
  if (tsize)
    return "the server sent more than the " + std::to_string(*tsize) + " bytes it announced (tsize)" +
           (netascii ? " doubled for netascii" : "");
  return "the server sent more than " + std::to_string(limit) +
         " bytes without announcing a size (the default --max-size when there is no tsize: raise it to accept more)";
}

std::string human_rate(double bytes_per_s) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f MB/s", bytes_per_s / 1e6);
  return b;
}

constexpr std::chrono::milliseconds progress_interval{200};  // 5 redraws a second (issue 15: at most ~10)

// Columns of the terminal on stderr; COLUMNS, then 80, when it is not one (--progress into a file).
int terminal_columns() {
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* c = std::getenv("COLUMNS")) {
    const int n = std::atoi(c);
    if (n > 0) return n;
  }
  return 80;
}

// One client transfer: a fetch (RRQ, receiving into a sink) or, with a `local` path, a put (WRQ,
// sending a source). Everything else (request retries, option fallback, progress, signals) is shared.
class fetcher : public std::enable_shared_from_this<fetcher> {
public:
  fetcher(const fetch_options& opt, core::runtime& rt, core::reporter& out, std::string local = {})
      : opt_(opt), rt_(rt), out_(out), strand_(asio::make_strand(rt.ioc())), sock_(strand_), timer_(strand_),
        progress_timer_(strand_), buf_(max_packet + 1), local_(std::move(local)), writing_(!local_.empty()) {}

  core::outcome prepare() {
    // Local checks first: a transfer that cannot store (or read) its file should not bother the server.
    std::error_code ec;
    if (writing_) {
      const auto st = fs::status(local_, ec);
      if (!fs::exists(st))
        return core::outcome::fail(exit_code::local_io, "cannot read " + local_ + ": No such file or directory",
                                   "check the name of the local file");
      if (fs::is_directory(st))
        return core::outcome::fail(exit_code::local_io, local_ + " is a directory", "give a file to send");
      if (!fs::is_regular_file(st))
        return core::outcome::fail(exit_code::local_io, local_ + " is not a regular file", "put sends regular files only");
      src_ = source::open(local_, opt_.netascii, ec);
      if (!src_) return core::outcome::fail(exit_code::local_io, "cannot read " + local_ + ": " + ec.message(), "check its permissions");
      ec.clear();
    } else {
      sink::options so;
      so.sha256 = opt_.sha256;
      so.netascii = opt_.netascii;
      auto made = open_output(opt_, so, dst_);
      if (!made.ok()) return made;
      in_place_ = dst_->temporary().empty();
    }

    auto eps = core::resolve_udp(opt_.server, false, ec);
    const std::string name = opt_.server.to_string();
    if (ec || eps.empty())
      return core::outcome::fail(exit_code::network, "resolve " + name + ": " + (ec ? ec.message() : "no address"), "check the host name");
    server_ = *eps.begin();
    sock_.open(server_.protocol(), ec);
    if (ec) return core::outcome::fail(ec, "socket", core::hint_for(ec));
    rcvbuf_ = grow_receive_buffer(sock_);
    // Until the server's transfer port is known the socket cannot be connected, and Linux reports ICMP
    // port unreachable to unconnected UDP sockets only with IP_RECVERR: without it "no server" would
    // look like a timeout.
    const int on = 1;
    if (server_.address().is_v6()) ::setsockopt(sock_.native_handle(), IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof on);
    else ::setsockopt(sock_.native_handle(), IPPROTO_IP, IP_RECVERR, &on, sizeof on);

    wish_ = opt_.wish;
    if (wish_.blksize == 0) {
      const int mtu = path_mtu(server_);
      wish_.blksize = mtu > 0 ? blksize_for_mtu(mtu, server_.address().is_v6()) : 1428;
    }
    if (wish_.windowsize == 0) wish_.windowsize = windowsize_for_buffer(rcvbuf_, wish_.blksize, auto_windowsize_cap);
    if (writing_ && !src_->size_known()) wish_.tsize = false;  // netascii: the size on the wire is not known yet
    return core::outcome::success();
  }

  void start() {
    rt_.on_signal([self = shared_from_this()](int) {
      asio::post(self->strand_, [self] { self->interrupt(); });
    });
    asio::post(strand_, [self = shared_from_this()] {
      self->send_request();
      self->receive_first();
    });
  }

  const core::outcome& result() const { return result_; }

private:
  void send_request() {
    request r;
    r.op = writing_ ? opcode::wrq : opcode::rrq;
    r.filename = opt_.remote;
    r.mode = opt_.netascii ? "netascii" : "octet";
    if (with_options_) r.options = request_options(wish_, writing_, writing_ ? src_->size() : 0);
    auto bytes = encode(r);
    auto& log = core::log();
    if (log.should_log(spdlog::level::trace)) log.trace("send {}", describe(parse(bytes.data(), bytes.size())));
    std::error_code ec;
    sock_.send_to(asio::buffer(bytes), server_, 0, ec);
    if (ec) return finalize(core::outcome::fail(ec, "send to " + core::to_string(server_), core::hint_for(ec)), {});
    timer_.expires_after(wish_.timeout * (1u << std::min(tries_, 4u)));
    timer_.async_wait([self = shared_from_this()](std::error_code e) {
      if (!e) self->on_request_timeout();
    });
  }

  void on_request_timeout() {
    if (done_ || xfer_) return;
    if (++tries_ > wish_.retries) {
      std::error_code ec;
      sock_.close(ec);
      return finalize(core::outcome::fail(exit_code::timeout,
                                          "no answer from " + core::to_string(server_) + " after " + std::to_string(tries_) + " request(s)",
                                          "is a TFTP server running there? (netlab udp-file serve, or tftpd on port 69)"),
                      {});
    }
    core::log().info("no answer within {}: sending the request again ({}/{})", core::format_duration(wish_.timeout * (1u << std::min(tries_ - 1, 4u))),
                     tries_, wish_.retries);
    send_request();
  }

  void receive_first() {
    sock_.async_receive_from(asio::buffer(buf_), from_, [self = shared_from_this()](std::error_code ec, std::size_t n) {
      self->on_first(ec, n);
    });
  }

  void on_first(std::error_code ec, std::size_t n) {
    if (done_ || xfer_) return;
    if (ec == asio::error::connection_refused) {
      timer_.cancel();
      return finalize(core::outcome::fail(exit_code::network, "request to " + core::to_string(server_) + ": Connection refused",
                                          "nothing listens on that UDP port (ICMP port unreachable): is the server running?"),
                      {});
    }
    if (ec == asio::error::operation_aborted) return;
    if (ec) {
      timer_.cancel();
      return finalize(core::outcome::fail(ec, "receive from " + core::to_string(server_), core::hint_for(ec)), {});
    }
    auto& log = core::log();
    if (from_.address() != server_.address()) {
      log.debug("ignored a datagram from {} (not the server)", core::to_string(from_));
      return receive_first();
    }
    auto pk = parse(buf_.data(), n);
    if (log.should_log(spdlog::level::trace)) log.trace("recv {}", describe(pk));
    if (auto* e = std::get_if<error>(&pk)) {
      if (e->code == static_cast<std::uint16_t>(error_code::option_refused) && with_options_) {
        log.info("the server refused the options (ERROR 8): asking again without options");
        with_options_ = false;
        timer_.cancel();
        send_request();
        return receive_first();
      }
      timer_.cancel();
      return finalize(core::outcome::fail(exit_code::protocol,
                                          "server error " + std::to_string(e->code) + ": " + (e->message.empty() ? "(no message)" : e->message),
                                          hint_for_error(e->code)),
                      {});
    }
    transfer::setup s;
    s.sending = writing_;
    s.faults = opt_.faults;
    s.label = opt_.remote;
    std::vector<std::uint8_t> first;
    if (auto* o = std::get_if<oack>(&pk)) {
      auto ans = accept_oack(*o, wish_);
      if (!ans.error.empty()) {
        auto bytes = encode(error{static_cast<std::uint16_t>(error_code::option_refused), ans.error});
        std::error_code ignored;
        sock_.send_to(asio::buffer(bytes), from_, 0, ignored);
        timer_.cancel();
        return finalize(core::outcome::fail(exit_code::protocol, "bad OACK: " + ans.error, "the server breaks RFC 2347; try --no-options"), {});
      }
      s.settings = ans.settings;
      if (writing_) {
        tsize_ = src_->size_known() ? std::optional<std::uint64_t>(src_->size()) : std::nullopt;
      } else {
        tsize_ = ans.tsize;
        if (tsize_ && opt_.max_size && *tsize_ > *opt_.max_size) {
          // RFC 2349: a client may refuse a file it finds too large with ERROR 8.
          const std::string why = "the file is " + std::to_string(*tsize_) + " bytes (tsize), more than --max-size " +
                                  std::to_string(*opt_.max_size);
          auto bytes = encode(error{static_cast<std::uint16_t>(error_code::option_refused), why});
          std::error_code ignored;
          sock_.send_to(asio::buffer(bytes), from_, 0, ignored);
          timer_.cancel();
          return finalize(core::outcome::fail(exit_code::protocol, why, "raise --max-size to accept it"), {});
        }
        s.preamble = encode(ack{0});
      }
      // A WRQ's OACK is the go-ahead: DATA 1 follows at once (RFC 2347).
    } else if (auto* d = std::get_if<data>(&pk); !writing_ && d && d->block == 1) {
      s.settings = rfc1350_settings(wish_);  // the server ignored our options: plain RFC 1350
      if (with_options_ && opt_.wish.options) log.debug("the server ignored the options: RFC 1350 transfer (512-byte blocks, window 1)");
      first.assign(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(n));
    } else if (auto* a = std::get_if<ack>(&pk); writing_ && a && a->block == 0) {
      s.settings = rfc1350_settings(wish_);  // ACK 0 without an OACK: the server ignored our options
      if (with_options_ && opt_.wish.options) log.debug("the server ignored the options: RFC 1350 transfer (512-byte blocks, window 1)");
      if (src_->size_known()) tsize_ = src_->size();
    } else {
      log.debug("ignored {} while waiting for the server's answer", describe(pk));
      return receive_first();
    }
    if (!writing_) {
      s.max_bytes = receive_limit(tsize_, opt_.max_size, opt_.netascii);
      s.max_bytes_why = limit_reason(tsize_, opt_.max_size, opt_.netascii);
    }
    timer_.cancel();
    sock_.connect(from_, ec);  // the server's transfer ID: from now on the kernel filters other senders
    if (ec) return finalize(core::outcome::fail(ec, "connect " + core::to_string(from_), core::hint_for(ec)), {});
    if (writing_) s.src = std::move(src_);
    else s.dst = std::move(dst_);
    settings_ = s.settings;
    log.debug("transfer {} {}: blksize {}, windowsize {}, timeout {}{}", writing_ ? "to" : "from", core::to_string(from_),
              settings_.blksize, settings_.windowsize, core::format_duration(settings_.timeout),
              tsize_ ? ", tsize " + std::to_string(*tsize_) : std::string());
    xfer_ = std::make_shared<transfer>(std::move(sock_), strand_, std::move(s),
                                       [self = shared_from_this()](const core::outcome& o, const transfer_stats& st) {
                                         self->finalize(o, st);
                                       });
    xfer_->start(first.empty() ? nullptr : &first);
    if (opt_.progress) tick();
  }

  void tick() {
    progress_timer_.expires_after(progress_interval);
    progress_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (ec || self->done_) return;
      self->draw();
      self->tick();
    });
  }

  void draw() {
    const auto& st = xfer_->stats();
    const std::uint64_t bytes = xfer_->progress_bytes();
    const double secs = std::chrono::duration<double>(clock::now() - st.started).count();
    const double rate = secs > 0 ? static_cast<double>(bytes) / secs : 0;
    // Fitted to the terminal's width now (it may have been resized): a line that wraps leaves one
    // stale line per redraw.
    const std::string line = "\r" + progress_line(terminal_columns(), bytes, tsize_, rate, st.retransmissions) + "\033[K";
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
    drawn_ = true;
  }

  void interrupt() {
    if (done_) return;
    if (xfer_) {
      xfer_->abort(error_code::not_defined, "client interrupted", core::outcome::fail(exit_code::interrupted, "interrupted"));
      return;
    }
    timer_.cancel();
    std::error_code ec;
    sock_.close(ec);
    finalize(core::outcome::fail(exit_code::interrupted, "interrupted"), {});
  }

  void finalize(const core::outcome& o, const transfer_stats& st) {
    if (done_) return;
    done_ = true;
    progress_timer_.cancel();
    timer_.cancel();
    if (drawn_) {
      std::fputs("\r\033[K", stderr);
      std::fflush(stderr);
    }
    result_ = o;
    if (!o.ok()) {
      if (!writing_ && opt_.keep_partial && !in_place_)
        result_.what += " (partial data kept in " + opt_.output + ".part)";
      dst_.reset();
      xfer_.reset();
      rt_.release();
      return;
    }
    if (writing_) return report_put(st);
    if (tsize_ && !opt_.netascii && st.bytes != *tsize_)  // never more: the transfer stops at tsize
      core::log().warn("{}: the server announced {} bytes (tsize) but the file ended after {}", opt_.remote, *tsize_, st.bytes);
    const double secs = st.seconds();
    const double rate = secs > 0 ? static_cast<double>(st.bytes) / secs : 0;
    std::string digest;
    if (auto* d = xfer_->destination()) digest = d->sha256();
    const bool to_stdout = opt_.output == "-";
    nlohmann::json j{{"event", "fetched"},
                     {"server", core::to_string(server_)},
                     {"remote", opt_.remote},
                     {"output", opt_.output},
                     {"bytes", st.bytes},
                     {"seconds", secs},
                     {"mb_per_s", rate / 1e6},
                     {"blksize", settings_.blksize},
                     {"windowsize", settings_.windowsize},
                     {"retransmitted_blocks", st.retransmissions},
                     {"retransmissions", st.retransmissions},
                     {"acks_repeated", st.acks_repeated},
                     {"timeouts", st.timeouts},
                     {"simulated_losses", st.dropped}};
    if (tsize_) j["tsize"] = *tsize_;
    if (!digest.empty()) j["sha256"] = digest;
    char text[400];
    // The receiver's side of "retransmitted blocks": the resent blocks that arrived. A resend of a block
    // it never saw, with nothing later seen either (every loss in lockstep), looks like a first copy:
    // the timeouts say what the wait cost.
    std::snprintf(text, sizeof text,
                  "fetched %s -> %s: %llu bytes in %.3f s (%s), blksize %zu, windowsize %u, %llu retransmitted block(s) arrived, "
                  "%llu timeout(s)",
                  opt_.remote.c_str(), to_stdout ? "stdout" : opt_.output.c_str(), static_cast<unsigned long long>(st.bytes), secs,
                  human_rate(rate).c_str(), settings_.blksize, settings_.windowsize,
                  static_cast<unsigned long long>(st.retransmissions), static_cast<unsigned long long>(st.timeouts));
    std::string line = text;
    if (!digest.empty()) line += "\n" + digest + "  " + (to_stdout ? std::string("-") : opt_.output);
    if (to_stdout) {
      // stdout carries the file: the summary goes to stderr.
      std::fprintf(stderr, "%s\n", out_.json() ? core::reporter::dump(j).c_str() : line.c_str());
    } else {
      out_.result(j, line);
    }
    xfer_.reset();
    rt_.release();
  }

  void report_put(const transfer_stats& st) {
    const double secs = st.seconds();
    const double rate = secs > 0 ? static_cast<double>(st.bytes) / secs : 0;
    nlohmann::json j{{"event", "put"},
                     {"server", core::to_string(server_)},
                     {"local", local_},
                     {"remote", opt_.remote},
                     {"bytes", st.bytes},
                     {"seconds", secs},
                     {"mb_per_s", rate / 1e6},
                     {"blksize", settings_.blksize},
                     {"windowsize", settings_.windowsize},
                     {"retransmitted_blocks", st.retransmissions},
                     {"timeouts", st.timeouts},
                     {"simulated_losses", st.dropped}};
    char text[400];
    std::snprintf(text, sizeof text, "put %s -> %s: %llu bytes in %.3f s (%s), blksize %zu, windowsize %u, %llu retransmitted block(s)",
                  local_.c_str(), opt_.remote.c_str(), static_cast<unsigned long long>(st.bytes), secs, human_rate(rate).c_str(),
                  settings_.blksize, settings_.windowsize, static_cast<unsigned long long>(st.retransmissions));
    out_.result(j, text);
    xfer_.reset();
    rt_.release();
  }

  fetch_options opt_;
  core::runtime& rt_;
  core::reporter& out_;
  transfer::strand_type strand_;
  udp::socket sock_;
  asio::steady_timer timer_;
  asio::steady_timer progress_timer_;
  std::vector<std::uint8_t> buf_;
  udp::endpoint server_;
  udp::endpoint from_;
  client_wish wish_;
  transfer_settings settings_;
  std::optional<std::uint64_t> tsize_;
  std::unique_ptr<sink> dst_;
  std::shared_ptr<transfer> xfer_;
  core::outcome result_;
  int rcvbuf_ = 0;
  unsigned tries_ = 0;
  bool with_options_ = true;
  bool done_ = false;
  bool drawn_ = false;
  bool in_place_ = false;  // stdout, a device or a FIFO: no OUT.part
  std::string local_;      // put: the file sent
  bool writing_ = false;   // put (WRQ) rather than fetch (RRQ)
  std::unique_ptr<source> src_;
};

}  // namespace

core::outcome open_output(const fetch_options& opt, sink::options so, std::unique_ptr<sink>& dst) {
  so.target = opt.output;
  so.keep_partial = opt.keep_partial;
  so.overwrite = opt.force;
  std::error_code ec;
  if (opt.output != "-") {
    const auto st = fs::status(opt.output, ec);
    if (fs::is_directory(st))
      return core::outcome::fail(exit_code::local_io, "output " + opt.output + " is a directory", "give a file name with -o");
    if (fs::is_block_file(st))
      return core::outcome::fail(exit_code::local_io, "output " + opt.output + " is a block device",
                                 "netlab does not write onto disks: give a file name with -o");
    if (fs::is_character_file(st) || fs::is_fifo(st) || fs::is_socket(st)) {
      // Issue 15: like curl -o /dev/null, a device or FIFO is written into, never replaced by a
      // regular file: no OUT.part, no rename, no --force needed.
      so.stream = true;
    } else {
      if (fs::exists(st) && !opt.force)
        return core::outcome::fail(exit_code::local_io, "output " + opt.output + " exists", "use --force to replace it, or -o another name");
      so.temporary = opt.output + ".part";
      if (fs::exists(so.temporary, ec)) {
        if (!opt.force)
          return core::outcome::fail(exit_code::local_io, so.temporary.string() + " exists (left by an earlier fetch?)",
                                     "remove it, or use --force");
        fs::remove(so.temporary, ec);
      }
    }
  }
  if (so.stream && fs::is_fifo(fs::status(opt.output, ec))) core::log().debug("{}: waiting for a reader of the FIFO", opt.output);
  dst = sink::create(so, ec);
  if (!dst && so.stream && ec == std::errc::interrupted)  // a signal while a FIFO's open waited for its reader
    return core::outcome::fail(exit_code::interrupted, "interrupted while waiting for a reader of " + opt.output,
                               "a FIFO's writer waits until something opens it for reading, e.g. cat FIFO");
  if (!dst)
    return core::outcome::fail(exit_code::local_io, "create " + (so.temporary.empty() ? opt.output : so.temporary.string()) + ": " + ec.message(),
                               "check the directory exists and is writable");
  return core::outcome::success();
}

core::outcome resolve_output(fetch_options& opt) {
  if (opt.output == "-") return core::outcome::success();
  std::error_code ec;
  if (!fs::is_directory(opt.output, ec)) return core::outcome::success();
  const auto base = fs::path(opt.remote).filename().string();
  if (base.empty() || base == "." || base == "..")
    return core::outcome::fail(exit_code::local_io, "output " + opt.output + " is a directory and '" + opt.remote + "' names no file to save in it",
                               "give a file name with -o");
  opt.output = (fs::path(opt.output) / base).string();
  return core::outcome::success();
}

std::uint64_t receive_limit(std::optional<std::uint64_t> tsize, std::optional<std::uint64_t> max_size, bool netascii) noexcept {
  std::uint64_t limit = default_max_size;
  if (tsize) limit = netascii ? (*tsize > UINT64_MAX / 2 ? UINT64_MAX : *tsize * 2) : *tsize;
  if (max_size) limit = std::min(limit, *max_size);
  return limit;
}

std::size_t blksize_for_mtu(int mtu, bool ipv6) noexcept {
  const long b = static_cast<long>(mtu) - (ipv6 ? 40 : 20) - 8 - 4;
  return static_cast<std::size_t>(std::clamp<long>(b, 512, static_cast<long>(max_blksize)));
}

unsigned windowsize_for_buffer(int rcvbuf, std::size_t blksize, unsigned cap) noexcept {
  // Linux reports twice what it accounts; a datagram costs its size plus ~1 KiB of skb overhead.
  // Keep a window within half the buffer so a burst from the sender is not dropped.
  const std::size_t per = blksize + 1024;
  const std::size_t w = static_cast<std::size_t>(std::max(rcvbuf, 0)) / 2 / 2 / per;
  return static_cast<unsigned>(std::clamp<std::size_t>(w, 1, cap));
}

std::string progress_line(int columns, std::uint64_t bytes, std::optional<std::uint64_t> total, double bytes_per_s,
                          std::uint64_t retransmitted) {
  // Never the last column: writing it makes some terminals wrap (and the next \r redraw a new line).
  const std::size_t room = static_cast<std::size_t>(std::max(columns - 1, 1));
  const std::string amount = total ? core::human_bytes(static_cast<double>(bytes)) + " / " + core::human_bytes(static_cast<double>(*total))
                                   : core::human_bytes(static_cast<double>(bytes));
  const std::string rate = human_rate(bytes_per_s);
  const std::string retrans = "retrans " + std::to_string(retransmitted);
  std::string pct, eta;
  double fraction = 0;
  if (total && *total > 0) {
    fraction = std::min(1.0, static_cast<double>(bytes) / static_cast<double>(*total));
    char b[32];
    std::snprintf(b, sizeof b, "%5.1f%%", 100.0 * fraction);
    pct = b;
    const double left = bytes_per_s > 0 ? static_cast<double>(*total - std::min(*total, bytes)) / bytes_per_s : 0;
    eta = "ETA " + std::to_string(static_cast<long long>(left + 0.5)) + "s";
  }
  // Shown as "[bar]  pct  amount  rate  ETA  retrans". When that does not fit, parts go in this
  // order: retransmissions, ETA, the bar, the rate, the percentage; the amount always stays. The bar
  // takes the room left, 8 to 30 cells.
  struct level {
    bool pct, rate, eta, retrans, bar;
  };
  static constexpr level levels[] = {{true, true, true, true, true},    {true, true, true, false, true},
                                     {true, true, false, false, true},  {true, true, false, false, false},
                                     {true, false, false, false, false}, {false, false, false, false, false}};
  for (const auto& l : levels) {
    std::string text;
    const std::string* shown[] = {l.pct ? &pct : nullptr, &amount, l.rate ? &rate : nullptr, l.eta ? &eta : nullptr,
                                  l.retrans ? &retrans : nullptr};
    for (const std::string* p : shown) {
      if (!p || p->empty()) continue;
      if (!text.empty()) text += "  ";
      text += *p;
    }
    if (l.bar && total && *total > 0) {
      const std::size_t fixed = text.size() + 4;  // "[", "]" and two spaces
      if (fixed + 8 > room) continue;
      const std::size_t cells = std::min<std::size_t>(30, room - fixed);
      const auto fill = std::min(cells, static_cast<std::size_t>(fraction * static_cast<double>(cells)));
      return "[" + std::string(fill, '#') + std::string(cells - fill, '.') + "]  " + text;
    }
    if (text.size() <= room) return text;
  }
  return amount.substr(0, room);
}

core::outcome put(const put_options& options, core::runtime& rt, core::reporter& out) {
  fetch_options opt;
  opt.server = options.server;
  opt.remote = options.remote;
  opt.wish = options.wish;
  opt.netascii = options.netascii;
  opt.progress = options.progress;
  opt.faults = options.faults;
  auto f = std::make_shared<fetcher>(opt, rt, out, options.local);
  auto r = f->prepare();
  if (!r.ok()) return r;
  f->start();
  rt.run();
  return f->result();
}

core::outcome fetch(const fetch_options& options, core::runtime& rt, core::reporter& out) {
  fetch_options opt = options;
  auto where = resolve_output(opt);
  if (!where.ok()) return where;
  if (opt.proto == protocol::raw) return fetch_raw(opt, rt, out);
  auto f = std::make_shared<fetcher>(opt, rt, out);
  auto r = f->prepare();
  if (!r.ok()) return r;
  f->start();
  rt.run();
  return f->result();
}

}  // namespace netlab::tftp
