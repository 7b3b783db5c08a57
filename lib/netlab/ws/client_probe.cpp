// Probes that tell a TLS mismatch apart from other failures: after ws:// to a wss:// server (it
// closes the plain upgrade unanswered) or wss:// to a ws:// server (it waits for the rest of an HTTP
// request that never comes), one short side connection asks the server the other way round. The
// verdict comes from what the server answers, never from how long it took.
#include <array>

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include "netlab/ws/client_session.hpp"

namespace netlab::ws::detail {

namespace {

struct probe_state : std::enable_shared_from_this<probe_state> {
  probe_state(asio::io_context& ioc, bool tls, std::function<void(bool)> done)
      : resolver(ioc), ctx(asio::ssl::context::tls_client), stream(ioc, ctx), timer(ioc), tls(tls), done(std::move(done)) {}

  void start(const url& target, std::chrono::milliseconds limit) {
    auto self = shared_from_this();
    request = "GET / HTTP/1.1\r\nHost: " + target.authority() + "\r\nConnection: close\r\n\r\n";
    timer.expires_after(limit);
    timer.async_wait([self](std::error_code ec) {
      if (!ec) self->end(false);
    });
    std::error_code ec;
    ctx.set_verify_mode(asio::ssl::verify_none, ec);  // any certificate: only "does it speak TLS?"
    asio::error_code not_ip;
    asio::ip::make_address(target.host, not_ip);
    if (not_ip) SSL_set_tlsext_host_name(stream.native_handle(), target.host.c_str());  // SNI names hosts, not IPs (RFC 6066 3)
    resolver.async_resolve(target.host, std::to_string(target.port),
                           [self](std::error_code ec, const asio::ip::tcp::resolver::results_type& r) {
                             if (ec) return self->end(false);
                             asio::async_connect(self->stream.lowest_layer(), r,
                                                 [self](std::error_code ec, const asio::ip::tcp::endpoint&) {
                                                   if (ec) return self->end(false);
                                                   self->tls ? self->handshake() : self->ask_http();
                                                 });
                           });
  }

  void handshake() {
    auto self = shared_from_this();
    stream.async_handshake(asio::ssl::stream_base::client, [self](std::error_code ec) { self->end(!ec); });
  }

  void ask_http() {
    auto self = shared_from_this();
    asio::async_write(stream.next_layer(), asio::buffer(request), [self](std::error_code ec, std::size_t) {
      if (ec) return self->end(false);
      asio::async_read(self->stream.next_layer(), asio::buffer(self->head),
                       [self](std::error_code, std::size_t n) {
                         self->end(std::string_view(self->head.data(), n).substr(0, 5) == "HTTP/");
                       });
    });
  }

  void end(bool yes) {
    if (!done) return;
    auto d = std::move(done);
    done = nullptr;
    timer.cancel();
    resolver.cancel();
    std::error_code ec;
    stream.lowest_layer().close(ec);
    d(yes);
  }

  asio::ip::tcp::resolver resolver;
  asio::ssl::context ctx;
  asio::ssl::stream<asio::ip::tcp::socket> stream;
  asio::steady_timer timer;
  bool tls;
  std::function<void(bool)> done;
  std::string request;
  std::array<char, 5> head{};
};

}  // namespace

void probe_server(asio::io_context& ioc, const url& target, bool tls, std::chrono::milliseconds limit,
                  std::function<void(bool)> done) {
  std::make_shared<probe_state>(ioc, tls, std::move(done))->start(target, limit);
}

}  // namespace netlab::ws::detail
