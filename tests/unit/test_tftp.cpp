// TFTP packet codec (lib/netlab/tftp/packet): round trips, RFC 2347 options, malformed input.
#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <variant>

#include "netlab/tftp/packet.hpp"

using namespace netlab::tftp;

namespace {
packet parse_vec(const std::vector<std::uint8_t>& v) { return parse(v.data(), v.size()); }
std::vector<std::uint8_t> bytes(std::string_view s) { return {s.begin(), s.end()}; }
}  // namespace

TEST_CASE("tftp codec: RRQ with options round-trips", "[tftp][codec]") {
  request r{opcode::rrq, "dir/file.bin", "octet", {{"blksize", "1428"}, {"tsize", "0"}, {"windowsize", "16"}}};
  auto v = encode(r);
  REQUIRE(v == bytes(std::string_view("\0\1dir/file.bin\0octet\0blksize\0" "1428\0tsize\0" "0\0windowsize\0" "16\0", 56)));
  auto p = parse_vec(v);
  REQUIRE(std::holds_alternative<request>(p));
  const auto& q = std::get<request>(p);
  CHECK(q.op == opcode::rrq);
  CHECK(q.filename == "dir/file.bin");
  CHECK(q.mode == "octet");
  CHECK(q.options == r.options);
  CHECK(*find_option(q.options, "BLKSIZE") == "1428");
  CHECK(find_option(q.options, "timeout") == nullptr);
}

TEST_CASE("tftp codec: WRQ, mode is case-insensitive, plain RFC 1350 request has no options", "[tftp][codec]") {
  auto p = parse_vec(bytes(std::string_view("\0\2up.txt\0NetASCII\0", 18)));
  REQUIRE(std::holds_alternative<request>(p));
  CHECK(std::get<request>(p).op == opcode::wrq);
  CHECK(std::get<request>(p).options.empty());
}

TEST_CASE("tftp codec: DATA, ACK, ERROR, OACK round-trip", "[tftp][codec]") {
  std::vector<std::uint8_t> payload(512, 0xab);
  auto v = encode(data{65535, payload.data(), payload.size()});
  REQUIRE(v.size() == 516);
  auto p = parse_vec(v);
  REQUIRE(std::holds_alternative<data>(p));
  CHECK(std::get<data>(p).block == 65535);
  CHECK(std::get<data>(p).size == 512);
  CHECK(std::memcmp(std::get<data>(p).payload, payload.data(), 512) == 0);

  auto empty = parse_vec(encode(data{7, nullptr, 0}));  // final empty DATA
  REQUIRE(std::holds_alternative<data>(empty));
  CHECK(std::get<data>(empty).size == 0);

  auto a = parse_vec(encode(ack{0x1234}));
  REQUIRE(std::holds_alternative<ack>(a));
  CHECK(std::get<ack>(a).block == 0x1234);

  auto e = parse_vec(encode(error{1, "File not found"}));
  REQUIRE(std::holds_alternative<error>(e));
  CHECK(std::get<error>(e).code == 1);
  CHECK(std::get<error>(e).message == "File not found");

  auto o = parse_vec(encode(oack{{{"blksize", "1428"}}}));
  REQUIRE(std::holds_alternative<oack>(o));
  CHECK(std::get<oack>(o).options == std::vector<option>{{"blksize", "1428"}});
}

TEST_CASE("tftp codec: malformed datagrams are bad_packet", "[tftp][codec]") {
  auto bad = [](std::string_view s) {
    auto v = bytes(s);
    return std::holds_alternative<bad_packet>(parse(v.data(), v.size()));
  };
  CHECK(std::holds_alternative<bad_packet>(parse(nullptr, 0)));
  CHECK(bad(std::string_view("\0", 1)));
  CHECK(bad(std::string_view("\0\x09xx", 4)));                 // unknown opcode
  CHECK(bad(std::string_view("\0\1file", 6)));                 // filename not terminated
  CHECK(bad(std::string_view("\0\1\0octet\0", 9)));            // empty filename
  CHECK(bad(std::string_view("\0\1f\0", 4)));                  // no mode
  CHECK(bad(std::string_view("\0\1f\0octet", 9)));             // mode not terminated
  CHECK(bad(std::string_view("\0\1f\0binary\0", 11)));         // unknown mode
  CHECK(bad(std::string_view("\0\1f\0octet\0blksize\0", 18)));  // option without value
  CHECK(bad(std::string_view("\0\1f\0octet\0blksize\0" "12", 20)));  // value not terminated
  CHECK(bad(std::string_view("\0\3\0", 3)));                   // short DATA
  CHECK(bad(std::string_view("\0\4\0", 3)));                   // short ACK
  CHECK(bad(std::string_view("\0\5\0", 3)));                   // short ERROR
  CHECK(bad(std::string_view("\0\6x", 3)));                    // OACK name not terminated
  std::vector<std::uint8_t> huge(max_packet + 1, 0);
  huge[1] = 3;
  CHECK(std::holds_alternative<bad_packet>(parse(huge.data(), huge.size())));
}

