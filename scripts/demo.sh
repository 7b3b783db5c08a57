#!/usr/bin/env bash
# The main job, end to end: sets up (installs the build dependencies only, builds if needed; no test
# peers, no Chromium: scripts/deps.sh installs those for scripts/test.sh), then for each protocol
# starts a netlab server on loopback (ephemeral port), runs the matching netlab client against it,
# prints what happened, stops the server with SIGTERM and checks it exited 0.
# Usage: scripts/demo.sh            (exit 0 when every exchange worked)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${NETLAB_BUILD:-$here/build}
if [[ ! -x "$build/netlab" ]]; then
  "$here/scripts/bootstrap.sh" "$build"
else
  "$here/scripts/deps.sh" --build
fi
bin="$build/netlab"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
failures=0

# start_server NAME ARGS... : starts `netlab ARGS --json`, waits (bounded) for its readiness line,
# sets SERVER_PID and PORT.
start_server() {
  local name=$1; shift
  local fifo="$work/$name.out"
  mkfifo "$fifo"
  "$bin" "$@" --listen 127.0.0.1:0 --json >"$fifo" 2>"$work/$name.log" &
  SERVER_PID=$!
  pids+=("$SERVER_PID")
  exec {SERVER_FD}<"$fifo"
  local line=""
  if ! read -r -t 10 -u "$SERVER_FD" line || [[ "$line" != *'"listening"'* ]]; then
    echo "  FAIL: $name server did not report readiness: $(cat "$work/$name.log")"
    return 1
  fi
  PORT=$(sed -E 's/.*"port":([0-9]+).*/\1/' <<<"$line")
  echo "  \$ netlab $* --listen 127.0.0.1:0"
  echo "  $line"
}

stop_server() {
  kill -TERM "$SERVER_PID"
  local rc=0
  wait "$SERVER_PID" || rc=$?
  exec {SERVER_FD}<&-
  if [[ $rc -eq 0 ]]; then echo "  server stopped by SIGTERM, exit 0"; else
    echo "  FAIL: server exited $rc after SIGTERM: $(tail -n 3 "$work/$1.log")"; failures=$((failures + 1)); fi
}

# client NAME EXPECTED ARGS... : runs `netlab ARGS`, shows its output, checks it contains EXPECTED.
client() {
  local name=$1 expect=$2; shift 2
  echo "  \$ netlab $*"
  local out rc=0
  out=$(timeout 20 "$bin" "$@" 2>"$work/$name.client.log") || rc=$?
  sed 's/^/  > /' <<<"$out"
  if [[ $rc -ne 0 || "$out" != *"$expect"* ]]; then
    echo "  FAIL: exit $rc, expected output containing '$expect': $(tail -n 2 "$work/$name.client.log")"
    failures=$((failures + 1))
  fi
}

# A group is shown when both its server and its client exist in this build.
available() {
  local subs
  subs=$("$bin" "$1" --help 2>/dev/null) || return 1
  grep -qE "^  $2 " <<<"$subs" && grep -qE "^  $3 " <<<"$subs"
}

echo "netlab demo ($("$bin" --version))"

if available tcp serve dial; then
  echo; echo "== TCP: the classic lesson (acknowledge with a UTF-8 template, close after the reply)"
  start_server tcp tcp serve --reply '伺服器端回傳伺服器端已接收到 {msg}' --once
  client tcp '伺服器端回傳伺服器端已接收到 封印解除!' tcp dial "127.0.0.1:$PORT" -m '封印解除!'
  stop_server tcp
fi

if available udp serve send; then
  echo; echo "== UDP: send a datagram, get the acknowledgement"
  start_server udp udp serve
  client udp 'server received: Hello UDP!' udp send "127.0.0.1:$PORT" 'Hello UDP!'
  stop_server udp
fi

if available ws-echo serve dial; then
  echo; echo "== WebSocket: echo server on /echo, the lesson's client message"
  start_server ws ws-echo serve
  client ws 'hello Alvin' ws-echo dial "ws://127.0.0.1:$PORT/echo"
  stop_server ws
fi

if available udp-file serve fetch; then
  echo; echo "== TFTP over UDP: fetch a 1 MiB file and compare digests"
  mkdir -p "$work/root"
  head -c 1048576 /dev/urandom >"$work/root/sample.bin"
  want=$(sha256sum "$work/root/sample.bin" | cut -d' ' -f1)
  start_server tftp udp-file serve --root "$work/root"
  client tftp "$want" udp-file fetch "127.0.0.1:$PORT" sample.bin -o "$work/fetched.bin" --sha256
  if cmp -s "$work/root/sample.bin" "$work/fetched.bin"; then echo "  fetched file is identical ($want)"; else
    echo "  FAIL: fetched file differs"; failures=$((failures + 1)); fi
  stop_server tftp
fi

echo
if ((failures)); then echo "demo: $failures step(s) failed" >&2; exit 1; fi
echo "demo: every exchange worked"
