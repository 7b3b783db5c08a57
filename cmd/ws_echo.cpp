// ws-echo: `netlab ws-echo serve` (dial is not implemented yet).
#include <fstream>
#include <memory>

#include "cli.hpp"
#include "netlab/ws/echo_server.hpp"

namespace netlab::cli {

void register_ws_echo(CLI::App& app, action& chosen) {
  auto* ws = app.add_subcommand("ws-echo", "WebSocket echo server (websocketpp)")->require_subcommand(1);
  auto o = std::make_shared<ws::serve_options>();
  auto* s = ws->add_subcommand("serve", "accept WebSocket connections on --path and echo every message with its type");
  s->footer(
      "Prints 'listening ws ADDRESS:PORT' ('wss' with --tls-cert) once bound. GET / serves a small browser\n"
      "client (unless --no-page); other paths get HTTP 404. Close codes: 1002 protocol violation, 1007 invalid\n"
      "UTF-8, 1009 over --max-message, 1008 too slow for --max-queue, 1001 idle or shutting down.\n"
      "SIGINT/SIGTERM close every client with 1001 (exit 0).\n"
      "Example (the classic lesson): netlab ws-echo serve   then   python3 -m websockets ws://127.0.0.1:8899/echo");
  add_endpoint(s, "-l,--listen", o->listen,
               "address to listen on: HOST:PORT, :PORT (all interfaces), [::1]:PORT; port 0 = any free port", 8899);
  s->add_option("--path", o->path, "resource that upgrades to WebSocket")->capture_default_str();
  add_size(s, "--max-message", o->max_message, "largest message accepted (larger → close 1009), e.g. 16MiB");
  add_threads(s, o->threads);
  s->add_option("--max-connections", o->max_connections,
                "open WebSocket connections at most; beyond it the upgrade gets HTTP 503 (0 = no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  add_duration(s, "--handshake-timeout", o->handshake_timeout,
               "drop a socket that has not completed the upgrade (TLS included) within this (0 = never)");
  add_duration(s, "--idle-timeout", o->idle_timeout,
               "close (1001) a connection with no message either way for this long (0 = never)");
  add_duration(s, "--ping-interval", o->ping_interval,
               "ping every client this often; drop one that has neither answered the previous ping nor sent a message (0 = off)");
  s->add_option("--allow-origin", o->allow_origins,
                "accept only browsers from this Origin (repeatable, e.g. http://localhost:8899); others get "
                "HTTP 403; requests without Origin are accepted; default: any");
  s->add_option("--tls-cert", o->tls_cert, "PEM certificate (chain): serve wss:// (needs --tls-key)");
  s->add_option("--tls-key", o->tls_key, "PEM private key for --tls-cert");
  s->add_flag("--deflate", o->deflate, "negotiate permessage-deflate (RFC 7692) when the client offers it");
  s->add_flag("--broadcast", o->broadcast, "send every message to every connected client (chat) instead of echoing");
  add_size(s, "--max-queue", o->max_queue,
           "unsent bytes a client may fall behind before it is closed with 1008 (e.g. 1MiB)");
  s->add_flag("--no-page", [o](std::int64_t) { o->page = false; }, "do not serve the built-in HTML client at /");
  s->callback([o, &chosen] {
    if (o->path.empty() || o->path[0] != '/') usage_error("--path must start with '/', e.g. --path /echo");
    if (o->max_message == 0) usage_error("--max-message must be at least 1 byte");
    if (o->max_queue == 0) usage_error("--max-queue must be at least 1 byte");
    if (o->tls_cert.empty() != o->tls_key.empty())
      usage_error("--tls-cert and --tls-key go together: give both to serve wss://");
    for (const auto* f : {&o->tls_cert, &o->tls_key}) {
      if (f->empty()) continue;
      std::ifstream probe(*f, std::ios::binary);
      if (!probe || probe.peek() == std::ifstream::traits_type::eof())
        usage_error((f == &o->tls_cert ? "--tls-cert " : "--tls-key ") + *f +
                    ": cannot read it (missing, empty or no permission)");
    }
    for (const auto& origin : o->allow_origins)
      if (origin.empty()) usage_error("--allow-origin needs an origin, e.g. --allow-origin https://example.com");
    auto opt = *o;
    chosen.command = "ws-echo serve";
    chosen.threads = opt.threads;
    chosen.options = opt;
    chosen.run = [opt](context& c) { return ws::serve(opt, c.rt, c.out); };
  });
}

}  // namespace netlab::cli
