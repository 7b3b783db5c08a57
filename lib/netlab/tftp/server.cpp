#include "netlab/tftp/server.hpp"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>

#include <asio/ip/udp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "netlab/core/lifecycle.hpp"
#include "netlab/core/log.hpp"
#include "netlab/core/server_events.hpp"
#include "netlab/core/net.hpp"
#include "netlab/tftp/detail/listen.hpp"
#include "netlab/tftp/detail/listen_guard.hpp"
#include "netlab/tftp/raw.hpp"
#include "netlab/tftp/transfer.hpp"

namespace netlab::tftp {
namespace {

using asio::ip::udp;
namespace fs = std::filesystem;

constexpr int socket_buffer = 4 << 20;  // per-transfer SO_SNDBUF/SO_RCVBUF wish (the kernel caps it)

// ERROR replies to malformed requests on the listening port: a token bucket of error_burst, refilled at
// error_rate per second. Garbage costs the sender nothing (a spoofed source included), so the answers
// to it must be bounded; past the bucket they are dropped (and counted). A client sending garbage is
// broken: a few answers are enough to tell its author.
constexpr double error_rate = 20.0;
constexpr double error_burst = 40.0;

std::string temp_name(const std::string& leaf) {
  static std::atomic<unsigned> counter{0};
  std::random_device rd;
  return "." + leaf + ".netlab-" + std::to_string(rd() ^ counter++) + ".part";
}

class server : public std::enable_shared_from_this<server> {
public:
  server(const serve_options& opt, core::runtime& rt, core::reporter& out)
      : opt_(opt), rt_(rt), out_(out), strand_(asio::make_strand(rt.ioc())), sock_(strand_), buf_(max_packet + 1) {}

  asio::strand<asio::io_context::executor_type> strand() const { return strand_; }

  core::outcome start(std::shared_ptr<core::lifecycle> lc) {
    lc_ = std::move(lc);
    auto r = detail::open_server(opt_, sock_, root_, local_);
    if (!r.ok()) return r;
    std::error_code dir_ec;
    dir_ = root_dir::open(root_, dir_ec);
    if (!dir_) return core::outcome::fail(exit_code::usage, "--root " + opt_.root + ": " + dir_ec.message());
    const auto local = local_;
    core::log().info("udp-file serve (TFTP) on {} root {} ({}; max {} transfers, blksize <= {}, windowsize <= {})",
                     core::to_string(local), root_.string(), opt_.allow_upload ? (opt_.allow_overwrite ? "uploads may overwrite" : "uploads allowed") : "read-only",
                     opt_.max_transfers, opt_.limits.max_blksize, opt_.limits.max_windowsize);
    out_.listening("tftp", core::address_string(local.address()), local.port());
    asio::post(strand_, [self = shared_from_this()] { self->receive(); });
    return core::outcome::success();
  }

private:
  void receive() {
    sock_.async_receive_from(asio::buffer(buf_), peer_, [self = shared_from_this()](std::error_code ec, std::size_t n) {
      if (self->stopping_) return;
      if (ec) {
        if (ec != asio::error::operation_aborted && ec != asio::error::connection_refused)
          core::log().warn("receive: {}", ec.message());
        return self->receive();
      }
      self->on_request(n);
      self->receive();
    });
  }

  // True if an ERROR may go out now (token bucket); false: drop it, and say so once per second at most.
  bool error_budget() {
    const auto now = std::chrono::steady_clock::now();
    if (errors_.take(now)) return true;
    ++errors_suppressed_;
    if (now - suppressed_logged_ >= std::chrono::seconds(1)) {
      suppressed_logged_ = now;
      core::log().info("ERROR replies over {}/s: {} dropped so far (a flood of bad requests?)", error_rate, errors_suppressed_);
    }
    return false;
  }

  /// Sends ERROR `code` to `to`; `always`: not subject to the malformed-request rate limit.
  void reply_error(const udp::endpoint& to, error_code code, const std::string& msg, bool always = false) {
    if (!always && !error_budget()) return;
    auto bytes = encode(error{static_cast<std::uint16_t>(code), msg});
    std::error_code ec;
    sock_.send_to(asio::buffer(bytes), to, 0, ec);
  }

