// netlab's replacements for websocketpp's byte-by-byte frame loops (detail/wspp.hpp): xor_mask()
// against websocketpp's own frame::byte_mask_circ, and consume_payload() (the server's payload
// step) on split frames, text and invalid UTF-8; bounded_inflate() against a deflate bomb;
// finish_message() and check_upgrade(), the RFC 6455 checks websocketpp 0.8.2 leaves out.
#include <catch2/catch.hpp>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <zlib.h>

#include "netlab/ws/detail/wspp.hpp"

namespace frame = websocketpp::frame;
using netlab::ws::detail::consume_payload;
using netlab::ws::detail::xor_mask;
using message = websocketpp::config::asio::message_type;

namespace {

std::vector<std::uint8_t> random_bytes(std::size_t n, std::mt19937& rng) {
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = static_cast<std::uint8_t>(rng());
  return v;
}

frame::masking_key_type key_of(std::uint32_t k) {
  frame::masking_key_type key;
  key.i = k;
  return key;
}

/// What websocketpp's processor keeps per message (hybi13::msg_metadata).
struct meta {
  message::ptr msg_ptr;
  std::size_t prepared_key;
  websocketpp::utf8_validator::validator validator;
};

struct no_deflate {
  bool is_enabled() const { return false; }
  std::error_code decompress(const std::uint8_t*, std::size_t, std::string&) { return {}; }
};

/// Feeds `wire` (masked with key, unless key is 0) to consume_payload in chunks of `step` bytes, as
/// websocketpp's reader does; returns the error of the first chunk that failed.
std::error_code feed(meta& m, std::vector<std::uint8_t> wire, std::size_t step, bool masked) {
  no_deflate d;
  std::size_t needed = wire.size();
  for (std::size_t at = 0; at < wire.size(); at += step) {
    const std::size_t n = std::min(step, wire.size() - at);
    std::error_code ec;
    const std::size_t used = consume_payload(wire.data() + at, n, masked, m, d, needed, ec);
    if (ec) return ec;
    REQUIRE(used == n);
  }
  CHECK(needed == 0);
  return {};
}

std::vector<std::uint8_t> masked(const std::string& s, std::uint32_t k) {
  std::vector<std::uint8_t> v(s.begin(), s.end());
  frame::byte_mask_circ(v.data(), v.size(), frame::prepare_masking_key(key_of(k)));
  return v;
}

meta text_message(std::uint32_t k) {
  return meta{std::make_shared<message>(nullptr, frame::opcode::text, 0), frame::prepare_masking_key(key_of(k)), {}};
}

}  // namespace

TEST_CASE("ws frames: xor_mask gives websocketpp's bytes and key for every length and split", "[ws][frames]") {
  std::mt19937 rng(7);
  for (std::size_t len = 0; len <= 140; ++len) {  // past two 32-byte SIMD steps
    const auto key = key_of(static_cast<std::uint32_t>(rng()));
    const auto data = random_bytes(len, rng);
    for (std::size_t split = 0; split <= len; split += (len < 20 ? 1 : 7)) {
      auto want = data;
      std::size_t kw = frame::prepare_masking_key(key);
      kw = frame::byte_mask_circ(want.data(), split, kw);
      kw = frame::byte_mask_circ(want.data() + split, len - split, kw);

      auto got = data;
      std::vector<std::uint8_t> out(len);
      std::size_t kg = frame::prepare_masking_key(key);
      kg = xor_mask(got.data(), out.data(), split, kg);  // out of place
      kg = xor_mask(got.data() + split, got.data() + split, len - split, kg);  // in place
      std::copy(got.begin() + static_cast<std::ptrdiff_t>(split), got.end(), out.begin() + static_cast<std::ptrdiff_t>(split));
      INFO("len " << len << " split " << split);
      CHECK(out == want);
      CHECK(kg == kw);
    }
  }
}

