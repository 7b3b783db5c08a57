#include "netlab/core/error.hpp"

#include <cerrno>

#include <asio/error.hpp>

namespace netlab {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "netlab"; }
  std::string message(int v) const override {
    switch (static_cast<errc>(v)) {
      case errc::ok: return "success";
      case errc::timeout: return "timed out";
      case errc::interrupted: return "interrupted";
      case errc::protocol: return "protocol error";
      case errc::bad_packet: return "malformed packet";
      case errc::peer_error: return "peer reported an error";
      case errc::file: return "file error";
      case errc::usage: return "invalid argument";
      case errc::mismatch: return "echo mismatch";
    }
    return "unknown netlab error";
  }
};

}  // namespace

const std::error_category& netlab_category() noexcept {
  static const category c;
  return c;
}

std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), netlab_category()}; }

namespace core {
std::error_code portable(std::error_code ec) noexcept {
  if (ec && ec.category() == asio::error::get_system_category()) return {ec.value(), std::system_category()};
  return ec;
}
}  // namespace core

exit_code classify(std::error_code ec) noexcept {
  if (!ec) return exit_code::ok;
  ec = core::portable(ec);
  if (ec.category() == netlab_category()) {
    switch (static_cast<errc>(ec.value())) {
      case errc::ok: return exit_code::ok;
      case errc::timeout: return exit_code::timeout;
      case errc::interrupted: return exit_code::interrupted;
      case errc::protocol:
      case errc::bad_packet:
      case errc::peer_error:
      case errc::mismatch: return exit_code::protocol;
      case errc::file: return exit_code::local_io;
      case errc::usage: return exit_code::usage;
    }
    return exit_code::internal;
  }
  if (ec == std::errc::timed_out) return exit_code::timeout;
  if (ec == std::errc::no_space_on_device || ec == std::errc::read_only_file_system ||
      ec == std::errc::file_too_large || ec == std::errc::is_a_directory)
    return exit_code::local_io;
  return exit_code::network;
}

namespace core {

std::string hint_for(std::error_code ec) {
  ec = portable(ec);
  if (ec == std::errc::connection_refused) return "is a server listening on that port?";
  if (ec == std::errc::address_in_use) return "another program holds that port: pick another, or port 0 for any free one";
  if (ec == std::errc::permission_denied) return "ports below 1024 need root: run as root or pick a port above 1023";
  if (ec == std::errc::address_not_available) return "that address is not on this machine: use 127.0.0.1, ::1 or an interface's address";
  if (ec == std::errc::connection_reset) return "the peer closed the connection abruptly";
  if (ec == std::errc::network_unreachable || ec == std::errc::host_unreachable) return "check the address and the route to it";
  if (ec == make_error_code(errc::timeout)) return "is the peer up? raise the timeout";
  return {};
}

}  // namespace core
}  // namespace netlab
