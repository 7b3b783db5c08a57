#include "netlab/tftp/raw.hpp"

#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>

#include <algorithm>
#include <cmath>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <sstream>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <asio/ip/udp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "netlab/core/lifecycle.hpp"
#include "netlab/core/log.hpp"
#include "netlab/core/server_events.hpp"
#include "netlab/core/net.hpp"
#include "netlab/tftp/client.hpp"
#include "netlab/tftp/detail/listen.hpp"
#include "netlab/tftp/fault.hpp"
#include "netlab/tftp/files.hpp"
#include "netlab/tftp/server.hpp"

namespace netlab::tftp {

std::string raw_request(std::string_view verb, std::string_view cookie, std::string_view name) {
  std::string r;
  r.reserve(std::max(raw_min_request, verb.size() + cookie.size() + name.size() + 2));
  r.append(verb).append(" ").append(cookie).append(" ").append(name);
  if (r.size() < raw_min_request) r.resize(raw_min_request, '\0');
  return r;
}

raw_request_parts parse_raw_request(const std::uint8_t* p, std::size_t n) {
  raw_request_parts r;
  std::string_view text(reinterpret_cast<const char*>(p), n);
  text = text.substr(0, text.find('\0'));  // the padding
  const auto a = text.find(' ');
  if (a == std::string_view::npos) return r;
  const auto b = text.find(' ', a + 1);
  if (b == std::string_view::npos) return r;
  r.verb = std::string(text.substr(0, a));
  r.cookie = std::string(text.substr(a + 1, b - a - 1));
  r.name = std::string(text.substr(b + 1));
  r.ok = true;
  return r;
}

std::string raw_cookies::for_period(std::string_view peer, std::uint64_t period) const {
  std::uint8_t msg[8 + 64];
  for (int i = 0; i < 8; ++i) msg[i] = static_cast<std::uint8_t>(period >> (56 - 8 * i));
  const std::size_t k = std::min(peer.size(), sizeof msg - 8);
  std::copy_n(reinterpret_cast<const std::uint8_t*>(peer.data()), k, msg + 8);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()), msg, 8 + k, mac, &len);
  static const char hex[] = "0123456789abcdef";
  std::string out(raw_cookie_chars, '0');
  for (std::size_t i = 0; i < raw_cookie_chars / 2; ++i) {
    out[2 * i] = hex[mac[i] >> 4];
    out[2 * i + 1] = hex[mac[i] & 15];
  }
  return out;
}

std::string raw_cookies::issue(std::string_view peer, std::uint64_t now_s) const { return for_period(peer, now_s / period_s); }

bool raw_cookies::check(std::string_view cookie, std::string_view peer, std::uint64_t now_s) const {
  if (cookie.size() != raw_cookie_chars) return false;
  const auto period = now_s / period_s;
  for (std::uint64_t p : {period, period - 1}) {
    if (p > period) break;  // period 0 has no predecessor
    const auto want = for_period(peer, p);
    if (CRYPTO_memcmp(want.data(), cookie.data(), raw_cookie_chars) == 0) return true;
  }
  return false;
}

raw_pacer::raw_pacer(std::uint64_t rate, std::uint64_t burst, clock::time_point now) noexcept
    : rate_(static_cast<double>(std::max<std::uint64_t>(rate, 1))), burst_(static_cast<double>(burst)), tokens_(burst_), last_(now) {}

void raw_pacer::refill(clock::time_point now) noexcept {
  if (now <= last_) return;
  tokens_ = std::min(burst_, tokens_ + rate_ * std::chrono::duration<double>(now - last_).count());
  last_ = now;
}

bool raw_pacer::take(std::size_t n, clock::time_point now) noexcept {
  refill(now);
  if (tokens_ < static_cast<double>(n)) return false;
  tokens_ -= static_cast<double>(n);
  return true;
}

std::chrono::microseconds raw_pacer::wait_for(std::size_t n, clock::time_point now) noexcept {
  refill(now);
  const double missing = static_cast<double>(n) - tokens_;
  if (missing <= 0) return std::chrono::microseconds(0);
  return std::chrono::microseconds(static_cast<std::int64_t>(std::ceil(missing / rate_ * 1e6)));
}

std::uint64_t raw_burst(std::uint64_t rate) noexcept { return std::max<std::uint64_t>(2 * raw_chunk, rate / 200); }

