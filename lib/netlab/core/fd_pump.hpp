#pragma once
/// Reading a file descriptor (stdin) for a client without blocking its io threads and without
/// reading ahead of what the connection can take: the one stdin reader of `tcp dial`, `ws-echo dial`
/// and `udp send`.
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

#include <asio/any_io_executor.hpp>

namespace netlab::core {

/// Reads a file descriptor on its own thread, one chunk at a time, handing each chunk to an
/// executor and reading the next only when asked (next()): the consumer's pace (the socket's, the
/// send buffer's) bounds how much is read, so a fast producer (`yes |`) costs one chunk of memory.
/// A thread works for every kind of fd (pipe, tty, regular file, which epoll refuses); poll() on a
/// self-pipe lets stop() interrupt a blocked read. stop() (or the destructor) joins the thread, and
/// nothing is posted after it returns: call it before the executor's context is destroyed.
class fd_pump {
 public:
  /// Runs on the executor: data, or eof (empty data), or an error.
  using handler = std::function<void(std::string data, bool eof, std::error_code ec)>;

  /// Largest chunk one read hands over.
  static constexpr std::size_t chunk = 64 * 1024;

  /// fd: read, never closed. ex: where `h` runs (an io_context's executor or a strand).
  fd_pump(int fd, asio::any_io_executor ex, handler h);
  ~fd_pump() { stop(); }
  fd_pump(const fd_pump&) = delete;
  fd_pump& operator=(const fd_pump&) = delete;

  /// Reads the next chunk (starts the thread on first use). One call, at most one chunk.
  void next();

  /// Interrupts and joins the thread; no handler is posted afterwards. Idempotent.
  void stop();

  /// Reads fd to its end, or until more than `limit` bytes were read (then returns those), with an
  /// fd_pump on a private io_context: for a command that needs its whole input before it starts
  /// (`udp send`'s one datagram). At most limit + chunk bytes are held.
  static std::string read_all(int fd, std::size_t limit, std::error_code& ec);

 private:
  void loop();
  void post(std::string data, bool eof, std::error_code ec);

  int fd_;
  asio::any_io_executor ex_;
  handler handler_;
  int cancel_[2] = {-1, -1};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool wanted_ = false;   ///< (mu_) next() asked for a chunk
  bool stopped_ = false;  ///< (mu_) stop() was called
};

}  // namespace netlab::core
