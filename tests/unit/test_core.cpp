// Pure parts of the core: addresses, durations, sizes, templates, escapes, the latency histogram.
#include <catch2/catch.hpp>

#include <random>

#include "netlab/core/endpoint.hpp"
#include "netlab/core/load.hpp"
#include "netlab/core/log.hpp"
#include "netlab/core/payload.hpp"
#include "netlab/core/text.hpp"

using namespace netlab::core;
using namespace std::chrono_literals;

TEST_CASE("parse_endpoint accepts the documented forms", "[core][endpoint]") {
  auto p = parse_endpoint("127.0.0.1:1450");
  REQUIRE(p);
  CHECK(p.value->host == "127.0.0.1");
  CHECK(p.value->port == 1450);

  p = parse_endpoint(":6890");
  REQUIRE(p);
  CHECK(p.value->host.empty());
  CHECK(p.value->port == 6890);

  p = parse_endpoint("[::1]:0");
  REQUIRE(p);
  CHECK(p.value->host == "::1");
  CHECK(p.value->port == 0);
  CHECK(p.value->to_string() == "[::1]:0");

  p = parse_endpoint("example.org:80");
  REQUIRE(p);
  CHECK(p.value->host == "example.org");

  p = parse_endpoint("localhost", 69);
  REQUIRE(p);
  CHECK(p.value->port == 69);

  p = parse_endpoint("::1", 69);
  REQUIRE(p);
  CHECK(p.value->host == "::1");
  CHECK(p.value->port == 69);

  p = parse_endpoint("localhost:65535");
  REQUIRE(p);
  CHECK(p.value->port == 65535);
}

TEST_CASE("parse_endpoint names the bad part", "[core][endpoint]") {
  auto bad = [](const char* text) {
    auto p = parse_endpoint(text);
    CHECK_FALSE(p);
    return p.error;
  };
  CHECK_THAT(bad("127.0.0.1:99999"), Catch::Contains("99999") && Catch::Contains("out of range"));
  CHECK_THAT(bad("127.0.0.1:http"), Catch::Contains("'http'") && Catch::Contains("not a number"));
  CHECK_THAT(bad("127.0.0.1"), Catch::Contains("no port"));
  CHECK_THAT(bad("127.0.0.1:"), Catch::Contains("empty port"));
  CHECK_THAT(bad(""), Catch::Contains("empty"));
  CHECK_THAT(bad("[::1"), Catch::Contains("without ']'"));
  CHECK_THAT(bad("[nothost]:80"), Catch::Contains("not an IPv6 address"));
  CHECK_THAT(bad("::1:80"), Catch::Contains("brackets"));
  CHECK_THAT(bad("a b:80"), Catch::Contains("invalid character"));
  CHECK_THAT(bad("[::1]80"), Catch::Contains("':PORT'"));
  CHECK_THAT(bad("1.2.3.4:-1"), Catch::Contains("not a number"));
}

TEST_CASE("parse_duration takes seconds and suffixes", "[core][duration]") {
  CHECK(*parse_duration("2").value == 2000ms);
  CHECK(*parse_duration("2s").value == 2000ms);
  CHECK(*parse_duration("1.5s").value == 1500ms);
  CHECK(*parse_duration("500ms").value == 500ms);
  CHECK(*parse_duration("1m").value == 60000ms);
  CHECK(*parse_duration("1h").value == 3600000ms);
  CHECK(*parse_duration("0").value == 0ms);
  CHECK(*parse_duration("0.25").value == 250ms);
  for (const char* bad : {"", "-1", "2x", "s", "1..2", "abc", "1e3", "nan", "2 s"}) {
    INFO(bad);
    auto p = parse_duration(bad);
    CHECK_FALSE(p);
    CHECK_THAT(p.error, Catch::Contains("500ms"));
  }
  CHECK(format_duration(2000ms) == "2s");
  CHECK(format_duration(500ms) == "500ms");
  CHECK(format_duration(1500ms) == "1.5s");
  CHECK(format_duration(300000ms) == "5m");
  CHECK(format_duration(90000ms) == "90s");
}

TEST_CASE("parse_size takes bytes and binary/decimal suffixes", "[core][size]") {
  CHECK(*parse_size("64").value == 64);
  CHECK(*parse_size("16K").value == 16384);
  CHECK(*parse_size("16KiB").value == 16384);
  CHECK(*parse_size("1M").value == 1048576);
  CHECK(*parse_size("1MB").value == 1000000);
  CHECK(*parse_size("2G").value == 2147483648ull);
  for (const char* bad : {"", "K", "-1", "1.5K", "12Q", "99999999999999999999"}) {
    INFO(bad);
    CHECK_FALSE(parse_size(bad));
  }
}

TEST_CASE("render_template substitutes {msg} and {peer} literally", "[core][template]") {
  CHECK(render_template("server received: {msg}", "hi", "1.2.3.4:5") == "server received: hi");
  CHECK(render_template("{peer} said {msg}{msg}", "x", "p") == "p said xx");
  // Plain substitution: format specifiers and stray braces pass through untouched.
  CHECK(render_template("%s %n {0} {} {msg", "m", "p") == "%s %n {0} {} {msg");
  CHECK(render_template("{msg}", "{peer}", "p") == "{peer}");  // no re-expansion of the data
  // The classic lesson, byte for byte, UTF-8 intact, no padding.
  const std::string out = render_template("伺服器端回傳伺服器端已接收到 {msg}", "封印解除!", "");
  CHECK(out == "伺服器端回傳伺服器端已接收到 封印解除!");
  CHECK(out.find('\0') == std::string::npos);
  // Binary data with NUL bytes survives.
  const std::string bin("a\0b", 3);
  CHECK(render_template("[{msg}]", bin, "") == std::string("[a\0b]", 5));
}