namespace {

using asio::ip::udp;
using clock = std::chrono::steady_clock;
namespace fs = std::filesystem;
constexpr unsigned pump_burst = 256;  // datagrams per handler, so requests and signals are still served

// The secret of this server's cookies. RAND_bytes does not fail on Linux with getrandom(); should it,
// random_device (also getrandom) still gives an unguessable key.
std::array<std::uint8_t, 32> draw_secret() {
  std::array<std::uint8_t, 32> s{};
  if (RAND_bytes(s.data(), static_cast<int>(s.size())) != 1) {
    std::random_device rd;
    for (auto& b : s) b = static_cast<std::uint8_t>(rd());
  }
  return s;
}

// The bytes a cookie is bound to: the client's address and port.
std::string peer_id(const udp::endpoint& p) {
  std::string id;
  if (p.address().is_v4()) {
    const auto b = p.address().to_v4().to_bytes();
    id.assign(b.begin(), b.end());
  } else {
    const auto b = p.address().to_v6().to_bytes();
    id.assign(b.begin(), b.end());
  }
  id.push_back(static_cast<char>(p.port() >> 8));
  id.push_back(static_cast<char>(p.port() & 0xff));
  return id;
}

std::uint64_t now_seconds() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(clock::now().time_since_epoch()).count());
}

// One stream of a file to a verified peer; the server's pump sends it one datagram at a time.
struct stream {
  udp::endpoint peer;
  std::unique_ptr<source> src;
  fault_injector faults;
  std::uint64_t offset = 0;
  std::uint64_t sent = 0, dropped = 0;
  std::string label;
  std::uint64_t id = 0;   // the `transfer` event's id
  std::string file;       // as requested
  std::string error;      // why the stream stopped early (empty: it sent the whole file)
  clock::time_point started = clock::now();
  stream(udp::endpoint p, std::unique_ptr<source> f, const fault_options& fo, std::string l)
      : peer(std::move(p)), src(std::move(f)), faults(fo), label(std::move(l)) {}

  std::size_t next_size() const { return static_cast<std::size_t>(std::min<std::uint64_t>(raw_chunk, src->size() - offset)); }

  // Sends the next datagram; false when the stream is over (complete, or failed).
  bool send_one(udp::socket& sock) {
    std::error_code ec;
    const auto n = next_size();
    if (!src->ensure(offset, offset + n, ec)) {
      core::log().warn("{}: read: {}", label, ec.message());
      error = "read: " + ec.message();
      return false;
    }
    if (faults.next() == fault_injector::verdict::drop) {
      ++dropped;
    } else {
      sock.send_to(asio::buffer(src->at(offset), n), peer, 0, ec);
      if (ec) {
        core::log().warn("{}: send: {}", label, ec.message());
        error = "send: " + ec.message();
        return false;
      }
      ++sent;
    }
    offset += n;
    if (offset < src->size()) return true;
    const double secs = std::chrono::duration<double>(clock::now() - started).count();
    core::log().info("{}: streamed {} B in {} datagram(s) in {:.3f} s ({} simulated losses), no acknowledgements", label,
                     src->size(), sent, secs, dropped);
    return false;
  }
};

class raw_server : public std::enable_shared_from_this<raw_server> {
public:
  raw_server(const serve_options& opt, core::runtime& rt, core::reporter& out)
      : opt_(opt), out_(out), strand_(asio::make_strand(rt.ioc())), sock_(strand_), pace_timer_(strand_),
        buf_(2048), cookies_(draw_secret()), pacer_(opt.raw_rate, raw_burst(opt.raw_rate), clock::now()) {}

  core::outcome start() {
    auto r = detail::open_server(opt_, sock_, root_, local_);
    if (!r.ok()) return r;
    std::error_code dir_ec;
    dir_ = root_dir::open(root_, dir_ec);
    if (!dir_) return core::outcome::fail(exit_code::usage, "--root " + opt_.root + ": " + dir_ec.message());
    core::log().info("udp-file serve (raw streaming, no reliability) on {} root {}; at most {} B/s, {} streams",
                     core::to_string(local_), root_.string(), opt_.raw_rate, opt_.max_transfers);
    if (!local_.address().is_loopback())
      core::log().warn("raw mode listens on {}, beyond this machine: anyone who can reach it can read the files under {} "
                       "(at most {} B/s, after a cookie round trip)",
                       core::to_string(local_), root_.string(), opt_.raw_rate);
    out_.listening("udp-raw", core::address_string(local_.address()), local_.port());
    asio::post(strand_, [self = shared_from_this()] { self->receive(); });
    return core::outcome::success();
  }

