// netlab's replacements for websocketpp's byte-by-byte frame loops (detail/wspp.hpp): xor_mask()
// against websocketpp's own frame::byte_mask_circ, and consume_payload() (the server's payload
// step) on split frames, text and invalid UTF-8.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

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
  for (std::size_t len = 0; len <= 70; ++len) {
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
