#include "cli.hpp"

#include <algorithm>
#include <limits>
#include <thread>

#include <sys/stat.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <exception>
#include <regex>
#include <sstream>

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

core::outcome stdin_failure(std::error_code ec) {
  if (ec == std::errc::is_a_directory)
    return core::outcome::fail(exit_code::local_io, "stdin is a directory", "redirect a file with < FILE, or pipe data in");
  return core::outcome::fail(exit_code::local_io, "read stdin: " + ec.message(), "check what stdin is redirected from");
}

std::optional<core::outcome> stdin_unreadable() {
  struct stat st {};
  if (::fstat(0, &st) != 0) return stdin_failure(std::error_code(errno, std::generic_category()));
  if (S_ISDIR(st.st_mode)) return stdin_failure(std::make_error_code(std::errc::is_a_directory));
  return std::nullopt;
}

std::string default_hint(exit_code code, const std::string& command) {
  const std::string help = command.empty() ? "netlab --help" : "netlab " + command + " --help";
  switch (code) {
    case exit_code::usage: return "see '" + help + "'";
    case exit_code::network: return "check the address and that the peer is up and reachable";
    case exit_code::timeout: return "the peer may be slow or gone; raise the deadline (see '" + help + "')";
    case exit_code::protocol: return "the peer broke the protocol; -v logs the exchange";
    case exit_code::local_io: return "check the path, its type and its permissions";
    case exit_code::interrupted: return "stopped by SIGINT/SIGTERM before it finished";
    case exit_code::ok: return {};
    case exit_code::internal: break;
  }
  return "please report this bug";
}

void report_failure(const std::string& command, const core::outcome& o, bool json) {
  const std::string hint = o.hint.empty() ? default_hint(o.code, command) : o.hint;
  std::string line = "netlab: " + (command.empty() ? std::string() : command + ": ") + o.what;
  if (!hint.empty()) line += " (" + hint + ")";
  line += "\n";
  std::fflush(stdout);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
  if (json) {
    // The last line of stdout: a script reading NDJSON sees the verdict without parsing stderr.
    std::string ev = core::reporter::dump({{"event", "error"},
                                           {"command", command},
                                           {"exit", static_cast<int>(o.code)},
                                           {"message", o.what},
                                           {"hint", hint}});
    ev += "\n";
    std::fwrite(ev.data(), 1, ev.size(), stdout);
    std::fflush(stdout);
  }
}

namespace {

// Optimal string alignment distance (a swap of two neighbours counts 1): "dail" is 1 from "dial".
std::size_t edit_distance(const std::string& a, const std::string& b) {
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i)
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[n][m];
}

std::vector<const CLI::App*> children(const CLI::App& app) {
  std::vector<const CLI::App*> out;
  for (const auto* sub : app.get_subcommands([](const CLI::App*) { return true; })) out.push_back(sub);
  return out;
}

const CLI::App* child(const CLI::App& app, const std::string& name) {
  for (const auto* sub : children(app))
    if (sub->get_name() == name) return sub;
  return nullptr;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& x : v) out += (out.empty() ? "" : sep) + x;
  return out;
}

// The command names below app, as typed ("serve, dial"), `help` excluded.
std::vector<std::string> command_names(const CLI::App& app) {
  std::vector<std::string> out;
  for (const auto* sub : children(app))
    if (sub->get_name() != "help") out.push_back(sub->get_name());
  return out;
}

// "tcp dial" for the deepest subcommand parse() selected, and that subcommand.
std::pair<std::string, const CLI::App*> selected_path(const CLI::App& top) {
  std::string path;
  const CLI::App* at = &top;
  for (bool deeper = true; deeper;) {
    deeper = false;
    for (const auto* sub : at->get_subcommands()) {
      path += (path.empty() ? "" : " ") + sub->get_name();
      at = sub;
      deeper = true;
      break;
    }
  }
  return {path, at};
}

// Every name an option of `app` (and the global flags) answers to: "--listen", "-l".
std::vector<std::string> option_names(const CLI::App& app) {
  std::vector<std::string> out;
  for (const CLI::App* a = &app; a; a = a->get_parent())
    for (const auto* o : a->get_options()) {
      for (const auto& l : o->get_lnames()) out.push_back("--" + l);
      for (const auto& sn : o->get_snames()) out.push_back("-" + sn);
    }
  return out;
}

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

}  // namespace