  asio::strand<asio::io_context::executor_type> strand() const { return strand_; }

  /// The lifecycle's "stop accepting" (on strand_): the streams share the one socket and have no
  /// close of their own (raw mode has no ERROR), so closing it ends them all; no sessions.
  void stop_accepting() {
    std::error_code e;
    sock_.close(e);
    pace_timer_.cancel();
    for (auto& st : active_) {
      st->error = "the server stopped";
      report(*st);
    }
    active_.clear();
    core::log().info("stopped");
  }

private:
  void receive() {
    sock_.async_receive_from(asio::buffer(buf_), peer_, [self = shared_from_this()](std::error_code ec, std::size_t n) {
      if (ec == asio::error::operation_aborted || !self->sock_.is_open()) return;
      if (!ec) self->on_datagram(n);
      self->receive();
    });
  }

  void reply(const std::string& text) {
    std::error_code ec;
    sock_.send_to(asio::buffer(text), peer_, 0, ec);
  }

  // At most raw_cookie_replies_per_second COOKIE replies per second, whoever asks.
  bool cookie_budget() {
    const auto now = clock::now();
    if (now - cookie_window_ >= std::chrono::seconds(1)) {
      if (cookie_refused_) core::log().debug("{} COOKIE replies refused in the last second (limit {}/s)", cookie_refused_,
                                             raw_cookie_replies_per_second);
      cookie_window_ = now;
      cookie_replies_ = 0;
      cookie_refused_ = 0;
    }
    if (cookie_replies_ >= raw_cookie_replies_per_second) {
      ++cookie_refused_;
      return false;
    }
    ++cookie_replies_;
    return true;
  }

  void on_datagram(std::size_t n) {
    auto& log = core::log();
    // Our own address as the source is a spoofed datagram: answering it would talk to ourselves.
    if (peer_.port() == local_.port() && (peer_.address() == local_.address() || local_.address().is_unspecified())) return;
    const auto req = parse_raw_request(buf_.data(), n);
    // Anything but a request (a reply of another server, garbage) is never answered: no loops.
    if (!req.ok || (req.verb != "STAT" && req.verb != "GET")) {
      if (log.should_log(spdlog::level::debug)) log.debug("{}: ignored a {}-byte datagram that is not a request", core::to_string(peer_), n);
      return;
    }
    const auto id = peer_id(peer_);
    if (!cookies_.check(req.cookie, id, now_seconds())) {
      // Unverified: the source address may be forged. One small reply, never larger than the request.
      if (n < raw_cookie_reply || !cookie_budget()) {
        if (log.should_log(spdlog::level::debug)) log.debug("{}: {} without a valid cookie, {} B: not answered", core::to_string(peer_), req.verb, n);
        return;
      }
      return reply("COOKIE " + cookies_.issue(id, now_seconds()));
    }
    on_request(req);
  }

  void on_request(const raw_request_parts& req) {
    const std::string who = core::to_string(peer_);
    // Opened beneath the root's descriptor (the same rules as TFTP: no "..", no symlink out, regular
    // files only, O_NONBLOCK so a FIFO cannot hang the server), then only that descriptor is used: a
    // name swapped for a symlink after a check cannot lead outside.
    auto f = open_for_read(*dir_, req.name);
    if (!f.ok()) {
      core::log().info("{}: {} {}: refused: {}", who, req.verb, req.name, f.reason);
      report_refusal(req.name, f.reason);  // a refused STAT ends the client's fetch too
      return reply("ERR " + f.reason);
    }
    if (req.verb == "STAT") {
      std::uint64_t size = 0;
      std::string digest;
      if (!digest_of(f.fd.get(), size, digest)) return reply("ERR " + digest);
      return reply("OK " + std::to_string(size) + " " + digest);
    }
    for (const auto& s : active_)
      if (s->peer == peer_) return;  // a repeated GET while its stream runs
    if (active_.size() >= opt_.max_transfers) {
      core::log().info("{}: GET {}: refused: {} streams running (--max-transfers)", who, req.name, active_.size());
      report_refusal(req.name, "server busy");
      return reply("ERR server busy: " + std::to_string(active_.size()) + " streams running, try again later");
    }
    std::error_code ec;
    auto src = source::open(std::move(f.fd), false, ec);
    if (!src) return reply("ERR " + ec.message());
    core::log().info("{}: GET {}: streaming {} B in 512-byte datagrams", who, req.name, src->size());
    auto st = std::make_shared<stream>(peer_, std::move(src), opt_.faults, who + " GET " + req.name);
    st->id = ++streams_;
    st->file = req.name;
    if (st->src->size() == 0) return report(*st);
    active_.push_back(std::move(st));
    if (!pump_scheduled_) pump();
  }

