// `netlab tcp serve` and `netlab tcp dial`: flags, validation, and the call into lib/netlab/tcp.
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <thread>

#include "cli.hpp"
#include "netlab/core/log.hpp"
#include "netlab/core/text.hpp"
#include "netlab/tcp/client.hpp"
#include "netlab/tcp/server.hpp"

namespace netlab::cli {
namespace {

// Strings and flags as typed; converted into the lib options once parsing is complete.
struct serve_args {
  tcp::serve_options opt;
  std::string mode = "ack";
  std::uint64_t max_message = 64 * 1024;
};

struct dial_args {
  tcp::dial_options opt;
  std::string target;
  std::string input;  // "-" = read stdin
  std::vector<std::string> messages;
  bool escapes = false;
  load_args load;
};

const CLI::Validator positive_count = whole(1, UINT64_MAX, "N>=1");
const CLI::Validator count_or_zero = whole(0, UINT64_MAX, "N>=0");

void register_serve(CLI::App* tcp, action& chosen) {
  auto a = std::make_shared<serve_args>();
  auto* s = tcp->add_subcommand("serve", "accept TCP connections and acknowledge, echo or discard what clients send");
  s->footer(
      "Modes:\n"
      "  ack      answer each chunk read with the --reply template ({msg} = the chunk, {peer} = the client)\n"
      "  echo     RFC 862: send back every byte until the client closes\n"
      "  discard  RFC 863: read and drop (throughput tests)\n"
      "Prints 'listening tcp ADDRESS:PORT' once bound; SIGINT/SIGTERM stop it cleanly (exit 0).\n"
      "Example: netlab tcp serve --listen 127.0.0.1:1450 --reply '伺服器端回傳伺服器端已接收到 {msg}' --once");
  add_endpoint(s, "-l,--listen", a->opt.listen, "address to listen on: HOST:PORT, :PORT (all interfaces), [::1]:PORT; port 0 = any free port", 1450);
  s->add_option("--mode", a->mode, "what to do with received data: ack, echo or discard")
      ->check(CLI::IsMember({"ack", "echo", "discard"}))
      ->capture_default_str();
  s->add_option("--reply", a->opt.reply,
                "ack mode: reply template; {msg} is replaced by the data received, {peer} by the client's "
                "address (plain substitution, bytes are sent as they are)")
      ->capture_default_str();
  s->add_flag("--once", a->opt.once, "ack mode: close the connection after the first reply");
  s->add_option("--max-connections", a->opt.max_connections,
                "at most N clients at once; more are accepted and closed at once (0 = no limit)")
      ->check(count_or_zero)
      ->capture_default_str();
  add_duration(s, "--idle-timeout", a->opt.idle_timeout, "close a client that sends nothing for this long (0 = never)");
  add_size(s, "--max-message", a->max_message,
           "ack mode: largest chunk read at once; each chunk read gets one reply (1 B to 16 MiB)");
  add_threads(s, a->opt.threads);
  add_busy_poll(s, a->opt.busy_poll);
  s->callback([a, &chosen, s] {
    if (a->max_message < 1 || a->max_message > 16 * 1024 * 1024)
      usage_error("--max-message: " + std::to_string(a->max_message) + " is out of range (1 B to 16 MiB)");
    auto o = a->opt;
    o.max_message = static_cast<std::size_t>(a->max_message);
    o.mode = a->mode == "echo" ? tcp::serve_mode::echo : a->mode == "discard" ? tcp::serve_mode::discard : tcp::serve_mode::ack;
    if (o.mode != tcp::serve_mode::ack) {
      if (s->count("--reply")) usage_error("--reply only applies to --mode ack");
      if (o.once) usage_error("--once only applies to --mode ack");
      if (s->count("--max-message")) usage_error("--max-message only applies to --mode ack");
    }
    chosen.command = "tcp serve";
    chosen.threads = o.threads;
    chosen.options = o;
    chosen.run = [o](context& c) { return tcp::serve(o, c.rt, c.out); };
  });
}

void register_dial(CLI::App* tcp, action& chosen) {
  auto a = std::make_shared<dial_args>();
  auto* d = tcp->add_subcommand("dial", "connect, send data, print what comes back byte-exact; or generate echo load");
  d->footer(
      "Data sent: each -m message in order (one write each), then stdin when '-' is given; without -m, stdin is\n"
      "read by default (on a terminal: interactive, each line typed is sent, Ctrl-D ends the input). Everything\n"
      "received goes to stdout unchanged (--json: NDJSON events). Once everything is sent, the first reply is\n"
      "awaited up to --timeout (10s when none is set; nothing at all: exit 4), then reading ends when the peer\n"
      "closes (exit 0), after --idle of silence (exit 0), or at --timeout (exit 4). Connection refused: exit 3.\n"
      "Load mode (--count N or --duration S, with --connections, --size, --pipeline, --threads): each\n"
      "connection sends SIZE-byte messages to an echo server and verifies each echo; prints msgs/s, MB/s and\n"
      "latency percentiles.\n"
      "Examples:\n"
      "  netlab tcp dial 127.0.0.1:1450 -m '封印解除!'\n"
      "  netlab tcp dial example.org:80 -e -m 'GET / HTTP/1.0\\r\\n\\r\\n'\n"
      "  printf 'x' | netlab tcp dial 127.0.0.1:1450\n"
      "  netlab tcp dial 127.0.0.1:7007 --connections 100 --duration 10s --size 1K");
  d->add_option("target", a->target, "HOST:PORT to connect to ([::1]:PORT for IPv6)")->required()->check(host_port);
  d->add_option("input", a->input, "'-' to send stdin (after any -m messages)")->check(CLI::IsMember({"-"}));
  d->add_option("-m,--message", a->messages, "TEXT to send; repeat for several messages, sent in order")
      ->allow_extra_args(false);  // one value per -m, so a following '-' is the stdin marker
  d->add_flag("-e,--escapes", a->escapes, "decode \\r \\n \\t \\0 \\\\ \\xNN in -m messages");
  add_duration(d, "--idle", a->opt.idle, "once everything is sent, stop after this much silence (exit 0; 0 = wait for the peer to close)");
  add_duration(d, "--timeout", a->opt.timeout,
               "overall deadline, exit 4 when it passes (0 = none); load mode: deadline per echo (0 = 10s)");
  add_duration(d, "--connect-timeout", a->opt.connect_timeout, "deadline for resolving and connecting (exit 4; 0 = none)");
  d->add_flag("--half-close", a->opt.half_close, "shut down the sending side once everything is sent, keep reading");
  add_load_flags(d, a->load);
  d->callback([a, &chosen, d] {
    auto o = a->opt;
    o.target = *core::parse_endpoint(a->target).value;
    if (o.target.host.empty()) usage_error("target '" + a->target + "' has no host (e.g. 127.0.0.1" + a->target + ")");
    o.load = load_from(d, a->load);
    if (o.load) {
      if (!a->messages.empty() || !a->input.empty() || a->escapes)
        usage_error("load mode (--count/--duration) sends generated data: drop -m, -e and '-'");
      if (o.half_close || d->count("--idle")) usage_error("--half-close and --idle do not apply to load mode");
    } else {
      if (a->escapes && a->messages.empty()) usage_error("-e/--escapes decodes -m messages: add -m TEXT");
      for (const auto& m : a->messages) {
        if (!a->escapes) {
          o.source.messages.push_back(m);
          continue;
        }
        auto decoded = core::decode_escapes(m);
        if (!decoded) usage_error("-m '" + m + "': " + decoded.error);
        o.source.messages.push_back(std::move(*decoded.value));
      }
      // stdin: when asked with '-', or by default when no message is given. On a terminal that makes
      // the dial interactive, as ncat: each line typed is sent, Ctrl-D ends the input.
      if (a->input == "-" || a->messages.empty()) o.source.fd = 0;
    }
    chosen.command = "tcp dial";
    chosen.threads = 1;  // the exchange is one connection; load mode runs its own worker threads
    chosen.options = o;
    if (o.source.fd == 0) {
      if (auto bad = stdin_unreadable()) {
        chosen.run = [f = *bad](context&) { return f; };
        return;
      }
    }
    const bool interactive = o.source.fd == 0 && ::isatty(0) == 1;
    chosen.run = [o, interactive](context& c) {
      if (interactive)
        core::log().info("interactive: each line typed is sent; Ctrl-D ends the input, Ctrl-C quits");
      return tcp::dial(o, c.rt, c.out);
    };
  });
}

}  // namespace

void register_tcp(CLI::App& app, action& chosen) {
  auto* tcp = app.add_subcommand("tcp", "TCP server (ack, echo, discard) and netcat-like client with a load mode");
  tcp->require_subcommand(1);
  register_serve(tcp, chosen);
  register_dial(tcp, chosen);
}

}  // namespace netlab::cli
