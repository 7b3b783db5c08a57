#pragma once
/// Shared CLI pieces: global flags, the chosen action, validators and typed option helpers.
#include <any>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "netlab/core/endpoint.hpp"
#include "netlab/core/error.hpp"
#include "netlab/core/load.hpp"
#include "netlab/core/report.hpp"
#include "netlab/core/runtime.hpp"

namespace netlab::cli {

/// Flags every command accepts: -v/-vv, -q, --json.
struct globals {
  int verbose = 0;
  bool quiet = false;
  bool json = false;
};

/// What an action runs with: the runtime (io_context, signals) and the result reporter.
struct context {
  core::runtime& rt;
  core::reporter& out;
  const globals& g;
};

/// The subcommand chosen on the command line, recorded by its CLI11 callback, run after parse().
struct action {
  std::string command;                              ///< "tcp serve", used in error lines
  unsigned threads = 1;                             ///< io threads for the runtime
  std::any options;                                 ///< the lib options struct (inspected by tests)
  std::function<core::outcome(context&)> run;       ///< calls into lib
};

/// Registers one subcommand group (defined in cmd/<group>.cpp).
void register_tcp(CLI::App& app, action& chosen);
void register_udp(CLI::App& app, action& chosen);
void register_ws_echo(CLI::App& app, action& chosen);
void register_udp_file(CLI::App& app, action& chosen);

/// Builds the whole command line; `chosen` receives the selected action during parse().
std::unique_ptr<CLI::App> make_app(globals& g, action& chosen);

/// Parses and runs; returns the process exit code. The whole of main().
int main(int argc, char** argv);

/// The largest count or size any flag accepts: INT64_MAX (2^63 - 1). Larger values are usage
/// errors, never wrapped: a count of 2^63 once became a negative budget and ran 0 messages.
inline constexpr std::uint64_t max_count = static_cast<std::uint64_t>(INT64_MAX);

/// Validators with messages that name the bad part and the fix.
extern const CLI::Validator host_port;  ///< HOST:PORT, :PORT, [::1]:PORT
extern const CLI::Validator duration;   ///< 2, 2s, 500ms, 1m
extern const CLI::Validator byte_size;  ///< 64, 16K, 1MiB
/// A whole number in [min, max], with messages that say what is expected (CLI11's ranges print
/// huge doubles); `desc` is the type name shown in --help, e.g. "N 0-1000". `max` is capped at
/// max_count.
CLI::Validator whole(std::uint64_t min, std::uint64_t max, const char* desc);

/// --name DURATION into a chrono value (validated; `def` shown in --help).
CLI::Option* add_duration(CLI::App* app, const std::string& name, std::chrono::milliseconds& target,
                          const std::string& desc);
/// --name HOST:PORT into an endpoint; a port-less HOST takes default_port when given.
CLI::Option* add_endpoint(CLI::App* app, const std::string& name, core::endpoint& target, const std::string& desc,
                          std::optional<std::uint16_t> default_port = {});
/// --name SIZE (64, 16K, 1MiB) into bytes.
CLI::Option* add_size(CLI::App* app, const std::string& name, std::uint64_t& target, const std::string& desc);

/// The servers' default thread count: one per CPU core (1..256), as Go's GOMAXPROCS. Measured on
/// 2 cores shared with the load generator, 2 threads beat 1 in every tcp/ws/udp echo cell (e.g.
/// tcp 64 B x 10: 111k -> 179k msgs/s); see docs/benchmarks.md.
unsigned server_threads_default();

/// Load mode's default worker threads (tcp dial, udp send, ws-echo dial): min(2, cores), at least 1.
unsigned load_threads_default();

/// --threads N for servers (1..256, default server_threads_default()), set up before parsing.
CLI::Option* add_threads(CLI::App* app, unsigned& target);
/// --busy-poll US for servers (core::runtime::serve()), 0-10000 microseconds.
CLI::Option* add_busy_poll(CLI::App* app, std::chrono::microseconds& target);

/// The load-mode flags shared by tcp dial and ws-echo dial, as typed.
struct load_args {
  std::uint64_t connections = 1;
  std::uint64_t count = 0;
  std::chrono::milliseconds duration{0};
  std::uint64_t size = 64;
  std::uint64_t pipeline = 1;
  unsigned threads = 2;
};

/// Adds --connections, --count, --duration, --size, --pipeline, --threads to a dial command.
void add_load_flags(CLI::App* app, load_args& a);

/// The load options when --count or --duration was given (usage errors for contradictions and
/// ranges), or nullopt when none was and no other load flag was either (else a usage error).
std::optional<core::load_options> load_from(CLI::App* app, const load_args& a);

/// Throws CLI::ValidationError (a usage error) with a message naming the option and the fix.
[[noreturn]] void usage_error(const std::string& message);

/// Prints the one failure line on stderr, "netlab: <command>: <what> (<hint>)" (a missing hint is
/// filled in from the exit code, so every line has one); with json, also the NDJSON
/// {"event":"error","command":...,"exit":N,"message":...,"hint":...} as the last line of stdout.
void report_failure(const std::string& command, const core::outcome& o, bool json = false);

/// stdin could not be read (ec from read or fstat): exit 6, a directory named as such.
core::outcome stdin_failure(std::error_code ec);
/// Checks stdin before a client connects to anything: a directory (`< /tmp`) is the exit-6 failure
/// at once, rather than after a connection was made (or failed). nullopt when it looks readable.
std::optional<core::outcome> stdin_unreadable();

/// The generic hint for a failure with this exit code and no hint of its own (never empty).
std::string default_hint(exit_code code, const std::string& command);

/// A usage failure in netlab's words: the command it belongs to ("tcp dial", "" for the top level),
/// what is wrong and the fix.
struct usage_failure {
  std::string command;
  std::string what;
  std::string hint;
};

/// The candidate closest to `word` when it looks like a typo of it (edit distance at most 1, or 2
/// for words of 5+ letters, or a prefix of 3+ letters), else "".
std::string suggest(const std::string& word, const std::vector<std::string>& candidates);

/// Checks the command words in args (argv without argv[0]): each group and command must exist.
/// Returns the failure for an unknown one ("unknown command 'diall'", hint "did you mean 'dial'?"),
/// or for a group given without its command.
std::optional<usage_failure> check_commands(const CLI::App& app, const std::vector<std::string>& args);

/// `netlab help [GROUP [CMD]]`: the argument list that prints that help ("GROUP CMD --help"), or
/// nullopt when args is not a help request. Unknown names are left for check_commands().
std::optional<std::vector<std::string>> help_request(const std::vector<std::string>& args);

/// The first option in args that the command they name does not know ("unknown option '--timout'",
/// hint "did you mean '--timeout'?"), or nullopt. Asked after a parse error only.
std::optional<usage_failure> unknown_option(const CLI::App& app, const std::vector<std::string>& args);

/// Rewrites a CLI11 parse error (raised by app.parse()) in netlab's words, with a hint.
usage_failure explain(const CLI::App& app, const CLI::Error& e);

}  // namespace netlab::cli