  // The digest of an opened file, computed once per version (device, inode, size, mtime): a client
  // that repeats STAT does not make the server hash a large file again and again. false: `digest` is why.
  bool digest_of(int fd, std::uint64_t& size, std::string& digest) {
    struct ::stat st {};
    if (::fstat(fd, &st) != 0) {
      digest = std::error_code(errno, std::generic_category()).message();
      return false;
    }
    const std::string key = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
                            std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
    if (auto it = digests_.find(key); it != digests_.end()) {
      size = it->second.first;
      digest = it->second.second;
      return true;
    }
    std::error_code ec;
    digest = sha256_fd(fd, size, ec);
    if (ec) {
      digest = ec.message();
      return false;
    }
    if (digests_.size() >= 256) digests_.clear();  // a bound, not an LRU: a lab serves few files
    digests_.emplace(key, std::make_pair(size, digest));
    return true;
  }

  // Sends the streams' datagrams in turn, as fast as the pacer allows, then sleeps until it allows more.
  /// --json: the `transfer` event of a GET stream that ended (raw mode has no acknowledgements: `bytes`
  /// counts the bytes sent, simulated losses included, as the stream cannot know what arrived).
  void report(const stream& st) {
    if (!out_.json()) return;
    nlohmann::json j{{"event", "transfer"}, {"proto", "raw"},  {"id", st.id},
                     {"peer", core::to_string(st.peer)},     {"op", "read"}, {"file", st.file},
                     {"bytes", st.offset},                   {"seconds", std::chrono::duration<double>(clock::now() - st.started).count()},
                     {"datagrams", st.sent},                 {"simulated_losses", st.dropped},
                     {"result", st.error.empty() ? "ok" : "error"}};
    if (!st.error.empty()) j["error"] = st.error;
    core::server_event(out_, j);
  }

  void report_refusal(const std::string& file, const std::string& why) {
    if (!out_.json()) return;
    core::server_event(out_, {{"event", "transfer"}, {"proto", "raw"}, {"id", ++streams_}, {"peer", core::to_string(peer_)},
                              {"op", "read"}, {"file", file}, {"bytes", 0}, {"seconds", 0.0}, {"result", "error"},
                              {"error", "refused: " + why}});
  }

  void pump() {
    pump_scheduled_ = false;
    if (!sock_.is_open()) return;
    const auto now = clock::now();
    unsigned budget = pump_burst;
    while (!active_.empty() && budget > 0) {
      auto s = active_.front();
      if (!pacer_.take(s->next_size(), now)) break;
      --budget;
      active_.pop_front();
      if (s->send_one(sock_)) active_.push_back(std::move(s));
      else report(*s);
    }
    if (active_.empty()) return;
    pump_scheduled_ = true;
    if (budget == 0) {
      asio::post(strand_, [self = shared_from_this()] { self->pump(); });
      return;
    }
    // Sleep at least 1 ms: the bucket holds 5 ms of sending, so a longer sleep costs no throughput and
    // a paced server wakes up about 1,000 times a second instead of once per datagram.
    const auto wait = std::max(pacer_.wait_for(active_.front()->next_size(), clock::now()), std::chrono::microseconds(1000));
    pace_timer_.expires_after(wait);
    pace_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (!ec) self->pump();
    });
  }

  serve_options opt_;
  core::reporter& out_;
  asio::strand<asio::io_context::executor_type> strand_;
  udp::socket sock_;
  asio::steady_timer pace_timer_;
  std::vector<std::uint8_t> buf_;
  udp::endpoint peer_;
  udp::endpoint local_;
  fs::path root_;
  std::unique_ptr<root_dir> dir_;
  raw_cookies cookies_;
  raw_pacer pacer_;
  std::deque<std::shared_ptr<stream>> active_;
  std::uint64_t streams_ = 0;  // GET requests so far: the transfer events' ids
  std::map<std::string, std::pair<std::uint64_t, std::string>> digests_;
  bool pump_scheduled_ = false;
  clock::time_point cookie_window_{};
  unsigned cookie_replies_ = 0;
  unsigned cookie_refused_ = 0;
};

