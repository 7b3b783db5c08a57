#pragma once
/// The ONLY header that includes websocketpp (STYLE.md §6): configs for plain, TLS and deflate
/// endpoints, and a logger adapter that routes websocketpp's channels into netlab's spdlog logger.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <random>
#include <cstring>
#include <string>
#include <system_error>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <websocketpp/concurrency/none.hpp>
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
      // Nor is "Handshake ended with HTTP error": netlab logs each refused upgrade once, at info.
      const bool cancelled = std::strstr(msg, "Operation aborted") || std::strstr(msg, "Operation canceled") ||
                             std::strstr(msg, "Handshake ended with HTTP error");
      const bool warn = channel >= websocketpp::log::elevel::rerror && !cancelled && !errors_at_debug_;
      l.log(warn ? spdlog::level::warn : spdlog::level::debug, "websocket: {}", msg);
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

protected:
  bool errors_at_debug_ = false;  ///< server_spdlog_logger

private:
  level channels_ = 0;
  bool error_;
};

/// The server's logger: websocketpp's error lines go to debug (-v). On the server they are all about
/// one connection (netlab owns the acceptor), and netlab logs each connection's end itself with the
/// same cause (its close, refused or failed line): at warn they were printed twice (issue 15).
class server_spdlog_logger : public spdlog_logger {
public:
  explicit server_spdlog_logger(hint h = websocketpp::log::channel_type_hint::access) : spdlog_logger(h) {
    errors_at_debug_ = true;
  }
  server_spdlog_logger(level channels, hint h) : spdlog_logger(channels, h) { errors_at_debug_ = true; }
};

/// Transport settings shared by every variant.
template <typename Base, typename Logger = spdlog_logger>
struct transport_overrides : Base::transport_config {
  using alog_type = Logger;
  using elog_type = Logger;
  // A wss peer's close otherwise waits for the 5 s default (NOTES.md).
  static const long timeout_socket_shutdown = 1000;
};

/// Turns a received data message into a ready-to-send unmasked (server) frame in place: writes its
/// header and marks it prepared, so connection::send() queues it as is instead of allocating a
/// second message and copying the payload into it (prepare_data_frame). The payload is already
/// validated (UTF-8 for text) by the read path. Not for permessage-deflate replies, which
/// websocketpp compresses per connection.
template <typename MessagePtr>
void prepare_unmasked_frame(const MessagePtr& msg) {
  const auto n = msg->get_payload().size();
  websocketpp::frame::basic_header h(msg->get_opcode(), n, /*fin=*/true, /*mask=*/false);
  msg->set_header(websocketpp::frame::prepare_header(h, websocketpp::frame::extended_header(n)));
  msg->set_prepared(true);
}

/// XORs len bytes from `in` into `out` (which may be `in`) with a websocketpp "prepared" masking
/// key (frame::prepare_masking_key: the 4-byte key repeated, rotated to the current offset), 8 bytes
/// at a time; returns the key rotated past them, as frame::byte_mask_circ, which does it one byte
/// at a time.
inline std::size_t xor_mask(const std::uint8_t* in, std::uint8_t* out, std::size_t len, std::size_t prepared_key) {
  namespace frame = websocketpp::frame;
  if (sizeof(std::size_t) != 8 || !websocketpp::lib::net::is_little_endian())
    return frame::byte_mask_circ(const_cast<std::uint8_t*>(in), out, len, prepared_key);
  const std::uint64_t key = prepared_key;
  std::size_t i = 0;
#if defined(__SSE2__)
  // Issue 17: 32 bytes a step (SSE2, baseline x86-64) before the 8-byte steps. Measured: echo 16 KiB
  // × 10, callgrind 33,923 → 28,711 user instructions per message (docs/benchmarks.md, issue 17).
  const __m128i k16 = _mm_set1_epi64x(static_cast<long long>(key));
  for (; i + 32 <= len; i += 32) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i + 16));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm_xor_si128(a, k16));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i + 16), _mm_xor_si128(b, k16));
  }
#endif
  for (; i + 8 <= len; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, in + i, 8);
    w ^= key;
    std::memcpy(out + i, &w, 8);
  }
  std::uint8_t tail[8];
  std::memcpy(tail, &key, 8);  // i is a multiple of 8 here: byte t of the key masks byte i + t
  for (std::size_t t = 0; i < len; ++i, ++t) out[i] = static_cast<std::uint8_t>(in[i] ^ tail[t]);
  return frame::circshift_prepared_key(prepared_key, len % 4);
}

