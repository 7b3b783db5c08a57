// Global flags and the shared CLI helpers, through the real command-line definition.
#include <algorithm>
#include <thread>

#include <catch2/catch.hpp>

#include "cli.hpp"
#include "cli_fixture.hpp"

using namespace netlab;

using test::parsed_cli;

TEST_CASE("a subcommand is required", "[cli]") {
  parsed_cli c;
  CHECK_THROWS_AS(c.parse({}), CLI::RequiredError);
}

TEST_CASE("unknown flags are usage errors", "[cli]") {
  parsed_cli c;
  CHECK_THROWS_AS(c.parse({"--no-such-flag"}), CLI::ParseError);
}

TEST_CASE("the version flag belongs to the top level", "[cli]") {
  parsed_cli c;
  CHECK_THROWS_AS(c.parse({"--version"}), CLI::CallForVersion);
}

TEST_CASE("shared option helpers validate and convert", "[cli]") {
  CLI::App app{"t"};
  std::chrono::milliseconds d{3000};
  core::endpoint ep{"", 1450};
  std::uint64_t size = 64;
  cli::add_duration(&app, "--timeout", d, "t");
  cli::add_endpoint(&app, "--listen", ep, "l");
  cli::add_size(&app, "--size", size, "s");
  auto parse = [&app](std::vector<std::string> args) {
    std::reverse(args.begin(), args.end());
    app.parse(args);
  };
  parse({"--timeout", "500ms", "--listen", "[::1]:0", "--size", "16K"});
  CHECK(d == std::chrono::milliseconds(500));
  CHECK(ep.host == "::1");
  CHECK(ep.port == 0);
  CHECK(size == 16384);
  CHECK_THROWS_AS(parse({"--timeout", "2x"}), CLI::ValidationError);
  CHECK_THROWS_AS(parse({"--listen", "localhost:99999"}), CLI::ValidationError);
  CHECK_THROWS_AS(parse({"--size", "lots"}), CLI::ValidationError);
  try {
    parse({"--listen", "127.0.0.1:http"});
    FAIL("no error");
  } catch (const CLI::ValidationError& e) {
    CHECK_THAT(e.what(), Catch::Contains("--listen") && Catch::Contains("'http'"));
  }
}

TEST_CASE("thread defaults follow the CPU count", "[cli]") {
  // Servers: one event-loop thread per core (docs/*.md say so); load mode: at most 2 workers.
  const unsigned cores = std::thread::hardware_concurrency();
  CHECK(cli::server_threads_default() == std::max(1u, std::min(256u, cores)));
  CHECK(cli::load_threads_default() == std::max(1u, std::min(2u, cores)));
  CHECK(cli::server_threads_default() >= 1);
}

namespace {
// What main() prints for a command line that does not parse: check_commands(), then parse()'s
// error explained (unknown options first).
cli::usage_failure failure_of(std::vector<std::string> args) {
  parsed_cli c;
  if (auto bad = cli::check_commands(*c.app, args)) return *bad;
  try {
    c.parse(args);
  } catch (const CLI::ParseError& e) {
    if (auto bad = cli::unknown_option(*c.app, args)) return *bad;
    return cli::explain(*c.app, e);
  }
  return {"", "parsed", ""};
}
}  // namespace

TEST_CASE("typos get a suggestion", "[cli]") {
  CHECK(cli::suggest("diall", {"serve", "dial"}) == "dial");
  CHECK(cli::suggest("dail", {"serve", "dial"}) == "dial");
  CHECK(cli::suggest("tpc", {"ws-echo", "tcp", "udp", "udp-file"}) == "tcp");
  CHECK(cli::suggest("--timout", {"--timeout", "--idle"}) == "--timeout");
  CHECK(cli::suggest("ws", {"ws-echo", "tcp"}).empty());  // too short for a prefix guess
  CHECK(cli::suggest("ws-e", {"ws-echo", "tcp"}) == "ws-echo");
  CHECK(cli::suggest("zzzzz", {"serve", "dial"}).empty());
}