// Incremental SHA-256 of what arrived (the sink's own digest is only known after commit, and a
// damaged stream is never committed).
class digest {
public:
  digest() : md_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(md_, EVP_sha256(), nullptr); }
  ~digest() { EVP_MD_CTX_free(md_); }
  digest(const digest&) = delete;
  digest& operator=(const digest&) = delete;
  void update(const std::uint8_t* p, std::size_t n) { EVP_DigestUpdate(md_, p, n); }
  std::string hex() {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_DigestFinal_ex(md_, d, &n);
    static const char x[] = "0123456789abcdef";
    std::string s;
    for (unsigned i = 0; i < n; ++i) {
      s.push_back(x[d[i] >> 4]);
      s.push_back(x[d[i] & 15]);
    }
    return s;
  }

private:
  EVP_MD_CTX* md_;
};

class raw_client : public std::enable_shared_from_this<raw_client> {
public:
  raw_client(const fetch_options& opt, core::runtime& rt, core::reporter& out)
      : opt_(opt), rt_(rt), out_(out), strand_(asio::make_strand(rt.ioc())), sock_(strand_), retry_(strand_), idle_(strand_),
        buf_(65536) {}

  core::outcome prepare() {
    // Local checks first, as the TFTP client does: a fetch that cannot store its result does not ask.
    auto made = open_output(opt_, sink::options{}, dst_);  // raw mode digests what it received itself
    if (!made.ok()) return made;
    std::error_code ec;
    auto eps = core::resolve_udp(opt_.server, false, ec);
    if (ec || eps.empty())
      return core::outcome::fail(exit_code::network, "resolve " + opt_.server.to_string() + ": " + (ec ? ec.message() : "no address"),
                                 "check the host name");
    server_ = *eps.begin();
    sock_.open(server_.protocol(), ec);
    if (!ec) sock_.connect(server_, ec);
    if (ec) return core::outcome::fail(ec, "connect " + core::to_string(server_), core::hint_for(ec));
    // A stream has no flow control: the larger the buffer, the longer a busy client can fall behind.
    int want = 4 << 20;
#ifdef SO_RCVBUFFORCE
    if (::setsockopt(sock_.native_handle(), SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0)
#endif
      ::setsockopt(sock_.native_handle(), SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
    return core::outcome::success();
  }

  void start() {
    rt_.on_signal([self = shared_from_this()](int) {
      asio::post(self->strand_, [self] { self->finish(core::outcome::fail(exit_code::interrupted, "interrupted")); });
    });
    asio::post(strand_, [self = shared_from_this()] {
      self->send_current();
      self->receive();
    });
  }

  const core::outcome& result() const { return result_; }

private:
  enum class phase { cookie, stat, get, stream };

  void send_current() {
    std::string req;
    switch (phase_) {
      case phase::cookie: req = raw_request("STAT", "-", opt_.remote); break;
      case phase::stat: req = raw_request("STAT", cookie_, opt_.remote); break;
      case phase::get:
        req = raw_request("GET", cookie_, opt_.remote);
        if (!get_sent_) started_ = clock::now();
        get_sent_ = true;
        break;
      case phase::stream: return;
    }
    std::error_code ec;
    sock_.send(asio::buffer(req), 0, ec);
    arm_retry(++sent_);
  }

  void arm_retry(std::uint64_t gen) {
    retry_.expires_after(opt_.wish.timeout * (1u << std::min(tries_, 4u)));
    retry_.async_wait([self = shared_from_this(), gen](std::error_code e) {
      if (!e) self->on_retry(gen);
    });
  }

  void on_retry(std::uint64_t gen) {
    if (done_ || phase_ == phase::stream || gen != sent_) return;
    if (++tries_ > opt_.wish.retries) {
      if (phase_ == phase::get)
        return finish(core::outcome::fail(exit_code::timeout, "no data from " + core::to_string(server_) + " after GET",
                                          "the server streams nothing: check its log, or raise --timeout"));
      return finish(core::outcome::fail(exit_code::timeout, "no answer from " + core::to_string(server_),
                                        "is `netlab udp-file serve --protocol raw` running there?"));
    }
    // An answer already queued (this client was slow) is read before asking again: a GET sent twice
    // would start a second stream on top of the first.
    std::error_code q;
    if (sock_.available(q) > 0) return arm_retry(gen);
    send_current();
  }

  void receive() {
    sock_.async_receive(asio::buffer(buf_), [self = shared_from_this()](std::error_code ec, std::size_t n) {
      if (self->done_) return;
      if (ec == asio::error::connection_refused)
        return self->finish(core::outcome::fail(exit_code::network, "request to " + core::to_string(self->server_) + ": Connection refused",
                                                "nothing listens on that UDP port: is the server running?"));
      if (ec) return self->finish(core::outcome::fail(ec, "receive", core::hint_for(ec)));
      self->on_datagram(n);
      if (!self->done_) self->receive();
    });
  }

  void on_datagram(std::size_t n) {
    if (phase_ == phase::stream) return on_data(n);
    const std::string text(reinterpret_cast<const char*>(buf_.data()), n);
    // While waiting for the stream, a datagram of a file's length (512 bytes, the whole of a small
    // file, or the tail of a larger one) is data; control replies of those lengths are not mistaken
    // for it unless the file starts with them, and then the digest tells.
    const std::uint64_t tail = expected_size_ % raw_chunk;
    const bool could_be_data = phase_ == phase::get && (n == raw_chunk || (tail != 0 && n == tail));
    if (phase_ == phase::get && text == ok_text_) return;  // a repeated STAT's answer
    if (!could_be_data && n == raw_cookie_reply && text.rfind("COOKIE ", 0) == 0) {
      if (phase_ == phase::cookie) {
        phase_ = phase::stat;
        tries_ = 0;
      } else if (++refreshes_ > 3) {  // a server that never takes its own cookies: do not ping-pong
        return finish(core::outcome::fail(exit_code::protocol, "the server keeps refusing its own cookies",
                                          "is that a netlab udp-file serve --protocol raw of the same version?"));
      }
      cookie_ = text.substr(7);
      return send_current();  // first cookie, or a fresh one after ours expired
    }
    if (!could_be_data && text.rfind("ERR ", 0) == 0)
      return finish(core::outcome::fail(exit_code::protocol, "server error: " + text.substr(4), "check the file name"));
    if (phase_ == phase::stat) {
      std::istringstream in(text);
      std::string ok;
      if (!(in >> ok >> expected_size_ >> expected_digest_) || ok != "OK") return;  // a stray datagram
      ok_text_ = text;
      if (opt_.max_size && expected_size_ > *opt_.max_size)
        return finish(core::outcome::fail(exit_code::protocol,
                                          "the file is " + std::to_string(expected_size_) + " bytes, more than --max-size " +
                                              std::to_string(*opt_.max_size),
                                          "raise --max-size to accept it"));
      if (expected_size_ == 0) return report();
      phase_ = phase::get;
      tries_ = 0;
      return send_current();
    }
    if (could_be_data) {
      phase_ = phase::stream;
      retry_.cancel();
      arm_idle();
      return on_data(n);
    }
  }

  void on_data(std::size_t n) {
    if (n > expected_size_ - received_)
      return finish(core::outcome::fail(exit_code::protocol,
                                        "the server sent more than the " + std::to_string(expected_size_) + " bytes it announced",
                                        "a raw stream has no numbers: duplicates or a hostile server; the transfer was stopped there"));
    std::error_code ec;
    if (!dst_->write(buf_.data(), n, ec))
      return finish(core::outcome::fail(exit_code::local_io, "write " + opt_.output + ": " + ec.message(), "check free space and permissions"));
    sha_.update(buf_.data(), n);
    received_ += n;
    ++datagrams_;
    last_ = clock::now();
    if (received_ == expected_size_) report();  // all there: no need to wait for the silence
  }

  void arm_idle() {
    idle_.expires_after(opt_.raw_idle);
    idle_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (ec || self->done_) return;
      // Datagrams still queued mean this client was slow (descheduled), not that the server went quiet.
      std::error_code e;
      if (self->sock_.available(e) > 0 || clock::now() - self->last_ < self->opt_.raw_idle) return self->arm_idle();
      self->report();
    });
  }