/// Inflates len bytes of a permessage-deflate payload into out; message_too_big once out is over
/// limit. websocketpp's extension inflates a whole frame at once, without limit (one 1 MB frame of
/// zeros becomes 1 GiB, the --max-message check only sees wire bytes): fed here in slices whose
/// worst case (deflate expands at most 1032:1) still fits what is left under the limit, it never
/// holds more than limit + 66 KB, and its private zlib stream stays untouched.
template <typename Deflate>
std::error_code bounded_inflate(Deflate& deflate, const std::uint8_t* buf, std::size_t len, std::string& out,
                                std::size_t limit) {
  constexpr std::size_t max_ratio = 1032;
  const auto too_big = websocketpp::processor::error::make_error_code(websocketpp::processor::error::message_too_big);
  while (len > 0) {
    if (out.size() > limit) return too_big;
    const std::size_t slice = std::min(len, std::max<std::size_t>(64, (limit - out.size()) / max_ratio));
    if (auto ec = deflate.decompress(buf, slice, out)) return ec;
    buf += slice;
    len -= slice;
  }
  return out.size() > limit ? too_big : std::error_code();
}

/// Feeds out[from, end) to a text message's UTF-8 validator; false if invalid. ASCII runs are skipped
/// 8 bytes at a time between characters (the validator accepts them, byte by byte, unchanged).
template <typename Validator>
bool validate_utf8(Validator& validator, const std::string& out, std::size_t from) {
  const char* p = out.data() + from;
  const char* const end = out.data() + out.size();
  if (validator.complete()) {
    for (std::uint64_t w; end - p >= 8; p += 8) {
      std::memcpy(&w, p, 8);
      if (w & 0x8080808080808080ULL) break;
    }
  }
  return validator.decode(p, end);
}

/// The payload step of websocketpp's frame reader (processor::hybi13::process_payload_bytes in
/// 0.8.2, same steps, same errors), with two loops made fast: unmasking 8 bytes at a time (the
/// original goes byte by byte, "TODO: SIMD masking": a third of the echo server's CPU at 16 KiB
/// messages), and for text, ASCII runs skipped before the UTF-8 validator; and inflation bounded by
/// `limit`, the max message size (bounded_inflate). Installed by NETLAB_WSPP_FAST_PAYLOAD.
template <typename Meta, typename Deflate>
std::size_t consume_payload(std::uint8_t* buf, std::size_t len, bool masked, Meta& cur, Deflate& deflate,
                            std::size_t& bytes_needed, std::error_code& ec, std::size_t limit = SIZE_MAX) {
  if (masked) cur.prepared_key = xor_mask(buf, buf, len, cur.prepared_key);
  std::string& out = cur.msg_ptr->get_raw_payload();
  const std::size_t offset = out.size();
  if (deflate.is_enabled() && cur.msg_ptr->get_compressed()) {
    ec = bounded_inflate(deflate, buf, len, out, limit);
    if (ec) return 0;
  } else {
    out.append(reinterpret_cast<const char*>(buf), len);
  }
  if (cur.msg_ptr->get_opcode() == websocketpp::frame::opcode::text && !validate_utf8(cur.validator, out, offset)) {
    ec = websocketpp::processor::error::make_error_code(websocketpp::processor::error::invalid_utf8);
    return 0;
  }
  bytes_needed -= len;
  return len;
}

/// The end-of-message step of websocketpp's frame reader (processor::hybi13::finalize_message),
/// with three RFC 6455 gaps of 0.8.2 closed: a text message must end on a whole code point also when
/// its last frame is a continuation (websocketpp looks at the last frame's opcode, not the
/// message's), a close frame's reason must be UTF-8 (websocketpp answers 1002; RFC 6455 7.4.1: 1007),
/// and the deflate trailer's output is bounded and validated like the rest.
template <typename Meta, typename Deflate>
std::error_code finish_message(Meta& cur, Deflate& deflate, std::size_t limit) {
  namespace perr = websocketpp::processor::error;
  auto& msg = *cur.msg_ptr;
  std::string& out = msg.get_raw_payload();
  const auto op = msg.get_opcode();
  if (deflate.is_enabled() && msg.get_compressed()) {
    const std::uint8_t trailer[4] = {0x00, 0x00, 0xff, 0xff};
    const std::size_t offset = out.size();
    if (auto ec = bounded_inflate(deflate, trailer, 4, out, limit)) return ec;
    if (op == websocketpp::frame::opcode::text && !validate_utf8(cur.validator, out, offset))
      return perr::make_error_code(perr::invalid_utf8);
  }
  if (op == websocketpp::frame::opcode::text && !cur.validator.complete()) return perr::make_error_code(perr::invalid_utf8);
  if (op == websocketpp::frame::opcode::close && out.size() > 2) {
    websocketpp::utf8_validator::validator reason;
    if (!reason.decode(out.begin() + 2, out.end()) || !reason.complete()) return perr::make_error_code(perr::invalid_utf8);
  }
  return {};
}

}  // namespace netlab::ws::detail

