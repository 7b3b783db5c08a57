// Fuzz target: the TFTP transfer state machines (lib/netlab/tftp/session.hpp), driven by event
// sequences decoded from the input. The first byte picks the mode:
//  - sender alone, against a hostile peer (any ACK number, spurious timeouts);
//  - receiver alone, against a hostile peer (any DATA number and size up to blksize, timeouts);
//  - both, through a network that drops, duplicates and reorders (never forges), then a perfect
//    network until the end.
// Invariants:
//  - the sender never sends beyond the file: every DATA is block b = offset/blksize + 1 <= blocks()
//    with size min(blksize, file size - offset), and never more than a window past any block an ACK
//    could have meant; it is done only after an ACK of the last block it sent;
//  - the receiver never acknowledges past what it received: every ACK names the last block it
//    delivered in order; it delivers only the expected block, at the next offset;
//  - each side gives up after `retries` + 1 timeouts in a row without any event in between, and does
//    nothing at all after done or failed; every timer is positive and bounded;
//  - together: every block is written at the offset the sender read it from, and after the hostile
//    phase a perfect network completes the transfer (no livelock, no deadlock) in bounded steps.
#include <algorithm>
#include <deque>
#include <vector>

#include "fuzz.hpp"
#include "netlab/tftp/session.hpp"

using namespace netlab::tftp;
using std::chrono::milliseconds;
using kind = action::kind;