TEST_CASE("tftp codec: random bytes parse to packets that re-encode to the same bytes", "[tftp][codec]") {
  // The fuzz target's invariant (tests/fuzz/fuzz_tftp_packet.cpp), on a fixed sample every run.
  std::mt19937 rng(42);
  std::vector<std::uint8_t> buf;
  int requests = 0, datas = 0, oacks = 0, bad = 0;
  request seed;
  seed.filename = "f.bin";
  seed.options = {{"blksize", "1428"}, {"tsize", "0"}};
  const auto valid = encode(seed);
  for (int i = 0; i < 20000; ++i) {
    if (i % 2 == 0) {
      buf.resize(rng() % 64);
      for (auto& b : buf) b = static_cast<std::uint8_t>(rng() % 8);  // many NULs and small opcodes
      if (buf.size() >= 2) buf[0] = 0;
    } else {  // a valid RRQ, cut short and with one byte changed: mostly requests, some broken
      buf.assign(valid.begin(), valid.begin() + static_cast<long>(rng() % (valid.size() + 1)));
      if (!buf.empty()) buf[rng() % buf.size()] = "\0a1"[rng() % 3];
    }
    auto p = parse(buf.data(), buf.size());
    CHECK_FALSE(describe(p).empty());
    if (const auto* r = std::get_if<request>(&p)) {
      ++requests;
      CHECK(encode(*r) == buf);
    } else if (const auto* d = std::get_if<data>(&p)) {
      ++datas;
      CHECK(encode(*d) == buf);
    } else if (const auto* o = std::get_if<oack>(&p)) {
      ++oacks;
      CHECK(encode(*o) == buf);
    } else if (std::holds_alternative<bad_packet>(p)) {
      ++bad;
    }
  }
  // The sample reaches every branch, so the checks above are not vacuous.
  CHECK(requests > 0);
  CHECK(datas > 0);
  CHECK(oacks > 0);
  CHECK(bad > 0);
}

TEST_CASE("tftp codec: option values", "[tftp][codec]") {
  std::uint64_t x = 0;
  CHECK(parse_option_value("1428", 8, 65464, x));
  CHECK(x == 1428);
  CHECK_FALSE(parse_option_value("7", 8, 65464, x));
  CHECK_FALSE(parse_option_value("65465", 8, 65464, x));
  CHECK_FALSE(parse_option_value("-1", 0, 10, x));
  CHECK_FALSE(parse_option_value(" 1", 0, 10, x));
  CHECK_FALSE(parse_option_value("", 0, 10, x));
  CHECK_FALSE(parse_option_value("99999999999999999999", 0, ~0ull, x));
  CHECK(iequals("WindowSize", "windowsize"));
  CHECK_FALSE(iequals("windowsize", "windowsiz"));
}

TEST_CASE("tftp codec: ERROR message is bounded", "[tftp][codec]") {
  auto v = encode(error{0, std::string(5000, 'x')});
  CHECK(v.size() <= 4 + 501);
}

// ---- state machines (lib/netlab/tftp/session) ----
#include <deque>

#include "netlab/tftp/session.hpp"

