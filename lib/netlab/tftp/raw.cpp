#include "netlab/tftp/raw.hpp"

#include <filesystem>
#include <memory>
#include <sstream>

#include <asio/ip/udp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "netlab/core/log.hpp"
#include "netlab/core/net.hpp"
#include "netlab/tftp/client.hpp"
#include "netlab/tftp/detail/listen.hpp"
#include "netlab/tftp/fault.hpp"
#include "netlab/tftp/files.hpp"
#include "netlab/tftp/server.hpp"

namespace netlab::tftp {
namespace {

using asio::ip::udp;
namespace fs = std::filesystem;
constexpr std::size_t chunk = 512;  // the lesson's datagram size
constexpr unsigned burst = 64;      // datagrams per handler, so other requests are still served

// One stream of a file to a peer, as fast as the socket takes it.
struct stream : std::enable_shared_from_this<stream> {
  udp::socket& sock;
  udp::endpoint peer;
  std::unique_ptr<source> src;
  fault_injector faults;
  std::uint64_t offset = 0;
  std::uint64_t sent = 0, dropped = 0;
  std::string label;
  stream(udp::socket& s, udp::endpoint p, std::unique_ptr<source> f, const fault_options& fo, std::string l)
      : sock(s), peer(std::move(p)), src(std::move(f)), faults(fo), label(std::move(l)) {}

  void step() {
    std::error_code ec;
    for (unsigned i = 0; i < burst && offset < src->size(); ++i) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, src->size() - offset));
      if (!src->ensure(offset, offset + n, ec)) {
        core::log().warn("{}: read: {}", label, ec.message());
        return;
      }
      if (faults.next() == fault_injector::verdict::drop) {
        ++dropped;
      } else {
        sock.send_to(asio::buffer(src->at(offset), n), peer, 0, ec);
        if (ec) {
          core::log().warn("{}: send: {}", label, ec.message());
          return;
        }
        ++sent;
      }
      offset += n;
    }
    if (offset < src->size()) {
      asio::post(sock.get_executor(), [self = shared_from_this()] { self->step(); });
    } else {
      core::log().info("{}: streamed {} B in {} datagram(s) ({} simulated losses), no acknowledgements", label,
                       src->size(), sent, dropped);
    }
  }
};

class raw_server : public std::enable_shared_from_this<raw_server> {
public:
  raw_server(const serve_options& opt, core::runtime& rt, core::reporter& out)
      : opt_(opt), rt_(rt), out_(out), strand_(asio::make_strand(rt.ioc())), sock_(strand_), buf_(2048) {}

  core::outcome start() {
    udp::endpoint local;
    auto r = detail::open_server(opt_, sock_, root_, local);
    if (!r.ok()) return r;
    core::log().info("udp-file serve (raw streaming, no reliability) on {} root {}", core::to_string(local), root_.string());
    out_.listening("udp-raw", core::address_string(local.address()), local.port());
    rt_.on_signal([self = shared_from_this()](int) {
      asio::post(self->strand_, [self] {
        std::error_code e;
        self->sock_.close(e);
        core::log().info("stopped");
        self->rt_.release();
      });
    });
    asio::post(strand_, [self = shared_from_this()] { self->receive(); });
    return core::outcome::success();
  }

private:
  void receive() {
    sock_.async_receive_from(asio::buffer(buf_), peer_, [self = shared_from_this()](std::error_code ec, std::size_t n) {
      if (ec == asio::error::operation_aborted || !self->sock_.is_open()) return;
      if (!ec) self->on_request(std::string(reinterpret_cast<const char*>(self->buf_.data()), n));
      self->receive();
    });
  }

  void reply(const std::string& text) {
    std::error_code ec;
    sock_.send_to(asio::buffer(text), peer_, 0, ec);
  }

