#include "netlab/core/fd_pump.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

namespace netlab::core {

fd_pump::fd_pump(int fd, asio::any_io_executor ex, handler h) : fd_(fd), ex_(std::move(ex)), handler_(std::move(h)) {}

void fd_pump::next() {
  if (!thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return;
    }
    if (::pipe(cancel_) != 0) {
      auto ec = std::error_code(errno, std::generic_category());
      asio::post(ex_, [h = handler_, ec] { h({}, false, ec); });
      return;
    }
    thread_ = std::thread([this] { loop(); });
  }
  std::lock_guard<std::mutex> lock(mu_);
  wanted_ = true;
  cv_.notify_one();
}

void fd_pump::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    cv_.notify_one();
  }
  if (!thread_.joinable()) return;
  char c = 0;
  [[maybe_unused]] auto w = ::write(cancel_[1], &c, 1);
  thread_.join();
  ::close(cancel_[0]);
  ::close(cancel_[1]);
  cancel_[0] = cancel_[1] = -1;
}

void fd_pump::loop() {
  std::vector<char> buf(chunk);
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return wanted_ || stopped_; });
      if (stopped_) return;
      wanted_ = false;
    }
    ssize_t n = -1;
    for (;;) {  // until one read gives data, end of file or a real error
      pollfd fds[2] = {{fd_, POLLIN, 0}, {cancel_[0], POLLIN, 0}};
      int r = ::poll(fds, 2, -1);
      if (r < 0 && errno == EINTR) continue;
      if (fds[1].revents) return;
      n = ::read(fd_, buf.data(), buf.size());
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      break;
    }
    if (n < 0) {
      post({}, false, std::error_code(errno, std::generic_category()));
      return;
    }
    if (n == 0) {
      post({}, true, {});
      return;
    }
    post(std::string(buf.data(), static_cast<std::size_t>(n)), false, {});
  }
}

// Under the lock: stop() either sees the post done, or the post sees stopped_ and drops the chunk.
void fd_pump::post(std::string data, bool eof, std::error_code ec) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return;
  asio::post(ex_, [h = handler_, d = std::move(data), eof, ec]() mutable { h(std::move(d), eof, ec); });
}

std::string fd_pump::read_all(int fd, std::size_t limit, std::error_code& ec) {
  asio::io_context ioc(1);
  auto work = asio::make_work_guard(ioc);  // the pump's thread posts into it
  std::string out;
  ec.clear();
  fd_pump pump(fd, ioc.get_executor(), [&](std::string data, bool eof, std::error_code e) {
    out += data;
    if (e || eof || out.size() > limit) {
      ec = e;
      work.reset();
      ioc.stop();
      return;
    }
    pump.next();
  });
  pump.next();
  ioc.run();
  pump.stop();
  return out;
}

}  // namespace netlab::core
