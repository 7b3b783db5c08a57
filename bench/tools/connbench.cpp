// connbench: the two benchmark cells netlab's load mode does not cover.
//
//   connbench rate --proto tcp|ws --port P [--host H] [--path /echo] [--connections C]
//                  [--duration S] [--size B]
//       Connection rate: C workers, each in a loop: connect, (ws: upgrade), send one B-byte message,
//       read the echo and verify it, (ws: close handshake), close. Prints one JSON object.
//   connbench idle --port P --count N [--host H] [--path /echo] [--concurrency K]
//       Opens N WebSocket connections (each upgrade verified), prints one JSON object
//       {"event":"idle_ready",...}, then holds them open until stdin reaches EOF or a line arrives.
//
// Standalone Asio, one thread, no allocation per message. Built by scripts/bench.sh with
// `g++ -O2 -std=c++17 -DASIO_STANDALONE bench/tools/connbench.cpp -pthread`.
#include <asio.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;
using asio::ip::tcp;

struct config {
  std::string mode;
  std::string proto = "tcp";
  std::string host = "127.0.0.1";
  std::string path = "/echo";
  unsigned short port = 0;
  unsigned connections = 1;
  double duration = 2.0;
  std::size_t size = 64;
  unsigned count = 1000;
  unsigned concurrency = 256;
};

// RFC 6455 1.3's sample key and its accept value.
constexpr const char* ws_key = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr const char* ws_accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

std::string handshake_request(const config& c) {
  return "GET " + c.path + " HTTP/1.1\r\nHost: " + c.host + ":" + std::to_string(c.port) +
         "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + ws_key +
         "\r\nSec-WebSocket-Version: 13\r\n\r\n";
}

bool handshake_ok(const std::string& head) {
  return head.rfind("HTTP/1.1 101", 0) == 0 && head.find(ws_accept) != std::string::npos;
}

// A masked binary client frame carrying `payload` (mask 0: the XOR is the identity, still legal).
std::string client_frame(unsigned char opcode, const std::string& payload) {
  std::string f;
  f.push_back(static_cast<char>(0x80 | opcode));
  std::size_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<char>(0x80 | n));
  } else if (n < 65536) {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xff));
  } else {
    f.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  }
  f.append(4, '\0');
  f += payload;
  return f;
}

std::size_t server_header_len(std::size_t n) { return n < 126 ? 2 : n < 65536 ? 4 : 10; }

// ---------------------------------------------------------------------------------------------
// Connection rate

struct rate_totals {
  std::uint64_t conns = 0;
  std::uint64_t errors = 0;
  std::vector<std::uint32_t> latency_us;
  unsigned active = 0;                       ///< workers still looping
  asio::steady_timer* deadline = nullptr;    ///< cancelled when the last worker stops
};

class rate_worker : public std::enable_shared_from_this<rate_worker> {
 public:
  rate_worker(asio::io_context& io, const config& c, tcp::endpoint ep, clock_type::time_point end,
              rate_totals& t)
      : io_(io), c_(c), ep_(ep), end_(end), t_(t), sock_(io) {
    payload_.resize(c.size);
    for (std::size_t i = 0; i < c.size; ++i) payload_[i] = static_cast<char>('a' + i % 26);
    ws_ = c.proto == "ws";
    request_ = handshake_request(c);
    frame_ = ws_ ? client_frame(0x2, payload_) : payload_;
    close_frame_ = client_frame(0x8, std::string("\x03\xe8", 2));
    expect_ = ws_ ? server_header_len(c.size) + c.size : c.size;
    in_.resize(std::max<std::size_t>(expect_, 256));
  }

  void start() {
    if (clock_type::now() >= end_) {
      if (--t_.active == 0 && t_.deadline) t_.deadline->cancel();
      return;
    }
    t0_ = clock_type::now();
    std::error_code ignored;
    sock_.close(ignored);
    sock_ = tcp::socket(io_);
    sock_.async_connect(ep_, [self = shared_from_this()](std::error_code ec) {
      if (ec) return self->fail();
      self->sock_.set_option(tcp::no_delay(true), ec);
      self->ws_ ? self->do_upgrade() : self->do_send();
    });
  }