std::string suggest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_d = std::string::npos;
  const std::size_t allowed = word.size() >= 5 ? 2 : 1;
  for (const auto& c : candidates) {
    std::size_t d = edit_distance(word, c);
    if (d > allowed && !(word.size() >= 3 && starts_with(c, word))) continue;
    if (d < best_d) best = c, best_d = d;
  }
  return best;
}

std::optional<std::vector<std::string>> help_request(const std::vector<std::string>& args) {
  std::size_t i = 0;
  while (i < args.size() && starts_with(args[i], "-") && args[i] != "--") ++i;
  if (i == args.size() || args[i] != "help") return std::nullopt;
  std::vector<std::string> out;
  for (std::size_t j = i + 1; j < args.size(); ++j)
    if (!starts_with(args[j], "-")) out.push_back(args[j]);
  out.push_back("--help");
  return out;
}

std::optional<usage_failure> check_commands(const CLI::App& app, const std::vector<std::string>& args) {
  const CLI::App* at = &app;
  std::string path;
  for (const auto& tok : args) {
    if (tok == "--") break;
    const auto names = command_names(*at);
    if (names.empty()) return std::nullopt;  // a command: its own arguments follow
    if (starts_with(tok, "-")) {
      if (tok == "-h" || tok == "--help") return std::nullopt;  // help for this level
      if (tok == "--version" && at == &app) return std::nullopt;  // netlab --version
      continue;  // the groups take only the global flags, none of which takes a value
    }
    const CLI::App* next = child(*at, tok);
    if (!next || (tok == "help" && at != &app)) {
      const std::string s = suggest(tok, names);
      const std::string where = path.empty() ? "netlab --help" : "netlab " + path + " --help";
      return usage_failure{path, "unknown command '" + tok + "'",
                           s.empty() ? "commands: " + join(names, ", ") + "; see '" + where + "'"
                                     : "did you mean '" + s + "'?"};
    }
    at = next;
    path += (path.empty() ? "" : " ") + tok;
  }
  const auto names = command_names(*at);
  if (!names.empty() && at->get_name() != "help")
    return usage_failure{path, path.empty() ? "missing command group: " + join(names, ", ")
                                            : "missing command: " + join(names, " or "),
                         "see '" + (path.empty() ? std::string("netlab --help") : "netlab " + path + " --help") + "'"};
  return std::nullopt;
}

std::optional<usage_failure> unknown_option(const CLI::App& app, const std::vector<std::string>& args) {
  // The command the words name (check_commands() accepted them), then its options and the globals.
  const CLI::App* at = &app;
  std::string path;
  for (const auto& tok : args) {
    if (tok == "--") break;
    if (starts_with(tok, "-")) {
      if (tok.size() < 2 || !((tok[1] >= 'a' && tok[1] <= 'z') || (tok[1] >= 'A' && tok[1] <= 'Z') || tok[1] == '-'))
        continue;  // "-" (stdin), "-1": values
      const std::string flag = starts_with(tok, "--") ? tok.substr(0, tok.find('=')) : tok.substr(0, 2);
      if (flag == "--") break;
      const auto known = option_names(*at);
      if (std::find(known.begin(), known.end(), flag) != known.end() || flag == "-h" || flag == "--help") continue;
      const std::string s = flag.size() > 2 ? suggest(flag, known) : std::string();  // "-x": any letter is 1 away
      const std::string see = "see 'netlab " + (path.empty() ? std::string() : path + " ") + "--help'";
      return usage_failure{path, "unknown option '" + flag + "'", s.empty() ? see : "did you mean '" + s + "'? " + see};
    }
    if (const CLI::App* next = child(*at, tok)) {
      at = next;
      path += (path.empty() ? "" : " ") + tok;
    }
  }
  return std::nullopt;
}