namespace {

// Generous: session.hpp caps its backoff well below this (issue 13 asks for <= 60 s per attempt).
constexpr milliseconds max_timer{255'000};

transfer_settings settings_from(netlab::fuzz::reader& in, std::size_t max_blk) {
  transfer_settings s;
  s.blksize = static_cast<std::size_t>(in.range(8, max_blk));
  s.windowsize = static_cast<unsigned>(in.range(1, 64));
  s.timeout = milliseconds(in.range(10, 255'000));
  s.retries = static_cast<unsigned>(in.range(0, 10));
  return s;
}

/// Checks every action of a sender's answer to one event.
struct sender_model {
  std::uint64_t size;
  transfer_settings s;
  std::uint64_t blocks;
  std::uint64_t max_sent = 0;     // highest absolute block sent
  std::uint64_t max_meant = 0;    // highest absolute block any ACK so far could have meant
  bool done = false, failed = false;
  unsigned quiet_timeouts = 0;    // timeouts in a row with no ACK in between
  unsigned timeouts = 0;          // timeouts in all

  void check(const std::vector<action>& out, bool timeout_event, std::int32_t ack_wire) {
    if (done || failed) FUZZ_CHECK(out.empty());
    std::size_t sends = 0;
    for (std::size_t i = 0; i < out.size(); ++i) {
      const action& a = out[i];
      switch (a.what) {
        case kind::send_data: {
          ++sends;
          FUZZ_CHECK(a.offset % s.blksize == 0);
          const std::uint64_t b = a.offset / s.blksize + 1;
          FUZZ_CHECK(b >= 1 && b <= blocks);
          FUZZ_CHECK(a.wire_block == static_cast<std::uint16_t>(b & 0xffff));
          FUZZ_CHECK(a.offset <= size && a.size == std::min<std::uint64_t>(s.blksize, size - a.offset));
          FUZZ_CHECK(b <= max_meant + s.windowsize);
          max_sent = std::max(max_sent, b);
          break;
        }
        case kind::arm_timer:
          FUZZ_CHECK(a.timer > milliseconds(0) && a.timer <= max_timer);
          FUZZ_CHECK(i + 1 == out.size());
          break;
        case kind::done:
          FUZZ_CHECK(!done && !failed && ack_wire >= 0);
          FUZZ_CHECK(max_sent == blocks && static_cast<std::uint16_t>(blocks & 0xffff) == ack_wire);
          done = true;
          break;
        case kind::failed:
          FUZZ_CHECK(timeout_event && timeouts > s.retries);
          failed = true;
          break;
        default:
          FUZZ_CHECK(!"a sender only sends DATA, arms its timer, ends or fails");
      }
    }
    FUZZ_CHECK(sends <= s.windowsize);
    if (sends) FUZZ_CHECK(out.back().what == kind::arm_timer);
    if (timeout_event && quiet_timeouts > s.retries && !done) FUZZ_CHECK(failed);
  }
  /// The largest absolute block <= max_sent whose wire number is w (0 if none).
  std::uint64_t meant(std::uint16_t w) const {
    if (max_sent < w) return 0;
    return max_sent - ((max_sent - w) & 0xffff);
  }
};

/// Checks every action of a receiver's answer to one event.
struct receiver_model {
  transfer_settings s;
  std::uint64_t delivered = 0;    // blocks delivered in order
  std::uint64_t bytes = 0;
  std::uint64_t since_ack = 0;    // deliveries since the last ACK
  bool done = false, failed = false;
  unsigned quiet_timeouts = 0;    // timeouts in a row with no DATA in between
  unsigned timeouts = 0;          // timeouts in all

  // data_wire < 0: a timeout event.
  void check(const std::vector<action>& out, std::int32_t data_wire, std::size_t data_size) {
    if (failed) FUZZ_CHECK(out.empty());
    for (const action& a : out) {
      switch (a.what) {
        case kind::deliver:
          FUZZ_CHECK(!done && data_wire >= 0);
          FUZZ_CHECK(static_cast<std::uint16_t>((delivered + 1) & 0xffff) == data_wire);
          FUZZ_CHECK(a.offset == bytes && a.size == data_size);
          ++delivered;
          ++since_ack;
          bytes += a.size;
          break;
        case kind::send_ack:
          // Never past what was received, and never anything but the last in-order block.
          FUZZ_CHECK(a.wire_block == static_cast<std::uint16_t>(delivered & 0xffff));
          since_ack = 0;
          break;
        case kind::arm_timer:
          FUZZ_CHECK(a.timer > milliseconds(0) && a.timer <= max_timer);
          break;
        case kind::done:
          FUZZ_CHECK(!done && data_wire >= 0 && data_size < s.blksize);
          done = true;
          break;
        case kind::failed:
          FUZZ_CHECK(data_wire < 0 && timeouts > s.retries && !done);
          failed = true;
          break;
        default:
          FUZZ_CHECK(!"a receiver only delivers, acknowledges, arms its timer, ends or fails");
      }
    }
    FUZZ_CHECK(since_ack <= s.windowsize);
    if (done) FUZZ_CHECK(since_ack == 0);  // the last block is acknowledged at once
    if (data_wire < 0 && quiet_timeouts > s.retries && !done) FUZZ_CHECK(failed);
  }
};

void sender_alone(netlab::fuzz::reader& in) {
  const transfer_settings s = settings_from(in, 4096);
  const std::uint64_t size = in.range(0, (in.u8() & 1) ? (70'000ull * s.blksize) : 100'000);
  sender snd(size, s);
  sender_model m{size, s, size / s.blksize + 1};
  FUZZ_CHECK(snd.blocks() == m.blocks);
  std::vector<action> out;
  snd.start(out);
  m.check(out, false, -1);
  while (!in.empty()) {
    const std::uint8_t op = in.u8();
    unsigned repeat = 1;
    std::uint16_t w = 0;
    switch (op % 4) {
      case 0: w = in.u16(); break;                                                    // any number
      case 1: w = static_cast<std::uint16_t>(m.max_sent & 0xffff); break;              // all in flight
      case 2: w = static_cast<std::uint16_t>(m.max_sent & 0xffff); repeat = in.u8() + 1u; break;
      default: w = 0; break;                                                           // a timeout
    }
    for (unsigned r = 0; r < repeat; ++r) {
      out.clear();
      if (op % 4 == 3) {
        ++m.quiet_timeouts;
        ++m.timeouts;
        snd.on_timeout(out);
        m.check(out, true, -1);
      } else {
        if (op % 4 == 2) w = static_cast<std::uint16_t>(m.max_sent & 0xffff);
        m.quiet_timeouts = 0;
        m.max_meant = std::max(m.max_meant, m.meant(w));
        snd.on_ack(w, out);
        m.check(out, false, w);
      }
    }
    FUZZ_CHECK(snd.finished() == m.done);
  }
}

void receiver_alone(netlab::fuzz::reader& in) {
  const transfer_settings s = settings_from(in, 4096);
  receiver rcv(s);
  receiver_model m{s};
  std::vector<action> out;
  rcv.start(out);
  m.check(out, -1, 0);
  while (!in.empty()) {
    const std::uint8_t op = in.u8();
    out.clear();
    if (op % 4 == 3) {
      ++m.quiet_timeouts;
      ++m.timeouts;
      rcv.on_timeout(out);
      m.check(out, -1, 0);
      continue;
    }
    if (op == 0x40) {
      // Fast-forward: up to 65,280 full blocks in order, so block numbers wrap past 65535.
      const unsigned burst = in.u8() * 256u;
      for (unsigned i = 0; i < burst; ++i) {
        out.clear();
        const auto next = static_cast<std::uint16_t>((m.delivered + 1) & 0xffff);
        m.quiet_timeouts = 0;
        rcv.on_data(next, s.blksize, out);
        m.check(out, next, s.blksize);
      }
      continue;
    }
    // Mostly plausible numbers (the expected block, its neighbours), sometimes any.
    std::uint16_t w = static_cast<std::uint16_t>((m.delivered + 1) & 0xffff);
    if (op % 4 == 1) w = static_cast<std::uint16_t>(w + static_cast<std::int8_t>(in.u8()));
    if (op % 4 == 2) w = in.u16();
    const std::size_t size = (op & 0x80) ? s.blksize : static_cast<std::size_t>(in.range(0, s.blksize));
    m.quiet_timeouts = 0;
    rcv.on_data(w, size, out);
    m.check(out, w, size);
    FUZZ_CHECK(rcv.finished() == m.done && rcv.bytes() == m.bytes);
  }
}

struct dgram {
  std::uint16_t block;
  std::uint64_t offset;  // DATA: where the sender read it from
  std::size_t size;
};

void both(netlab::fuzz::reader& in) {
  transfer_settings s = settings_from(in, 1024);
  // Giving up is checked by the other modes; here no side may give up, so that the perfect phase
  // can demand the end of the transfer whatever the hostile phase did to the retry counters.
  s.retries = 1'000'000;
  // A few windows: the perfect phase walks every block. Block numbers wrapping past 65535 are the
  // other modes' business (they fast-forward).
  const std::uint64_t size = in.range(0, (4ull * s.windowsize + 4) * s.blksize);
  sender snd(size, s);
  receiver rcv(s);
  sender_model sm{size, s, size / s.blksize + 1};
  receiver_model rm{s};
  // Bounded queues: a datagram older than a few windows never arrives (so a block number that
  // wrapped around cannot meet a stale copy of itself, which TFTP cannot tell apart).
  const std::size_t cap = 2 * s.windowsize + 4;
  std::deque<dgram> to_rcv, to_snd;
  std::vector<action> out;

  const auto from_sender = [&] {
    for (const action& a : out)
      if (a.what == kind::send_data && to_rcv.size() < cap) to_rcv.push_back({a.wire_block, a.offset, a.size});
  };
  const auto from_receiver = [&](const dgram& d) {
    for (const action& a : out) {
      if (a.what == kind::deliver) FUZZ_CHECK(a.offset == d.offset && a.size == d.size);
      if (a.what == kind::send_ack && to_snd.size() < cap) to_snd.push_back({a.wire_block, 0, 0});
    }
  };
  const auto deliver_data = [&] {
    const dgram d = to_rcv.front();
    to_rcv.pop_front();
    out.clear();
    rm.quiet_timeouts = 0;
    rcv.on_data(d.block, d.size, out);
    rm.check(out, d.block, d.size);
    from_receiver(d);
  };
  const auto deliver_ack = [&] {
    const dgram d = to_snd.front();
    to_snd.pop_front();
    out.clear();
    sm.quiet_timeouts = 0;
    sm.max_meant = std::max(sm.max_meant, sm.meant(d.block));
    snd.on_ack(d.block, out);
    sm.check(out, false, d.block);
    from_sender();
  };
  const auto sender_timeout = [&] {
    out.clear();
    ++sm.quiet_timeouts;
    ++sm.timeouts;
    snd.on_timeout(out);
    sm.check(out, true, -1);
    from_sender();
  };
  const auto receiver_timeout = [&] {
    out.clear();
    ++rm.quiet_timeouts;
    ++rm.timeouts;
    rcv.on_timeout(out);
    rm.check(out, -1, 0);
    from_receiver(dgram{});
  };

  out.clear();
  rcv.start(out);
  rm.check(out, -1, 0);
  out.clear();
  snd.start(out);
  sm.check(out, false, -1);
  from_sender();

  // Hostile phase: the input decides every step.
  while (!in.empty()) {
    switch (in.u8() % 9) {
      case 0: case 1: if (!to_rcv.empty()) deliver_data(); break;
      case 2: case 3: if (!to_snd.empty()) deliver_ack(); break;
      case 4: if (!to_rcv.empty()) to_rcv.pop_front(); break;
      case 5: if (!to_snd.empty()) to_snd.pop_front(); break;
      case 6: if (!to_rcv.empty() && to_rcv.size() < cap) to_rcv.push_back(to_rcv.front()); break;
      case 7: if (to_rcv.size() >= 2) std::swap(to_rcv[0], to_rcv[1]); break;
      default: if (in.u8() & 1) sender_timeout(); else receiver_timeout(); break;
    }
  }

  // Perfect phase: everything in flight arrives in order; a side's timer fires only when nothing is
  // in flight. The transfer must end, and soon.
  const std::uint64_t budget = 8 * (sm.blocks + 16) * (s.windowsize + 2);
  unsigned idle_rounds = 0, turn = 0;
  for (std::uint64_t step = 0; !(sm.done && rm.done); ++step) {
    FUZZ_CHECK(step < budget);
    FUZZ_CHECK(!sm.failed && !rm.failed);
    if (!to_rcv.empty()) {
      deliver_data();
      idle_rounds = 0;
    } else if (!to_snd.empty()) {
      deliver_ack();
      idle_rounds = 0;
    } else {
      // Nothing in flight: a timer fires, the two sides' in turn (both run; neither starves the
      // other). Two rounds each at most before something moves again.
      FUZZ_CHECK(++idle_rounds <= 4);
      if ((++turn % 2 == 1 || rm.done) && !sm.done) sender_timeout();
      else receiver_timeout();
    }
  }
  FUZZ_CHECK(rm.bytes == size && rcv.bytes() == size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* p, std::size_t n) {
  netlab::fuzz::reader in(p, n);
  switch (in.u8() % 3) {
    case 0: sender_alone(in); break;
    case 1: receiver_alone(in); break;
    default: both(in); break;
  }
  return 0;
}