TEST_CASE("ws frames: consume_payload unmasks a frame read in any pieces", "[ws][frames]") {
  std::mt19937 rng(11);
  const auto payload = random_bytes(16384 + 5, rng);
  const std::uint32_t k = 0xA1B2C3D4;
  for (std::size_t step : {1u, 3u, 8u, 13u, 4096u, 20000u}) {
    std::vector<std::uint8_t> wire = payload;
    frame::byte_mask_circ(wire.data(), wire.size(), frame::prepare_masking_key(key_of(k)));
    meta m{std::make_shared<message>(nullptr, frame::opcode::binary, 0), frame::prepare_masking_key(key_of(k)), {}};
    INFO("step " << step);
    REQUIRE_FALSE(feed(m, wire, step, true));
    CHECK(m.msg_ptr->get_payload() == std::string(payload.begin(), payload.end()));
  }
  // Unmasked (a client reading a server's frames): copied as is.
  meta m{std::make_shared<message>(nullptr, frame::opcode::binary, 0), 0, {}};
  REQUIRE_FALSE(feed(m, payload, 100, false));
  CHECK(m.msg_ptr->get_payload() == std::string(payload.begin(), payload.end()));
}

TEST_CASE("ws frames: consume_payload validates UTF-8 like websocketpp, across pieces", "[ws][frames]") {
  const std::uint32_t k = 0x01020304;
  const std::string ascii(100, 'a');
  const std::string good = ascii + "封印解除! \xF0\x9F\x98\x80" + ascii + "é";
  for (std::size_t step : {1u, 2u, 7u, 9u, 64u, 1000u}) {
    INFO("step " << step);
    auto m = text_message(k);
    REQUIRE_FALSE(feed(m, masked(good, k), step, true));
    CHECK(m.msg_ptr->get_payload() == good);
    CHECK(websocketpp::utf8_validator::validate(good));

    // An invalid byte after a long ASCII run (the fast path must stop at it).
    auto bad = text_message(k);
    CHECK(feed(bad, masked(ascii + "\xFF" + ascii, k), step, true) == websocketpp::processor::error::invalid_utf8);
  }
  // A lead byte ends one piece and ASCII starts the next: invalid, although the next piece alone
  // would be all ASCII (the validator is between bytes of a character there, not skipped).
  auto m = text_message(k);
  const std::string split = std::string(7, 'a') + "\xE5" + std::string(16, 'b');
  CHECK(feed(m, masked(split, k), 8, true) == websocketpp::processor::error::invalid_utf8);
  CHECK_FALSE(websocketpp::utf8_validator::validate(split));
}

namespace {

using deflate_ext = websocketpp::extensions::permessage_deflate::enabled<netlab::ws::detail::deflate_config<netlab::ws::detail::plain_config>::permessage_deflate_config>;

/// A negotiated, initialised permessage-deflate extension, as a server connection holds it.
std::unique_ptr<deflate_ext> server_deflate() {
  auto d = std::make_unique<deflate_ext>();
  REQUIRE_FALSE(d->negotiate(websocketpp::http::attribute_list{}).first);
  REQUIRE_FALSE(d->init(true));
  REQUIRE(d->is_enabled());
  return d;
}

/// Raw deflate of `data` as a permessage-deflate sender makes it (sync flush, trailer removed).
std::vector<std::uint8_t> deflate_message(const std::string& data) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::vector<std::uint8_t> out(deflateBound(&z, data.size()) + 16);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&z, Z_SYNC_FLUSH) == Z_OK);
  out.resize(out.size() - z.avail_out - 4);
  deflateEnd(&z);
  return out;
}

}  // namespace

TEST_CASE("ws frames: inflation stops at the message size limit (deflate bomb)", "[ws][frames][deflate]") {
  const auto too_big = websocketpp::processor::error::make_error_code(websocketpp::processor::error::message_too_big);
  // 64 MiB of zeros: ~64 KB on the wire.
  const auto bomb = deflate_message(std::string(64u << 20, '\0'));
  REQUIRE(bomb.size() < 100000);
  for (std::size_t limit : {std::size_t{1000}, std::size_t{1} << 20}) {
    auto d = server_deflate();
    std::string out;
    CHECK(netlab::ws::detail::bounded_inflate(*d, bomb.data(), bomb.size(), out, limit) == too_big);
    INFO("limit " << limit << " inflated " << out.size());
    CHECK(out.size() > limit);
    CHECK(out.size() <= limit + 1032 * 64 + 1024);  // one slice past the limit at most
  }
  // The same data under the limit comes out whole, fed in any pieces; the trailer flushes nothing more.
  std::mt19937 rng(3);
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "word" + std::to_string(rng() % 1000) + ' ';
  const auto wire = deflate_message(text);
  for (std::size_t step : {std::size_t{1}, std::size_t{7}, std::size_t{500}, wire.size()}) {
    auto d = server_deflate();
    std::string out;
    for (std::size_t at = 0; at < wire.size(); at += step)
      REQUIRE_FALSE(netlab::ws::detail::bounded_inflate(*d, wire.data() + at, std::min(step, wire.size() - at), out, text.size()));
    const std::uint8_t trailer[4] = {0x00, 0x00, 0xff, 0xff};
    REQUIRE_FALSE(netlab::ws::detail::bounded_inflate(*d, trailer, 4, out, text.size()));
    CHECK(out == text);
  }
}

