// ws-echo serve's policy and log lines, compiled once instead of in each of the four websocketpp
// instantiations (issue 14: those translation units are the slowest of the build).
#include "netlab/ws/server_core.hpp"

#include <algorithm>
#include <cctype>

#include "netlab/core/endpoint.hpp"
#include "netlab/core/log.hpp"
#include "netlab/core/net.hpp"
#include "netlab/ws/page.hpp"

namespace netlab::ws::detail {

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
  core::log().info("http {} {} {} → {}", peer, loggable(method), loggable(resource), status);
}

void server_core::log_open(std::uint64_t, const std::string& peer, const std::string& origin,
                           const std::string& resource, const std::string& extensions) {
  core::log().info("ws open {} origin '{}' resource {}{}{}", peer, origin, loggable(resource),
                   extensions.empty() ? "" : " extensions ", extensions);
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
  // The close reason echoed to a client is the client's own: escaped like everything it sends.
  auto sent = fmt::format("{} '{}'", c.local_code, loggable(c.local_reason));
  // terminate() overwrites the local code with 1006 when our close got no answer: keep ours.
  if (c.sent_code != 0 && c.local_code == 1006)
    sent = fmt::format("{} '{}' (then {})", c.sent_code, c.sent_reason, loggable(c.local_reason));
  core::log().info("ws close {} origin '{}': sent {}, received {} '{}'{}{}; in {} msgs/{} B, out {} msgs/{} B, {}",
                   c.peer, c.origin, sent, c.remote_code, loggable(c.remote_reason), c.note.empty() ? "" : "; ", c.note,
                   c.msgs_in, c.bytes_in, c.msgs_out, c.bytes_out, core::format_duration(c.duration));
}

std::string server_core::too_slow_note(std::uint64_t backlog) const {
  return "too slow: " + std::to_string(backlog) + " B unsent, over --max-queue " + std::to_string(opt_.max_queue);
}

}  // namespace netlab::ws::detail