  void on_request(std::size_t n) {
    auto& log = core::log();
    const auto peer = peer_;
    const std::string who = core::to_string(peer);
    if (n > max_packet) {
      log.debug("{}: dropped an oversized datagram ({} B)", who, n);
      return;
    }
    if (detail::is_own_endpoint(peer, local_)) {  // spoofed: answering it would loop
      ++dropped_;
      log.debug("{}: dropped a datagram from the server's own port (spoofed source)", who);
      return;
    }
    // Only requests are answered here. ERROR, ACK, DATA, OACK or garbage on the listening port draw
    // nothing: replying to an ERROR with an ERROR is how two servers (or one, spoofed) loop forever.
    const bool says_request = n >= 2 && buf_[0] == 0 && (buf_[1] == 1 || buf_[1] == 2);
    if (!says_request) {
      ++dropped_;
      if (log.should_log(spdlog::level::debug))
        log.debug("{}: dropped a non-request datagram on the listening port ({} B, opcode {})", who, n,
                  n >= 2 ? (buf_[0] << 8 | buf_[1]) : -1);
      return;
    }
    auto pk = parse(buf_.data(), n);
    if (log.should_log(spdlog::level::trace)) log.trace("{}: recv {}", who, describe(pk));
    auto* req = std::get_if<request>(&pk);
    if (!req) {
      const std::string why = std::holds_alternative<bad_packet>(pk) ? "malformed request: " + std::get<bad_packet>(pk).reason
                                                                      : "only RRQ and WRQ are accepted on this port";
      log.debug("{}: {} (ERROR 4, rate-limited)", who, why);
      return reply_error(peer, error_code::illegal_operation, why);
    }
    const bool write = req->op == opcode::wrq;
    const char* op = write ? "WRQ" : "RRQ";
    const std::string label = who + " " + op + " " + req->filename;
    auto refuse = [&](error_code code, const std::string& why) {
      // A well-formed request is always answered: a real client waits for the answer, and a refusal is
      // smaller than the DATA the same request draws when it succeeds. Only replies to malformed
      // datagrams are rate-limited.
      log.info("{}: refused: {} (ERROR {})", label, why, static_cast<int>(code));
      reply_error(peer, code, why, true);
      if (out_.json()) {
        nlohmann::json j = transfer_event(++transfers_started_, peer, write, req->filename);
        j["result"] = "error";
        j["error"] = "refused: " + why + " (ERROR " + std::to_string(static_cast<int>(code)) + ")";
        core::server_event(out_, j);
      }
    };
    const bool netascii = iequals(req->mode, "netascii");
    if (!netascii && !iequals(req->mode, "octet"))
      return refuse(error_code::illegal_operation, "mode '" + req->mode + "' is not supported (use octet or netascii)");
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (peers_.count(peer)) {
        log.debug("{}: duplicate request while its transfer runs: ignored", label);
        return;
      }
      if (active_.size() >= opt_.max_transfers)
        return refuse(error_code::not_defined, "server busy: " + std::to_string(opt_.max_transfers) + " transfers running, try again later");
      auto it = per_client_.find(peer.address());
      if (it != per_client_.end() && it->second >= opt_.max_per_client)
        return refuse(error_code::not_defined, "too many transfers from your address (" + std::to_string(opt_.max_per_client) +
                                                   " running), try again later");
    }
    if (write && !opt_.allow_upload) return refuse(error_code::access_violation, "uploads are disabled on this server");
    // Opened beneath the root's descriptor and checked on the opened file: no path is looked up twice.
    auto where = write ? open_for_write(*dir_, req->filename, opt_.allow_overwrite) : open_for_read(*dir_, req->filename);
    if (!where.ok()) return refuse(where.refusal, where.reason);

    transfer::setup s;
    s.label = label;
    s.faults = opt_.faults;
    if (opt_.faults.active()) s.faults.seed = opt_.faults.seed + transfers_started_;  // repeatable, not identical
    server_answer ans;
    std::error_code ec;
    if (!write) {
      s.src = source::open(std::move(where.fd), netascii, ec);
      if (!s.src) return refuse(error_code::access_violation, "cannot open: " + ec.message());
      ans = negotiate(*req, opt_.limits, s.src->size_known() ? s.src->size() : 0);
      if (!s.src->size_known()) {  // netascii: the size on the wire is known only at the end; tsize is optional
        ans.accepted.erase(std::remove_if(ans.accepted.begin(), ans.accepted.end(),
                                          [](const option& o) { return iequals(o.name, "tsize"); }),
                           ans.accepted.end());
      }
      s.sending = true;
      s.await_ack0 = !ans.accepted.empty();
    } else {
      sink::options so;
      so.dir_fd = where.fd.get();  // duplicated by the sink
      so.target = where.leaf;
      so.temporary = temp_name(where.leaf);
      so.netascii = netascii;
      so.overwrite = opt_.allow_overwrite;
      s.dst = sink::create(so, ec);
      if (!s.dst) return refuse(error_code::access_violation, "cannot create: " + ec.message());
      ans = negotiate(*req, opt_.limits, 0);
      s.sending = false;
      s.dally = std::min<std::chrono::milliseconds>(ans.settings.timeout * 2, std::chrono::milliseconds(2000));
    }
    s.settings = ans.settings;
    s.settings.max_silence = opt_.max_silence;
    if (!ans.accepted.empty()) s.preamble = encode(oack{ans.accepted});
    else if (write) s.preamble = encode(ack{0});