TEST_CASE("ws frames: finish_message checks what websocketpp 0.8.2 does not", "[ws][frames]") {
  const auto invalid_utf8 = websocketpp::processor::error::make_error_code(websocketpp::processor::error::invalid_utf8);
  no_deflate d;
  // A text message whose last (continuation) frame ended mid code point: invalid.
  auto m = text_message(0);
  REQUIRE_FALSE(feed(m, std::vector<std::uint8_t>{'o', 'k', 0xE5, 0xB0}, 4, false));
  CHECK(netlab::ws::detail::finish_message(m, d, SIZE_MAX) == invalid_utf8);
  auto whole = text_message(0);
  REQUIRE_FALSE(feed(whole, std::vector<std::uint8_t>{'o', 'k', 0xE5, 0xB0, 0x81}, 2, false));
  CHECK_FALSE(netlab::ws::detail::finish_message(whole, d, SIZE_MAX));
  // Binary may end anywhere.
  meta bin{std::make_shared<message>(nullptr, frame::opcode::binary, 0), 0, {}};
  REQUIRE_FALSE(feed(bin, std::vector<std::uint8_t>{0xE5}, 1, false));
  CHECK_FALSE(netlab::ws::detail::finish_message(bin, d, SIZE_MAX));
  // A close frame's reason must be UTF-8; a code alone or nothing is fine.
  auto close_with = [&](const std::string& payload) {
    meta c{std::make_shared<message>(nullptr, frame::opcode::close, 0), 0, {}};
    c.msg_ptr->set_payload(payload);
    return netlab::ws::detail::finish_message(c, d, SIZE_MAX);
  };
  CHECK(close_with(std::string("\x03\xE8") + "bye \xFF") == invalid_utf8);
  CHECK(close_with(std::string("\x03\xE8") + "\xE5\xB0") == invalid_utf8);  // cut mid code point
  CHECK_FALSE(close_with(std::string("\x03\xE8") + "封印"));
  CHECK_FALSE(close_with(std::string("\x03\xE8")));
  CHECK_FALSE(close_with(""));
}

TEST_CASE("ws frames: check_upgrade enforces version 13 and a 16-byte key", "[ws][handshake]") {
  auto check = [](const std::string& headers, std::string method = "GET") {
    websocketpp::http::parser::request req;
    const std::string raw = method + " /echo HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n";
    req.consume(raw.data(), raw.size());
    REQUIRE(req.ready());
    websocketpp::http::parser::response res;
    const auto ec = netlab::ws::detail::check_upgrade(req, res);
    return std::make_pair(ec ? static_cast<int>(res.get_status_code()) : 0, res.get_header("Sec-WebSocket-Version"));
  };
  const std::string up = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
  const std::string key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
  CHECK(check(up + key + "Sec-WebSocket-Version: 13\r\n").first == 0);
  CHECK(check("").first == 0);  // not an upgrade attempt: plain HTTP, left to the http handler
  for (const char* v : {"8", "7", "0", "12", "13, 8", ""}) {
    INFO("version '" << v << "'");
    CHECK(check(up + key + "Sec-WebSocket-Version: " + v + "\r\n") == std::make_pair(426, std::string("13")));
  }
  for (const char* k : {"", "abc", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZXg=",
                        "dGhlIHNhbXBsZSBub25j!Q==", "dGhlIHNhbXBsZSBub25jZQ==="}) {
    INFO("key '" << k << "'");
    CHECK(check(up + "Sec-WebSocket-Key: " + k + "\r\nSec-WebSocket-Version: 13\r\n").first == 400);
  }
  CHECK(check(up + key + "Sec-WebSocket-Version: 13\r\n", "POST").first == 400);
  CHECK(check("Upgrade: websocket\r\n" + key + "Sec-WebSocket-Version: 13\r\n").first == 400);  // no Connection
  CHECK(check("Connection: Upgrade\r\n" + key + "Sec-WebSocket-Version: 13\r\n").first == 400);  // no Upgrade
}