 private:
  void do_upgrade() {
    asio::async_write(sock_, asio::buffer(request_), [self = shared_from_this()](std::error_code ec, std::size_t) {
      if (ec) return self->fail();
      self->head_.clear();
      asio::async_read_until(self->sock_, asio::dynamic_buffer(self->head_), "\r\n\r\n",
                             [self](std::error_code ec, std::size_t n) {
                               if (ec || !handshake_ok(self->head_) || self->head_.size() != n) return self->fail();
                               self->do_send();
                             });
    });
  }

  void do_send() {
    asio::async_write(sock_, asio::buffer(frame_), [self = shared_from_this()](std::error_code ec, std::size_t) {
      if (ec) return self->fail();
      asio::async_read(self->sock_, asio::buffer(self->in_.data(), self->expect_),
                       [self](std::error_code ec, std::size_t) {
                         if (ec || !self->echo_ok()) return self->fail();
                         self->ws_ ? self->do_close() : self->done();
                       });
    });
  }

  bool echo_ok() const {
    std::size_t h = ws_ ? server_header_len(c_.size) : 0;
    if (ws_ && static_cast<unsigned char>(in_[0]) != 0x82) return false;
    return std::memcmp(in_.data() + h, payload_.data(), c_.size) == 0;
  }

  void do_close() {
    asio::async_write(sock_, asio::buffer(close_frame_), [self = shared_from_this()](std::error_code ec, std::size_t) {
      if (ec) return self->fail();
      asio::async_read(self->sock_, asio::buffer(self->in_.data(), 2), [self](std::error_code ec, std::size_t) {
        if (ec || static_cast<unsigned char>(self->in_[0]) != 0x88) return self->fail();
        std::size_t rest = static_cast<unsigned char>(self->in_[1]) & 0x7f;
        asio::async_read(self->sock_, asio::buffer(self->in_.data() + 2, rest),
                         [self](std::error_code ec, std::size_t) { ec ? self->fail() : self->done(); });
      });
    });
  }

  void done() {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - t0_).count();
    ++t_.conns;
    t_.latency_us.push_back(static_cast<std::uint32_t>(us));
    std::error_code ignored;
    sock_.close(ignored);
    start();
  }

  void fail() {
    ++t_.errors;
    std::error_code ignored;
    sock_.close(ignored);
    // Back off briefly so a refusing server does not turn this into a busy loop.
    auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(1));
    timer->async_wait([self = shared_from_this(), timer](std::error_code) { self->start(); });
  }

  asio::io_context& io_;
  const config& c_;
  tcp::endpoint ep_;
  clock_type::time_point end_;
  rate_totals& t_;
  tcp::socket sock_;
  bool ws_ = false;
  std::string payload_, request_, frame_, close_frame_, head_, in_;
  std::size_t expect_ = 0;
  clock_type::time_point t0_;
};

int run_rate(const config& c) {
  asio::io_context io;
  tcp::endpoint ep(asio::ip::make_address(c.host), c.port);
  rate_totals t;
  auto start = clock_type::now();
  auto end = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(c.duration));
  // Every wait has a deadline: workers still stuck on a silent server 5 s after the end count as errors.
  asio::steady_timer deadline(io, end + std::chrono::seconds(5));
  t.deadline = &deadline;
  t.active = c.connections;
  deadline.async_wait([&](std::error_code ec) {
    if (!ec) t.errors += t.active, io.stop();
  });
  for (unsigned i = 0; i < c.connections; ++i) std::make_shared<rate_worker>(io, c, ep, end, t)->start();
  io.run();
  double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  std::sort(t.latency_us.begin(), t.latency_us.end());
  auto pct = [&](double q) -> double {
    if (t.latency_us.empty()) return 0;
    auto i = static_cast<std::size_t>(q * static_cast<double>(t.latency_us.size() - 1));
    return t.latency_us[i];
  };
  std::printf(
      "{\"event\":\"connrate\",\"proto\":\"%s\",\"connections\":%u,\"size\":%zu,\"conns\":%llu,\"errors\":%llu,"
      "\"seconds\":%.3f,\"conns_per_s\":%.1f,\"latency_us\":{\"p50\":%.0f,\"p99\":%.0f}}\n",
      c.proto.c_str(), c.connections, c.size, static_cast<unsigned long long>(t.conns),
      static_cast<unsigned long long>(t.errors), secs, static_cast<double>(t.conns) / secs, pct(0.5), pct(0.99));
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Idle connections

