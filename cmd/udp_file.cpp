// `netlab udp-file serve`, `fetch` and `put`: flags, validation, and the call into
// lib/netlab/tftp.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "cli.hpp"
#include "netlab/core/text.hpp"
#include "netlab/tftp/client.hpp"
#include "netlab/tftp/server.hpp"

namespace netlab::cli {
namespace {

// Flags shared by serve and fetch: the teaching aids and the protocol choice.
struct common_args {
  double loss = 0, dup = 0, reorder = 0;
  std::uint64_t seed = 1;
  std::string protocol = "tftp";
};

const CLI::Validator probability(
    [](std::string& s) -> std::string {
      char* end = nullptr;
      const double v = std::strtod(s.c_str(), &end);
      if (s.empty() || *end != '\0') return "'" + s + "' is not a number (give a probability such as 0.05)";
      if (!(v >= 0.0 && v <= 1.0)) return "'" + s + "' is not between 0 and 1 (0.05 = 5%)";
      return {};
    },
    "P 0-1", "probability");

// `with_protocol`: put speaks TFTP only (raw mode has no uploads).
void add_common(CLI::App* c, common_args& a, bool with_protocol = true) {
  c->add_option("--simulate-loss", a.loss, "drop this fraction of outgoing packets (teaching aid), e.g. 0.05")
      ->check(probability)->capture_default_str();
  c->add_option("--simulate-dup", a.dup, "send this fraction of outgoing packets twice")->check(probability)->capture_default_str();
  c->add_option("--simulate-reorder", a.reorder, "delay this fraction of outgoing packets behind the next one")
      ->check(probability)->capture_default_str();
  c->add_option("--seed", a.seed, "seed of the simulated faults (same seed, same faults)")
      ->check(whole(0, UINT64_MAX, "N"))->capture_default_str();
  if (!with_protocol) return;
  c->add_option("--protocol", a.protocol,
                "tftp (reliable, standard) or raw (the lesson's unacknowledged 512-byte stream, to compare; "
                "serve binds 127.0.0.1 in raw mode unless --listen is given)")
      ->check(CLI::IsMember({"tftp", "raw"}))->capture_default_str();
}

tftp::fault_options faults_of(const common_args& a) {
  if (a.loss + a.dup + a.reorder > 1.0) usage_error("--simulate-loss + --simulate-dup + --simulate-reorder must not exceed 1");
  tftp::fault_options f;
  f.loss = a.loss;
  f.dup = a.dup;
  f.reorder = a.reorder;
  f.seed = a.seed;
  return f;
}

tftp::protocol protocol_of(const common_args& a) { return a.protocol == "raw" ? tftp::protocol::raw : tftp::protocol::tftp; }

// --rate SIZE or SIZE/s (bytes per second), within [lo, hi].
std::uint64_t parse_rate(const std::string& flag, std::string v, std::uint64_t lo, std::uint64_t hi) {
  if (v.size() > 2 && v.compare(v.size() - 2, 2, "/s") == 0) v.resize(v.size() - 2);
  auto p = core::parse_size(v);
  if (!p) usage_error(flag + ": " + p.error + " per second, e.g. 10MiB");
  if (*p.value < lo || *p.value > hi)
    usage_error(flag + " " + v + " is out of range (" + std::to_string(lo) + " B/s to " + std::to_string(hi) + " B/s, e.g. 10MiB)");
  return *p.value;
}

struct serve_args {
  tftp::serve_options opt;
  std::string rate = "10MiB";
  common_args common;
  std::uint64_t max_blksize = tftp::max_blksize;
  std::uint64_t max_windowsize = 64;
  std::uint64_t retries = 5;
};

void register_serve(CLI::App* g, action& chosen) {
  auto a = std::make_shared<serve_args>();
  auto* s = g->add_subcommand("serve", "serve files over TFTP (RFC 1350 + options), one port per transfer");
  s->footer(
      "Serves regular files under --root; '..', paths outside the root, absolute symlinks and symlinks leading\n"
      "out get ERROR 2, missing files ERROR 1, FIFOs and devices ERROR 2. Read-only unless --allow-upload (new\n"
      "files only; written to a temporary name and renamed when complete). Options understood: blksize,\n"
      "tsize (octet mode), timeout, utimeout, windowsize. Only RRQ/WRQ are answered on the listening port;\n"
      "ERROR replies there are rate-limited (20/s, bursts of 40).\n"
      "Prints 'listening tftp ADDRESS:PORT' once bound; SIGINT/SIGTERM let running transfers finish for a few\n"
      "seconds, then abort them with an ERROR (exit 0).\n"
      "Examples:\n"
      "  netlab udp-file serve --root /srv/files\n"
      "  tftp -m binary 127.0.0.1 6969 -c get photo.jpg        (tftp-hpa)\n"
      "  curl -o photo.jpg tftp://127.0.0.1:6969/photo.jpg");
  add_endpoint(s, "-l,--listen", a->opt.listen,
               "address to listen on: HOST:PORT, :PORT (all interfaces), [::1]:PORT; port 0 = any free port (69 needs root)",
               6969);
  s->add_option("-r,--root", a->opt.root, "directory to serve")->capture_default_str();
  s->add_flag("--allow-upload", a->opt.allow_upload, "accept uploads (WRQ) of new files");
  s->add_flag("--allow-overwrite", a->opt.allow_overwrite, "uploads may replace existing files (needs --allow-upload)");
  s->add_option("--max-transfers", a->opt.max_transfers, "concurrent transfers; more get ERROR 0 'busy'")
      ->check(whole(1, 100000, "N 1-100000"))->capture_default_str();
  s->add_option("--max-per-client", a->opt.max_per_client,
                "concurrent transfers from one client address (any port); more get ERROR 0")
      ->check(whole(1, 100000, "N 1-100000"))->capture_default_str();
  add_duration(s, "--max-silence", a->opt.max_silence,
               "drop a transfer whose peer stays silent this long in all, whatever --timeout/--retries and the "
               "client's timeout option (frees its slot)");
  s->add_option("--max-blksize", a->max_blksize, "largest blksize granted (8-65464)")
      ->check(whole(8, tftp::max_blksize, "N 8-65464"))->capture_default_str();
  s->add_option("--max-windowsize", a->max_windowsize, "largest windowsize granted (1-65535)")
      ->check(whole(1, tftp::max_windowsize, "N 1-65535"))->capture_default_str();
  add_duration(s, "--timeout", a->opt.limits.default_timeout,
               "retransmission timeout when the client does not negotiate one");
  s->add_option("--retries", a->retries, "timeouts in a row before a transfer is abandoned (0-100)")
      ->check(whole(0, 100, "N 0-100"))->capture_default_str();
  s->add_option("--rate", a->rate,
                "raw protocol: bytes per second sent, all streams together (SIZE or SIZE/s, 1KiB-1GiB)")
      ->type_name("SIZE")->capture_default_str();
  add_common(s, a->common);
  add_threads(s, a->opt.threads);
  s->callback([a, s, &chosen] {
    auto o = a->opt;
    if (o.allow_overwrite && !o.allow_upload) usage_error("--allow-overwrite needs --allow-upload");
    std::error_code ec;
    if (!std::filesystem::is_directory(o.root, ec))
      usage_error("--root " + o.root + " is not a directory (give the directory to serve, e.g. --root .)");
    if (o.limits.default_timeout.count() < 10) usage_error("--timeout must be at least 10ms");
    if (o.max_silence.count() < 10) usage_error("--max-silence must be at least 10ms");
    o.limits.max_blksize = static_cast<std::size_t>(a->max_blksize);
    o.limits.max_windowsize = static_cast<unsigned>(a->max_windowsize);
    o.limits.retries = static_cast<unsigned>(a->retries);
    o.faults = faults_of(a->common);
    o.proto = protocol_of(a->common);
    if (s->count("--rate") && o.proto != tftp::protocol::raw) usage_error("--rate paces --protocol raw only (TFTP is paced by its ACKs)");
    o.raw_rate = parse_rate("--rate", a->rate, 1024, 1ull << 30);
    // Raw mode answers a verified client with a whole file: this machine only, unless --listen says otherwise.
    if (o.proto == tftp::protocol::raw && s->count("--listen") == 0) o.listen.host = "127.0.0.1";
    chosen.command = "udp-file serve";
    chosen.threads = o.threads;
    chosen.options = o;
    chosen.run = [o](context& c) { return tftp::serve(o, c.rt, c.out); };
  });
}

// The transfer flags fetch and put share (negotiated options, retries, mode, progress bar).
struct transfer_args {
  std::string blksize = "auto";
  std::string windowsize = "auto";
  std::string mode = "octet";
  std::uint64_t retries = 5;
  bool progress = false;
  bool no_progress = false;
};

struct fetch_args {
  tftp::fetch_options opt;
  common_args common;
  std::string target;
  transfer_args xfer;
  std::uint64_t max_size = 0;
};

// "auto" or a whole number in [lo, hi] (0 = auto in the options).
std::size_t auto_or_number(const std::string& flag, const std::string& v, std::uint64_t lo, std::uint64_t hi) {
  if (v == "auto") return 0;
  char* end = nullptr;
  const auto n = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || v[0] == '-' || n < lo || n > hi)
    usage_error(flag + " '" + v + "' must be 'auto' or a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
  return static_cast<std::size_t>(n);
}

// Sets the shared transfer defaults and adds their flags; `wish` receives --timeout and --no-options
// directly.
void add_transfer_flags(CLI::App* c, transfer_args& x, tftp::client_wish& wish) {
  wish.blksize = 0;     // auto: from the path MTU
  wish.windowsize = 0;  // auto: from the socket buffer
  wish.timeout = std::chrono::milliseconds(20);
  c->add_option("--blksize", x.blksize, "block size to ask for: auto or 8-65464")->capture_default_str();
  c->add_option("--windowsize", x.windowsize, "blocks per acknowledgement (RFC 7440): auto or 1-65535")->capture_default_str();
  add_duration(c, "--timeout", wish.timeout, "retransmission timeout (doubles on each retry in a row)");
  c->add_option("--retries", x.retries, "timeouts in a row before giving up (0-100)")
      ->check(whole(0, 100, "N 0-100"))->capture_default_str();
  c->add_flag("--no-options", [&wish](std::int64_t) { wish.options = false; }, "send no TFTP options at all (pure RFC 1350)");
  c->add_option("--mode", x.mode, "transfer mode: octet (bytes as they are) or netascii (text, CR LF on the wire)")
      ->check(CLI::IsMember({"octet", "netascii"}))->capture_default_str();
  c->add_flag("--progress", x.progress, "draw the progress bar even when stderr is not a terminal");
  c->add_flag("--no-progress", x.no_progress, "never draw the progress bar");
}

// Checks the shared transfer flags and puts them into `wish`; returns whether the mode is netascii.
bool apply_transfer_flags(const transfer_args& x, tftp::client_wish& wish) {
  wish.blksize = auto_or_number("--blksize", x.blksize, 8, tftp::max_blksize);
  wish.windowsize = static_cast<unsigned>(auto_or_number("--windowsize", x.windowsize, 1, tftp::max_windowsize));
  if (!wish.options) {
    if (wish.blksize == 0) wish.blksize = 512;
    if (wish.windowsize == 0) wish.windowsize = 1;
    if (wish.blksize != 512 || wish.windowsize != 1) usage_error("--no-options cannot be combined with --blksize/--windowsize");
    wish.tsize = false;
  }
  if (wish.timeout.count() < 10) usage_error("--timeout must be at least 10ms");
  if (x.progress && x.no_progress) usage_error("--progress and --no-progress contradict each other");
  wish.retries = static_cast<unsigned>(x.retries);
  return x.mode == "netascii";
}

void register_fetch(CLI::App* g, action& chosen) {
  auto a = std::make_shared<fetch_args>();
  auto* f = g->add_subcommand("fetch", "download a file from a TFTP server (options, windows, fallback to RFC 1350)");
  f->footer(
      "Writes to OUT.part and renames it to OUT when complete; on any failure the partial file is removed\n"
      "(--keep-partial keeps OUT.part) and the exit code says why: 4 timeout, 5 server ERROR, 6 local file.\n"
      "-o - (stdout), a character device (/dev/null) or a FIFO is written into as it is (no .part, no --force);\n"
      "-o DIR saves DIR/NAME.\n"
      "Defaults are for speed on a LAN: --blksize auto = the path MTU less the headers (1468 on Ethernet,\n"
      "65464 on loopback), --windowsize auto = up to 64 blocks that fit the socket's receive buffer,\n"
      "tsize for the progress bar, and a 20ms retransmission timeout (sent as 'utimeout'; raise it on slow links).\n"
      "--blksize 512 --windowsize 1 gives plain RFC 1350 behaviour; a server that ignores options gets it too.\n"
      "A server that sends more than the size it announced (tsize), or than --max-size (default 4GiB when it\n"
      "announces none), is stopped there: exit 5, nothing kept.\n"
      "Examples:\n"
      "  netlab udp-file fetch 127.0.0.1:6969 photo.jpg --sha256\n"
      "  netlab udp-file fetch 127.0.0.1:6969 big.iso -o - | sha256sum\n"
      "  netlab udp-file fetch 127.0.0.1:6969 photo.jpg --simulate-loss 0.2 --seed 7 -v");
  f->add_option("server", a->target, "HOST:PORT of the TFTP server ([::1]:PORT for IPv6)")->required()->check(host_port);
  f->add_option("remote", a->opt.remote, "file name on the server (relative to its root)")->required();
  f->add_option("-o,--output", a->opt.output,
                "where to write: a file name; a directory (saves DIR/NAME); - for stdout; a device or FIFO is written "
                "into (e.g. /dev/null) (default: REMOTE's base name)");
  f->add_flag("-f,--force", a->opt.force, "replace OUT (and a leftover OUT.part) if it exists");
  f->add_flag("--keep-partial", a->opt.keep_partial, "keep OUT.part when the transfer fails");
  f->add_flag("--sha256", a->opt.sha256, "print the SHA-256 of what was received");
  add_transfer_flags(f, a->xfer, a->opt.wish);
  add_duration(f, "--idle", a->opt.raw_idle, "raw protocol: the stream is over after this much silence");
  add_size(f, "--max-size", a->max_size,
           "most bytes accepted (default: the size the server announces, else 4GiB); more ends the fetch (exit 5)")
      ->default_str("tsize, else 4GiB");
  add_common(f, a->common);
  f->callback([a, f, &chosen] {
    auto o = a->opt;
    o.server = *core::parse_endpoint(a->target).value;
    if (o.server.host.empty()) usage_error("server '" + a->target + "' has no host (e.g. 127.0.0.1" + a->target + ")");
    if (o.remote.empty()) usage_error("REMOTE is empty: give the file name on the server");
    if (o.output.empty()) {
      const auto base = std::filesystem::path(o.remote).filename().string();
      if (base.empty() || base == "." || base == "..")
        usage_error("cannot name the output after '" + o.remote + "': give -o FILE");
      o.output = base;
    }
    o.netascii = apply_transfer_flags(a->xfer, o.wish);
    if (f->count("--max-size")) {
      if (a->max_size == 0) usage_error("--max-size must be at least 1 byte (e.g. 100MiB)");
      o.max_size = a->max_size;
    }
    o.faults = faults_of(a->common);
    o.proto = protocol_of(a->common);
    const bool force_progress = a->xfer.progress, no_progress = a->xfer.no_progress;
    chosen.command = "udp-file fetch";
    chosen.threads = 1;
    chosen.options = o;
    chosen.run = [o, force_progress, no_progress](context& c) mutable {
      o.progress = force_progress || (!no_progress && !c.g.quiet && ::isatty(2) == 1);
      return tftp::fetch(o, c.rt, c.out);
    };
  });
}

struct put_args {
  tftp::put_options opt;
  common_args common;
  std::string target;
  transfer_args xfer;
};

void register_put(CLI::App* g, action& chosen) {
  auto a = std::make_shared<put_args>();
  auto* p = g->add_subcommand("put", "upload a file to a TFTP server (WRQ; same options as fetch)");
  p->footer(
      "Sends LOCAL (a regular file) as REMOTE (default: LOCAL's base name). The server must accept uploads:\n"
      "netlab udp-file serve --allow-upload, or tftpd-hpa -c to create new files. Exit codes: 4 timeout,\n"
      "5 the server's ERROR (its text is shown, e.g. 'uploads are disabled on this server'), 6 LOCAL missing,\n"
      "a directory or unreadable. tsize announces the size (octet mode), for the server's checks.\n"
      "Examples:\n"
      "  netlab udp-file put 127.0.0.1:6969 photo.jpg\n"
      "  netlab udp-file put 127.0.0.1:6969 notes.txt incoming/notes.txt --mode netascii");
  p->add_option("server", a->target, "HOST:PORT of the TFTP server ([::1]:PORT for IPv6)")->required()->check(host_port);
  p->add_option("local", a->opt.local, "the file to send")->required();
  p->add_option("remote", a->opt.remote, "name on the server (default: LOCAL's base name)");
  add_transfer_flags(p, a->xfer, a->opt.wish);
  add_common(p, a->common, false);
  p->callback([a, &chosen] {
    auto o = a->opt;
    o.server = *core::parse_endpoint(a->target).value;
    if (o.server.host.empty()) usage_error("server '" + a->target + "' has no host (e.g. 127.0.0.1" + a->target + ")");
    if (o.local.empty()) usage_error("LOCAL is empty: give the file to send");
    if (o.remote.empty()) {
      const auto base = std::filesystem::path(o.local).filename().string();
      if (base.empty() || base == "." || base == "..") usage_error("cannot name the upload after '" + o.local + "': give REMOTE");
      o.remote = base;
    }
    o.netascii = apply_transfer_flags(a->xfer, o.wish);
    o.faults = faults_of(a->common);
    const bool force_progress = a->xfer.progress, no_progress = a->xfer.no_progress;
    chosen.command = "udp-file put";
    chosen.threads = 1;
    chosen.options = o;
    chosen.run = [o, force_progress, no_progress](context& c) mutable {
      o.progress = force_progress || (!no_progress && !c.g.quiet && ::isatty(2) == 1);
      return tftp::put(o, c.rt, c.out);
    };
  });
}

}  // namespace

void register_udp_file(CLI::App& app, action& chosen) {
  auto* g = app.add_subcommand("udp-file", "reliable file transfer over UDP: a TFTP server and client")->require_subcommand(1);
  register_serve(g, chosen);
  register_fetch(g, chosen);
  register_put(g, chosen);
}

}  // namespace netlab::cli
