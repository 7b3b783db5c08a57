// Fuzz target: TFTP option negotiation (lib/netlab/tftp/negotiate.hpp), both sides.
// The input picks server limits and a client wish (in the ranges the CLI allows), then a datagram.
// Invariants:
//  - server, for any request: blksize in [8, --max-blksize] when negotiated (512 when not),
//    windowsize in [1, --max-windowsize], a timeout in [10ms, 255s]; the OACK names each option at
//    most once, only options the request carried, with the value the transfer really uses;
//  - client, for any OACK: an accepted OACK never raises blksize or windowsize above the wish and
//    carries only options that were asked for;
//  - both: a netlab server's answer to a netlab client's request is always accepted by that
//    client, and both sides then agree on blksize, windowsize, tsize and a negotiated timeout.
#include <chrono>
#include <string>
#include <variant>
#include <vector>

#include "fuzz.hpp"
#include "netlab/tftp/negotiate.hpp"

using namespace netlab::tftp;
using std::chrono::milliseconds;

namespace {

void check_server(const request& req, const server_limits& lim, std::uint64_t file_size) {
  const server_answer a = negotiate(req, lim, file_size);
  const auto& s = a.settings;
  FUZZ_CHECK(s.windowsize >= 1 && s.windowsize <= lim.max_windowsize);
  FUZZ_CHECK(s.timeout >= milliseconds(10) && s.timeout <= milliseconds(255'000));
  FUZZ_CHECK(s.retries == lim.retries);
  if (find_option(a.accepted, "blksize")) FUZZ_CHECK(s.blksize >= 8 && s.blksize <= lim.max_blksize);
  else FUZZ_CHECK(s.blksize == 512);
  for (std::size_t i = 0; i < a.accepted.size(); ++i) {
    const auto& o = a.accepted[i];
    FUZZ_CHECK(find_option(req.options, o.name) != nullptr);
    for (std::size_t j = 0; j < i; ++j) FUZZ_CHECK(!iequals(a.accepted[j].name, o.name));
    std::uint64_t v = 0;
    FUZZ_CHECK(parse_option_value(o.value, 0, UINT64_MAX, v));
    if (iequals(o.name, "blksize")) FUZZ_CHECK(v == s.blksize);
    else if (iequals(o.name, "windowsize")) FUZZ_CHECK(v == s.windowsize);
    else if (iequals(o.name, "timeout")) FUZZ_CHECK(milliseconds(v * 1000) == s.timeout);
    else if (iequals(o.name, "utimeout")) FUZZ_CHECK(milliseconds(v / 1000) == s.timeout);
    else if (iequals(o.name, "tsize")) FUZZ_CHECK(v == (req.op == opcode::rrq ? file_size : *a.client_tsize));
    else FUZZ_CHECK(!"an option netlab does not know was accepted");
  }
}

void check_client(const oack& o, const client_wish& w) {
  const client_answer a = accept_oack(o, w);
  if (!a.error.empty()) return;
  const auto asked = request_options(w);
  for (const auto& x : o.options) FUZZ_CHECK(find_option(asked, x.name) != nullptr);
  FUZZ_CHECK(a.settings.blksize >= 8);
  FUZZ_CHECK(a.settings.blksize <= std::max<std::size_t>(512, w.blksize));
  FUZZ_CHECK(a.settings.windowsize >= 1 && a.settings.windowsize <= std::max(1u, w.windowsize));
  FUZZ_CHECK(a.settings.timeout > milliseconds(0));
}

void check_both(const client_wish& w, bool write, std::uint64_t size, const server_limits& lim) {
  request req;
  req.op = write ? opcode::wrq : opcode::rrq;
  req.filename = "f";
  req.options = request_options(w, write, size);
  // The request as it travels: encoded, then parsed by the server.
  const auto wire = encode(req);
  const packet pk = parse(wire.data(), wire.size());
  const auto* got = std::get_if<request>(&pk);
  FUZZ_CHECK(got != nullptr);
  const server_answer srv = negotiate(*got, lim, size);
  if (srv.accepted.empty()) return;  // plain RFC 1350: no OACK
  const auto oack_wire = encode(oack{srv.accepted});
  const packet opk = parse(oack_wire.data(), oack_wire.size());
  const auto* o = std::get_if<oack>(&opk);
  FUZZ_CHECK(o != nullptr);
  const client_answer cli = accept_oack(*o, w);
  FUZZ_CHECK(cli.error.empty());
  FUZZ_CHECK(cli.settings.blksize == srv.settings.blksize);
  FUZZ_CHECK(cli.settings.windowsize == srv.settings.windowsize);
  if (find_option(srv.accepted, "timeout") || find_option(srv.accepted, "utimeout"))
    FUZZ_CHECK(cli.settings.timeout == srv.settings.timeout);
  if (w.tsize) FUZZ_CHECK(cli.tsize && *cli.tsize == size);
  if (write && w.tsize) FUZZ_CHECK(srv.client_tsize && *srv.client_tsize == size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* p, std::size_t n) {
  netlab::fuzz::reader in(p, n);
  server_limits lim;
  lim.max_blksize = static_cast<std::size_t>(in.range(8, max_blksize));
  lim.max_windowsize = static_cast<unsigned>(in.range(1, max_windowsize));
  lim.default_timeout = milliseconds(in.range(10, 60'000));
  lim.retries = static_cast<unsigned>(in.range(0, 100));
  client_wish w;
  w.blksize = static_cast<std::size_t>(in.range(8, max_blksize));
  w.windowsize = static_cast<unsigned>(in.range(1, max_windowsize));
  w.timeout = milliseconds(in.range(10, 300'000));
  w.retries = static_cast<unsigned>(in.range(0, 100));
  const std::uint8_t flags = in.u8();
  w.tsize = flags & 1;
  w.options = flags & 2;
  const std::uint64_t size = in.u64();

  check_both(w, flags & 4, size, lim);

  const std::string_view rest = in.rest();
  const std::vector<std::uint8_t> dgram(rest.begin(), rest.end());
  const packet pk = parse(dgram.data(), dgram.size());
  if (const auto* r = std::get_if<request>(&pk)) check_server(*r, lim, size);
  if (const auto* o = std::get_if<oack>(&pk)) check_client(*o, w);
  return 0;
}
