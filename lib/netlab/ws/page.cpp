// The built-in browser client: one self-contained HTML string, its script talks to --path.
#include "netlab/ws/page.hpp"

#include <cstdio>

namespace netlab::ws {
namespace {

// Element ids (url, connect, disconnect, state, msg, send, log; log lines have class in/out/sys)
// are relied on by tests/e2e/test_ws_echo.py's headless Chromium test.
constexpr const char* page_template = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>netlab ws-echo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px system-ui,sans-serif;margin:2em auto;max-width:52em;padding:0 1em}
input{font:inherit;padding:.2em} button{font:inherit}
#log{border:1px solid #bbb;height:24em;overflow:auto;padding:.5em;font-family:monospace;white-space:pre-wrap}
.in{color:#075} .out{color:#036} .sys{color:#888} #state{font-weight:bold}
</style></head>
<body>
<h1>netlab ws-echo</h1>
<p><input id="url" size="42" aria-label="WebSocket URL"> <button id="connect">Connect</button>
<button id="disconnect" disabled>Disconnect</button> <span id="state">closed</span></p>
<p><input id="msg" size="42" value="hello Alvin" aria-label="message"> <button id="send" disabled>Send</button></p>
<div id="log" aria-live="polite"></div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
$("url").value = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "@PATH@";
let ws = null;
function log(cls, text) {
  const d = document.createElement("div");
  d.className = cls;
  d.textContent = new Date().toLocaleTimeString() + " " + text;
  $("log").appendChild(d);
  $("log").scrollTop = $("log").scrollHeight;
}
function setState(s) {
  $("state").textContent = s;
  $("send").disabled = s !== "open";
  $("connect").disabled = ws !== null;
  $("disconnect").disabled = ws === null;
}
function connect() {
  ws = new WebSocket($("url").value);
  ws.binaryType = "arraybuffer";
  setState("connecting");
  ws.onopen = () => { setState("open"); log("sys", "connected to " + ws.url); };
  ws.onmessage = (e) => log("in", "< " + (typeof e.data === "string" ? e.data : "[binary, " + e.data.byteLength + " bytes]"));
  ws.onerror = () => log("sys", "error (see the server log)");
  ws.onclose = (e) => { log("sys", "closed " + e.code + (e.reason ? " " + e.reason : "")); ws = null; setState("closed"); };
}
function send() {
  const text = $("msg").value;
  ws.send(text);
  log("out", "> " + text);
}
$("connect").onclick = connect;
$("disconnect").onclick = () => { if (ws) ws.close(1000, "bye"); };
$("send").onclick = send;
$("msg").onkeydown = (e) => { if (e.key === "Enter" && ws && ws.readyState === WebSocket.OPEN) send(); };
connect();
</script>
</body></html>
)HTML";

// The path goes inside a double-quoted JS string in a <script>: escape what could end either.
std::string js_string_body(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c == '\'' || c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace

std::string page_html(const std::string& ws_path) {
  std::string html = page_template;
  static const std::string marker = "@PATH@";
  auto at = html.find(marker);
  if (at != std::string::npos) html.replace(at, marker.size(), js_string_body(ws_path));
  return html;
}

}  // namespace netlab::ws
