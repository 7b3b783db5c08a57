#include "cli.hpp"

#include <algorithm>
#include <limits>
#include <thread>

#include <csignal>
#include <cstdio>
#include <exception>

#include "docgen.hpp"
#include "netlab/core/log.hpp"
#include "netlab/core/text.hpp"

namespace netlab::cli {
namespace {

std::string fmt_duration(std::chrono::milliseconds d) { return core::format_duration(d); }

}  // namespace

const CLI::Validator host_port(
    [](std::string& s) {
      auto p = core::parse_endpoint(s);
      return p ? std::string() : p.error;
    },
    "", "host_port");

const CLI::Validator duration(
    [](std::string& s) {
      auto p = core::parse_duration(s);
      return p ? std::string() : p.error;
    },
    "", "duration");

const CLI::Validator byte_size(
    [](std::string& s) {
      auto p = core::parse_size(s);
      if (p && *p.value > max_count) return "size '" + s + "' is too large (at most " + std::to_string(max_count) + " B)";
      return p ? std::string() : p.error;
    },
    "", "size");

CLI::Validator whole(std::uint64_t min, std::uint64_t max, const char* desc) {
  // Every count is at most INT64_MAX: lib and the reports keep counts in signed 64-bit places
  // (atomics, JSON, durations), where 2^63 would wrap to a negative budget and run nothing.
  max = std::min(max, max_count);
  return CLI::Validator(
      [min, max](std::string& s) -> std::string {
        std::uint64_t v = 0;
        std::size_t i = 0;
        for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
          if (v > (max_count - (s[i] - '0')) / 10)
            return "'" + s + "' is too large (at most " + std::to_string(max) + ")";
          v = v * 10 + static_cast<std::uint64_t>(s[i] - '0');
        }
        if (i == 0 || i != s.size()) return "'" + s + "' is not a whole number";
        if (v < min) return "'" + s + "' must be at least " + std::to_string(min);
        if (v > max) return "'" + s + "' must be at most " + std::to_string(max);
        return {};
      },
      desc, desc);
}

void add_load_flags(CLI::App* d, load_args& a) {
  a.threads = load_threads_default();
  d->add_option("--connections", a.connections, "load mode: concurrent connections (1-100000)")
      ->check(whole(1, 100000, "N 1-100000"))
      ->capture_default_str();
  d->add_option("--count", a.count, "load mode: total messages over all connections")->check(whole(1, UINT64_MAX, "N>=1"));
  add_duration(d, "--duration", a.duration, "load mode: run for this long (instead of --count)");
  add_size(d, "--size", a.size, "load mode: bytes per message (1 B to 16 MiB)");
  d->add_option("--pipeline", a.pipeline, "load mode: messages in flight per connection (1-1024)")
      ->check(whole(1, 1024, "N 1-1024"))
      ->capture_default_str();
  d->add_option("--threads", a.threads, "load mode: worker threads (1-256)")->check(CLI::Range(1u, 256u))->capture_default_str();
}

std::optional<core::load_options> load_from(CLI::App* d, const load_args& a) {
  const bool by_count = d->count("--count") > 0;
  const bool by_duration = d->count("--duration") > 0;
  if (by_count && by_duration) usage_error("--count and --duration exclude each other: give one");
  if (!by_count && !by_duration) {
    for (const char* flag : {"--connections", "--size", "--pipeline", "--threads"})
      if (d->count(flag)) usage_error(std::string(flag) + " is a load-mode flag: add --count N or --duration S");
    return std::nullopt;
  }
  if (by_duration && a.duration.count() == 0) usage_error("--duration must be longer than 0");
  if (a.size < 1 || a.size > 16 * 1024 * 1024)
    usage_error("--size: " + std::to_string(a.size) + " is out of range (1 B to 16 MiB)");
  core::load_options l;
  l.connections = static_cast<unsigned>(a.connections);
  l.count = by_count ? a.count : 0;
  l.duration = by_count ? std::chrono::milliseconds(0) : a.duration;
  l.size = static_cast<std::size_t>(a.size);
  l.pipeline = static_cast<unsigned>(a.pipeline);
  l.threads = a.threads;
  return l;
}

CLI::Option* add_duration(CLI::App* app, const std::string& name, std::chrono::milliseconds& target,
                          const std::string& desc) {
  auto* o = app->add_option_function<std::string>(
      name, [&target](const std::string& s) { target = *core::parse_duration(s).value; }, desc);
  o->check(duration)->type_name("DURATION")->default_str(fmt_duration(target));
  return o;
}

CLI::Option* add_endpoint(CLI::App* app, const std::string& name, core::endpoint& target, const std::string& desc,
                          std::optional<std::uint16_t> default_port) {
  auto* o = app->add_option_function<std::string>(
      name, [&target, default_port](const std::string& s) { target = *core::parse_endpoint(s, default_port).value; },
      desc);
  o->check(CLI::Validator(
      [default_port](std::string& s) {
        auto p = core::parse_endpoint(s, default_port);
        return p ? std::string() : p.error;
      },
      "", "host_port"));
  o->type_name("HOST:PORT")->default_str(target.to_string());
  return o;
}

