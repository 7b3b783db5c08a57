#pragma once
/// Error-code plumbing for the tcp commands.
#include <system_error>

namespace netlab::tcp {

/// Asio 1.22 reports socket errors in its own "asio.system" category, which does not compare equal
/// to std::errc conditions; this re-homes such a code in std::system_category (same errno and
/// message) so core::hint_for and std::errc comparisons recognise it. Other codes pass unchanged.
std::error_code portable(std::error_code ec) noexcept;

}  // namespace netlab::tcp
