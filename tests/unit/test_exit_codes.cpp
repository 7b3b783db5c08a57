// The exit-code table is a contract: docs/exit-codes.md must list exactly the codes in exit_code.hpp.
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "netlab/core/error.hpp"
#include "netlab/core/exit_code.hpp"

TEST_CASE("docs/exit-codes.md lists every exit code with its name and meaning", "[core][exit]") {
  std::ifstream f(std::string(NETLAB_SOURCE_DIR) + "/docs/exit-codes.md");
  REQUIRE(f.good());
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string doc = ss.str();

  std::set<int> documented;
  std::regex row(R"(\|\s*(\d+)\s*\|\s*([a-z_]+)\s*\|\s*([^|\n]+?)\s*\|)");
  for (std::sregex_iterator it(doc.begin(), doc.end(), row), end; it != end; ++it) {
    int code = std::stoi((*it)[1]);
    documented.insert(code);
    bool found = false;
    for (const auto& e : netlab::exit_codes) {
      if (static_cast<int>(e.code) != code) continue;
      found = true;
      CHECK((*it)[2] == std::string(e.name));
      CHECK((*it)[3] == std::string(e.meaning));
    }
    INFO("documented code " << code);
    CHECK(found);
  }
  for (const auto& e : netlab::exit_codes) {
    INFO("code " << static_cast<int>(e.code) << " (" << e.name << ")");
    CHECK(documented.count(static_cast<int>(e.code)) == 1);
  }
}

TEST_CASE("the fixed numbers of the exit-code table", "[core][exit]") {
  using netlab::exit_code;
  CHECK(static_cast<int>(exit_code::ok) == 0);
  CHECK(static_cast<int>(exit_code::internal) == 1);
  CHECK(static_cast<int>(exit_code::usage) == 2);
  CHECK(static_cast<int>(exit_code::network) == 3);
  CHECK(static_cast<int>(exit_code::timeout) == 4);
  CHECK(static_cast<int>(exit_code::protocol) == 5);
  CHECK(static_cast<int>(exit_code::local_io) == 6);
  CHECK(static_cast<int>(exit_code::interrupted) == 130);
}

TEST_CASE("errors map onto the exit-code table", "[core][exit]") {
  using netlab::classify;
  using netlab::errc;
  using netlab::exit_code;
  CHECK(classify({}) == exit_code::ok);
  CHECK(classify(errc::timeout) == exit_code::timeout);
  CHECK(classify(errc::interrupted) == exit_code::interrupted);
  CHECK(classify(errc::protocol) == exit_code::protocol);
  CHECK(classify(errc::bad_packet) == exit_code::protocol);
  CHECK(classify(errc::peer_error) == exit_code::protocol);
  CHECK(classify(errc::mismatch) == exit_code::protocol);
  CHECK(classify(errc::file) == exit_code::local_io);
  CHECK(classify(errc::usage) == exit_code::usage);
  CHECK(classify(std::make_error_code(std::errc::connection_refused)) == exit_code::network);
  CHECK(classify(std::make_error_code(std::errc::connection_reset)) == exit_code::network);
  CHECK(classify(std::make_error_code(std::errc::timed_out)) == exit_code::timeout);
  CHECK(classify(std::make_error_code(std::errc::no_space_on_device)) == exit_code::local_io);
  CHECK(netlab::name_of(exit_code::local_io) == "local_io");
}

TEST_CASE("outcome carries the code, what failed and the hint", "[core][exit]") {
  auto o = netlab::core::outcome::fail(std::make_error_code(std::errc::connection_refused), "connect 127.0.0.1:9",
                                       netlab::core::hint_for(std::make_error_code(std::errc::connection_refused)));
  CHECK(o.code == netlab::exit_code::network);
  CHECK(o.what.rfind("connect 127.0.0.1:9: ", 0) == 0);
  CHECK(o.hint == "is a server listening on that port?");
  CHECK_FALSE(o.ok());
  CHECK(netlab::core::outcome::success().ok());
}
