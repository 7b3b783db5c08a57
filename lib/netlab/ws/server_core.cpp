// ws-echo serve's policy and log lines, compiled once instead of in each of the four websocketpp
// instantiations (issue 14: those translation units are the slowest of the build).
#include "netlab/ws/server_core.hpp"

#include <algorithm>
#include <cctype>

#include "netlab/core/endpoint.hpp"
#include "netlab/core/log.hpp"
#include "netlab/core/net.hpp"
#include "netlab/core/payload.hpp"
#include "netlab/core/server_events.hpp"
#include "netlab/ws/page.hpp"

namespace netlab::ws::detail {
namespace {

// The page's icon (a browser asks for /favicon.ico whatever the page says): without it every page
// load logged a 404 (issue 15). Browsers take SVG from this path when the type says so.
constexpr const char* favicon_svg =
    "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">"
    "<rect width=\"16\" height=\"16\" rx=\"3\" fill=\"#036\"/>"
    "<path d=\"M3 5l2 6 3-5 3 5 2-6\" fill=\"none\" stroke=\"#fff\" stroke-width=\"1.6\"/></svg>";

bool is_favicon(const std::string& res) { return res == "/favicon.ico" || res.rfind("/favicon.ico?", 0) == 0; }

}  // namespace

std::string loggable(const std::string& s) {
  std::string out;
  const std::size_t n = std::min<std::size_t>(s.size(), 200);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != 0x7f && c != '\\') out += static_cast<char>(c);
    else out += fmt::format("\\x{:02x}", c);
  }
  if (s.size() > n) out += "...";
  return out;
}

server_core::server_core(const serve_options& opt, core::runtime& rt, core::reporter& out)
    : opt_(opt), rt_(rt), out_(out) {}

void server_core::listening(bool tls, const asio::ip::tcp::endpoint& local) {
  core::log().info("ws-echo serve on {}{} path {} ({}{}{}, {} thread(s))", tls ? "wss://" : "ws://",
                   core::to_string(local), opt_.path, opt_.broadcast ? "broadcast" : "echo",
                   opt_.deflate ? ", permessage-deflate" : "", opt_.page ? ", page at /" : "", opt_.threads);
  out_.listening(tls ? "wss" : "ws", core::address_string(local.address()), local.port());
}

bool server_core::take_handshake(handshake_slot& slot) {
  if (opt_.max_handshakes == 0) return true;
  // Each handshake in progress holds up to websocketpp's 16,000-byte request head, parsed (some
  // 55 KB): without a cap, memory would only be bounded by the open-files limit.
  if (handshakes_->fetch_add(1, std::memory_order_relaxed) >= opt_.max_handshakes) {
    handshakes_->fetch_sub(1, std::memory_order_relaxed);
    if (!handshakes_full_.exchange(true))
      core::log().warn("ws: {} handshakes in progress (--max-handshakes): dropping new connections until one ends",
                       opt_.max_handshakes);
    return false;
  }
  slot = handshake_slot(handshakes_);
  return true;
}

void server_core::release_handshake(handshake_slot& slot) {
  slot.release();
  if (handshakes_full_.load(std::memory_order_relaxed) &&
      handshakes_->load(std::memory_order_relaxed) < opt_.max_handshakes / 2 + 1)
    handshakes_full_.store(false);  // the next time it fills up is logged again
}

upgrade_verdict server_core::validate(const std::string& resource, const std::string& origin, bool& counted) {
  if (stopping_) return upgrade_verdict::stopping;
  // The path, optionally followed by a query string.
  const auto& p = opt_.path;
  const bool path_ok = resource == p || (resource.compare(0, p.size(), p) == 0 && resource.size() > p.size() &&
                                         resource[p.size()] == '?');
  if (!path_ok) return upgrade_verdict::not_found;
  if (!opt_.allow_origins.empty() && !origin.empty()) {  // non-browser clients send none
    auto lower = [](std::string s) {
      for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return s;
    };
    const auto o = lower(origin);
    const bool ok = std::any_of(opt_.allow_origins.begin(), opt_.allow_origins.end(),
                                [&](const std::string& a) { return a == "*" || lower(a) == o; });
    if (!ok) return upgrade_verdict::forbidden;
  }
  if (opt_.max_connections > 0 && open_count_.fetch_add(1) >= opt_.max_connections) {
    open_count_.fetch_sub(1);
    return upgrade_verdict::full;
  }
  counted = opt_.max_connections > 0;
  return upgrade_verdict::accept;
}

void server_core::release_slot(bool& counted) {
  if (!counted) return;
  counted = false;
  open_count_.fetch_sub(1);
}

http_answer server_core::answer_http(const std::string& res) const {
  http_answer a;
  const auto& p = opt_.path;
  const bool at_path = res == p || (res.compare(0, p.size(), p) == 0 && res.size() > p.size() && res[p.size()] == '?');
  if (opt_.page && (res == "/" || res.rfind("/?", 0) == 0)) {
    a.status = 200;
    a.headers = {{"Content-Type", "text/html; charset=utf-8"}, {"Cache-Control", "no-store"}};
    a.body = page_html(opt_.path);
  } else if (opt_.page && is_favicon(res)) {
    a.status = 200;
    a.headers = {{"Content-Type", "image/svg+xml"}, {"Cache-Control", "max-age=86400"}};
    a.body = favicon_svg;
  } else if (at_path) {
    a.status = 426;
    a.headers = {{"Sec-WebSocket-Version", "13"}};
    a.body = "this resource speaks WebSocket only\n";
  } else {
    a.status = 404;
    a.body = "not found\n";
  }
  return a;
}

