// Fuzz target: the TFTP packet codec (lib/netlab/tftp/packet.hpp).
// Invariants, for any datagram:
//  - parse() never reads outside the input and never throws;
//  - a parsed request, OACK or DATA re-encodes to exactly the input bytes (nothing is lost, added
//    or reordered), an ACK to its first 4 bytes (trailing bytes are tolerated, not kept);
//  - parse(encode(x)) == x for every packet parse() accepted (ERROR: the message as encode()
//    keeps it: cut at a NUL and at 500 bytes);
//  - describe() works on anything parse() returns.
#include <algorithm>
#include <cstring>
#include <string>
#include <variant>
#include <vector>

#include "fuzz.hpp"
#include "netlab/tftp/packet.hpp"

using namespace netlab::tftp;

namespace {

bool same(const std::vector<std::uint8_t>& v, const std::uint8_t* p, std::size_t n) {
  return v.size() == n && (n == 0 || std::memcmp(v.data(), p, n) == 0);
}

bool same_request(const request& a, const request& b) {
  return a.op == b.op && a.filename == b.filename && a.mode == b.mode && a.options == b.options;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* p, std::size_t n) {
  // A copy of exactly n bytes on the heap: ASan then catches a read one past the datagram.
  std::vector<std::uint8_t> buf(p, p + n);
  const packet pk = parse(buf.data(), buf.size());
  (void)describe(pk);
  if (n > max_packet) FUZZ_CHECK(std::holds_alternative<bad_packet>(pk));

  if (const auto* r = std::get_if<request>(&pk)) {
    FUZZ_CHECK(!r->filename.empty());
    FUZZ_CHECK(r->filename.find('\0') == std::string::npos && r->mode.find('\0') == std::string::npos);
    for (const auto& o : r->options) FUZZ_CHECK(!o.name.empty() && o.name.find('\0') == std::string::npos);
    const auto enc = encode(*r);
    FUZZ_CHECK(same(enc, buf.data(), buf.size()));
    const packet again = parse(enc.data(), enc.size());
    const auto* r2 = std::get_if<request>(&again);
    FUZZ_CHECK(r2 && same_request(*r, *r2));
  } else if (const auto* d = std::get_if<data>(&pk)) {
    FUZZ_CHECK(d->size == n - data_header && d->payload == buf.data() + data_header);
    const auto enc = encode(*d);
    FUZZ_CHECK(same(enc, buf.data(), buf.size()));
  } else if (const auto* a = std::get_if<ack>(&pk)) {
    const auto enc = encode(*a);
    FUZZ_CHECK(n >= 4 && same(enc, buf.data(), 4));
  } else if (const auto* e = std::get_if<error>(&pk)) {
    const auto enc = encode(*e);
    FUZZ_CHECK(enc.size() <= max_packet && enc.back() == 0);
    const packet again = parse(enc.data(), enc.size());
    const auto* e2 = std::get_if<error>(&again);
    FUZZ_CHECK(e2 && e2->code == e->code);
    const std::string kept = e->message.substr(0, std::min<std::size_t>(e->message.find('\0'), 500));
    FUZZ_CHECK(e2->message == kept);
  } else if (const auto* o = std::get_if<oack>(&pk)) {
    const auto enc = encode(*o);
    FUZZ_CHECK(same(enc, buf.data(), buf.size()));
    const packet again = parse(enc.data(), enc.size());
    const auto* o2 = std::get_if<oack>(&again);
    FUZZ_CHECK(o2 && o2->options == o->options);
  } else {
    FUZZ_CHECK(!std::get<bad_packet>(pk).reason.empty());
  }
  return 0;
}
