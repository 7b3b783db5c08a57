#pragma once
/// netlab's error codes, their category, and the outcome a command returns.
#include <string>
#include <system_error>

#include "netlab/core/exit_code.hpp"

namespace netlab {

/// Domain failures, in the "netlab" error category.
enum class errc {
  ok = 0,
  timeout = 1,      ///< a deadline passed
  interrupted,      ///< stopped by SIGINT/SIGTERM
  protocol,         ///< the peer broke the protocol
  bad_packet,       ///< a malformed packet or frame
  peer_error,       ///< the peer answered with an error (TFTP ERROR, HTTP status, close code)
  file,             ///< local file error
  usage,            ///< invalid option value detected by lib
  mismatch,         ///< an echo did not match what was sent
};

/// The "netlab" error category.
const std::error_category& netlab_category() noexcept;
/// Makes an error_code in the netlab category.
std::error_code make_error_code(errc e) noexcept;

/// Which exit code an error_code maps to (system/asio errors are network errors).
exit_code classify(std::error_code ec) noexcept;

namespace core {
/// Asio 1.22 reports socket errors in its own "asio.system" category, which does not compare equal
/// to std::errc conditions; this re-homes such a code in std::system_category (same errno and
/// message) so std::errc comparisons recognise it. Other codes pass unchanged.
std::error_code portable(std::error_code ec) noexcept;
}  // namespace core

namespace core {

/// What a command did: ok, or one failure with its exit code, what failed, and a hint for the fix.
struct outcome {
  exit_code code = exit_code::ok;
  std::string what;  ///< "connect 127.0.0.1:9: Connection refused"
  std::string hint;  ///< "is a server listening on that port?"

  bool ok() const noexcept { return code == exit_code::ok; }
  static outcome success() { return {}; }
  /// A failure with an explicit exit code.
  static outcome fail(exit_code c, std::string what, std::string hint = {}) {
    return {c, std::move(what), std::move(hint)};
  }
  /// A failure whose exit code follows from ec; `what` should name the operation and peer.
  static outcome fail(std::error_code ec, const std::string& what, std::string hint = {}) {
    return {classify(ec), what + ": " + ec.message(), std::move(hint)};
  }
};

/// A default hint for common network errors ("is a server listening?"), or empty.
std::string hint_for(std::error_code ec);

}  // namespace core
}  // namespace netlab

namespace std {
template <>
struct is_error_code_enum<netlab::errc> : true_type {};
}  // namespace std
