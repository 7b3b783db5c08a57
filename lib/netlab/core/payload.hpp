#pragma once
/// How received bytes appear in NDJSON results: one rule for every command (docs/cli.md).
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace netlab::core {

/// True when `bytes` is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
bool valid_utf8(std::string_view bytes) noexcept;

/// Standard base64 (RFC 4648, with padding).
std::string base64(std::string_view bytes);

/// Adds the payload to a result object: "text" when it is text and valid UTF-8, otherwise "base64"
/// (binary payloads, or text that is not UTF-8), so a JSON consumer never sees U+FFFD in place of
/// bytes the peer sent.
void add_payload(nlohmann::json& obj, std::string_view bytes, bool binary = false);

}  // namespace netlab::core