    // A new socket (a new transfer ID, RFC 1350) on the address the server listens on.
    auto strand = asio::make_strand(rt_.ioc());
    udp::socket ts(strand);
    ts.open(local_.protocol(), ec);
    if (!ec && local_.address().is_v6() && local_.address().is_unspecified()) ts.set_option(asio::ip::v6_only(false), ec);
    if (!ec) ts.bind(udp::endpoint(local_.address(), 0), ec);
    if (!ec) ts.connect(peer, ec);
    if (ec) return refuse(error_code::not_defined, "cannot open a transfer socket: " + ec.message());
    std::error_code ignored;
    ts.set_option(asio::socket_base::send_buffer_size(socket_buffer), ignored);
    ts.set_option(asio::socket_base::receive_buffer_size(socket_buffer), ignored);

    const auto id = ++transfers_started_;
    const std::string file = req->filename;
    const std::string opts_text = describe_options(ans);
    log.debug("{}: start ({}, {}){}", label, netascii ? "netascii" : "octet", opts_text,
              s.src && s.src->size_known() ? ", " + std::to_string(s.src->size()) + " B" : std::string());
    auto settings = s.settings;
    auto t = std::make_shared<transfer>(std::move(ts), strand, std::move(s),
                                        [self = shared_from_this(), id, peer, label, file, settings, write](const core::outcome& o, const transfer_stats& st) {
                                          self->on_done(id, peer, label, file, settings, write, o, st);
                                        });
    // The lifecycle's "close this transfer": gracefully, let it finish (within --grace); at once,
    // abort it with an ERROR to the peer.
    const auto lc_id = lc_->add([w = std::weak_ptr<transfer>(t)](bool graceful) {
      if (graceful) return;
      if (auto tr = w.lock())
        tr->abort(error_code::not_defined, "server shutting down",
                  core::outcome::fail(exit_code::interrupted, "aborted: the server is shutting down"));
    });
    {
      std::lock_guard<std::mutex> lock(mu_);
      active_[id] = {t, lc_id};
      peers_.insert(peer);
      ++per_client_[peer.address()];
    }
    t->start();
  }

  static std::string describe_options(const server_answer& a) {
    if (a.accepted.empty()) return "no options: RFC 1350";
    std::string s = "OACK";
    for (const auto& o : a.accepted) s += " " + o.name + "=" + o.value;
    return s;
  }

  /// The fields every `transfer` event has (--json): the rest (bytes, seconds, result) by the caller.
  static nlohmann::json transfer_event(std::uint64_t id, const udp::endpoint& peer, bool write, const std::string& file) {
    return nlohmann::json{{"event", "transfer"}, {"proto", "tftp"},          {"id", id}, {"peer", core::to_string(peer)},
                          {"op", write ? "write" : "read"}, {"file", file}, {"bytes", 0}, {"seconds", 0.0}};
  }

