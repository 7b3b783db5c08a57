#include "netlab/core/server_events.hpp"

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>

#include "netlab/core/log.hpp"

namespace netlab::core {
namespace {

std::mutex room_mu;  // poll and write as one step: two writers cannot both use the same room
std::atomic<std::uint64_t> dropped{0};

// POLLOUT on a pipe means at least PIPE_BUF (4096) bytes are free, so one event line goes in
// without blocking; a regular file or a terminal is always writable.
bool stdout_has_room() {
  pollfd p{STDOUT_FILENO, POLLOUT, 0};
  int r;
  do r = ::poll(&p, 1, 0);
  while (r < 0 && errno == EINTR);
  return r == 1 && (p.revents & POLLOUT) && !(p.revents & (POLLERR | POLLHUP | POLLNVAL));
}

}  // namespace

void server_event(reporter& out, const nlohmann::json& ev) {
  std::lock_guard<std::mutex> lock(room_mu);
  if (stdout_has_room()) return out.result(ev, "");
  if (dropped.fetch_add(1) == 0)
    log().warn("stdout is not being read (a full pipe?): dropping --json {} events rather than stalling the "
               "server; read its stdout to get them all",
               ev.value("event", std::string("server")));
}

std::uint64_t server_events_dropped() noexcept { return dropped.load(); }

}  // namespace netlab::core
