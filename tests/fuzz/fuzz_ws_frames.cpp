// Fuzz target: the ws frame path of `ws-echo serve` - websocketpp 0.8.2's hybi13 processor with
// netlab's server configs and payload hook (NETLAB_WSPP_FAST_PAYLOAD: 8-byte unmasking, ASCII
// fast path before the UTF-8 validator; lib/netlab/ws/detail/wspp.hpp, echo_engine.hpp), fed the
// input as the bytes a client sent, split into reads at points the input also picks; and (flag 8)
// `ws-echo dial`'s client configs reading what a server sent.
// A reference processor (websocketpp's own payload step, same limits) reads the same bytes.
// Invariants:
//  - netlab's processor never stalls (consumes every byte given or reports an error) and never reads
//    outside its buffer;
//  - it yields the same messages (opcode, payload) and the same protocol errors as websocketpp's
//    own code, except where netlab is stricter on purpose: it may stop with an error where the
//    reference yields a text message that is not valid UTF-8 (a fragmented message ending mid code
//    point, RFC 6455 8.1), a close reason that is not UTF-8 (7.4.1) or a message larger than the
//    limit (a permessage-deflate bomb);
//  - every data message it yields fits the message size limit, every text message and close reason
//    is valid UTF-8;
//  - the echo of a data message (prepare_unmasked_frame, the zero-copy reply) is a valid unmasked
//    frame that a client reads back as the same message.
#include <memory>
#include <string>
#include <vector>

#include "fuzz.hpp"
#include "netlab/ws/detail/echo_engine.hpp"

namespace wsd = netlab::ws::detail;
namespace frame = websocketpp::frame;

// websocketpp's payload step, untouched: the same configs without netlab's hooks.
struct ref_config : wsd::plain_config {};
using ref_deflate_config = wsd::deflate_config<ref_config>;
struct ref_client_config : wsd::plain_client_config {};
using ref_deflate_client_config = wsd::deflate_config<ref_client_config>;

namespace {

struct event {
  bool error = false;
  std::error_code ec;
  frame::opcode::value op = frame::opcode::text;
  std::string payload;
};

template <typename Config>
struct reader {
  using proc_t = websocketpp::processor::hybi13<Config>;
  typename Config::rng_type rng;
  proc_t proc;
  std::vector<event> events;
  bool stopped = false;

  explicit reader(bool server)
      : proc(false, server, std::make_shared<typename Config::con_msg_manager_type>(), rng) {}

  bool enable_deflate(const std::string& offer) {
    websocketpp::http::parser::request req;
    req.replace_header("Sec-WebSocket-Extensions", offer);
    const auto r = proc.negotiate_extensions(req);
    return !r.first && !r.second.empty();
  }