CLI::Option* add_size(CLI::App* app, const std::string& name, std::uint64_t& target, const std::string& desc) {
  auto* o = app->add_option_function<std::string>(
      name, [&target](const std::string& s) { target = *core::parse_size(s).value; }, desc);
  o->check(byte_size)->type_name("SIZE")->default_str(std::to_string(target));
  return o;
}

unsigned load_threads_default() { return std::max(1u, std::min(2u, std::thread::hardware_concurrency())); }

unsigned server_threads_default() {
  return std::max(1u, std::min(256u, std::thread::hardware_concurrency()));
}

CLI::Option* add_threads(CLI::App* app, unsigned& target) {
  target = server_threads_default();
  return app->add_option("--threads", target, "threads running the event loop (default: one per CPU core)")
      ->check(CLI::Range(1u, 256u))
      ->capture_default_str();
}

CLI::Option* add_busy_poll(CLI::App* app, std::chrono::microseconds& target) {
  return app
      ->add_option_function<unsigned>(
          "--busy-poll", [&target](unsigned us) { target = std::chrono::microseconds(us); },
          "microseconds to keep polling for a lone connection's next message before sleeping, like "
          "SO_BUSY_POLL: lower latency for one request/response client, at most that much CPU per message "
          "(0 = off, up to 10000)")
      ->check(whole(0, 10000, "0-10000"))
      ->type_name("US")
      ->default_str(std::to_string(target.count()));
}

void usage_error(const std::string& message) { throw CLI::ValidationError(message); }

void report_failure(const std::string& command, const core::outcome& o) {
  std::string line = "netlab: " + (command.empty() ? std::string() : command + ": ") + o.what;
  if (!o.hint.empty()) line += " (" + o.hint + ")";
  line += "\n";
  std::fflush(stdout);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

std::unique_ptr<CLI::App> make_app(globals& g, action& chosen) {
  auto app = std::make_unique<CLI::App>("netlab: a network lab in one binary (WebSocket, TCP, UDP, TFTP)", "netlab");
  app->fallthrough();  // before adding subcommands: they inherit it, so global flags work anywhere
  app->require_subcommand(1);
  app->set_version_flag("--version", "netlab " NETLAB_VERSION);
  app->add_flag("-v,--verbose", g.verbose, "more logging: -v per message, -vv hex dumps of the wire");
  app->add_flag("-q,--quiet", g.quiet, "log errors only");
  app->add_flag("--json", g.json, "print results as NDJSON objects on stdout");
  app->footer("Exit codes: 0 ok, 1 internal, 2 usage, 3 network, 4 timeout, 5 protocol, 6 local I/O, "
              "130 interrupted (see docs/exit-codes.md)");
  register_ws_echo(*app, chosen);
  register_tcp(*app, chosen);
  register_udp(*app, chosen);
  register_udp_file(*app, chosen);
  // One line for usage errors too, naming the subcommand and pointing to its --help.
  app->failure_message([](const CLI::App* top, const CLI::Error& e) {
    std::string path = "netlab";
    const CLI::App* at = top;
    for (bool deeper = true; deeper;) {
      deeper = false;
      for (const auto* sub : at->get_subcommands()) {
        path += " " + sub->get_name();
        at = sub;
        deeper = true;
        break;
      }
    }
    std::string cmd = path.size() > 6 ? path.substr(7) + ": " : std::string();
    return "netlab: " + cmd + e.what() + " (see '" + path + " --help')\n";
  });
  return app;
}

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout pipe or socket is an error code, not a kill
  // The build's hidden --generate-man / --generate-completion (cmd/docgen.hpp), before parsing.
  if (auto rc = docgen::handle(argc, argv)) return *rc;
  globals g;
  action chosen;
  try {
    auto app = make_app(g, chosen);
    try {
      app->parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      int rc = app->exit(e);
      return rc == 0 ? 0 : static_cast<int>(exit_code::usage);
    }
    if (!chosen.run) {
      report_failure("", core::outcome::fail(exit_code::usage, "no command chosen", "see 'netlab --help'"));
      return static_cast<int>(exit_code::usage);
    }
    core::init_logging(g.quiet ? core::verbosity::quiet
                       : g.verbose >= 2 ? core::verbosity::trace
                       : g.verbose == 1 ? core::verbosity::debug
                                        : core::verbosity::info);
    core::runtime rt(chosen.threads);
    core::reporter out(stdout, g.json);
    context ctx{rt, out, g};
    core::outcome result = chosen.run(ctx);
    if (!result.ok()) report_failure(chosen.command, result);
    return static_cast<int>(result.code);
  } catch (const std::exception& e) {
    report_failure("", core::outcome::fail(exit_code::internal, std::string("internal error: ") + e.what(),
                                           "please report this bug"));
  } catch (...) {
    report_failure("", core::outcome::fail(exit_code::internal, "internal error", "please report this bug"));
  }
  return static_cast<int>(exit_code::internal);
}

}  // namespace netlab::cli