struct idle_state {
  asio::io_context& io;
  const config& c;
  tcp::endpoint ep;
  std::string request;
  std::vector<std::unique_ptr<tcp::socket>> open;
  unsigned launched = 0, finished = 0, errors = 0;
  asio::steady_timer* deadline = nullptr;  ///< opening all N must finish within 60 s
};

void idle_launch(idle_state& s);

void idle_one(idle_state& s) {
  auto sock = std::make_shared<tcp::socket>(s.io);
  auto head = std::make_shared<std::string>();
  auto finish = [&s](bool ok) {
    if (!ok) ++s.errors;
    ++s.finished;
    idle_launch(s);
  };
  sock->async_connect(s.ep, [&s, sock, head, finish](std::error_code ec) {
    if (ec) return finish(false);
    asio::async_write(*sock, asio::buffer(s.request), [&s, sock, head, finish](std::error_code ec, std::size_t) {
      if (ec) return finish(false);
      asio::async_read_until(*sock, asio::dynamic_buffer(*head), "\r\n\r\n",
                             [&s, sock, head, finish](std::error_code ec, std::size_t) {
                               if (ec || !handshake_ok(*head)) return finish(false);
                               s.open.push_back(std::make_unique<tcp::socket>(std::move(*sock)));
                               finish(true);
                             });
    });
  });
}

void idle_launch(idle_state& s) {
  if (s.finished == s.c.count && s.deadline) s.deadline->cancel();
  while (s.launched < s.c.count && s.launched - s.finished < s.c.concurrency) {
    ++s.launched;
    idle_one(s);
  }
}

int run_idle(const config& c) {
  asio::io_context io;
  idle_state s{io, c, tcp::endpoint(asio::ip::make_address(c.host), c.port), handshake_request(c), {}, 0, 0, 0, nullptr};
  s.open.reserve(c.count);
  auto start = clock_type::now();
  idle_launch(s);
  asio::steady_timer deadline(io, std::chrono::seconds(60));
  deadline.async_wait([&](std::error_code ec) {
    if (!ec) io.stop();
  });
  s.deadline = &deadline;
  io.run();
  double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  s.errors += s.launched - s.finished;  // still pending at the deadline
  std::printf("{\"event\":\"idle_ready\",\"requested\":%u,\"open\":%zu,\"errors\":%u,\"seconds\":%.3f}\n", c.count,
              s.open.size(), s.errors, secs);
  std::fflush(stdout);
  std::string line;
  std::getline(std::cin, line);
  // Count how many the server dropped while we held them (a non-blocking peek per socket).
  unsigned dropped = 0;
  for (auto& sk : s.open) {
    sk->non_blocking(true);
    char b;
    std::error_code ec;
    std::size_t n = sk->receive(asio::buffer(&b, 1), tcp::socket::message_peek, ec);
    if ((!ec && n == 0) || (ec && ec != asio::error::would_block)) ++dropped;
  }
  std::printf("{\"event\":\"idle_done\",\"dropped\":%u}\n", dropped);
  return 0;
}

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr, "connbench: %s\nusage: connbench rate|idle --port P [options] (see the source header)\n",
               why);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage("missing mode");
  config c;
  c.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) usage(("missing value for " + a).c_str());
    std::string v = argv[++i];
    if (a == "--proto") c.proto = v;
    else if (a == "--host") c.host = v;
    else if (a == "--path") c.path = v;
    else if (a == "--port") c.port = static_cast<unsigned short>(std::stoul(v));
    else if (a == "--connections") c.connections = static_cast<unsigned>(std::stoul(v));
    else if (a == "--duration") c.duration = std::stod(v);
    else if (a == "--size") c.size = std::stoul(v);
    else if (a == "--count") c.count = static_cast<unsigned>(std::stoul(v));
    else if (a == "--concurrency") c.concurrency = static_cast<unsigned>(std::stoul(v));
    else usage(("unknown option " + a).c_str());
  }
  if (c.port == 0) usage("--port is required");
  if (c.proto != "tcp" && c.proto != "ws") usage("--proto is tcp or ws");
  if (c.mode == "rate") return run_rate(c);
  if (c.mode == "idle") return run_idle(c);
  usage("mode is rate or idle");
}