void server_core::add_member(const weak_hdl& h) {
  std::lock_guard<std::mutex> lk(reg_mu_);
  members_.push_back(h);
  std::atomic_store(&members_snapshot_, std::make_shared<const std::vector<weak_hdl>>(members_));
}

void server_core::remove_member(const weak_hdl& h) {
  std::lock_guard<std::mutex> lk(reg_mu_);
  auto same = [&](const weak_hdl& w) { return !w.owner_before(h) && !h.owner_before(w); };
  auto it = std::remove_if(members_.begin(), members_.end(), same);
  if (it == members_.end()) return;
  members_.erase(it, members_.end());
  std::atomic_store(&members_snapshot_, std::make_shared<const std::vector<weak_hdl>>(members_));
}

std::shared_ptr<const std::vector<weak_hdl>> server_core::members() const {
  return std::atomic_load(&members_snapshot_);
}

void server_core::log_http(const std::string& peer, const std::string& method, const std::string& resource,
                           int status) const {
  // The icon is the page's asset, fetched on every load: not worth an info line of its own.
  const auto level = status == 200 && is_favicon(resource) ? spdlog::level::debug : spdlog::level::info;
  core::log().log(level, "http {} {} {} → {}", peer, loggable(method), loggable(resource), status);
}

void server_core::log_open(std::uint64_t id, const std::string& peer, const std::string& origin,
                           const std::string& resource, const std::string& extensions) {
  core::log().info("ws open {} origin '{}' resource {}{}{}", peer, origin, loggable(resource),
                   extensions.empty() ? "" : " extensions ", extensions);
  // NDJSON only: in text mode stdout keeps to the readiness line.
  if (out_.json()) core::server_event(out_, {{"event", "connection"}, {"proto", "ws"}, {"id", id}, {"peer", peer}});
}

void server_core::log_refused(const std::string& peer, const std::string& target, const std::string& origin,
                              int status, const std::string& why) const {
  core::log().info("ws refused {} '{}' origin '{}': HTTP {}{}{}", peer, loggable(target), loggable(origin), status,
                   why.empty() ? "" : ", ", loggable(why));
}

void server_core::log_failed(const std::string& peer, const std::string& why) const {
  core::log().info("ws handshake with {} failed: {}", peer, why);
}

void server_core::log_close(const close_info& c) {
  // 1006 is never on the wire (RFC 6455 7.4.1): it is websocketpp's record of "no close frame",
  // sent or received. Such a connection was lost, not closed with 1006.
  constexpr int none = 1006;
  std::string sent;
  if (c.sent_code != 0 && c.local_code == none)  // terminate() after our close got no answer
    sent = fmt::format("sent {} '{}' (then {})", c.sent_code, c.sent_reason, loggable(c.local_reason));
  else if (c.local_code != none)
    // The close reason echoed to a client is the client's own: escaped like everything it sends.
    sent = fmt::format("sent {} '{}'", c.local_code, loggable(c.local_reason));
  const std::string received =
      c.remote_code != none ? fmt::format("received {} '{}'", c.remote_code, loggable(c.remote_reason)) : "";
  std::string how;
  if (sent.empty() && received.empty())
    how = fmt::format("connection lost (1006): {}", loggable(c.local_reason));
  else
    how = sent.empty() ? received + ", sent none" : received.empty() ? sent + ", received none" : sent + ", " + received;
  core::log().info("ws close {} origin '{}': {}{}{}; in {} msgs/{} B, out {} msgs/{} B, {}", c.peer, c.origin, how,
                   c.note.empty() ? "" : "; ", c.note, c.msgs_in, c.bytes_in, c.msgs_out, c.bytes_out,
                   core::format_duration(c.duration));
  if (!out_.json()) return;
  // Who closed: netlab when it sent the first close (or dropped the peer); websocketpp also closes
  // first on a protocol error (1002, 1007, 1009), answered or not; otherwise the peer, whose code
  // websocketpp echoes, or which was lost.
  const bool local = c.closed_by_server || (c.local_code != none && c.local_code != c.remote_code);
  int code = none;
  std::string reason;
  if (local) {
    code = c.sent_code != 0 ? c.sent_code : c.local_code;
    reason = c.sent_code != 0 ? c.sent_reason : c.local_reason;
  } else if (c.remote_code != none) {
    code = c.remote_code;
    reason = c.remote_reason;
  } else {
    reason = "connection lost: " + c.local_reason;
  }
  nlohmann::json ev = {{"event", "closed"}, {"proto", "ws"}, {"id", c.id}, {"peer", c.peer},
                       {"code", code}, {"by", local ? "local" : "peer"},
                       {"bytes_in", c.bytes_in}, {"bytes_out", c.bytes_out},
                       {"seconds", std::chrono::duration<double>(c.duration).count()}};
  // A close reason is UTF-8 (websocketpp checks received ones, RFC 6455 7.4.1; netlab's are ASCII);
  // an error message is the system's.
  ev["reason"] = core::valid_utf8(reason) ? reason : loggable(reason);
  core::server_event(out_, ev);
}

std::string server_core::too_slow_note(std::uint64_t backlog) const {
  return "too slow: " + std::to_string(backlog) + " B unsent, over --max-queue " + std::to_string(opt_.max_queue);
}

}  // namespace netlab::ws::detail