usage_failure explain(const CLI::App& app, const CLI::Error& e) {
  auto [path, at] = selected_path(app);
  const std::string see = "see 'netlab " + (path.empty() ? std::string() : path + " ") + "--help'";
  usage_failure f{path, e.what(), see};
  const std::string msg = e.what();
  std::smatch m;
  static const std::regex at_most(R"(^(\S+): At Most (\d+) required but received (\d+)$)");
  static const std::regex at_least(R"(^(\S+): At least (\d+) required but received (\d+)$)");
  static const std::regex missing_value(R"(^(\S+): (\d+) required (.*) missing$)");
  static const std::regex expected_n(R"(^Expected (exactly|at least) (\d+) arguments to (\S+), got (\d+)$)");
  static const std::regex not_expected(R"(^The following arguments? (?:was|were) not expected: (.*)$)");
  static const std::regex required(R"(^(\S+) is required$)");
  static const std::regex not_in(R"(^(\S+): (.*) not in \{(.*)\}$)");
  static const std::regex range(R"(^(\S+): Value (.*) not in range (\S+) to (\S+)$)");
  static const std::regex convert(R"(^Could not convert: (\S+) = (.*)$)");
  static const std::regex requires_(R"(^(\S+) requires (\S+)$)");
  static const std::regex excludes(R"(^(\S+) excludes (\S+)$)");
  static const std::regex flag_value(R"(^(\S+): (?:too many inputs for a flag|Should be true/false or a number)$)");
  if (std::regex_match(msg, m, at_most)) {
    f.what = m[2] == "1" ? m[1].str() + " was given " + m[3].str() + " times; it takes one value"
                         : m[1].str() + " takes at most " + m[2].str() + " values, got " + m[3].str();
    f.hint = "give it once; " + see;
  } else if (std::regex_match(msg, m, at_least)) {
    f.what = m[1].str() + " needs at least " + m[2].str() + " value(s), got " + m[3].str();
  } else if (std::regex_match(msg, m, missing_value)) {
    f.what = m[1].str() + " needs a value (" + m[3].str() + ")";
    f.hint = "e.g. " + m[1].str() + " " + m[3].str() + "; " + see;
  } else if (std::regex_match(msg, m, expected_n)) {
    f.what = m[3].str() + " needs " + m[2].str() + " value(s), got " + m[4].str();
  } else if (std::regex_match(msg, m, not_expected)) {
    // CLI11 lists them last first.
    std::vector<std::string> extra;
    std::istringstream words(m[1].str());
    for (std::string w; words >> w;) extra.insert(extra.begin(), w);
    const std::string first = extra.empty() ? std::string() : extra.front();
    if (starts_with(first, "-") && first.size() > 1) {
      const std::string flag = first.substr(0, first.find('='));
      f.what = "unknown option '" + flag + "'";
      const std::string s = flag.size() > 2 ? suggest(flag, option_names(*at)) : std::string();
      if (!s.empty()) f.hint = "did you mean '" + s + "'? " + see;
    } else if (extra.size() == 1) {
      f.what = "unexpected argument '" + first + "'";
      f.hint = "a value with spaces needs quotes; " + see;
    } else {
      f.what = "unexpected arguments '" + join(extra, " ") + "'";
      f.hint = "a value with spaces needs quotes; " + see;
    }
  } else if (std::regex_match(msg, m, required)) {
    const auto* opt = at->get_option_no_throw(m[1].str());
    const std::string n = m[1].str();
    if (opt && opt->get_positional() && opt->get_lnames().empty() && opt->get_snames().empty()) {
      f.what = "missing argument '" + n + "': " + opt->get_description();
    } else {
      f.what = "missing option " + n;
    }
  } else if (std::regex_match(msg, m, range)) {
    f.what = m[1].str() + ": '" + m[2].str() + "' is not a whole number from " + m[3].str() + " to " + m[4].str();
  } else if (std::regex_match(msg, m, not_in)) {
    std::vector<std::string> allowed;
    std::string list = m[3].str();
    for (std::size_t p = 0; p <= list.size();) {
      const std::size_t q = std::min(list.find(',', p), list.size());
      allowed.push_back(list.substr(p, q - p));
      p = q + 1;
    }
    const std::string s = suggest(m[2].str(), allowed);
    if (allowed == std::vector<std::string>{"-"}) {
      // The optional "-" (read stdin) after a dial's target: anything else there is a stray word.
      f.what = "unexpected argument '" + m[2].str() + "'";
      f.hint = "only '-' (read stdin) may follow the target; a message with spaces needs quotes; " + see;
    } else {
      f.what = m[1].str() + ": '" + m[2].str() + "' is not one of " + join(allowed, ", ");
      if (!s.empty()) f.hint = "did you mean '" + s + "'? " + see;
    }
  } else if (std::regex_match(msg, m, convert)) {
    f.what = m[1].str() + ": '" + m[2].str() + "' is not a valid value";
  } else if (std::regex_match(msg, m, flag_value)) {
    f.what = m[1].str() + " is a flag and takes no value";
  } else if (std::regex_match(msg, m, requires_)) {
    f.what = m[1].str() + " needs " + m[2].str() + " too";
  } else if (std::regex_match(msg, m, excludes)) {
    f.what = m[1].str() + " and " + m[2].str() + " exclude each other: give one";
  } else if (msg == "A subcommand is required" || starts_with(msg, "Requires at least") ||
             starts_with(msg, "Requires at most")) {
    const auto names = command_names(*at);
    f.what = "missing command: " + join(names, " or ");
  } else if (!msg.empty() && msg[0] >= 'A' && msg[0] <= 'Z' && msg.size() > 1 && msg[1] >= 'a' && msg[1] <= 'z') {
    f.what = msg;
    f.what[0] = static_cast<char>(f.what[0] - 'A' + 'a');  // netlab's lines start in lower case
  }
  return f;
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
  // Listed in --help; main() answers it before parsing (netlab help tcp dial = netlab tcp dial --help).
  app->add_subcommand("help", "show the help of a command group or command: netlab help [GROUP [COMMAND]]")
      ->allow_extras();
  return app;
}

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout pipe or socket is an error code, not a kill
  // The build's hidden --generate-man / --generate-completion (cmd/docgen.hpp), before parsing.
  if (auto rc = docgen::handle(argc, argv)) return *rc;
  globals g;
  action chosen;
  std::vector<std::string> args(argv + 1, argv + argc);
  // --json is known before parsing, so even a line CLI11 cannot parse ends with the error event.
  bool json = false;
  for (const auto& a : args) {
    if (a == "--") break;
    if (a == "--json") json = true;
  }
  auto usage = [&json](const usage_failure& f) {
    report_failure(f.command, core::outcome::fail(exit_code::usage, f.what, f.hint), json);
    return static_cast<int>(exit_code::usage);
  };
  std::string command;
  try {
    auto app = make_app(g, chosen);
    if (auto h = help_request(args)) args = std::move(*h);
    if (auto bad = check_commands(*app, args)) return usage(*bad);
    try {
      std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them last first
      app->parse(reversed);
    } catch (const CLI::CallForHelp& e) {
      return app->exit(e);
    } catch (const CLI::CallForAllHelp& e) {
      return app->exit(e);
    } catch (const CLI::CallForVersion& e) {
      return app->exit(e);
    } catch (const CLI::ParseError& e) {
      // A mistyped option can surface as another error (its value taken for an argument): name it first.
      if (auto bad = unknown_option(*app, args)) return usage(*bad);
      return usage(explain(*app, e));
    }
    json = g.json;
    command = chosen.command;
    if (!chosen.run) return usage({"", "no command chosen", "see 'netlab --help'"});
    core::init_logging(g.quiet ? core::verbosity::quiet
                       : g.verbose >= 2 ? core::verbosity::trace
                       : g.verbose == 1 ? core::verbosity::debug
                                        : core::verbosity::info);
    core::runtime rt(chosen.threads);
    core::reporter out(stdout, g.json);
    context ctx{rt, out, g};
    core::outcome result = chosen.run(ctx);
    if (!result.ok()) report_failure(chosen.command, result, json);
    return static_cast<int>(result.code);
  } catch (const std::exception& e) {
    report_failure(command, core::outcome::fail(exit_code::internal, std::string("internal error: ") + e.what(),
                                                "please report this bug"),
                   json);
  } catch (...) {
    report_failure(command, core::outcome::fail(exit_code::internal, "internal error", "please report this bug"), json);
  }
  return static_cast<int>(exit_code::internal);
}

}  // namespace netlab::cli
