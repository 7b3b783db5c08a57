// `netlab udp serve` and `netlab udp send`: flags, validation, and the call into lib/netlab/udp.
#include <arpa/inet.h>
#include <unistd.h>

#include <cstdio>
#include <limits>

#include "cli.hpp"
#include "netlab/core/fd_pump.hpp"
#include "netlab/core/text.hpp"
#include "netlab/udp/client.hpp"
#include "netlab/udp/server.hpp"

namespace netlab::cli {
namespace {

struct udp_serve_args {
  udp::serve_options opt;
  std::string mode = "ack";
};

struct udp_send_args {
  udp::send_options opt;
  std::string target;
  std::string message;
  bool has_message = false;
  bool escapes = false;
  std::uint64_t connections = 1;
  std::uint64_t count = 1;
  std::uint64_t size = 64;
  unsigned retries = 0;
  unsigned threads = load_threads_default();
};

void register_udp_serve(CLI::App* udp, action& chosen) {
  auto a = std::make_shared<udp_serve_args>();
  auto* s = udp->add_subcommand("serve", "answer UDP datagrams with an acknowledgement or an echo");
  s->footer(
      "Modes:\n"
      "  ack    answer each datagram with the --reply template ({msg} = the datagram, {peer} = the sender)\n"
      "  echo   RFC 862: send each datagram back unchanged\n"
      "  print  answer nothing: print each datagram as 'SENDER SIZE B: TEXT' (--json: datagram events)\n"
      "--join GROUP receives a multicast group's datagrams (bind all interfaces or the group: --listen\n"
      "0.0.0.0:PORT); --interface picks the interface by its IPv4 address.\n"
      "Datagrams up to 65,536 bytes are received. Prints 'listening udp ADDRESS:PORT' once bound;\n"
      "never answers its own address (a spoofed source) or port 0; see --loop-limit for reply loops.\n"
      "SIGINT/SIGTERM stop it cleanly (exit 0).\n"
      "Example: netlab udp serve --listen 127.0.0.1:6890 --reply '伺服器端回傳伺服器端已接收到 {msg}'");
  add_endpoint(s, "-l,--listen", a->opt.listen,
               "address to listen on: HOST:PORT, :PORT (all interfaces), [::1]:PORT; port 0 = any free port", 6890);
  s->add_option("--mode", a->mode, "what to answer: ack, echo, or print (answer nothing, print each datagram and its sender)")
      ->check(CLI::IsMember({"ack", "echo", "print"}))
      ->capture_default_str();
  s->add_option("--reply", a->opt.reply,
                "ack mode: reply template; {msg} is replaced by the datagram, {peer} by the sender's address")
      ->capture_default_str();
  add_threads(s, a->opt.threads);
  s->add_option("--loop-limit", a->opt.loop_limit,
                "leave a datagram unanswered when the peer has sent our own replies back this many times in a row "
                "(another echo server: a reply loop); also never answer source ports below 1024 (0 = off, 1-1000000)")
      ->check(whole(0, 1000000, "N 0-1000000"))
      ->capture_default_str();
  s->add_option("--join", a->opt.join, "join this multicast group (repeatable), e.g. 239.1.2.3")
      ->type_name("GROUP")
      ->check(CLI::Validator(
          [](std::string& g) {
            unsigned char buf[sizeof(in6_addr)];
            const bool ip = ::inet_pton(AF_INET, g.c_str(), buf) == 1 || ::inet_pton(AF_INET6, g.c_str(), buf) == 1;
            return ip ? std::string() : "'" + g + "' is not an IP address (a group is a literal, e.g. 239.1.2.3)";
          },
          "", "group"));
  s->add_option("--interface", a->opt.interface_address, "--join: IPv4 address of the interface to join on, e.g. 127.0.0.1")
      ->type_name("ADDRESS");
  s->callback([a, &chosen, s] {
    auto o = a->opt;
    o.mode = a->mode == "echo" ? udp::serve_mode::echo : a->mode == "print" ? udp::serve_mode::print : udp::serve_mode::ack;
    if (o.mode != udp::serve_mode::ack && s->count("--reply")) usage_error("--reply only applies to --mode ack");
    if (s->count("--interface") && o.join.empty()) usage_error("--interface applies to --join: add --join GROUP");
    chosen.command = "udp serve";
    chosen.threads = o.threads;
    chosen.options = o;
    chosen.run = [o](context& c) { return udp::serve(o, c.rt, c.out); };
  });
}

void register_udp_send(CLI::App* udp, action& chosen) {
  auto a = std::make_shared<udp_send_args>();
  auto* d = udp->add_subcommand("send", "send a datagram, print the reply byte-exact; or generate echo load");
  d->footer(
      "The datagram is MESSAGE, or stdin when MESSAGE is absent or '-'. Each reply is printed as it came, followed\n"
      "by a newline unless it ends with one (--json: one {\"event\":\"reply\",...} object per reply).\n"
      "No reply within --timeout: resend up to --retries times, then exit 4. ICMP port unreachable: exit 3.\n"
      "--count N sends N datagrams, one after each reply; with --wait-all all N are sent at once and every\n"
      "reply arriving before --timeout is printed.\n"
      "Load mode (--count N or --duration S with --connections/--size/--threads against an echo server):\n"
      "each socket sends SIZE-byte datagrams, waits up to --timeout for each echo (lost = error) and verifies it.\n"
      "Examples:\n"
      "  netlab udp send 127.0.0.1:6890 'Hello UDP!'\n"
      "  printf 'ping' | netlab udp send [::1]:6890 --timeout 1s --retries 2\n"
      "  netlab udp send 127.0.0.1:7007 --connections 10 --duration 5s --size 512");
  d->add_option("target", a->target, "HOST:PORT to send to ([::1]:PORT for IPv6)")->required()->check(host_port);
  d->add_option("message", a->message, "datagram text; '-' or absent: read stdin");
  d->add_flag("-e,--escapes", a->escapes, "decode \\r \\n \\t \\0 \\\\ \\xNN in MESSAGE");
  add_duration(d, "--timeout", a->opt.timeout, "wait this long for a reply (exit 4 after the last retry); load mode: per echo");
  d->add_option("--retries", a->retries, "resend this many times when no reply comes within --timeout (0-1000)")
      ->check(whole(0, 1000, "N 0-1000"))
      ->capture_default_str();
  d->add_option("--count", a->count, "datagrams to send (load mode: total over all sockets)")
      ->check(whole(1, std::numeric_limits<std::uint64_t>::max(), "N>=1"))
      ->capture_default_str();
  d->add_flag("--wait-all", a->opt.wait_all, "send all --count datagrams at once and print every reply until --timeout");
  d->add_flag("--broadcast", a->opt.broadcast,
              "allow a broadcast target (SO_BROADCAST, e.g. 192.168.1.255 or 127.255.255.255): every reply until "
              "--timeout is printed");
  d->add_option("--interface", a->opt.interface_address, "multicast target: IPv4 address of the interface to send on")
      ->type_name("ADDRESS");
  d->add_option("--connections", a->connections, "load mode: concurrent sockets (1-10000)")
      ->check(whole(1, 10000, "N 1-10000"))
      ->capture_default_str();
  core::load_options defaults;
  a->opt.load = defaults;  // holds --duration until the callback decides whether this is load mode
  add_duration(d, "--duration", a->opt.load->duration, "load mode: run for this long (instead of --count)");
  add_size(d, "--size", a->size, "load mode: bytes per datagram (1 B to 65,507 B)");
  d->add_option("--threads", a->threads, "load mode: io threads (1-256)")
      ->check(whole(1, 256, "N 1-256"))
      ->capture_default_str();
  d->callback([a, &chosen, d] {
    auto o = a->opt;
    o.target = *core::parse_endpoint(a->target).value;
    if (o.target.host.empty()) usage_error("target '" + a->target + "' has no host (e.g. 127.0.0.1" + a->target + ")");
    if (o.target.port == 0) usage_error("target '" + a->target + "': port 0 cannot be sent to");
    if (o.timeout.count() <= 0) usage_error("--timeout must be longer than 0 (every wait has a deadline)");
    o.retries = a->retries;
    o.terminal_newline = ::isatty(1) == 1;
    if (d->count("--interface") && !udp::group_target(o))
      usage_error("--interface applies to a multicast target (224.0.0.0/4, ff00::/8)");
    const bool load_flags = d->count("--connections") || d->count("--duration") || d->count("--size") || d->count("--threads");
    const bool by_duration = d->count("--duration") > 0;
    if (load_flags) {
      if (by_duration && d->count("--count")) usage_error("--count and --duration exclude each other: give one");
      if (!by_duration && !d->count("--count")) usage_error("load mode needs --count N or --duration S");
      if (by_duration && o.load->duration.count() == 0) usage_error("--duration must be longer than 0");
      if (o.broadcast || d->count("--interface")) usage_error("load mode needs one unicast echo server: drop --broadcast and --interface");
      if (d->count("message") || a->escapes || o.wait_all || d->count("--retries"))
        usage_error("load mode sends generated datagrams: drop MESSAGE, -e, --wait-all and --retries");
      if (a->size < 1 || a->size > udp::max_datagram)
        usage_error("--size: " + std::to_string(a->size) + " is out of range (1 B to 65,507 B)");
      core::load_options l;
      l.connections = static_cast<unsigned>(a->connections);
      l.count = by_duration ? 0 : a->count;
      l.duration = by_duration ? o.load->duration : std::chrono::milliseconds(0);
      l.size = static_cast<std::size_t>(a->size);
      l.pipeline = 1;
      l.threads = a->threads;
      o.load = l;
      o.count = l.count;
    } else {
      o.load.reset();
      o.count = a->count;
      std::string m;
      if (d->count("message") && a->message != "-") {
        m = a->message;
      } else {
        if (::isatty(0)) usage_error("no MESSAGE given and stdin is a terminal: give MESSAGE or pipe data in");
        if (auto bad = stdin_unreadable()) {
          chosen.command = "udp send";
          chosen.run = [f = *bad](context&) { return f; };
          return;
        }
        std::error_code rec;
        // Stops reading just past the largest datagram: the size check below reports it.
        m = core::fd_pump::read_all(0, udp::max_datagram, rec);
        if (rec) {
          // A local I/O failure (stdin is a directory, a read error), not a usage error: exit 6.
          auto failure = stdin_failure(rec);
          chosen.command = "udp send";
          chosen.run = [failure](context&) { return failure; };
          return;
        }
      }
      if (a->escapes) {
        auto decoded = core::decode_escapes(m);
        if (!decoded) usage_error("MESSAGE: " + decoded.error);
        m = std::move(*decoded.value);
      }
      if (m.size() > udp::max_datagram)
        usage_error("the datagram is " + (m.size() > udp::max_datagram + 1 ? "more than " : std::string()) +
                    std::to_string(m.size()) + " bytes; UDP carries at most 65,507 bytes per datagram (send a file with udp-file)");
      o.message = std::move(m);
    }
    chosen.command = "udp send";
    chosen.threads = 1;  // the exchange is one connection; load mode runs its own worker threads
    chosen.options = o;
    chosen.run = [o](context& c) { return udp::send(o, c.rt, c.out); };
  });
}

}  // namespace

void register_udp(CLI::App& app, action& chosen) {
  auto* udp = app.add_subcommand("udp", "UDP server (ack, echo, print; multicast groups) and client with retries, broadcast and a load mode");
  udp->require_subcommand(1);
  register_udp_serve(udp, chosen);
  register_udp_send(udp, chosen);
}

}  // namespace netlab::cli
