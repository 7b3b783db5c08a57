#pragma once
/// ws-echo serve's policy, written once for the four websocketpp variants (plain/TLS × deflate):
/// limits, handshake places, origin and path checks, the HTTP answers (page, favicon, 404), the
/// broadcast member list, the send-queue budget and every log line and NDJSON event. No websocketpp
/// here: detail/echo_engine.hpp (the template) only moves bytes and calls into this (issue 14).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "netlab/core/lifecycle.hpp"
#include "netlab/core/report.hpp"
#include "netlab/core/runtime.hpp"
#include "netlab/ws/echo_server.hpp"

namespace netlab::ws::detail {

/// A connection handle as websocketpp hands it out (websocketpp::connection_hdl is this type).
using weak_hdl = std::weak_ptr<void>;

/// A peer-supplied string for a log line: at most 200 bytes, control bytes (and '\\') as \xNN, so a
/// hostile peer cannot forge log lines or terminal escapes, or flood the log. UTF-8 stays readable.
std::string loggable(const std::string& s);

/// One of --max-handshakes' places, held by a connection until it is open, refused or failed, or
/// freed (whichever comes first: a plain HTTP request ends with no handler at all).
class handshake_slot {
 public:
  handshake_slot() = default;
  explicit handshake_slot(std::shared_ptr<std::atomic<std::size_t>> n) : n_(std::move(n)) {}
  handshake_slot(const handshake_slot&) = delete;
  handshake_slot& operator=(const handshake_slot&) = delete;
  handshake_slot& operator=(handshake_slot&& o) noexcept {
    release();
    n_ = std::move(o.n_);
    return *this;
  }
  ~handshake_slot() { release(); }
  /// Gives the place back (once).
  void release() {
    if (n_) n_->fetch_sub(1, std::memory_order_relaxed);
    n_.reset();
  }

 private:
  std::shared_ptr<std::atomic<std::size_t>> n_;  ///< outlives the engine if a connection does
};

/// A connection's entry in the server's core::lifecycle registry: removed exactly once, when the
/// connection object is destroyed (whatever path ended it: refused, failed, closed, force-closed).
struct lifecycle_entry {
  std::shared_ptr<core::lifecycle> lc;
  core::lifecycle::session_id id = 0;
  lifecycle_entry() = default;
  lifecycle_entry(const lifecycle_entry&) = delete;
  lifecycle_entry& operator=(const lifecycle_entry&) = delete;
  ~lifecycle_entry() {
    if (lc) lc->remove(id);
  }
};

/// What the server answers a plain HTTP request (no upgrade) with.
struct http_answer {
  int status = 404;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

/// Why an upgrade was refused by netlab's policy (or not).
enum class upgrade_verdict { accept, stopping, not_found, forbidden, full };

/// What on_close knows about a finished connection, for its log line and its `closed` event.
struct close_info {
  std::string peer;
  std::string origin;
  std::uint64_t id = 0;
  int local_code = 0;          ///< the close code sent (websocketpp's record; 1006 = none sent)
  std::string local_reason;
  int remote_code = 0;         ///< the close code received (1006 = none: the connection was lost)
  std::string remote_reason;
  int sent_code = 0;           ///< the code netlab sent first, if it did (terminate() overwrites websocketpp's)
  std::string sent_reason;
  std::string note;            ///< why the server ended it
  std::uint64_t msgs_in = 0, bytes_in = 0, msgs_out = 0, bytes_out = 0;
  std::chrono::milliseconds duration{0};
  bool closed_by_server = false;  ///< netlab sent the first close frame (or dropped the connection)
};

/// Everything the four engine variants share that needs no websocketpp type.
class server_core {
 public:
  server_core(const serve_options& opt, core::runtime& rt, core::reporter& out);

  const serve_options& opt() const { return opt_; }
  core::runtime& rt() { return rt_; }
  core::reporter& out() { return out_; }

  /// The readiness line (stdout) and the startup log line.
  void listening(bool tls, const asio::ip::tcp::endpoint& local);

  /// True once the server is stopping (any thread).
  bool stopping() const { return stopping_.load(); }
  /// Marks the server as stopping: no new upgrades.
  void set_stopping() { stopping_ = true; }

  /// Takes a --max-handshakes place for a new connection; false when none is free (logged once
  /// until half of them are free again).
  bool take_handshake(handshake_slot& slot);
  /// Gives a connection's handshake place back.
  void release_handshake(handshake_slot& slot);

  /// The upgrade policy: stopping, path, origin, --max-connections (taking a place: `counted`).
  upgrade_verdict validate(const std::string& resource, const std::string& origin, bool& counted);
  /// Gives a --max-connections place back (once).
  void release_slot(bool& counted);

  /// The answer to a plain HTTP request for `resource` (page, icon, 426 at the ws path, else 404).
  http_answer answer_http(const std::string& resource) const;

  /// Broadcast members: add on a decided 101, remove on close/fail; members() is a lock-free snapshot.
  void add_member(const weak_hdl& h);
  void remove_member(const weak_hdl& h);
  std::shared_ptr<const std::vector<weak_hdl>> members() const;

  /// A connection's number for logs and events (1, 2, ...).
  std::uint64_t next_id() { return ++ids_; }

  /// Log lines (and, with --json, NDJSON events) of a connection's life.
  void log_http(const std::string& peer, const std::string& method, const std::string& resource, int status) const;
  void log_open(std::uint64_t id, const std::string& peer, const std::string& origin, const std::string& resource,
                const std::string& extensions);
  void log_refused(const std::string& peer, const std::string& target, const std::string& origin, int status,
                   const std::string& why) const;
  void log_failed(const std::string& peer, const std::string& why) const;
  void log_close(const close_info& c);

  /// The note and close reason for a client over --max-queue by `backlog` bytes.
  std::string too_slow_note(std::uint64_t backlog) const;

 private:
  serve_options opt_;
  core::runtime& rt_;
  core::reporter& out_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> open_count_{0};
  std::atomic<std::uint64_t> ids_{0};
  std::shared_ptr<std::atomic<std::size_t>> handshakes_ = std::make_shared<std::atomic<std::size_t>>(0);
  std::atomic<bool> handshakes_full_{false};  ///< warned about --max-handshakes; not again until half free
  std::mutex reg_mu_;  ///< members_ below; taken on accept/open/close, never per message
  std::vector<weak_hdl> members_;  ///< upgraded (or about to be): broadcast targets
  std::shared_ptr<const std::vector<weak_hdl>> members_snapshot_;  ///< atomic_load/atomic_store only
};

}  // namespace netlab::ws::detail