namespace {
enum class fault { none, drop, dup, reorder };

struct wire_packet {
  bool is_data;
  std::uint16_t block;
  std::uint64_t offset;
  std::size_t size;
};

struct sim_result {
  bool sender_done = false, receiver_done = false, failed = false;
  std::uint64_t bytes = 0;
  bool contiguous = true;
  std::uint64_t data_sent = 0;
  std::uint64_t steps = 0;
  std::uint64_t blocks = 0;          // the sender's block count
  std::uint64_t tx_retransmitted = 0, rx_retransmitted = 0;
};

// Runs a whole transfer; the packet with sequence number `at` (counting both directions) gets `f`.
sim_result simulate(std::uint64_t size, transfer_settings s, fault f, std::uint64_t at) {
  sender tx(size, s);
  receiver rx(s);
  std::deque<wire_packet> to_rx, to_tx;
  std::vector<action> acts;
  sim_result r;
  std::uint64_t seq = 0;
  auto put = [&](std::deque<wire_packet>& q, wire_packet p) {
    const auto n = seq++;
    if (n == at && f == fault::drop) return;
    q.push_back(p);
    if (n == at && f == fault::dup) q.push_back(p);
    if (n == at && f == fault::reorder && q.size() >= 2) std::swap(q[q.size() - 1], q[q.size() - 2]);
  };
  auto run_tx = [&] {
    for (const auto& a : acts) {
      if (a.what == action::kind::send_data) {
        put(to_rx, {true, a.wire_block, a.offset, a.size});
        ++r.data_sent;
      }
      if (a.what == action::kind::done) r.sender_done = true;
      if (a.what == action::kind::failed) r.failed = true;
    }
    acts.clear();
  };
  std::uint64_t last_offset = 0;
  auto run_rx = [&](const wire_packet* p) {
    for (const auto& a : acts) {
      if (a.what == action::kind::send_ack) put(to_tx, {false, a.wire_block, 0, 0});
      if (a.what == action::kind::deliver) {
        // The delivered bytes must be exactly the ones the sender put in this packet, in order.
        if (!p || a.offset != p->offset || a.size != p->size || a.offset != last_offset) r.contiguous = false;
        last_offset = a.offset + a.size;
        r.bytes += a.size;
      }
      if (a.what == action::kind::done) r.receiver_done = true;
      if (a.what == action::kind::failed) r.failed = true;
    }
    acts.clear();
  };
  rx.start(acts);
  run_rx(nullptr);
  tx.start(acts);
  run_tx();
  bool tick = false;
  for (r.steps = 0; r.steps < 2'000'000 && !(r.sender_done && r.receiver_done) && !r.failed; ++r.steps) {
    if (!to_rx.empty()) {
      auto p = to_rx.front();
      to_rx.pop_front();
      rx.on_data(p.block, p.size, acts);
      run_rx(&p);
    } else if (!to_tx.empty()) {
      auto p = to_tx.front();
      to_tx.pop_front();
      tx.on_ack(p.block, acts);
      run_tx();
    } else {
      // Idle: a timer fires, alternating sides so both retransmission paths are exercised.
      tick = !tick;
      if (tick && !rx.finished()) { rx.on_timeout(acts); run_rx(nullptr); }
      else { tx.on_timeout(acts); run_tx(); }
    }
  }
  r.blocks = tx.blocks();
  r.tx_retransmitted = tx.retransmissions();
  r.rx_retransmitted = rx.retransmissions();
  return r;
}
}  // namespace

TEST_CASE("tftp session: sizes around blksize, exact multiples end with an empty block", "[tftp][session]") {
  for (std::uint64_t size : {0ull, 1ull, 511ull, 512ull, 513ull, 1024ull, 4096ull, 5000ull}) {
    for (unsigned w : {1u, 4u, 16u}) {
      transfer_settings s;
      s.windowsize = w;
      INFO("size " << size << " window " << w);
      sender tx(size, s);
      CHECK(tx.blocks() == size / 512 + 1);
      auto r = simulate(size, s, fault::none, ~0ull);
      CHECK(r.sender_done);
      CHECK(r.receiver_done);
      CHECK_FALSE(r.failed);
      CHECK(r.bytes == size);
      CHECK(r.contiguous);
      CHECK(r.data_sent == size / 512 + 1);  // no retransmission without faults
    }
  }
}

TEST_CASE("tftp session: loss, duplication and reordering at every step still complete", "[tftp][session]") {
  for (auto f : {fault::drop, fault::dup, fault::reorder}) {
    for (std::uint64_t size : {0ull, 511ull, 512ull, 513ull, 3000ull}) {
      for (unsigned w : {1u, 3u}) {
        transfer_settings s;
        s.windowsize = w;
        s.retries = 3;
        const auto clean = simulate(size, s, fault::none, ~0ull);
        for (std::uint64_t at = 0; at < clean.steps + 4; ++at) {
          INFO("fault " << int(f) << " size " << size << " window " << w << " at packet " << at);
          auto r = simulate(size, s, f, at);
          REQUIRE(r.sender_done);
          REQUIRE(r.receiver_done);
          REQUIRE_FALSE(r.failed);
          REQUIRE(r.bytes == size);
          REQUIRE(r.contiguous);
        }
      }
    }
  }
}

