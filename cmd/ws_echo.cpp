// ws-echo: `netlab ws-echo serve` and `netlab ws-echo dial`: flags, validation, and the call into lib/netlab/ws.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <thread>

#include "cli.hpp"
#include "netlab/core/payload.hpp"
#include "netlab/ws/client.hpp"
#include "netlab/ws/echo_server.hpp"

namespace netlab::cli {

namespace {

struct dial_args {
  ws::dial_options opt;
  std::string url = "ws://127.0.0.1:8899/echo";
  std::string input;
  std::vector<std::string> messages;
  std::vector<std::string> files;
  std::vector<std::string> headers;
  bool binary = false;
  bool interactive = false;
  load_args load;
};

/// Reads one --file message; a failure (missing, a directory, unreadable) as an exit-6 outcome.
std::optional<core::outcome> read_message_file(const std::string& path, std::string& data) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    return core::outcome::fail(exit_code::local_io, "--file " + path + ": is a directory", "give a file: each --file is one binary message");
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::outcome::fail(exit_code::local_io, "--file " + path + ": cannot read it", "check the path and permissions");
  char buf[64 * 1024];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) data.append(buf, static_cast<std::size_t>(in.gcount()));
  if (in.bad()) return core::outcome::fail(exit_code::local_io, "--file " + path + ": read failed", "check the file");
  return std::nullopt;
}