  void report() {
    const auto digest = sha_.hex();
    const bool match = digest == expected_digest_ && received_ == expected_size_;
    const double pct = expected_size_ ? 100.0 * static_cast<double>(received_) / static_cast<double>(expected_size_) : 100.0;
    const double secs = get_sent_ ? std::chrono::duration<double>(last_ - started_).count() : 0.0;
    const double rate = secs > 0 ? static_cast<double>(received_) / secs : 0.0;
    char text[300];
    std::snprintf(text, sizeof text, "raw: received %llu of %llu bytes (%.1f%%) in %llu datagram(s); sha256 %s",
                  static_cast<unsigned long long>(received_), static_cast<unsigned long long>(expected_size_), pct,
                  static_cast<unsigned long long>(datagrams_), match ? "matches" : "DIFFERS");
    nlohmann::json j{{"event", "raw-received"}, {"remote", opt_.remote}, {"output", opt_.output}, {"bytes", received_},
                     {"expected_bytes", expected_size_}, {"datagrams", datagrams_}, {"sha256", digest},
                     {"expected_sha256", expected_digest_}, {"digest_matches", match}, {"seconds", secs},
                     {"mb_per_s", rate / 1e6}};
    if (opt_.output == "-") {
      std::fprintf(stderr, "%s\n", out_.json() ? core::reporter::dump(j).c_str() : text);  // stdout carries the file
    } else {
      out_.result(j, text);
    }
    if (!match) {
      std::string what = "raw transfer damaged the file: " + std::to_string(expected_size_ - received_) + " byte(s) missing, digest differs";
      if (opt_.keep_partial && opt_.output != "-") what += " (what arrived is in " + opt_.output + ".part)";
      return finish(core::outcome::fail(exit_code::protocol, what,
                                        "no sequence numbers, no ACKs: this is what TFTP fixes (drop --protocol raw)"));
    }
    std::error_code ec;
    if (!dst_->commit(ec))
      return finish(core::outcome::fail(exit_code::local_io, "write " + opt_.output + ": " + ec.message(), "check the directory"));
    finish(core::outcome::success());
  }

