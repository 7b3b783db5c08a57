#pragma once
/// One-line previews of wire data for -v logs.
#include <cstddef>
#include <string>

namespace netlab::tcp {

/// Quotes data for a log line: printable ASCII and UTF-8 sequences as they are, \r \n \t \\ and
/// \xNN for other bytes, cut after `limit` bytes with "..." appended.
std::string preview(const void* data, std::size_t n, std::size_t limit = 120);

}  // namespace netlab::tcp