  void on_done(std::uint64_t id, const udp::endpoint& peer, const std::string& label, const std::string& file,
               const transfer_settings& set, bool write, const core::outcome& o, const transfer_stats& st) {
    const double secs = st.seconds();
    const double mbps = secs > 0 ? static_cast<double>(st.bytes) / secs / 1e6 : 0.0;
    auto& log = core::log();
    if (o.ok()) {
      log.info("{}: {} {} B in {:.3f} s ({:.1f} MB/s), blksize {}, windowsize {}, {} retransmitted block(s){}{}", label,
               write ? "received" : "sent", st.bytes, secs, mbps, set.blksize, set.windowsize, st.retransmissions,
               write ? " arrived" : "", st.dropped ? ", " + std::to_string(st.dropped) + " simulated loss(es)" : std::string());
    } else if (write) {
      log.warn("{} (after {} B received in {:.3f} s, {} retransmitted block(s) arrived); partial upload removed", o.what, st.bytes,
               secs, st.retransmissions);
    } else {
      // Issue 15: what really went out, not the completed-transfer counter (which said "after 0 B").
      log.warn("{} (after {} B sent, {} B acknowledged, in {:.3f} s, {} retransmitted block(s))", o.what, st.bytes_sent,
               st.bytes, secs, st.retransmissions);
    }
    if (out_.json()) {
      nlohmann::json j = transfer_event(id, peer, write, file);
      j["bytes"] = st.bytes;
      if (!write) j["bytes_sent"] = st.bytes_sent;
      j["seconds"] = secs;
      j["blksize"] = set.blksize;
      j["windowsize"] = set.windowsize;
      j["retransmitted_blocks"] = st.retransmissions;
      j["timeouts"] = st.timeouts;
      j["result"] = o.ok() ? "ok" : "error";
      if (!o.ok()) j["error"] = o.what;
      core::server_event(out_, j);
    }
    core::lifecycle::session_id lc_id = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto a = active_.find(id);
      if (a != active_.end()) {
        lc_id = a->second.second;
        active_.erase(a);
      }
      peers_.erase(peer);
      auto it = per_client_.find(peer.address());
      if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
    }
    lc_->remove(lc_id);
  }

 public:

  /// After run() returned: drops the transfers an immediate stop (second signal) left unfinished.
  /// Each holds this server through its completion handler, so they would otherwise keep each
  /// other alive past exit (LeakSanitizer).
  void drop_transfers() {
    std::lock_guard<std::mutex> lock(mu_);
    active_.clear();
  }

  /// The lifecycle's "stop accepting" (on strand_): close the listening port.
  void stop_accepting() {
    if (stopping_) return;
    stopping_ = true;
    std::error_code ec;
    sock_.close(ec);
    core::log().info("stopped ({} datagram(s) dropped on the listening port, {} ERROR repl(ies) to malformed requests "
                     "over the rate limit); running transfers may finish within --grace",
                     dropped_, errors_suppressed_);
  }

 private:
  serve_options opt_;
  core::runtime& rt_;
  core::reporter& out_;
  asio::strand<asio::io_context::executor_type> strand_;
  udp::socket sock_;
  std::shared_ptr<core::lifecycle> lc_;
  std::vector<std::uint8_t> buf_;
  udp::endpoint peer_;
  udp::endpoint local_;
  fs::path root_;
  std::unique_ptr<root_dir> dir_;
  detail::token_bucket errors_{error_rate, error_burst};
  std::chrono::steady_clock::time_point suppressed_logged_{};
  std::uint64_t errors_suppressed_ = 0;
  std::uint64_t dropped_ = 0;
  std::mutex mu_;
  std::map<asio::ip::address, unsigned> per_client_;
  std::map<std::uint64_t, std::pair<std::shared_ptr<transfer>, core::lifecycle::session_id>> active_;
  std::set<udp::endpoint> peers_;
  std::uint64_t transfers_started_ = 0;
  std::atomic<bool> stopping_{false};
};

}  // namespace

namespace detail {
core::outcome open_server(const serve_options& opt, udp::socket& sock, fs::path& root, udp::endpoint& local) {
  std::error_code ec;
  root = fs::canonical(opt.root, ec);
  if (ec || !fs::is_directory(root))
    return core::outcome::fail(exit_code::usage, "--root " + opt.root + ": " + (ec ? ec.message() : "not a directory"),
                               "give an existing directory to serve, e.g. --root .");
  auto r = core::bind_udp(sock, opt.listen);
  if (!r.ok()) return r;
  local = sock.local_endpoint(ec);
  if (ec) return core::outcome::fail(ec, "bind " + opt.listen.to_string());
  return core::outcome::success();
}
}  // namespace detail

core::outcome serve(const serve_options& opt, core::runtime& rt, core::reporter& out) {
  if (opt.proto == protocol::raw) return serve_raw(opt, rt, out);
  auto s = std::make_shared<server>(opt, rt, out);
  auto lc = core::lifecycle::create(rt, s->strand(), "transfer(s)", opt.grace, [w = std::weak_ptr<server>(s)] {
    if (auto srv = w.lock()) srv->stop_accepting();
  });
  auto r = s->start(lc);
  if (!r.ok()) return r;
  lc->watch_signals();
  rt.run();
  s->drop_transfers();
  return core::outcome::success();
}

}  // namespace netlab::tftp