  void on_request(const std::string& msg) {
    const std::string who = core::to_string(peer_);
    const auto sp = msg.find(' ');
    const std::string verb = msg.substr(0, sp);
    const std::string name = sp == std::string::npos ? std::string() : msg.substr(sp + 1);
    if (verb != "STAT" && verb != "GET") return reply("ERR unknown request (expected STAT name or GET name)");
    auto where = resolve(root_, name, false, false);
    if (!where.ok()) {
      core::log().info("{}: {} {}: refused: {}", who, verb, name, where.reason);
      return reply("ERR " + where.reason);
    }
    if (verb == "STAT") {
      std::error_code ec;
      std::uint64_t size = 0;
      const auto digest = sha256_file(where.path, size, ec);
      if (ec) return reply("ERR " + ec.message());
      return reply("OK " + std::to_string(size) + " " + digest);
    }
    std::error_code ec;
    auto src = source::open(where.path, false, ec);
    if (!src) return reply("ERR " + ec.message());
    core::log().info("{}: GET {}: streaming {} B in 512-byte datagrams", who, name, src->size());
    auto s = std::make_shared<stream>(sock_, peer_, std::move(src), opt_.faults, who + " GET " + name);
    s->step();
  }

  serve_options opt_;
  core::runtime& rt_;
  core::reporter& out_;
  asio::strand<asio::io_context::executor_type> strand_;
  udp::socket sock_;
  std::vector<std::uint8_t> buf_;
  udp::endpoint peer_;
  fs::path root_;
};

class raw_client : public std::enable_shared_from_this<raw_client> {
public:
  raw_client(const fetch_options& opt, core::runtime& rt, core::reporter& out)
      : opt_(opt), rt_(rt), out_(out), strand_(asio::make_strand(rt.ioc())), sock_(strand_), timer_(strand_), buf_(65536) {}

  core::outcome prepare() {
    std::error_code ec;
    if (opt_.output != "-" && fs::exists(opt_.output, ec) && !opt_.force)
      return core::outcome::fail(exit_code::local_io, "output " + opt_.output + " exists", "use --force to replace it, or -o another name");
    auto eps = core::resolve_udp(opt_.server, false, ec);
    if (ec || eps.empty())
      return core::outcome::fail(exit_code::network, "resolve " + opt_.server.to_string() + ": " + (ec ? ec.message() : "no address"),
                                 "check the host name");
    server_ = *eps.begin();
    sock_.open(server_.protocol(), ec);
    if (!ec) sock_.connect(server_, ec);
    if (ec) return core::outcome::fail(ec, "connect " + core::to_string(server_), core::hint_for(ec));
    return core::outcome::success();
  }

  void start() {
    rt_.on_signal([self = shared_from_this()](int) {
      asio::post(self->strand_, [self] { self->finish(core::outcome::fail(exit_code::interrupted, "interrupted")); });
    });
    asio::post(strand_, [self = shared_from_this()] { self->send_stat(); });
  }

  const core::outcome& result() const { return result_; }

private:
  void send(const std::string& text) {
    std::error_code ec;
    sock_.send(asio::buffer(text), 0, ec);
  }