TEST_CASE("tftp session: block numbers roll over past 65535", "[tftp][session]") {
  transfer_settings s;
  s.blksize = 8;
  s.windowsize = 16;
  const std::uint64_t size = 70000ull * 8 + 3;  // 70001 blocks: wraps once
  auto r = simulate(size, s, fault::none, ~0ull);
  CHECK(r.sender_done);
  CHECK(r.receiver_done);
  CHECK(r.bytes == size);
  CHECK(r.contiguous);
  auto lossy = simulate(size, s, fault::drop, 65540);  // a loss right around the wrap
  CHECK(lossy.receiver_done);
  CHECK(lossy.bytes == size);
  CHECK(lossy.contiguous);
}

TEST_CASE("tftp session: no resend on a duplicate ACK (Sorcerer's Apprentice)", "[tftp][session]") {
  transfer_settings s;
  sender tx(2000, s);
  std::vector<action> out;
  tx.start(out);
  REQUIRE(out.size() == 2);
  CHECK(out[0].what == action::kind::send_data);
  CHECK(out[0].wire_block == 1);
  out.clear();
  tx.on_ack(1, out);
  REQUIRE(out.size() == 2);
  CHECK(out[0].wire_block == 2);
  out.clear();
  tx.on_ack(1, out);  // duplicate: must not trigger another DATA 2
  CHECK(out.empty());
  tx.on_ack(9, out);  // never sent: ignored
  CHECK(out.empty());
  tx.on_timeout(out);  // only a timeout resends
  REQUIRE_FALSE(out.empty());
  CHECK(out[0].wire_block == 2);
  CHECK(tx.retransmissions() == 1);
}

TEST_CASE("tftp session: gives up after retries with backoff", "[tftp][session]") {
  transfer_settings s;
  s.retries = 3;
  s.timeout = std::chrono::milliseconds(100);
  sender tx(100, s);
  std::vector<action> out;
  tx.start(out);
  std::vector<std::chrono::milliseconds> timers;
  for (int i = 0; i < 3; ++i) {
    out.clear();
    tx.on_timeout(out);
    REQUIRE(out.back().what == action::kind::arm_timer);
    timers.push_back(out.back().timer);
  }
  CHECK(timers[0] < timers[1]);
  CHECK(timers[1] < timers[2]);
  out.clear();
  tx.on_timeout(out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].what == action::kind::failed);

  receiver rx(s);
  out.clear();
  rx.start(out);
  for (int i = 0; i < 3; ++i) { out.clear(); rx.on_timeout(out); CHECK(out[0].what == action::kind::send_ack); }
  out.clear();
  rx.on_timeout(out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].what == action::kind::failed);
}

TEST_CASE("tftp session: a lost first block of a window is resent on the gap ACK, once", "[tftp][session]") {
  transfer_settings s;
  s.windowsize = 4;
  sender tx(512 * 10, s);
  receiver rx(s);
  std::vector<action> out;
  tx.start(out);
  out.clear();
  rx.start(out);
  out.clear();
  // Blocks 2..4 arrive, 1 was lost: one ACK 0, no delivery.
  for (std::uint16_t b = 2; b <= 4; ++b) rx.on_data(b, 512, out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].what == action::kind::send_ack);
  CHECK(out[0].wire_block == 0);
  out.clear();
  tx.on_ack(0, out);  // the repeated ACK 0: resend 1..4 at once
  REQUIRE(out.size() == 5);
  CHECK(out[0].wire_block == 1);
  CHECK(out[3].wire_block == 4);
  out.clear();
  tx.on_ack(0, out);  // again: already resent for ACK 0
  CHECK(out.empty());
  // Duplicates of past blocks draw no ACK (no cascade).
  rx.on_data(1, 512, out);
  out.clear();
  rx.on_data(1, 512, out);
  CHECK(out.empty());
}