TEST_CASE("decode_escapes reads \\r \\n \\t \\xNN and rejects unknown escapes", "[core][escapes]") {
  CHECK(*decode_escapes(R"(GET / HTTP/1.0\r\n\r\n)").value == "GET / HTTP/1.0\r\n\r\n");
  CHECK(*decode_escapes(R"(a\tb\\c\x41\x7e)").value == "a\tb\\cA~");
  CHECK(*decode_escapes(R"(\x00)").value == std::string("\0", 1));
  CHECK_THAT(decode_escapes(R"(\q)").error, Catch::Contains("\\q"));
  CHECK_THAT(decode_escapes(R"(\x4)").error, Catch::Contains("two hex digits"));
  CHECK_THAT(decode_escapes("abc\\").error, Catch::Contains("lone"));
}

TEST_CASE("latency_histogram percentiles are within 2% of the exact values", "[core][load]") {
  latency_histogram h;
  std::vector<std::int64_t> samples;
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(11.0, 1.0);  // around 60 us, long tail
  for (int i = 0; i < 20000; ++i) {
    auto v = static_cast<std::int64_t>(dist(rng));
    samples.push_back(v);
    h.record(std::chrono::nanoseconds(v));
  }
  std::sort(samples.begin(), samples.end());
  CHECK(h.count() == samples.size());
  CHECK(h.max().count() == samples.back());
  CHECK(h.min().count() == samples.front());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    auto exact = static_cast<double>(samples[static_cast<std::size_t>(q * samples.size()) - 1]);
    auto got = static_cast<double>(h.percentile(q).count());
    INFO("q=" << q << " exact=" << exact << " got=" << got);
    CHECK(got == Approx(exact).epsilon(0.02));
  }
}

TEST_CASE("latency_histogram buckets cover every value and merge", "[core][load]") {
  for (std::uint64_t v : {0ull, 1ull, 127ull, 128ull, 129ull, 255ull, 256ull, 1000ull, 123456789ull,
                          (1ull << 40) + 12345, ~0ull >> 1}) {
    auto i = latency_histogram::index_of(v);
    INFO(v);
    REQUIRE(i < latency_histogram::buckets);
    CHECK(latency_histogram::value_of(i) >= v);
    CHECK(static_cast<double>(latency_histogram::value_of(i)) <= static_cast<double>(v) * 1.016 + 1);
  }
  latency_histogram a, b;
  a.record(10us);
  b.record(30us);
  a.merge(b);
  CHECK(a.count() == 2);
  CHECK(a.max() == 30us);
  CHECK(a.mean() == 20us);
}

TEST_CASE("load report JSON has every documented field", "[core][load]") {
  load_options opt;
  opt.connections = 4;
  opt.size = 64;
  load_stats s;
  s.messages = 1000;
  s.bytes = 64000;
  s.elapsed = 2s;
  for (int i = 0; i < 1000; ++i) s.latency.record(std::chrono::microseconds(100 + i % 10));
  auto j = load_json("tcp", opt, s);
  CHECK(j["event"] == "load");
  CHECK(j["msgs_per_s"].get<double>() == Approx(500.0));
  CHECK(j["mb_per_s"].get<double>() == Approx(0.032));
  for (const char* k : {"min", "mean", "p50", "p90", "p99", "p99_9", "max"}) CHECK(j["latency_us"].contains(k));
  CHECK(j["latency_us"]["p50"].get<double>() == Approx(104.0).epsilon(0.02));
}

TEST_CASE("hexdump shows offsets, bytes and printable text", "[core][log]") {
  const std::string s = "hello\x01world, 16+ bytes";
  auto d = hexdump(s.data(), s.size());
  CHECK_THAT(d, Catch::Contains("00000000  68 65 6c 6c 6f 01"));
  CHECK_THAT(d, Catch::Contains("|hello.world, 16+|"));
  CHECK_THAT(hexdump(s.data(), s.size(), 4), Catch::Contains("more bytes"));
  CHECK(human_bytes(512) == "512 B");
  CHECK(human_bytes(1536) == "1.5 KiB");
}

TEST_CASE("add_payload keeps UTF-8 text as text and everything else as base64", "[core][payload]") {
  CHECK(valid_utf8("plain ascii"));
  CHECK(valid_utf8("gr\xc3\xbc\xc3\x9f \xf0\x9f\x98\x80"));
  CHECK_FALSE(valid_utf8("\xff"));
  CHECK_FALSE(valid_utf8("\xc0\xaf"));          // overlong '/'
  CHECK_FALSE(valid_utf8("\xed\xa0\x80"));      // a surrogate
  CHECK_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(valid_utf8("ab\xe2\x82"));        // cut mid code point
  CHECK(base64("") == "");
  CHECK(base64("f") == "Zg==");
  CHECK(base64("fo") == "Zm8=");
  CHECK(base64("foo") == "Zm9v");
  CHECK(base64(std::string("\0\xff\x10", 3)) == "AP8Q");
  nlohmann::json j;
  add_payload(j, "hi");
  CHECK(j == nlohmann::json{{"text", "hi"}});
  j = {};
  add_payload(j, "\xff");
  CHECK(j == nlohmann::json{{"base64", "/w=="}});
  j = {};
  add_payload(j, "hi", true);
  CHECK(j == nlohmann::json{{"base64", "aGk="}});
}
