// ws-echo: `netlab ws-echo serve` (dial is not implemented yet).
#include <memory>

#include "cli.hpp"
#include "netlab/ws/echo_server.hpp"

namespace netlab::cli {

void register_ws_echo(CLI::App& app, action& chosen) {
  auto* ws = app.add_subcommand("ws-echo", "WebSocket echo server (websocketpp)")->require_subcommand(1);
  auto o = std::make_shared<ws::serve_options>();
  auto* s = ws->add_subcommand("serve", "accept WebSocket connections on --path and echo every message with its type");
  s->footer(
      "Prints 'listening ws ADDRESS:PORT' once bound; other paths get HTTP 404; messages larger than\n"
      "--max-message close the connection with 1009. SIGINT/SIGTERM close every client with 1001 (exit 0).\n"
      "Example (the classic lesson): netlab ws-echo serve   then   python3 -m websockets ws://127.0.0.1:8899/echo");
  add_endpoint(s, "-l,--listen", o->listen,
               "address to listen on: HOST:PORT, :PORT (all interfaces), [::1]:PORT; port 0 = any free port", 8899);
  s->add_option("--path", o->path, "resource that upgrades to WebSocket")->capture_default_str();
  add_size(s, "--max-message", o->max_message, "largest message accepted (larger → close 1009), e.g. 16MiB");
  add_threads(s, o->threads);
  s->callback([o, &chosen] {
    if (o->path.empty() || o->path[0] != '/') usage_error("--path must start with '/', e.g. --path /echo");
    if (o->max_message == 0) usage_error("--max-message must be at least 1 byte");
    auto opt = *o;
    chosen.command = "ws-echo serve";
    chosen.threads = opt.threads;
    chosen.options = opt;
    chosen.run = [opt](context& c) { return ws::serve(opt, c.rt, c.out); };
  });
}

}  // namespace netlab::cli