TEST_CASE("tftp session: a partial ACK's resent window counts as retransmitted blocks", "[tftp][session]") {
  // Issue 15: a run at 1% loss logged 0 retransmissions while 4-5x the data went on the wire.
  transfer_settings s;
  s.windowsize = 4;
  sender tx(512 * 10, s);
  receiver rx(s);
  std::vector<action> out;
  tx.start(out);  // 1..4
  out.clear();
  rx.start(out);
  out.clear();
  rx.on_data(1, 512, out);
  rx.on_data(3, 512, out);  // 2 lost: ACK 1 (a partial ACK of the window)
  rx.on_data(4, 512, out);
  out.clear();
  tx.on_ack(1, out);  // resends 2..4, then 5
  std::vector<std::uint16_t> sent;
  for (const auto& a : out)
    if (a.what == action::kind::send_data) sent.push_back(a.wire_block);
  CHECK(sent == std::vector<std::uint16_t>{2, 3, 4, 5});
  CHECK(tx.retransmissions() == 3);
  CHECK(rx.retransmissions() == 0);
  for (std::uint16_t b : sent) rx.on_data(b, 512, out);
  CHECK(rx.retransmissions() == 3);  // 2, 3 and 4 came again (2 had been passed: 3 and 4 were seen)
}

TEST_CASE("tftp session: both sides count retransmitted blocks the same way", "[tftp][session]") {
  // One lost packet at every position: the sender counts exactly the DATA it sent beyond one per block;
  // the receiver sees those resends, less at most the one copy the loss hid. Duplicates by the network
  // (not a resend) are counted by the receiver alone: one more at most.
  for (unsigned w : {1u, 4u, 16u}) {
    transfer_settings s;
    s.windowsize = w;
    const std::uint64_t size = 512 * 100 + 3;
    const auto clean = simulate(size, s, fault::none, ~0ull);
    CHECK(clean.tx_retransmitted == 0);
    CHECK(clean.rx_retransmitted == 0);
    for (std::uint64_t at = 0; at < clean.steps + 4; ++at) {
      INFO("window " << w << " packet " << at);
      auto lost = simulate(size, s, fault::drop, at);
      REQUIRE(lost.receiver_done);
      CHECK(lost.tx_retransmitted == lost.data_sent - lost.blocks);
      CHECK(lost.rx_retransmitted <= lost.tx_retransmitted);
      CHECK(lost.rx_retransmitted + 1 >= lost.tx_retransmitted);
    }
  }
}

TEST_CASE("tftp session: duplicated packets cost a bounded number of extra blocks", "[tftp][session]") {
  for (unsigned w : {1u, 4u, 16u}) {
    transfer_settings s;
    s.windowsize = w;
    const std::uint64_t size = 512 * 200 + 7;
    const auto clean = simulate(size, s, fault::none, ~0ull);
    for (std::uint64_t at = 0; at < clean.steps; at += 7) {
      INFO("window " << w << " duplicate at packet " << at);
      auto r = simulate(size, s, fault::dup, at);
      REQUIRE(r.receiver_done);
      REQUIRE(r.contiguous);
      CHECK(r.data_sent <= clean.data_sent + w);
    }
  }
}

TEST_CASE("tftp session: retransmission timers are capped by max_silence in all", "[tftp][session][hostile]") {
  using std::chrono::milliseconds;
  CHECK(capped_backoff(milliseconds(1000), 0, milliseconds(0), milliseconds(60000)) == milliseconds(1000));
  CHECK(capped_backoff(milliseconds(1000), 3, milliseconds(0), milliseconds(60000)) == milliseconds(8000));
  CHECK(capped_backoff(milliseconds(255000), 0, milliseconds(0), milliseconds(60000)) == milliseconds(60000));
  CHECK(capped_backoff(milliseconds(1000), 5, milliseconds(59500), milliseconds(60000)) == milliseconds(500));
  CHECK(capped_backoff(milliseconds(255000), 2, milliseconds(0), milliseconds(0)) == milliseconds(255000));  // 0: no cap
  // A silent peer that asked for timeout=255 s: the sender and the receiver give up within max_silence,
  // after at most `retries` retransmissions, however large the timeout and the retry count.
  for (unsigned retries : {5u, 100u}) {
    for (auto timeout : {milliseconds(255000), milliseconds(1000)}) {
      transfer_settings s;
      s.timeout = timeout;
      s.retries = retries;
      s.max_silence = milliseconds(10000);
      sender tx(100000, s);
      receiver rx(s);
      for (int side = 0; side < 2; ++side) {
        std::vector<action> out;
        side == 0 ? tx.start(out) : rx.start(out);
        milliseconds waited{0};
        unsigned timeouts = 0;
        bool failed = false;
        for (int i = 0; i < 1000 && !failed; ++i) {
          REQUIRE(out.back().what == action::kind::arm_timer);
          waited += out.back().timer;
          out.clear();
          side == 0 ? tx.on_timeout(out) : rx.on_timeout(out);
          ++timeouts;
          failed = out.size() == 1 && out[0].what == action::kind::failed;
        }
        INFO("side " << side << " timeout " << timeout.count() << " retries " << retries);
        CHECK(failed);
        CHECK(waited <= s.max_silence);
        CHECK(timeouts <= retries + 1);
      }
    }
  }
}