void register_dial(CLI::App* ws, action& chosen) {
  auto a = std::make_shared<dial_args>();
  auto* d = ws->add_subcommand("dial", "connect to a WebSocket server, send messages, print the replies; or generate echo load");
  d->footer(
      "Messages: each -m (text; binary with --binary) and each --file (one binary message) in order, then one\n"
      "message per line of stdin when URL is followed by '-' or stdin is not a terminal. With no message from\n"
      "any source it sends 'hello Alvin' (the classic lesson).\n"
      "Interactive (like wscat; '-' on a terminal, or -i): '> ' sent and '< ' received lines, /ping [data],\n"
      "/close [code [reason]], /binary HEX (//text sends /text); Ctrl-C closes with 1000 (exit 0).\n"
      "Each reply is printed on its own line: text as is, binary as hex (--raw: bytes); --json: NDJSON events\n"
      "connected, message (text or base64), ping/pong, closed (code, reason, by). Once every message has its\n"
      "reply, the client closes with 1000 and waits for the server's close. Exit codes: 2 a text message that is\n"
      "not UTF-8, 3 refused, 4 timeout, 5 handshake rejected (HTTP status in the message), TLS mismatch\n"
      "(ws:// to a wss server or the reverse), untrusted certificate, or the server closed with an error code,\n"
      "6 --file or stdin unreadable (e.g. a directory).\n"
      "Load mode (--count N or --duration S, with --connections, --size, --pipeline, --threads): binary\n"
      "SIZE-byte messages, every echo verified; prints msgs/s, MB/s and latency percentiles.\n"
      "Examples:\n"
      "  netlab ws-echo dial                                   (ws://127.0.0.1:8899/echo, 'hello Alvin')\n"
      "  netlab ws-echo dial wss://localhost:8443/echo --cacert ca.pem -m '封印解除!'\n"
      "  netlab ws-echo dial ws://127.0.0.1:8899/echo -        (type lines; Ctrl-D ends)\n"
      "  netlab ws-echo dial ws://127.0.0.1:8899/echo --connections 100 --duration 10s --size 64");
  d->add_option("url", a->url, "ws:// or wss:// URL")->capture_default_str();
  d->add_option("input", a->input, "'-': send stdin, one message per line (after -m and --file)")->check(CLI::IsMember({"-"}));
  d->add_option("-m,--message", a->messages, "TEXT to send; repeat for several messages")->allow_extra_args(false);
  d->add_flag("--binary", a->binary, "send -m messages and stdin lines as binary messages");
  d->add_flag("-i,--interactive", a->interactive,
              "interactive mode (like wscat) even when stdin is not a terminal: '>'/'<' transcript and /commands");
  d->add_option("--file", a->files, "send this file as one binary message (repeatable)")->allow_extra_args(false);
  d->add_flag("--raw", a->opt.raw, "print binary replies as raw bytes instead of hex");
  d->add_option("-H,--header", a->headers, "extra handshake header 'Name: value' (repeatable)")->allow_extra_args(false);
  d->add_option("--origin", a->opt.origin, "Origin header to send");
  d->add_option("--subprotocol", a->opt.subprotocols, "Sec-WebSocket-Protocol to offer (repeatable)")->allow_extra_args(false);
  d->add_option("--cacert", a->opt.cacert, "wss: trust the CA certificates in this PEM file");
  d->add_flag("--insecure", a->opt.insecure, "wss: do not verify the server's certificate (test servers only)");
  d->add_flag("--deflate", a->opt.deflate, "offer permessage-deflate (RFC 7692)");
  add_size(d, "--max-message", a->opt.max_message,
           "largest reply accepted, inflated size with --deflate (larger → close 1009, exit 5), e.g. 64MiB");
  add_duration(d, "--timeout", a->opt.timeout, "deadline for all replies once connected (exit 4; 0 = none; not in interactive mode)");
  add_duration(d, "--connect-timeout", a->opt.connect_timeout, "deadline for TCP, TLS and the upgrade (exit 4)");
  add_load_flags(d, a->load);
  d->callback([a, &chosen, d] {
    auto o = a->opt;
    std::string why;
    auto u = ws::parse_url(a->url, &why);
    if (!u) usage_error("URL '" + a->url + "': " + why + " (e.g. ws://127.0.0.1:8899/echo)");
    o.target = *u;
    if (!o.target.secure && (!o.cacert.empty() || o.insecure))
      usage_error("--cacert and --insecure are for wss:// URLs");
    if (!o.cacert.empty() && o.insecure) usage_error("--cacert and --insecure contradict each other: give one");
    if (o.max_message == 0) usage_error("--max-message must be at least 1 byte");
    if (!o.cacert.empty()) {
      std::ifstream probe(o.cacert);
      if (!probe) usage_error("--cacert " + o.cacert + ": cannot read it");
    }
    for (const auto& h : a->headers) {
      const auto colon = h.find(':');
      if (colon == std::string::npos || colon == 0)
        usage_error("-H '" + h + "': expected 'Name: value', e.g. -H 'Authorization: Bearer x'");
      auto value = h.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      o.headers.emplace_back(h.substr(0, colon), value);
    }
    o.load = load_from(d, a->load);
    if (o.load) {
      if (!a->messages.empty() || !a->files.empty() || !a->input.empty() || a->interactive)
        usage_error("load mode (--count/--duration) sends generated data: drop -m, --file, '-' and -i");
    } else {
      for (const auto& m : a->messages) {
        // websocketpp would refuse to send it (exit 3 "invalid data"); a text message must be UTF-8
        // (RFC 6455 5.6), so this is the user's choice of flag.
        if (!a->binary && !core::valid_utf8(m))
          usage_error("-m: the message is not valid UTF-8, so it cannot go as a text message "
                      "(send bytes as a binary message with --binary)");
        o.messages.push_back({m, a->binary});
      }
      o.stdin_binary = a->binary;
      if (a->input == "-" || (o.messages.empty() && a->files.empty() && !::isatty(0))) o.stdin_fd = 0;
      o.interactive = a->interactive || (a->input == "-" && ::isatty(0));
      if (o.interactive) {
        o.stdin_fd = 0;
        const char* term = std::getenv("TERM");
        o.color = ::isatty(1) && !std::getenv("NO_COLOR") && !(term && std::string(term) == "dumb");
        o.tty_echo = ::isatty(0) && ::isatty(1);
      }
    }
    chosen.command = "ws-echo dial";
    chosen.threads = 1;  // the exchange is one connection; load mode runs its own worker threads
    chosen.options = o;
    chosen.run = [o, files = a->files](context& c) mutable {
      for (const auto& f : files) {  // read at run time: an unreadable file is a local I/O error (exit 6)
        std::string data;
        if (auto failed = read_message_file(f, data)) return *failed;
        o.messages.push_back({std::move(data), true});
      }
      if (o.stdin_fd >= 0) {  // a directory opens, but every read fails: say so before connecting
        struct stat st {};
        if (::fstat(o.stdin_fd, &st) == 0 && S_ISDIR(st.st_mode))
          return core::outcome::fail(exit_code::local_io, "stdin is a directory",
                                     "redirect a file or a pipe into stdin, or drop '-'");
      }
      return ws::dial(o, c.rt, c.out);
    };
  });
}

}  // namespace

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
  add_busy_poll(s, o->busy_poll);
  s->add_option("--max-connections", o->max_connections,
                "open WebSocket connections at most; beyond it the upgrade gets HTTP 503 (0 = no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  s->add_option("--max-handshakes", o->max_handshakes,
                "connections still in their upgrade (TLS included) at most; beyond it new ones are closed at "
                "once (0 = no limit)")
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
  register_dial(ws, chosen);
}

}  // namespace netlab::cli