  void send_stat() {
    send("STAT " + opt_.remote);
    timer_.expires_after(opt_.wish.timeout);
    timer_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (ec || self->done_ || self->streaming_) return;
      if (++self->tries_ > self->opt_.wish.retries)
        return self->finish(core::outcome::fail(exit_code::timeout, "no answer from " + core::to_string(self->server_),
                                                "is `netlab udp-file serve --protocol raw` running there?"));
      self->send_stat();
    });
    if (!receiving_) receive();
  }

  void receive() {
    receiving_ = true;
    sock_.async_receive(asio::buffer(buf_), [self = shared_from_this()](std::error_code ec, std::size_t n) {
      self->receiving_ = false;
      if (self->done_) return;
      if (ec == asio::error::connection_refused)
        return self->finish(core::outcome::fail(exit_code::network, "request to " + core::to_string(self->server_) + ": Connection refused",
                                                "nothing listens on that UDP port: is the server running?"));
      if (ec) return self->finish(core::outcome::fail(ec, "receive", core::hint_for(ec)));
      self->on_datagram(n);
    });
  }

  void on_datagram(std::size_t n) {
    if (!streaming_) {
      std::string text(reinterpret_cast<const char*>(buf_.data()), n);
      if (text.rfind("ERR ", 0) == 0)
        return finish(core::outcome::fail(exit_code::protocol, "server error: " + text.substr(4), "check the file name"));
      std::istringstream in(text);
      std::string ok;
      if (!(in >> ok >> expected_size_ >> expected_digest_) || ok != "OK") return receive();  // a stray datagram
      streaming_ = true;
      timer_.cancel();
      started_ = std::chrono::steady_clock::now();
      send("GET " + opt_.remote);
      arm_idle();
      return receive();
    }
    data_.insert(data_.end(), buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(n));
    ++datagrams_;
    last_ = std::chrono::steady_clock::now();
    receive();
  }

  void arm_idle() {
    timer_.expires_after(opt_.raw_idle);
    timer_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (ec || self->done_) return;
      const auto since = std::chrono::steady_clock::now() - self->last_;
      if (self->datagrams_ > 0 && since < self->opt_.raw_idle) return self->arm_idle();
      self->report();
    });
  }

  void report() {
    const auto digest = sha256_hex(data_.data(), data_.size());
    const bool match = digest == expected_digest_ && data_.size() == expected_size_;
    const double pct = expected_size_ ? 100.0 * static_cast<double>(data_.size()) / static_cast<double>(expected_size_) : 100.0;
    char text[300];
    std::snprintf(text, sizeof text, "raw: received %zu of %llu bytes (%.1f%%) in %llu datagram(s); sha256 %s",
                  data_.size(), static_cast<unsigned long long>(expected_size_), pct,
                  static_cast<unsigned long long>(datagrams_), match ? "matches" : "DIFFERS");
    nlohmann::json j{{"event", "raw-received"}, {"remote", opt_.remote}, {"output", opt_.output}, {"bytes", data_.size()},
                     {"expected_bytes", expected_size_}, {"datagrams", datagrams_}, {"sha256", digest},
                     {"expected_sha256", expected_digest_}, {"digest_matches", match}};
    // Store what arrived: the whole file when it is intact, OUT.part only when asked to keep it.
    std::error_code ec;
    if (opt_.output == "-" && match) {
      out_.data(data_.data(), data_.size());
      std::fprintf(stderr, "%s\n", text);
    } else {
      out_.result(j, text);
    }
    if (match && opt_.output != "-") {
      sink::options so;
      so.target = opt_.output;
      so.temporary = opt_.output + ".part";
      so.overwrite = opt_.force;
      fs::remove(so.temporary, ec);
      auto s = sink::create(so, ec);
      if (!s || !s->write(data_.data(), data_.size(), ec) || !s->commit(ec))
        return finish(core::outcome::fail(exit_code::local_io, "write " + opt_.output + ": " + ec.message(), "check the directory"));
    } else if (!match && opt_.keep_partial && opt_.output != "-") {
      sink::options so;
      so.target = opt_.output + ".part";
      auto s = sink::create(so, ec);
      if (s && s->write(data_.data(), data_.size(), ec)) s->commit(ec);
    }
    if (match) return finish(core::outcome::success());
    finish(core::outcome::fail(exit_code::protocol,
                               "raw transfer damaged the file: " + std::to_string(expected_size_ - std::min<std::uint64_t>(expected_size_, data_.size())) +
                                   " byte(s) missing, digest differs",
                               "no sequence numbers, no ACKs: this is what TFTP fixes (drop --protocol raw)"));
  }

  void finish(core::outcome o) {
    if (done_) return;
    done_ = true;
    result_ = std::move(o);
    timer_.cancel();
    std::error_code ec;
    sock_.close(ec);
    rt_.release();
  }

  fetch_options opt_;
  core::runtime& rt_;
  core::reporter& out_;
  asio::strand<asio::io_context::executor_type> strand_;
  udp::socket sock_;
  asio::steady_timer timer_;
  std::vector<std::uint8_t> buf_;
  std::vector<std::uint8_t> data_;
  udp::endpoint server_;
  std::uint64_t expected_size_ = 0;
  std::string expected_digest_;
  std::uint64_t datagrams_ = 0;
  std::chrono::steady_clock::time_point started_, last_;
  unsigned tries_ = 0;
  bool streaming_ = false;
  bool receiving_ = false;
  bool done_ = false;
  core::outcome result_;
};

}  // namespace

core::outcome serve_raw(const serve_options& opt, core::runtime& rt, core::reporter& out) {
  auto s = std::make_shared<raw_server>(opt, rt, out);
  auto r = s->start();
  if (!r.ok()) return r;
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