TEST_CASE("tftp session: progress resets the silence budget", "[tftp][session][hostile]") {
  transfer_settings s;
  s.timeout = std::chrono::milliseconds(2000);  // timers 2 s then 4 s: 6 s of the 10 s, then progress
  s.retries = 100;
  s.max_silence = std::chrono::milliseconds(10000);
  s.blksize = 512;
  sender tx(512 * 100, s);
  std::vector<action> out;
  tx.start(out);
  for (std::uint16_t b = 1; b <= 20; ++b) {  // a slow client: two timeouts, then an ACK, twenty times
    out.clear();
    tx.on_timeout(out);
    out.clear();
    tx.on_timeout(out);
    REQUIRE_FALSE(out.empty());
    REQUIRE(out[0].what == action::kind::send_data);
    out.clear();
    tx.on_ack(b, out);
    REQUIRE(tx.acknowledged() == b);
  }
}

TEST_CASE("tftp session: a stale ACK never moves the sender past what was acknowledged (windows >= 32768)",
          "[tftp][session][hostile]") {
  // With 16-bit block numbers, an ACK from an earlier window must not read as one of the current
  // window: windowsize 65535 once let a stale ACK 65534 move the sender to block 131071, so the
  // receiver took block 131073 for block 65537.
  for (unsigned w : {32768u, 40000u, 65535u}) {
    INFO("windowsize " << w);
    transfer_settings s;
    s.blksize = 8;
    s.windowsize = w;
    const std::uint64_t size = 300000ull * 8 + 3;
    sender tx(size, s);
    std::vector<action> out;
    std::uint64_t sent = 0;
    auto note = [&] {
      for (const auto& a : out)
        if (a.what == action::kind::send_data) {
          const std::uint64_t block = a.offset / s.blksize + 1;
          CHECK(block <= tx.blocks());
          CHECK(a.offset + a.size <= size);
          CHECK(static_cast<std::uint16_t>(block & 0xffff) == a.wire_block);
          sent = std::max(sent, block);
        }
      out.clear();
    };
    tx.start(out);
    note();
    std::uint64_t legit = 0;  // highest block the (perfect) receiver acknowledged
    std::vector<std::uint64_t> acks;
    for (int round = 0; round < 40 && !tx.finished(); ++round) {
      legit = sent;  // everything sent arrived, in order
      acks.push_back(legit);
      tx.on_ack(static_cast<std::uint16_t>(legit & 0xffff), out);
      note();
      CHECK(tx.acknowledged() == legit);
      // Reordered and replayed ACKs up to half the block space behind (an ACK delayed by more than
      // 32768 blocks is indistinguishable from a new one with 16-bit numbers: no sender can tell).
      std::vector<std::uint64_t> stale;
      for (auto b : acks)
        if (b < legit && legit - b <= 32768) stale.push_back(b);
      for (std::uint64_t back : {1ull, 2ull, 100ull, 32767ull, 32768ull})
        if (legit > back) stale.push_back(legit - back);
      for (auto b : stale) {
        tx.on_ack(static_cast<std::uint16_t>(b & 0xffff), out);
        note();
        REQUIRE(tx.acknowledged() <= legit);  // never acknowledged past what the receiver got
      }
      CHECK(sent <= legit + max_blocks_in_flight);
    }
    CHECK(tx.finished());
  }
}