  void finish(core::outcome o) {
    if (done_) return;
    done_ = true;
    result_ = std::move(o);
    if (!result_.ok() && dst_) dst_->abandon();  // OUT.part removed, or kept with --keep-partial
    dst_.reset();
    retry_.cancel();
    idle_.cancel();
    std::error_code ec;
    sock_.close(ec);
    rt_.release();
  }

  fetch_options opt_;
  core::runtime& rt_;
  core::reporter& out_;
  asio::strand<asio::io_context::executor_type> strand_;
  udp::socket sock_;
  asio::steady_timer retry_;
  asio::steady_timer idle_;
  std::vector<std::uint8_t> buf_;
  std::unique_ptr<sink> dst_;
  digest sha_;
  udp::endpoint server_;
  phase phase_ = phase::cookie;
  std::string cookie_;
  std::uint64_t expected_size_ = 0;
  std::string expected_digest_;
  std::string ok_text_;
  std::uint64_t received_ = 0;
  std::uint64_t datagrams_ = 0;
  std::uint64_t sent_ = 0;
  clock::time_point started_, last_;
  unsigned tries_ = 0;
  unsigned refreshes_ = 0;
  bool get_sent_ = false;
  bool done_ = false;
  core::outcome result_;
};

}  // namespace

core::outcome serve_raw(const serve_options& opt, core::runtime& rt, core::reporter& out) {
  auto s = std::make_shared<raw_server>(opt, rt, out);
  auto lc = core::lifecycle::create(rt, s->strand(), "stream(s)", std::chrono::milliseconds(0),
                                    [w = std::weak_ptr<raw_server>(s)] {
                                      if (auto srv = w.lock()) srv->stop_accepting();
                                    });
  auto r = s->start();
  if (!r.ok()) return r;
  lc->watch_signals();
  rt.run();
  return core::outcome::success();
}

core::outcome fetch_raw(const fetch_options& opt, core::runtime& rt, core::reporter& out) {
  auto c = std::make_shared<raw_client>(opt, rt, out);
  auto r = c->prepare();
  if (!r.ok()) return r;
  c->start();
  rt.run();
  return c->result();
}

}  // namespace netlab::tftp