/// Replaces websocketpp's payload and end-of-message steps for one config with
/// detail::consume_payload and detail::finish_message. Explicit specializations of members of
/// websocketpp's processor: use at global scope, after CONFIG is complete and before anything
/// instantiates an endpoint of it.
#define NETLAB_WSPP_FAST_PAYLOAD(CONFIG)                                                                  \
  template <>                                                                                             \
  inline std::size_t websocketpp::processor::hybi13<CONFIG>::process_payload_bytes(                      \
      std::uint8_t* buf, std::size_t len, lib::error_code& ec) {                                          \
    return ::netlab::ws::detail::consume_payload(buf, len, frame::get_masked(m_basic_header), *m_current_msg, \
                                                 m_permessage_deflate, m_bytes_needed, ec,                \
                                                 base::m_max_message_size);                               \
  }                                                                                                       \
  template <>                                                                                             \
  inline websocketpp::lib::error_code websocketpp::processor::hybi13<CONFIG>::finalize_message() {        \
    lib::error_code ec =                                                                                  \
        ::netlab::ws::detail::finish_message(*m_current_msg, m_permessage_deflate, base::m_max_message_size); \
    if (!ec) m_state = READY;                                                                             \
    return ec;                                                                                            \
  }

namespace netlab::ws::detail {

/// Checks an upgrade request as RFC 6455 4.2.1 asks, where websocketpp 0.8.2 does not: only version
/// 13 (others, hybi drafts included, get 426 with `Sec-WebSocket-Version: 13`), a key that is the
/// base64 of exactly 16 bytes, GET over HTTP/1.1 with Host, and both Upgrade and Connection tokens.
/// Any request carrying Upgrade or a Sec-WebSocket-Key/-Version header is an upgrade attempt and gets
/// a 4xx for a bad header (never the page at /, which is for plain GETs only). Sets the response
/// status and a one-line body and returns an error, or returns {} (also for plain HTTP requests).
template <typename Request, typename Response>
std::error_code check_upgrade(const Request& req, Response& res) {
  namespace perr = websocketpp::processor::error;
  const std::string& key = req.get_header("Sec-WebSocket-Key");
  const std::string& version = req.get_header("Sec-WebSocket-Version");
  if (req.get_header("Upgrade").empty() && key.empty() && version.empty()) return {};
  auto refuse = [&res](websocketpp::http::status_code::value status, const char* why, perr::processor_errors e) {
    res.set_status(status);
    res.set_body(std::string(why) + "\n");
    return perr::make_error_code(e);
  };
  using code = websocketpp::http::status_code::value;
  if (req.get_method() != "GET") return refuse(code::bad_request, "an upgrade must be a GET", perr::invalid_http_method);
  if (req.get_version() != "HTTP/1.1") return refuse(code::bad_request, "an upgrade must be HTTP/1.1", perr::invalid_http_version);
  if (req.get_header("Host").empty()) return refuse(code::bad_request, "an upgrade needs a Host header", perr::missing_required_header);
  if (version != "13") {
    res.replace_header("Sec-WebSocket-Version", "13");
    return refuse(code::upgrade_required, "only WebSocket version 13 (RFC 6455) is spoken here", perr::missing_required_header);
  }
  if (!websocketpp::processor::is_websocket_handshake(req))
    return refuse(code::bad_request, "an upgrade needs 'Upgrade: websocket' and 'Connection: Upgrade'",
                  perr::missing_required_header);
  // base64 of 16 bytes: 22 characters of the alphabet, then "==".
  auto b64 = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
  };
  if (key.size() != 24 || key[22] != '=' || key[23] != '=' || !std::all_of(key.begin(), key.begin() + 22, b64))
    return refuse(code::bad_request, "Sec-WebSocket-Key must be the base64 of 16 bytes",
                  perr::missing_required_header);
  return {};
}

}  // namespace netlab::ws::detail

/// Replaces websocketpp's choice of a processor for one server config (connection::initialize_processor,
/// which also accepts the hybi 00/07/08 drafts) with detail::check_upgrade, then version 13's
/// processor, or, when `traced_processor<CONFIG>(connection, ...)` returns one (-vv), that
/// subclass of it. Same rules of use as NETLAB_WSPP_FAST_PAYLOAD; traced_processor must be declared
/// before the macro is used.
#define NETLAB_WSPP_STRICT_UPGRADE(CONFIG)                                                          \
  template <>                                                                                       \
  inline websocketpp::lib::error_code websocketpp::connection<CONFIG>::initialize_processor() {     \
    if (lib::error_code ec = ::netlab::ws::detail::check_upgrade(m_request, m_response)) return ec; \
    if (!processor::is_websocket_handshake(m_request)) return lib::error_code();                    \
    m_processor = ::netlab::ws::detail::traced_processor<CONFIG>(*this, transport_con_type::is_secure(), \
                                                                 m_msg_manager, m_rng);             \
    if (m_processor)                                                                                \
      m_processor->set_max_message_size(m_max_message_size);                                        \
    else                                                                                            \
      m_processor = get_processor(13);                                                              \
    return lib::error_code();                                                                       \
  }