TEST_CASE("tftp session: a receiver acknowledges at most 32767 blocks at a time", "[tftp][session]") {
  transfer_settings s;
  s.blksize = 8;
  s.windowsize = 65535;
  receiver rx(s);
  std::vector<action> out;
  rx.start(out);
  std::uint64_t acks = 0;
  for (std::uint64_t b = 1; b <= 70000; ++b) {
    out.clear();
    rx.on_data(static_cast<std::uint16_t>(b & 0xffff), 8, out);
    for (const auto& a : out)
      if (a.what == action::kind::send_ack) {
        ++acks;
        CHECK(b % max_blocks_in_flight == 0);
      }
  }
  CHECK(acks == 70000 / max_blocks_in_flight);
}

TEST_CASE("tftp session: a sender of unknown size learns it and never sends past the end", "[tftp][session]") {
  transfer_settings s;
  s.blksize = 10;
  s.windowsize = 4;
  sender tx(sender::unknown_size, s);
  std::vector<action> out;
  tx.start(out);
  REQUIRE(out.size() == 5);  // four DATA (full, as far as the sender knows) and the timer
  tx.learn_size(25, out);    // the source found its end inside this window
  std::vector<std::pair<std::uint16_t, std::size_t>> data;
  for (const auto& a : out)
    if (a.what == action::kind::send_data) data.emplace_back(a.wire_block, a.size);
  CHECK(data == std::vector<std::pair<std::uint16_t, std::size_t>>{{1, 10}, {2, 10}, {3, 5}});
  CHECK(tx.blocks() == 3);
  out.clear();
  tx.on_ack(3, out);
  CHECK(tx.finished());
  // An end exactly at a block boundary still ends with an empty block.
  sender ex(sender::unknown_size, s);
  out.clear();
  ex.start(out);
  ex.learn_size(20, out);
  std::vector<std::size_t> sizes;
  for (const auto& a : out)
    if (a.what == action::kind::send_data) sizes.push_back(a.size);
  CHECK(sizes == std::vector<std::size_t>{10, 10, 0});
}

TEST_CASE("tftp session: random packets from a hostile peer never break the invariants", "[tftp][session][hostile]") {
  // Never send beyond the file; never acknowledge past what was received; deliveries stay contiguous.
  std::uint32_t x = 2024;
  auto rnd = [&] {
    x = x * 1664525u + 1013904223u;
    return x >> 8;
  };
  for (unsigned w : {1u, 4u, 64u, 40000u, 65535u}) {
    for (std::uint64_t size : {0ull, 7ull, 512ull * 3, 512ull * 70000 + 5}) {
      INFO("windowsize " << w << " size " << size);
      transfer_settings s;
      s.windowsize = w;
      s.retries = 1000000;
      sender tx(size, s);
      std::vector<action> out;
      tx.start(out);
      std::uint64_t acked_ok = 0;
      for (int i = 0; i < 3000; ++i) {
        for (const auto& a : out)
          if (a.what == action::kind::send_data) {
            REQUIRE(a.offset <= size);
            REQUIRE(a.offset + a.size <= size);
            REQUIRE(a.offset / s.blksize + 1 <= tx.blocks());
          }
        out.clear();
        REQUIRE(tx.acknowledged() <= tx.highest_sent());
        REQUIRE(tx.acknowledged() >= acked_ok);  // never moves back
        acked_ok = tx.acknowledged();
        if (rnd() % 8 == 0) tx.on_timeout(out);
        else tx.on_ack(static_cast<std::uint16_t>(rnd()), out);
      }
      receiver rx(s);
      out.clear();
      rx.start(out);
      std::uint64_t delivered = 0;
      for (int i = 0; i < 3000 && !rx.finished(); ++i) {
        out.clear();
        const auto block = static_cast<std::uint16_t>(rnd() % 4 == 0 ? (delivered + 1) & 0xffff : rnd());
        rx.on_data(block, rnd() % 64 == 0 ? 100 : 512, out);
        for (const auto& a : out) {
          if (a.what == action::kind::deliver) {
            REQUIRE(a.offset == rx.bytes() - a.size);
            REQUIRE(a.wire_block == static_cast<std::uint16_t>((delivered + 1) & 0xffff));
            ++delivered;
          }
          if (a.what == action::kind::send_ack) REQUIRE(a.wire_block == static_cast<std::uint16_t>(delivered & 0xffff));
        }
      }
    }
  }
}
