// The built-in browser client: one self-contained HTML string, its script talks to --path.
#include "netlab/ws/page.hpp"

#include <cstdio>

namespace netlab::ws {
namespace {

// Element ids (url, connect, disconnect, state, msg, send, binary, log, frames; log lines have class
// in/out/sys; frame rows class in/out with data-dir, data-opcode, data-size) are relied on by the
// headless Chromium tests (tests/e2e/test_ws_echo.py, test_ws_page.py).
constexpr const char* page_template = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>netlab ws-echo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/favicon.ico" type="image/svg+xml">
<style>
body{font:15px system-ui,sans-serif;margin:2em auto;max-width:52em;padding:0 1em}
input{font:inherit;padding:.2em} button{font:inherit}
#log{border:1px solid #bbb;height:12em;overflow:auto;padding:.5em;font-family:monospace;white-space:pre-wrap}
.in{color:#075} .out{color:#036} .sys{color:#888}
#state{font-weight:bold;padding:0 .4em;border-radius:.3em}
#state.open{background:#cfc} #state.connecting,#state.closing{background:#ffc} #state.closed{background:#eee}
#frames{border-collapse:collapse;width:100%;font-family:monospace;font-size:13px}
#frames th,#frames td{border-bottom:1px solid #ddd;padding:.15em .5em;text-align:left}
#frames td.n{text-align:right} #frames-box{max-height:16em;overflow:auto;border:1px solid #bbb}
</style></head>
<body>
<h1>netlab ws-echo</h1>
<p><input id="url" size="42" aria-label="WebSocket URL"> <button id="connect">Connect</button>
<button id="disconnect" disabled>Disconnect</button> state: <span id="state" class="closed">closed</span></p>
<p><input id="msg" size="42" value="hello Alvin" aria-label="message"> <button id="send" disabled>Send</button>
<button id="binary" disabled title="send the message's UTF-8 bytes as a binary frame">Send binary</button></p>
<h2>Frames</h2>
<p class="sys">As the browser sees them: its WebSocket API hands over whole messages (one frame each
unless the peer fragments), sizes are payload bytes, latency is the time from a send to its echo.</p>
<div id="frames-box"><table id="frames"><thead><tr><th>time</th><th>dir</th><th>opcode</th><th>size</th>
<th>latency</th><th>data</th></tr></thead><tbody></tbody></table></div>
<h2>Log</h2>
<div id="log" aria-live="polite"></div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
$("url").value = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "@PATH@";
let ws = null;
let pending = [];  // sends awaiting their echo: {t, key}
const utf8 = new TextEncoder();
function log(cls, text) {
  const d = document.createElement("div");
  d.className = cls;
  d.textContent = new Date().toLocaleTimeString() + " " + text;
  $("log").appendChild(d);
  $("log").scrollTop = $("log").scrollHeight;
}
function preview(data) {
  if (typeof data === "string") return data.length > 60 ? data.slice(0, 60) + "\u2026" : data;
  const b = new Uint8Array(data).slice(0, 16);
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ") + (data.byteLength > 16 ? " \u2026" : "");
}
function frame(dir, opcode, size, latency, data) {
  const tr = document.createElement("tr");
  tr.className = dir;
  tr.dataset.dir = dir;
  tr.dataset.opcode = opcode;
  tr.dataset.size = size;
  const cells = [new Date().toLocaleTimeString(), dir === "out" ? "\u2192 sent" : "\u2190 received", opcode, size + " B",
                 latency === null ? "" : latency.toFixed(1) + " ms", data];
  cells.forEach((c, i) => {
    const td = document.createElement("td");
    td.textContent = c;
    if (i === 3 || i === 4) td.className = "n";
    tr.appendChild(td);
  });
  $("frames").tBodies[0].appendChild(tr);
  $("frames-box").scrollTop = $("frames-box").scrollHeight;
}
function key(data) { return typeof data === "string" ? "t" + data : "b" + preview(data) + data.byteLength; }
function setState(s) {
  $("state").textContent = s;
  $("state").className = s;
  $("send").disabled = $("binary").disabled = s !== "open";
  $("connect").disabled = ws !== null;
  $("disconnect").disabled = ws === null || s !== "open";
}
function connect() {
  ws = new WebSocket($("url").value);
  ws.binaryType = "arraybuffer";
  pending = [];
  setState("connecting");
  ws.onopen = () => { setState("open"); log("sys", "connected to " + ws.url); };
  ws.onmessage = (e) => {
    const binary = typeof e.data !== "string";
    const size = binary ? e.data.byteLength : utf8.encode(e.data).length;
    // The oldest send with the same payload is the one echoed (broadcasts from others match none).
    let latency = null;
    const i = pending.findIndex((p) => p.key === key(e.data));
    if (i >= 0) { latency = performance.now() - pending[i].t; pending.splice(i, 1); }
    frame("in", binary ? "binary" : "text", size, latency, preview(e.data));
    log("in", "< " + (binary ? "[binary, " + size + " bytes]" : e.data));
  };
  ws.onerror = () => log("sys", "error (see the server log)");
  ws.onclose = (e) => {
    // The close frame's payload: a 2-byte code and the UTF-8 reason (none when the connection was lost).
    if (e.code !== 1006) frame("in", "close", 2 + utf8.encode(e.reason).length, null, e.code + (e.reason ? " " + e.reason : ""));
    log("sys", "closed " + e.code + (e.reason ? " " + e.reason : ""));
    ws = null;
    setState("closed");
  };
}
function sendData(data) {
  const size = typeof data === "string" ? utf8.encode(data).length : data.byteLength;
  pending.push({t: performance.now(), key: key(data)});
  ws.send(data);
  frame("out", typeof data === "string" ? "text" : "binary", size, null, preview(data));
}
function send() {
  const text = $("msg").value;
  sendData(text);
  log("out", "> " + text);
}
function sendBinary() {
  const bytes = utf8.encode($("msg").value).buffer;
  sendData(bytes);
  log("out", "> [binary, " + bytes.byteLength + " bytes]");
}
function disconnect() {
  if (!ws) return;
  ws.close(1000, "bye");
  frame("out", "close", 2 + 3, null, "1000 bye");
  setState("closing");
}
$("connect").onclick = connect;
$("disconnect").onclick = disconnect;
$("send").onclick = send;
$("binary").onclick = sendBinary;
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