namespace netlab::ws::detail {

/// Server connections do nothing for websocketpp off their strand (transport `enable_multithreading`:
/// every handler, timer and send of a connection runs on its strand; netlab posts cross-connection
/// work there through interrupt()), so its per-connection mutexes (state, write queue: 4-5 lock
/// pairs per echoed message) guard nothing: websocketpp's `none` policy drops them. The endpoint's
/// own lock guards connection creation, which runs on the accept strand only.
/// Plain ws:// (server).
struct plain_config : websocketpp::config::asio {
  using concurrency_type = websocketpp::concurrency::none;
  using alog_type = server_spdlog_logger;
  using elog_type = server_spdlog_logger;
  struct transport_config : transport_overrides<websocketpp::config::asio, server_spdlog_logger> {};
  using transport_type = websocketpp::transport::asio::endpoint<transport_config>;
  static const std::size_t max_message_size = 16 * 1024 * 1024;
  // websocketpp embeds this buffer in every connection object: 16 KiB by default, the largest part
  // of an idle connection's cost. 4 KiB (gorilla's default too) keeps 10,000 idle clients lean;
  // larger messages simply take a few more reads.
  // Issue 17: 2 KiB for plain ws://, whose servers read on into a 64 KiB buffer per thread
  // (NETLAB_WSPP_FAST_READ, fast_read.hpp): same 3 recvfrom per 16 KiB echo; measured 10,000 idle
  // connections 12.03 → 10.03 KB each. Back to 4096 if the fast read goes.
  static const std::size_t connection_read_buffer_size = 2048;
};

/// wss:// (server; no locks, as plain_config).
struct tls_config : websocketpp::config::asio_tls {
  using concurrency_type = websocketpp::concurrency::none;
  using alog_type = server_spdlog_logger;
  using elog_type = server_spdlog_logger;
  struct transport_config : transport_overrides<websocketpp::config::asio_tls, server_spdlog_logger> {};
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

using plain_deflate_client_config = deflate_config<plain_client_config>;
using tls_deflate_client_config = deflate_config<tls_client_config>;

}  // namespace netlab::ws::detail

/// Client frames are masked by processor::hybi13::masked_copy, byte by byte; netlab's client configs
/// use detail::xor_mask instead (same bytes, 8 at a time).
#define NETLAB_WSPP_FAST_MASK(CONFIG)                                                                      \
  template <>                                                                                              \
  inline void websocketpp::processor::hybi13<CONFIG>::masked_copy(std::string const& i, std::string& o,   \
                                                                  frame::masking_key_type key) const {     \
    ::netlab::ws::detail::xor_mask(reinterpret_cast<const std::uint8_t*>(i.data()),                        \
                                   reinterpret_cast<std::uint8_t*>(o.data()), i.size(),                   \
                                   frame::prepare_masking_key(key));                                       \
  }
NETLAB_WSPP_FAST_MASK(netlab::ws::detail::plain_client_config)
NETLAB_WSPP_FAST_MASK(netlab::ws::detail::tls_client_config)
NETLAB_WSPP_FAST_MASK(netlab::ws::detail::plain_deflate_client_config)
NETLAB_WSPP_FAST_MASK(netlab::ws::detail::tls_deflate_client_config)
// The client reads through the same payload and end-of-message steps: its inflation is bounded by
// its max message size too (a hostile server's deflate bomb), and close reasons are checked.
NETLAB_WSPP_FAST_PAYLOAD(netlab::ws::detail::plain_client_config)
NETLAB_WSPP_FAST_PAYLOAD(netlab::ws::detail::tls_client_config)
NETLAB_WSPP_FAST_PAYLOAD(netlab::ws::detail::plain_deflate_client_config)
NETLAB_WSPP_FAST_PAYLOAD(netlab::ws::detail::tls_deflate_client_config)

namespace netlab::ws::detail {

using plain_server = websocketpp::server<plain_config>;
using tls_server = websocketpp::server<tls_config>;
using plain_deflate_server = websocketpp::server<deflate_config<plain_config>>;
using tls_deflate_server = websocketpp::server<deflate_config<tls_config>>;
using plain_client = websocketpp::client<plain_client_config>;
using tls_client = websocketpp::client<tls_client_config>;
using plain_deflate_client = websocketpp::client<plain_deflate_client_config>;
using tls_deflate_client = websocketpp::client<tls_deflate_client_config>;

}  // namespace netlab::ws::detail
