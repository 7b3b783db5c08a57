// `udp send` load mode: the UDP adapter of the one load driver (core/load_driver.hpp). Each
// simulated connection is a connected UDP socket with one datagram in flight (the driver's
// pipeline); a datagram not echoed within --timeout is counted lost and the next one goes out.
//
// Memory per simulated connection (socket): the connection object with its socket (~0.3 KB), its
// send-time ring (8 B per pipelined message) and one --size datagram. Replies are received into one
// 64 KiB buffer per worker thread (a wait for readability, then a non-blocking receive), and the
// stats with their ~60 KB latency histogram exist once per worker. Before, every socket had its own
// 64 KiB buffer and its own histogram: 10,000 sockets used 1.24 GB.
#include <cstring>
#include <memory>
#include <vector>

#include <asio/ip/udp.hpp>

#include "netlab/core/load_driver.hpp"
#include "netlab/core/log.hpp"
#include "netlab/tcp/limits.hpp"
#include "netlab/udp/client.hpp"

namespace netlab::udp {
namespace {

using asio::ip::udp;

const char* const refused_hint = "nothing listens on that UDP port (ICMP port unreachable): is the server running?";

/// The receive buffer of the calling worker thread: large enough for any datagram.
char* receive_buffer() {
  thread_local std::vector<char> buf(max_datagram + 1);
  return buf.data();
}

// Message `seq`: its first 8 bytes carry seq (as far as they fit), the rest a pattern shifted by seq.
void fill(std::vector<char>& m, std::uint64_t seq) {
  for (std::size_t i = 0; i < m.size(); ++i)
    m[i] = i < 8 ? static_cast<char>(seq >> (8 * i)) : static_cast<char>('a' + (i + seq) % 26);
}

// The sequence number a datagram of a full-size message carries (0 if it is too short to carry one).
std::uint64_t seq_of(const char* p, std::size_t n) {
  std::uint64_t s = 0;
  for (std::size_t i = 0; i < 8 && i < n; ++i) s |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return s;
}

class adapter;

class connection final : public core::load_connection {
 public:
  connection(core::load_worker& w, const adapter& a);
  void connect() override;
  void send(std::uint64_t from, std::uint64_t to) override;
  void close() override {
    closed_ = true;
    std::error_code ignored;
    sock_.close(ignored);
  }
  bool survives_lost_reply() const override { return true; }

 private:
  void arm_read();
  void on_readable(std::error_code ec);
  void failed(std::error_code ec, const std::string& what);

  core::load_worker& w_;
  const adapter& a_;
  udp::socket sock_;
  std::vector<char> msg_;  // --size bytes: the datagram being sent, then the expected echo
  bool closed_ = false;
  bool reading_ = false;
};

class adapter final : public core::load_adapter {
 public:
  explicit adapter(const send_options& opt) : opt_(opt) {}

  std::string_view proto() const override { return "udp"; }
  std::string target() const override { return name_; }
  core::outcome prepare() override {
    std::error_code ec;
    auto eps = core::resolve_udp(opt_.target, false, ec);
    name_ = opt_.target.host + ":" + std::to_string(opt_.target.port);
    if (ec) return core::outcome::fail(ec, "resolve " + name_, core::hint_for(ec));
    if (eps.empty()) return core::outcome::fail(exit_code::network, "resolve " + name_ + ": no address");
    ep_ = eps.front();
    name_ = core::to_string(ep_);
    return core::outcome::success();
  }
  std::unique_ptr<core::load_connection> make(core::load_worker& w) override {
    return std::make_unique<connection>(w, *this);
  }

  const udp::endpoint& endpoint() const { return ep_; }
  std::size_t size() const { return opt_.load->size; }

 private:
  const send_options& opt_;
  udp::endpoint ep_;
  std::string name_;
};

connection::connection(core::load_worker& w, const adapter& a) : w_(w), a_(a), sock_(w.ioc()), msg_(a.size()) {}

// "Connecting" a UDP socket sends nothing: it fixes the peer, so ICMP errors come back to it.
void connection::connect() {
  std::error_code ec;
  sock_.open(a_.endpoint().protocol(), ec);
  if (!ec) sock_.connect(a_.endpoint(), ec);
  if (!ec) sock_.non_blocking(true, ec);
  if (ec) return w_.failed(*this, core::outcome::fail(ec, "socket to " + a_.target(), core::hint_for(ec)));
  w_.opened(*this);
}

void connection::send(std::uint64_t from, std::uint64_t to) {
  for (std::uint64_t seq = from; seq < to && !closed_; ++seq) {
    fill(msg_, seq);
    std::error_code ec;
    sock_.send(asio::buffer(msg_), 0, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) continue;  // dropped like on the wire
    if (ec) return failed(ec, "send to " + a_.target());
  }
  if (!closed_ && !reading_) arm_read();
}

void connection::arm_read() {
  reading_ = true;
  sock_.async_wait(udp::socket::wait_read, [this](std::error_code ec) {
    reading_ = false;
    on_readable(ec);
  });
}

// Receives every datagram waiting: the echo of message done() completes it; an echo of an earlier
// message (that was counted lost) is skipped; anything else is a wrong echo.
void connection::on_readable(std::error_code ec) {
  if (closed_) return;
  if (ec) return failed(ec, "receive from " + a_.target());
  char* buf = receive_buffer();
  const std::size_t size = msg_.size();
  for (int i = 0; i < 64 && !closed_; ++i) {  // bounded: other sockets of this worker get their turn
    std::size_t n = sock_.receive(asio::buffer(buf, max_datagram + 1), 0, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) break;
    if (ec) return failed(ec, "receive from " + a_.target());
    if (done() >= sent()) continue;  // nothing owed: a late echo of a message counted lost
    const std::uint64_t want = done();
    if (n == size && size >= 8 && seq_of(buf, n) < want) continue;  // stale: counted lost already
    fill(msg_, want);
    if (n != size || std::memcmp(buf, msg_.data(), n) != 0)
      return w_.failed(*this, core::outcome::fail(
                                  exit_code::protocol,
                                  "echo from " + a_.target() + ": a " + std::to_string(n) + " B datagram where the " +
                                      std::to_string(size) + " B message " + std::to_string(want) +
                                      " was expected (is it an echo server?)",
                                  "the peer must echo every datagram unchanged (netlab udp serve --mode echo)"));
    w_.replied(*this, 1);  // may send the next datagram, or close this socket
  }
  if (!closed_ && !reading_) arm_read();
}

void connection::failed(std::error_code ec, const std::string& what) {
  if (closed_) return;
  ec = core::portable(ec);
  if (ec == std::errc::connection_refused)
    return w_.failed(*this, core::outcome::fail(exit_code::network, what + ": " + ec.message(), refused_hint));
  w_.failed(*this, core::outcome::fail(ec, what, core::hint_for(ec)));
}

}  // namespace

core::outcome run_load(const send_options& opt, core::runtime& rt, core::reporter& out) {
  auto limit = tcp::raise_open_files_limit();  // one descriptor per socket
  if (limit && limit < static_cast<std::uint64_t>(opt.load->connections) + 32)
    core::log().warn("open files limit is {}: {} sockets will not all fit (raise 'ulimit -n')", limit,
                     opt.load->connections);
  adapter a(opt);
  core::load_settings s;
  s.load = *opt.load;
  s.reply_timeout = opt.timeout;
  core::load_driver d(a, s, rt, out);
  return d.run();
}

}  // namespace netlab::udp
