// The websocketpp logger adapter: what it lets websocketpp format.
#include <catch2/catch.hpp>

#include "netlab/ws/detail/wspp.hpp"

using netlab::ws::detail::spdlog_logger;
namespace wslog = websocketpp::log;

TEST_CASE("ws logger: websocketpp builds no line for a channel that is off", "[ws][log]") {
  // websocketpp formats a hex dump of every read for alevel::devel when static_test() says yes;
  // the adapter must say no for every channel netlab has not enabled.
  spdlog_logger access(wslog::channel_type_hint::access);
  CHECK_FALSE(access.static_test(wslog::alevel::devel));
  CHECK_FALSE(access.static_test(wslog::alevel::frame_header));
  access.set_channels(wslog::alevel::connect | wslog::alevel::frame_header);
  CHECK(access.static_test(wslog::alevel::connect));
  CHECK(access.static_test(wslog::alevel::frame_header));
  CHECK_FALSE(access.static_test(wslog::alevel::devel));
  CHECK_FALSE(access.static_test(wslog::alevel::frame_payload));
  access.clear_channels(wslog::alevel::frame_header);
  CHECK_FALSE(access.static_test(wslog::alevel::frame_header));

  spdlog_logger errors(wslog::elevel::rerror | wslog::elevel::fatal, wslog::channel_type_hint::error);
  CHECK(errors.static_test(wslog::elevel::rerror));
  CHECK_FALSE(errors.static_test(wslog::elevel::devel));
  CHECK_FALSE(errors.static_test(wslog::elevel::library));
}
