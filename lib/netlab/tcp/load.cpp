// tcp dial's load mode: the TCP adapter of the one load driver (core/load_driver.hpp). A connection
// writes its messages straight from the shared pattern and reads into its worker thread's scratch
// buffer, so thousands of connections cost a socket and a few counters each.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include <asio/ip/tcp.hpp>

#include "netlab/core/load_driver.hpp"
#include "netlab/core/log.hpp"
#include "netlab/core/net.hpp"
#include "netlab/tcp/client.hpp"
#include "netlab/tcp/limits.hpp"

namespace netlab::tcp {
namespace {

using asio::ip::tcp;

constexpr std::size_t worker_read_buffer = 256 * 1024;
constexpr auto default_reply_timeout = std::chrono::seconds(10);

/// The read buffer of the calling worker thread.
std::vector<char>& scratch() {
  thread_local std::vector<char> buf(worker_read_buffer);
  return buf;
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

 private:
  void flush();
  void arm_read();
  void on_readable(std::error_code ec);
  void fail(std::error_code ec, const std::string& what);

  core::load_worker& w_;
  const adapter& a_;
  tcp::socket sock_;
  std::uint64_t sent_ = 0;  // messages queued for writing
  std::uint64_t wseq_ = 0;  // write position: message wseq_, byte woff_
  std::size_t woff_ = 0;
  std::size_t roff_ = 0;    // bytes of the next expected reply received so far
  std::vector<asio::const_buffer> iov_;
  bool closed_ = false;
  bool write_waiting_ = false;
  bool reading_ = false;
};

class adapter final : public core::load_adapter {
 public:
  adapter(const dial_options& opt) : opt_(opt), pattern_(opt.load->size) {}

  std::string_view proto() const override { return "tcp"; }
  std::string target() const override { return name_; }
  core::outcome prepare() override {
    std::error_code ec;
    auto eps = core::resolve_tcp(opt_.target, false, ec);
    if (ec || eps.empty())
      return core::outcome::fail(exit_code::network,
                                 "resolve " + opt_.target.host + ": " + (ec ? ec.message() : "no address"),
                                 "check the host name");
    ep_ = eps.front();
    name_ = core::to_string(ep_);
    return core::outcome::success();
  }
  std::unique_ptr<core::load_connection> make(core::load_worker& w) override {
    return std::make_unique<connection>(w, *this);
  }

  const load_pattern& pattern() const { return pattern_; }
  const tcp::endpoint& endpoint() const { return ep_; }

 private:
  const dial_options& opt_;
  load_pattern pattern_;
  tcp::endpoint ep_;
  std::string name_;
};

connection::connection(core::load_worker& w, const adapter& a) : w_(w), a_(a), sock_(w.ioc()) {}

void connection::connect() {
  sock_.async_connect(a_.endpoint(), [this](std::error_code ec) {
    if (closed_) return;  // closed by the driver (connect deadline, signal)
    if (ec) {
      ec = core::portable(ec);
      return w_.failed(*this, core::outcome::fail(ec, "connect " + a_.target(), core::hint_for(ec)));
    }
    core::set_nodelay(sock_);
    std::error_code nb;
    sock_.non_blocking(true, nb);  // reads and writes are tried at once, waits only on EAGAIN
    w_.opened(*this);
  });
}

void connection::send(std::uint64_t, std::uint64_t to) {
  sent_ = to;
  flush();
  if (!closed_ && !reading_) arm_read();
}

// Writes messages [wseq_, sent_) straight from the pattern; on EAGAIN waits for writability.
void connection::flush() {
  if (write_waiting_ || closed_) return;
  const auto& pattern = a_.pattern();
  const std::size_t size = pattern.size();
  while (wseq_ < sent_) {
    iov_.clear();
    std::uint64_t seq = wseq_;
    std::size_t off = woff_;
    while (seq < sent_ && iov_.size() < 32) {
      iov_.emplace_back(pattern.message(seq) + off, size - off);
      off = 0;
      ++seq;
    }
    std::error_code ec;
    std::size_t n = sock_.write_some(iov_, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      write_waiting_ = true;
      sock_.async_wait(tcp::socket::wait_write, [this](std::error_code e) {
        write_waiting_ = false;
        if (closed_) return;
        if (e) return fail(e, "send to " + a_.target());
        flush();
      });
      return;
    }
    if (ec) return fail(ec, "send to " + a_.target());
    // Advance the write position by n bytes across messages.
    while (n > 0) {
      const std::size_t in_msg = size - woff_;
      if (n >= in_msg) {
        n -= in_msg;
        woff_ = 0;
        ++wseq_;
      } else {
        woff_ += n;
        n = 0;
      }
    }
  }
}

void connection::arm_read() {
  reading_ = true;
  sock_.async_wait(tcp::socket::wait_read, [this](std::error_code ec) {
    reading_ = false;
    on_readable(ec);
  });
}

void connection::on_readable(std::error_code ec) {
  if (closed_) return;
  if (ec) return fail(ec, "wait for the echo from " + a_.target());
  auto& buf = scratch();
  std::size_t n = sock_.read_some(asio::buffer(buf), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) return arm_read();
  if (ec) return fail(ec, "read from " + a_.target());
  const auto& pattern = a_.pattern();
  const std::size_t size = pattern.size();
  const char* p = buf.data();
  std::uint64_t next = done();  // the reply expected next
  std::uint64_t complete = 0;
  while (n > 0) {
    if (next >= sent_)
      return fail(make_error_code(errc::mismatch),
                  "echo from " + a_.target() + ": more bytes than were sent (is it an echo server?)");
    const std::size_t take = std::min(n, size - roff_);
    if (std::memcmp(p, pattern.message(next) + roff_, take) != 0)
      return fail(make_error_code(errc::mismatch), "echo from " + a_.target() + ": message " + std::to_string(next) +
                                                       " came back different (is it an echo server?)");
    roff_ += take;
    p += take;
    n -= take;
    if (roff_ == size) {
      ++complete;
      ++next;
      roff_ = 0;
    }
  }
  if (complete > 0) w_.replied(*this, complete);  // may send more, or close this connection
  if (!closed_ && !reading_) arm_read();
}

void connection::fail(std::error_code ec, const std::string& what) {
  if (closed_) return;
  ec = core::portable(ec);
  if (ec == asio::error::eof)
    return w_.failed(*this, core::outcome::fail(exit_code::network, what + ": the server closed the connection mid-run",
                                                "did the server stop, or does it close idle or busy connections?"));
  if (ec.category() == netlab_category())
    return w_.failed(*this, core::outcome::fail(classify(ec), what,
                                                ec == errc::mismatch
                                                    ? "the peer must echo every byte (netlab tcp serve --mode echo)"
                                                    : core::hint_for(ec)));
  w_.failed(*this, core::outcome::fail(ec, what, core::hint_for(ec)));
}

}  // namespace

core::outcome run_load(const dial_options& opt, core::runtime& rt, core::reporter& out) {
  const auto& load = *opt.load;
  auto limit = raise_open_files_limit();
  if (limit && limit < static_cast<std::uint64_t>(load.connections) + 32)
    core::log().warn("open files limit is {}: {} connections will not all fit (raise 'ulimit -n')", limit,
                     load.connections);
  adapter a(opt);
  core::load_settings s;
  s.load = load;
  s.reply_timeout = opt.timeout.count() > 0 ? opt.timeout
                                            : std::chrono::duration_cast<std::chrono::milliseconds>(default_reply_timeout);
  s.connect_timeout = opt.connect_timeout;
  core::load_driver d(a, s, rt, out);
  return d.run();
}

}  // namespace netlab::tcp