TEST_CASE("unknown commands are named with a suggestion", "[cli]") {
  auto f = failure_of({"tcp", "diall", "127.0.0.1:1"});
  CHECK(f.command == "tcp");
  CHECK(f.what == "unknown command 'diall'");
  CHECK(f.hint == "did you mean 'dial'?");
  f = failure_of({"--json", "udpp", "send"});
  CHECK(f.command.empty());
  CHECK(f.what == "unknown command 'udpp'");
  CHECK(f.hint == "did you mean 'udp'?");
  f = failure_of({"tcp", "qqqqqq"});
  CHECK(f.what == "unknown command 'qqqqqq'");
  CHECK_THAT(f.hint, Catch::Contains("commands: serve, dial"));
  f = failure_of({"tcp"});
  CHECK(f.what == "missing command: serve or dial");
  f = failure_of({});
  CHECK_THAT(f.what, Catch::StartsWith("missing command group: ws-echo, tcp, udp, udp-file"));
}

TEST_CASE("help requests become --help of the named command", "[cli]") {
  using v = std::vector<std::string>;
  CHECK(cli::help_request({"help"}) == v{"--help"});
  CHECK(cli::help_request({"help", "tcp"}) == v{"tcp", "--help"});
  CHECK(cli::help_request({"-v", "help", "tcp", "dial"}) == v{"tcp", "dial", "--help"});
  CHECK_FALSE(cli::help_request({"tcp", "dial", "help"}));
  parsed_cli c;
  CHECK_THROWS_AS(c.parse(*cli::help_request({"help", "udp", "send"})), CLI::CallForHelp);
  auto f = failure_of(*cli::help_request({"help", "tcp", "dail"}));
  CHECK(f.what == "unknown command 'dail'");
  CHECK(f.hint == "did you mean 'dial'?");
}

TEST_CASE("CLI11's wording is rewritten in netlab's", "[cli]") {
  auto f = failure_of({"tcp", "serve", "--mode", "echo", "--mode", "ack"});
  CHECK(f.command == "tcp serve");
  CHECK(f.what == "--mode was given 2 times; it takes one value");
  CHECK_THAT(f.hint, Catch::Contains("see 'netlab tcp serve --help'"));
  f = failure_of({"tcp", "dial"});
  CHECK_THAT(f.what, Catch::StartsWith("missing argument 'target': HOST:PORT"));
  f = failure_of({"udp-file", "fetch", "127.0.0.1:69", "a", "b", "c", "d"});
  CHECK(f.what == "unexpected arguments 'b c d'");
  f = failure_of({"tcp", "dial", "127.0.0.1:1", "--timout", "1"});
  CHECK(f.what == "unknown option '--timout'");
  CHECK_THAT(f.hint, Catch::StartsWith("did you mean '--timeout'?"));
  f = failure_of({"udp", "serve", "--mode", "ech"});
  CHECK(f.what == "--mode: 'ech' is not one of ack, echo, print");
  CHECK_THAT(f.hint, Catch::StartsWith("did you mean 'echo'?"));
  f = failure_of({"tcp", "serve", "--threads", "0"});
  CHECK(f.what == "--threads: '0' is not a whole number from 1 to 256");
  f = failure_of({"tcp", "dial", "127.0.0.1:1", "-m"});
  CHECK(f.what == "--message needs a value (TEXT)");
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"tcp", "serve", "--mode", "echo", "--mode", "ack"}, {"tcp", "dial"}, {"tcp", "dial", "1.2.3.4:5", "x", "y"},
           {"udp", "send", "127.0.0.1:9", "a", "b"}, {"tcp", "dial", "127.0.0.1:1", "-m"}}) {
    f = failure_of(args);
    INFO(f.what);
    CHECK_FALSE(f.hint.empty());
    for (const char* raw : {"required but received", "is required", "were not expected", "was not expected", "A subcommand"})
      CHECK_THAT(f.what, !Catch::Contains(raw));
  }
}

TEST_CASE("every exit code has a default hint", "[cli]") {
  for (const auto& row : exit_codes) {
    if (row.code == exit_code::ok) continue;
    INFO(row.name);
    CHECK_FALSE(cli::default_hint(row.code, "tcp dial").empty());
  }
  CHECK(cli::default_hint(exit_code::usage, "tcp dial") == "see 'netlab tcp dial --help'");
}
