#pragma once
/// The ONLY header that includes websocketpp (STYLE.md §6): configs for plain, TLS and deflate
/// endpoints, and a logger adapter that routes websocketpp's channels into netlab's spdlog logger.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <random>
#include <cstring>
#include <string>

#include <websocketpp/config/asio.hpp>
#include <websocketpp/config/asio_client.hpp>
#include <websocketpp/extensions/permessage_deflate/enabled.hpp>
#include <websocketpp/logger/levels.hpp>
#include <websocketpp/client.hpp>
#include <websocketpp/server.hpp>

#include "netlab/core/log.hpp"

namespace netlab::ws::detail {

/// websocketpp logger policy writing to core::log(): error channels → warn, access → debug.
class spdlog_logger {
public:
  using level = websocketpp::log::level;
  using hint = websocketpp::log::channel_type_hint::value;

  explicit spdlog_logger(hint h = websocketpp::log::channel_type_hint::access)
      : error_(h == websocketpp::log::channel_type_hint::error) {}
  spdlog_logger(level channels, hint h) : error_(h == websocketpp::log::channel_type_hint::error) {
    set_channels(channels);
  }

  /// Enables the given channels (frame payload channels are never forwarded).
  void set_channels(level channels) { channels_ |= channels; }
  /// Disables the given channels.
  void clear_channels(level channels) { channels_ &= ~channels; }

  /// Forwards one websocketpp log line.
  void write(level channel, const std::string& msg) { write(channel, msg.c_str()); }
  /// Forwards one websocketpp log line.
  void write(level channel, const char* msg) {
    if (!dynamic_test(channel)) return;
    auto& l = core::log();
    if (error_) {
      // An aborted operation is a cancellation we asked for (stop_listening, a closed socket),
      // logged by websocketpp at rerror: not worth a warning.
      const bool cancelled = std::strstr(msg, "Operation aborted") || std::strstr(msg, "Operation canceled");
      l.log(channel >= websocketpp::log::elevel::rerror && !cancelled ? spdlog::level::warn : spdlog::level::debug,
            "websocket: {}", msg);
    } else if (l.should_log(spdlog::level::debug)) {
      l.debug("websocket: {}", msg);
    }
  }

  /// websocketpp guards the building of a log line with this (its "compile-time" test), then
  /// asks dynamic_test() inside write(). Answering from the enabled channels keeps it from
  /// building lines nobody reads: with `true` here, every read formatted a hex dump of the whole
  /// buffer for the devel channel (half the server's CPU at 16 KiB messages).
  bool static_test(level channel) const { return dynamic_test(channel); }
  /// True when the channel is enabled.
  bool dynamic_test(level channel) const { return (channels_ & channel) != 0; }

private:
  level channels_ = 0;
  bool error_;
};

/// Transport settings shared by every variant.
template <typename Base>
struct transport_overrides : Base::transport_config {
  using alog_type = spdlog_logger;
  using elog_type = spdlog_logger;
  // A wss peer's close otherwise waits for the 5 s default (NOTES.md).
  static const long timeout_socket_shutdown = 1000;
};

/// Plain ws:// (server and client).
struct plain_config : websocketpp::config::asio {
  using alog_type = spdlog_logger;
  using elog_type = spdlog_logger;
  struct transport_config : transport_overrides<websocketpp::config::asio> {};
  using transport_type = websocketpp::transport::asio::endpoint<transport_config>;
  static const std::size_t max_message_size = 16 * 1024 * 1024;
  // websocketpp embeds this buffer in every connection object: 16 KiB by default, the largest part
  // of an idle connection's cost. 4 KiB (gorilla's default too) keeps 10,000 idle clients lean;
  // larger messages simply take a few more reads.
  static const std::size_t connection_read_buffer_size = 4096;
};

/// wss:// (server and client).
struct tls_config : websocketpp::config::asio_tls {
  using alog_type = spdlog_logger;
  using elog_type = spdlog_logger;
  struct transport_config : transport_overrides<websocketpp::config::asio_tls> {};
  using transport_type = websocketpp::transport::asio::endpoint<transport_config>;
  static const std::size_t max_message_size = 16 * 1024 * 1024;
  // websocketpp embeds this buffer in every connection object: 16 KiB by default, the largest part
  // of an idle connection's cost. 4 KiB (gorilla's default too) keeps 10,000 idle clients lean;
  // larger messages simply take a few more reads.
  static const std::size_t connection_read_buffer_size = 4096;
};

/// Masking keys for client frames (RFC 6455 5.3): a lock-free splitmix64 stream seeded once from
/// std::random_device. websocketpp's default calls std::random_device for every frame under a mutex,
/// which cost half of a load client's CPU here.
template <typename IntType>
class mask_rng {
public:
  mask_rng() {
    std::random_device rd;
    state_.store((static_cast<std::uint64_t>(rd()) << 32) ^ rd(), std::memory_order_relaxed);
  }
  /// The next key.
  IntType operator()() {
    std::uint64_t z = state_.fetch_add(0x9E3779B97F4A7C15ULL, std::memory_order_relaxed) + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return static_cast<IntType>(z ^ (z >> 31));
  }

private:
  std::atomic<std::uint64_t> state_{0};
};

/// Client configs: websocketpp's client cores draw masking keys from a random generator (the server
/// cores have none, which would mask every frame with zeros); ours is mask_rng.
struct plain_client_config : websocketpp::config::asio_client {
  using alog_type = spdlog_logger;
  using elog_type = spdlog_logger;
  using rng_type = mask_rng<std::uint32_t>;
  struct transport_config : transport_overrides<websocketpp::config::asio_client> {};
  using transport_type = websocketpp::transport::asio::endpoint<transport_config>;
  static const std::size_t max_message_size = 16 * 1024 * 1024;
};

/// wss:// client.
struct tls_client_config : websocketpp::config::asio_tls_client {
  using alog_type = spdlog_logger;
  using elog_type = spdlog_logger;
  using rng_type = mask_rng<std::uint32_t>;
  struct transport_config : transport_overrides<websocketpp::config::asio_tls_client> {};
  using transport_type = websocketpp::transport::asio::endpoint<transport_config>;
  static const std::size_t max_message_size = 16 * 1024 * 1024;
};

/// Adds permessage-deflate (RFC 7692) to a config.
template <typename Base>
struct deflate_config : Base {
  struct permessage_deflate_config {};
  using permessage_deflate_type =
      websocketpp::extensions::permessage_deflate::enabled<permessage_deflate_config>;
};

/// Gives every connection of a config a `State` base (websocketpp's `connection_base` hook), so
/// per-connection data lives in the connection itself: no map lookup, no shared lock per message.
template <typename Base, typename State>
struct with_state : Base {
  using connection_base = State;
};

using plain_server = websocketpp::server<plain_config>;
using tls_server = websocketpp::server<tls_config>;
using plain_deflate_server = websocketpp::server<deflate_config<plain_config>>;
using tls_deflate_server = websocketpp::server<deflate_config<tls_config>>;
using plain_client = websocketpp::client<plain_client_config>;
using tls_client = websocketpp::client<tls_client_config>;
using plain_deflate_client = websocketpp::client<deflate_config<plain_client_config>>;
using tls_deflate_client = websocketpp::client<deflate_config<tls_client_config>>;

}  // namespace netlab::ws::detail
