#pragma once
/// The small built-in HTML page `ws-echo serve` answers `GET /` with (no external files, no CDN).
#include <string>

namespace netlab::ws {

/// The page: a WebSocket client for ws(s)://<the page's host><ws_path> (connect, send, the stream
/// of replies/broadcasts). ws_path is escaped for the inline script.
std::string page_html(const std::string& ws_path);

}  // namespace netlab::ws
