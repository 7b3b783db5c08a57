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