  /// One read of `len` bytes, as websocketpp's connection::handle_read_frame loops over it.
  void read(std::uint8_t* buf, std::size_t len) {
    std::size_t p = 0;
    while (!stopped && p < len) {
      std::error_code ec;
      const std::size_t used = proc.consume(buf + p, len - p, ec);
      FUZZ_CHECK(used <= len - p);
      p += used;
      if (ec) {
        events.push_back(event{true, ec, frame::opcode::text, {}});
        stopped = true;
        return;
      }
      if (proc.ready()) {
        auto msg = proc.get_message();
        FUZZ_CHECK(msg != nullptr);
        events.push_back(event{false, {}, msg->get_opcode(), msg->get_payload()});
        last = msg;
      } else {
        FUZZ_CHECK(p == len);  // no message, no error: every byte was taken
      }
    }
  }
  typename Config::message_type::ptr last;
};

// Where netlab may stop with an error and websocketpp yields a message: over the limit (inflated),
// text that is not UTF-8, a close reason that is not UTF-8 (RFC 6455 7.4.1: 1007).
bool stricter_on_purpose(const event& e, std::size_t limit) {
  if (e.error) return false;
  if (e.payload.size() > limit && !frame::opcode::is_control(e.op)) return true;
  if (e.op == frame::opcode::text) return !websocketpp::utf8_validator::validate(e.payload);
  if (e.op == frame::opcode::close && e.payload.size() > 2)
    return !websocketpp::utf8_validator::validate(e.payload.substr(2));
  return false;
}

template <typename NetlabConfig, typename RefConfig>
void run(const std::uint8_t* data, std::size_t n, std::size_t limit, unsigned split_seed, const std::string* offer,
         bool server = true) {
  reader<NetlabConfig> ours(server);
  reader<RefConfig> ref(server);
  ours.proc.set_max_message_size(limit);
  ref.proc.set_max_message_size(limit);
  if (offer) {
    const bool a = ours.enable_deflate(*offer);
    const bool b = ref.enable_deflate(*offer);
    FUZZ_CHECK(a == b);
  }
  // Each processor unmasks in place: each gets its own copy.
  std::vector<std::uint8_t> mine(data, data + n), theirs(data, data + n);
  std::uint32_t x = split_seed * 2654435761u + 1;
  for (std::size_t at = 0; at < n && !(ours.stopped && ref.stopped);) {
    x = x * 1103515245u + 12345u;
    std::size_t len = (x >> 16) % 4 == 0 ? n - at : 1 + (x >> 8) % 64;
    if (len > n - at) len = n - at;
    // Exactly len bytes on the heap each time: ASan sees a read past the end of this read.
    std::vector<std::uint8_t> a(mine.begin() + static_cast<std::ptrdiff_t>(at), mine.begin() + static_cast<std::ptrdiff_t>(at + len));
    std::vector<std::uint8_t> b(theirs.begin() + static_cast<std::ptrdiff_t>(at), theirs.begin() + static_cast<std::ptrdiff_t>(at + len));
    ours.read(a.data(), a.size());
    ref.read(b.data(), b.size());
    at += len;
  }

  for (const auto& e : ours.events) {
    if (e.error) continue;
    FUZZ_CHECK(e.payload.size() <= limit || frame::opcode::is_control(e.op));
    if (e.op == frame::opcode::text) FUZZ_CHECK(websocketpp::utf8_validator::validate(e.payload));
    if (e.op == frame::opcode::close && e.payload.size() > 2)
      FUZZ_CHECK(websocketpp::utf8_validator::validate(e.payload.substr(2)));
  }
  // Same story as the reference, up to where netlab is stricter on purpose.
  const std::size_t common = std::min(ours.events.size(), ref.events.size());
  for (std::size_t i = 0; i < common; ++i) {
    const event& o = ours.events[i];
    const event& r = ref.events[i];
    if (o.error && !r.error) {
      FUZZ_CHECK(stricter_on_purpose(r, limit));
      return;
    }
    if (r.error && !o.error) {
      // websocketpp checks the UTF-8 of text before inflating the deflate trailer and never after,
      // so it refuses a message whose last character the trailer completes; netlab checks both.
      FUZZ_CHECK(offer && r.ec == websocketpp::processor::error::invalid_utf8 && o.op == frame::opcode::text);
      return;
    }
    if (o.error) {
      // Inflating in slices (bounded), netlab may see a frame go over the limit or turn into bad
      // UTF-8 before the point where zlib finds the same frame corrupt.
      const bool earlier = offer && (o.ec == websocketpp::processor::error::message_too_big ||
                                     (o.ec == websocketpp::processor::error::invalid_utf8 &&
                                      r.ec.category() != o.ec.category()));
      FUZZ_CHECK(o.ec == r.ec || earlier);
      return;
    }
    FUZZ_CHECK(o.op == r.op && o.payload == r.payload);
  }
  // The reference finished a message netlab is still reading: netlab lost bytes or stalled.
  FUZZ_CHECK(ref.events.size() == common);
  if (ours.events.size() > common) {
    // The reference is still inside a message where netlab ended: only the inflation bound may do
    // that (the reference inflates on, without limit, and waits for the rest of the frame).
    const event& o = ours.events[common];
    FUZZ_CHECK(ours.events.size() == common + 1 && o.error && offer &&
               o.ec == websocketpp::processor::error::message_too_big);
  }

  // The zero-copy echo of the last data message, read back by a client.
  if (!server || offer || !ours.last || frame::opcode::is_control(ours.last->get_opcode())) return;
  wsd::prepare_unmasked_frame(ours.last);
  std::string wire = ours.last->get_header() + ours.last->get_payload();
  reader<wsd::plain_client_config> client(false);
  client.proc.set_max_message_size(limit);
  client.read(reinterpret_cast<std::uint8_t*>(wire.data()), wire.size());
  FUZZ_CHECK(client.events.size() == 1 && !client.events[0].error);
  FUZZ_CHECK(client.events[0].op == ours.last->get_opcode() && client.events[0].payload == ours.last->get_payload());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* p, std::size_t n) {
  netlab::fuzz::reader in(p, n);
  const std::uint8_t flags = in.u8();
  // Small limits, so the fuzzer reaches them (the server's default is 16 MiB, --max-message).
  const std::size_t limit = static_cast<std::size_t>(in.range(1, 65536));
  const unsigned split = in.u8();
  const std::string_view wire = in.rest();
  const auto* data = reinterpret_cast<const std::uint8_t*>(wire.data());
  static const std::string offers[] = {
      "permessage-deflate",
      "permessage-deflate; client_no_context_takeover",
      "permessage-deflate; client_max_window_bits=8; server_no_context_takeover",
  };
  const std::string* offer = (flags & 1) ? &offers[(flags >> 1) % 3] : nullptr;
  if (flags & 8) {
    // `ws-echo dial` reading a (hostile) server's unmasked frames: same invariants.
    if (offer)
      run<wsd::plain_deflate_client_config, ref_deflate_client_config>(data, wire.size(), limit, split, offer, false);
    else
      run<wsd::plain_client_config, ref_client_config>(data, wire.size(), limit, split, nullptr, false);
  } else if (offer) {
    run<wsd::plain_deflate_state_config, ref_deflate_config>(data, wire.size(), limit, split, offer);
  } else {
    run<wsd::plain_state_config, ref_config>(data, wire.size(), limit, split, nullptr);
  }
  return 0;
}
