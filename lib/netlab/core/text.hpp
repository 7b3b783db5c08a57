#pragma once
/// Reply templates ({msg}, {peer}) and backslash escapes in user-typed messages.
#include <cstdint>
#include <string>
#include <string_view>

#include "netlab/core/endpoint.hpp"

namespace netlab::core {

/// Replaces every {msg} with msg and {peer} with peer; plain substitution, never a format string,
/// so '{', '}' and '%' elsewhere are copied as they are. Bytes pass through unchanged (UTF-8 intact).
std::string render_template(std::string_view tpl, std::string_view msg, std::string_view peer);

/// Appends the rendering to out (no allocation when out has capacity): the hot-path form.
void render_template_into(std::string& out, std::string_view tpl, std::string_view msg, std::string_view peer);

/// Decodes \r \n \t \0 \\ \xNN in text; anything else after a backslash is an error naming it.
parsed<std::string> decode_escapes(std::string_view text);

/// Parses a byte count: 64, 16K, 16KiB, 1M, 1MiB, 2G (K/M/G are powers of 1024; kB/MB/GB of 1000).
parsed<std::uint64_t> parse_size(std::string_view text);

}  // namespace netlab::core
